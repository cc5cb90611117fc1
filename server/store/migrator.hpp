#pragma once
// Schema migrations: migrations/<dialect>/NNNN_name.sql files applied in order, one transaction
// each. Each backend has its own set (migrations/sqlite/, migrations/postgresql/) with the same
// numbers: migration N brings either database to the same schema version N. The version is
// tracked by SQLite's PRAGMA user_version, and on PostgreSQL by the one-row table
// edgeprune_schema; both change in the migration's own transaction.
//
// Where they come from: the config key `store.migrations_dir`, the directory holding the two
// dialect folders. Load("", dialect) uses the copies compiled into the binary at build time
// (server/store/migrations.cmake), so an installed server needs no directory; a directory path
// reads the files at runtime (for development and for trying a new migration without a
// rebuild). DefaultMigrationsDir() is the source tree's migrations/.
//
// Rules: numbers start at 0001 and run without gaps or duplicates; a .sql file whose name does
// not match NNNN_name.sql is an error (a typo must not silently skip a migration); a database
// whose user_version is newer than the newest migration known is refused untouched; a failing
// migration rolls back completely and leaves user_version where it was. A migration must not
// open its own transaction, and `PRAGMA foreign_keys` has no effect inside one.
//
// Thread-safety: Migrator is immutable after construction and safe to share. Apply() may race
// with another process applying the same set: each step re-reads the version inside its write
// transaction (on PostgreSQL after taking a session advisory lock that orders migrators), so
// every migration runs exactly once.

#include <memory>
#include <string>
#include <vector>

#include "edgeprune/common/result.hpp"
#include "server/store/database.hpp"

namespace edgeprune::store {

struct Migration {
  int version = 0;    // from the NNNN prefix
  std::string name;   // "0001_init.sql"
  std::string sql;
};

struct MigrationReport {
  int from_version = 0;
  int to_version = 0;
  std::vector<std::string> applied;  // file names, in order
};

// The source tree's migrations/ directory (EDGEPRUNE_MIGRATIONS_DIR).
std::string DefaultMigrationsDir();

// migrations/<dialect>/*.sql as compiled in (version fields unset); generated at build time.
const std::vector<Migration>& EmbeddedMigrationFiles(Dialect dialect);

// The schema version of the connection's database (0: nothing applied yet).
Result<int> SchemaVersion(Connection& conn);

class Migrator {
 public:
  // The embedded migrations of `dialect` when `dir` is empty, else FromDirectory(dir/<dialect>).
  static Result<Migrator> Load(const std::string& dir, Dialect dialect);
  // The migrations of `dialect` compiled into this binary.
  static Result<Migrator> FromEmbedded(Dialect dialect);
  // Loads and validates every NNNN_name.sql in `dir`; other files are ignored.
  static Result<Migrator> FromDirectory(const std::string& dir);
  // Validates an in-memory list (numbering 1..N, no duplicates). A version of 0 is taken from
  // the name's NNNN prefix.
  static Result<Migrator> FromList(std::vector<Migration> migrations);

  // Brings the database up to latest_version(). Refuses a database from a newer binary.
  Result<MigrationReport> Apply(Database& db) const;
  // Fails like Apply() would for a too-new database; otherwise returns the number of
  // migrations still to apply. Changes nothing.
  Result<int> Pending(Database& db) const;

  int latest_version() const { return migrations_.empty() ? 0 : migrations_.back().version; }
  const std::vector<Migration>& migrations() const { return migrations_; }

 private:
  explicit Migrator(std::vector<Migration> migrations) : migrations_(std::move(migrations)) {}
  Status CheckNotNewer(int current) const;

  std::vector<Migration> migrations_;
};

// The one way a command opens the server's database: the one `store_url` names (store_url.hpp;
// empty: <data_dir>/edgeprune.db), its schema brought up to date with the migrations of its
// dialect under `migrations_dir` (empty: the embedded ones). `report` gets what was applied
// when not null.
Result<std::shared_ptr<Database>> OpenAndMigrate(const std::string& store_url,
                                                 const std::string& data_dir,
                                                 const std::string& migrations_dir,
                                                 MigrationReport* report = nullptr);

}  // namespace edgeprune::store
