#include "server/store/migrator.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <system_error>
#include <utility>

#include "edgeprune/common/log.hpp"
#include "server/store/store_url.hpp"

#ifndef EDGEPRUNE_MIGRATIONS_DIR
#error "EDGEPRUNE_MIGRATIONS_DIR must be defined by the build (server/CMakeLists.txt)"
#endif

namespace edgeprune::store {
namespace {

namespace stdfs = std::filesystem;

Result<std::string> ReadWhole(const stdfs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return MakeError(ErrorKind::kIo, "migration_unreadable",
                     "cannot open migration file " + path.string());
  }
  std::ostringstream out;
  out << in.rdbuf();
  if (in.bad()) {
    return MakeError(ErrorKind::kIo, "migration_unreadable",
                     "cannot read migration file " + path.string());
  }
  return out.str();
}

Error BadMigrations(std::string message) {
  return MakeError(ErrorKind::kFailedPrecondition, "invalid_migrations", std::move(message));
}

// "0007_add_x.sql" → 7; anything else is an error naming the file.
Result<int> VersionFromName(const std::string& file) {
  static const std::regex kName(R"(^([0-9]{4})_([a-z0-9_]+)\.sql$)");
  std::smatch m;
  if (!std::regex_match(file, m, kName)) {
    return BadMigrations("migration file name '" + file +
                         "' does not match NNNN_name.sql (lower-case name)");
  }
  return std::stoi(m[1].str());
}

}  // namespace

std::string DefaultMigrationsDir() { return EDGEPRUNE_MIGRATIONS_DIR; }

Result<int> SchemaVersion(Connection& conn) {
  const bool pg = conn.dialect() == Dialect::kPostgres;
  if (pg) {
    EP_ASSIGN_OR_RETURN(Statement exists,
                        conn.Prepare("schema_table_exists",
                                     "SELECT to_regclass('edgeprune_schema') IS NOT NULL"));
    EP_ASSIGN_OR_RETURN(bool row, exists.Step());
    if (!row || exists.Int64(0) == 0) return 0;
  }
  EP_ASSIGN_OR_RETURN(Statement stmt,
                      conn.Prepare("read_schema_version",
                                   pg ? "SELECT max(version) FROM edgeprune_schema"
                                      : "PRAGMA user_version"));
  EP_ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) {
    return MakeError(ErrorKind::kInternal, "database_error", "the schema version read no row");
  }
  return static_cast<int>(stmt.Int64(0));
}

namespace {

// Writes the schema version inside the open migration transaction.
Status WriteSchemaVersion(Connection& conn, int version) {
  // The version is our own parsed integer, not input text; PRAGMA takes no parameters.
  if (conn.dialect() == Dialect::kSqlite) {
    return conn.Exec("write_user_version", "PRAGMA user_version = " + std::to_string(version));
  }
  EP_RETURN_IF_ERROR(conn.Exec("schema_table",
                               "CREATE TABLE IF NOT EXISTS edgeprune_schema "
                               "(version BIGINT NOT NULL); DELETE FROM edgeprune_schema"));
  auto inserted = conn.Execute("write_schema_version",
                               "INSERT INTO edgeprune_schema (version) VALUES (?)", version);
  if (!inserted.ok()) return inserted.error();
  return Ok();
}

// PostgreSQL: one migrator at a time per database, across processes (a session advisory lock,
// held until the Apply returns). SQLite's BEGIN IMMEDIATE orders migrators already.
class MigrationLock {
 public:
  static Result<MigrationLock> Take(Connection& conn) {
    if (conn.dialect() != Dialect::kPostgres) return MigrationLock(nullptr);
    EP_RETURN_IF_ERROR(conn.Exec("migration_lock", "SELECT pg_advisory_lock(72621809)"));
    return MigrationLock(&conn);
  }
  MigrationLock(MigrationLock&& other) noexcept : conn_(std::exchange(other.conn_, nullptr)) {}
  MigrationLock& operator=(MigrationLock&&) = delete;
  ~MigrationLock() {
    if (conn_ != nullptr) {
      (void)conn_->Exec("migration_unlock", "SELECT pg_advisory_unlock(72621809)");
    }
  }

 private:
  explicit MigrationLock(Connection* conn) : conn_(conn) {}
  Connection* conn_;
};

}  // namespace

Result<Migrator> Migrator::FromDirectory(const std::string& dir) {
  std::error_code ec;
  if (!stdfs::is_directory(dir, ec)) {
    return MakeError(ErrorKind::kNotFound, "migrations_not_found",
                     "migrations directory " + dir +
                         " does not exist or is not a directory (set store.migrations_dir)");
  }
  std::vector<Migration> found;
  for (stdfs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string file = it->path().filename().string();
    if (it->path().extension() != ".sql") continue;
    auto version = VersionFromName(file);
    if (!version.ok()) return version.error().WithContext("migrations in " + dir);
    EP_ASSIGN_OR_RETURN(std::string sql, ReadWhole(it->path()));
    found.push_back(Migration{*version, file, std::move(sql)});
  }
  if (ec) {
    return MakeError(ErrorKind::kIo, "migrations_unreadable",
                     "cannot list migrations directory " + dir + ": " + ec.message());
  }
  auto migrator = FromList(std::move(found));
  if (!migrator.ok()) return migrator.error().WithContext("migrations in " + dir);
  return migrator;
}

Result<Migrator> Migrator::Load(const std::string& dir, Dialect dialect) {
  return dir.empty() ? FromEmbedded(dialect) : FromDirectory(dir + "/" + DialectName(dialect));
}

Result<Migrator> Migrator::FromEmbedded(Dialect dialect) {
  auto migrator = FromList(EmbeddedMigrationFiles(dialect));
  if (!migrator.ok()) {
    return migrator.error().WithContext(std::string("embedded ") + DialectName(dialect) +
                                        " migrations");
  }
  return migrator;
}

Result<Migrator> Migrator::FromList(std::vector<Migration> migrations) {
  if (migrations.empty()) return BadMigrations("no migration files found");
  for (Migration& m : migrations) {
    if (m.version == 0) {
      EP_ASSIGN_OR_RETURN(m.version, VersionFromName(m.name));
    }
  }
  std::sort(migrations.begin(), migrations.end(),
            [](const Migration& a, const Migration& b) {
              return a.version != b.version ? a.version < b.version : a.name < b.name;
            });
  for (std::size_t i = 0; i < migrations.size(); ++i) {
    const int expected = static_cast<int>(i) + 1;
    const Migration& m = migrations[i];
    if (i > 0 && m.version == migrations[i - 1].version) {
      return BadMigrations("duplicate migration number " + std::to_string(m.version) + ": " +
                           migrations[i - 1].name + " and " + m.name);
    }
    if (m.version != expected) {
      return BadMigrations("migration numbers must run 1, 2, 3… without gaps: expected " +
                           std::to_string(expected) + " but found " + m.name);
    }
  }
  return Migrator(std::move(migrations));
}

Status Migrator::CheckNotNewer(int current) const {
  if (current > latest_version()) {
    return MakeError(ErrorKind::kFailedPrecondition, "schema_too_new",
                     "database schema version " + std::to_string(current) +
                         " is newer than this edgeprune-server (knows up to " +
                         std::to_string(latest_version()) + "); refusing to open");
  }
  if (current < 0) {
    return MakeError(ErrorKind::kFailedPrecondition, "schema_invalid",
                     "database schema version " + std::to_string(current) + " is negative");
  }
  return Ok();
}

Result<int> Migrator::Pending(Database& db) const {
  EP_ASSIGN_OR_RETURN(ConnectionLease lease, db.Acquire());
  EP_ASSIGN_OR_RETURN(int current, SchemaVersion(*lease));
  EP_RETURN_IF_ERROR(CheckNotNewer(current));
  return latest_version() - current;
}

Result<MigrationReport> Migrator::Apply(Database& db) const {
  EP_ASSIGN_OR_RETURN(ConnectionLease lease, db.Acquire());
  EP_ASSIGN_OR_RETURN(MigrationLock lock, MigrationLock::Take(*lease));
  MigrationReport report;
  EP_ASSIGN_OR_RETURN(report.from_version, SchemaVersion(*lease));
  EP_RETURN_IF_ERROR(CheckNotNewer(report.from_version));
  report.to_version = report.from_version;
  for (const Migration& m : migrations_) {
    if (m.version <= report.to_version) continue;
    EP_ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(*lease));
    // Another process may have migrated between our read and our write lock.
    EP_ASSIGN_OR_RETURN(int current, SchemaVersion(*lease));
    EP_RETURN_IF_ERROR(CheckNotNewer(current));
    if (current >= m.version) {
      report.to_version = current;
      continue;
    }
    Status applied = lease->Exec(m.name, m.sql);
    if (!applied.ok()) return applied.error().WithContext("applying migration " + m.name);
    EP_RETURN_IF_ERROR(WriteSchemaVersion(*lease, m.version));
    Status committed = tx.Commit();
    if (!committed.ok()) return committed.error().WithContext("committing migration " + m.name);
    report.to_version = m.version;
    report.applied.push_back(m.name);
    log::Get("store")->info("applied migration {} (schema version {})", m.name, m.version);
  }
  return report;
}

Result<std::shared_ptr<Database>> OpenAndMigrate(const std::string& store_url,
                                                 const std::string& data_dir,
                                                 const std::string& migrations_dir,
                                                 MigrationReport* report) {
  EP_ASSIGN_OR_RETURN(StoreLocation location, ParseStoreUrl(store_url, data_dir));
  EP_ASSIGN_OR_RETURN(std::unique_ptr<Database> db, OpenStore(location, OpenOptions{}));
  std::shared_ptr<Database> database = std::move(db);
  EP_ASSIGN_OR_RETURN(Migrator migrator, Migrator::Load(migrations_dir, location.dialect));
  EP_ASSIGN_OR_RETURN(MigrationReport applied, migrator.Apply(*database));
  if (report) *report = std::move(applied);
  return database;
}

}  // namespace edgeprune::store
