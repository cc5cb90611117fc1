#include "support/build_paths.hpp"
#include "server/store/migrator.hpp"

#include <gtest/gtest.h>

#include "support/temp_dir.hpp"

namespace edgeprune::store {
namespace {

std::unique_ptr<Database> OpenDb(const std::string& path) {
  auto db = Database::Open(path, {});
  EXPECT_TRUE(db.ok()) << (db.ok() ? "" : db.error().ToString());
  return db.ok() ? std::move(db).value() : nullptr;
}

int VersionOf(Database& db) {
  auto lease = db.Acquire();
  EXPECT_TRUE(lease.ok());
  auto v = SchemaVersion(**lease);
  EXPECT_TRUE(v.ok());
  return v.ok() ? *v : -1;
}

bool TableExists(Database& db, const std::string& table) {
  auto lease = db.Acquire();
  auto stmt = (*lease)->Query("table_exists",
                              "SELECT count(*) FROM sqlite_master WHERE type='table' AND name=?",
                              table);
  EXPECT_TRUE(stmt.ok());
  EXPECT_TRUE(*stmt->Step());
  return stmt->Int64(0) == 1;
}

TEST(MigratorTest, ProjectMigrationsApplyToEmptyDatabaseAndAgainAsNoOp) {
  auto migrator = Migrator::FromDirectory(edgeprune::testing::SourceDir() + "/migrations/sqlite");
  ASSERT_TRUE(migrator.ok()) << migrator.error().ToString();
  ASSERT_GE(migrator->latest_version(), 1);
  EXPECT_EQ(migrator->migrations().front().name, "0001_init.sql");

  testing::TempDir dir;
  auto db = OpenDb(dir.File("edgeprune.db"));
  auto pending = migrator->Pending(*db);
  ASSERT_TRUE(pending.ok());
  EXPECT_EQ(*pending, migrator->latest_version());

  auto first = migrator->Apply(*db);
  ASSERT_TRUE(first.ok()) << first.error().ToString();
  EXPECT_EQ(first->from_version, 0);
  EXPECT_EQ(first->to_version, migrator->latest_version());
  EXPECT_EQ(static_cast<int>(first->applied.size()), migrator->latest_version());
  EXPECT_EQ(VersionOf(*db), migrator->latest_version());
  for (const char* table : {"meta", "audit_log", "api_tokens"}) {
    EXPECT_TRUE(TableExists(*db, table)) << table;
  }

  auto second = migrator->Apply(*db);
  ASSERT_TRUE(second.ok());
  EXPECT_TRUE(second->applied.empty());
  EXPECT_EQ(second->from_version, migrator->latest_version());
  EXPECT_EQ(*migrator->Pending(*db), 0);

  // The schema's own constraints hold: roles are limited, token hashes are unique.
  auto lease = db->Acquire();
  auto bad_role = (*lease)->Execute(
      "insert_token", "INSERT INTO api_tokens (name, role, token_hash, created_at) VALUES (?,?,?,?)",
      "x", "root", "h1", 1);
  EXPECT_FALSE(bad_role.ok());
}

TEST(MigratorTest, MigratesStepByStepAcrossRuns) {
  testing::TempDir dir;
  const std::string mig = dir.Subdir("m");
  dir.WriteFile("m/0001_a.sql", "CREATE TABLE a (x INTEGER);");
  auto db = OpenDb(dir.File("s.db"));
  auto v1 = Migrator::FromDirectory(mig);
  ASSERT_TRUE(v1.ok());
  ASSERT_TRUE(v1->Apply(*db).ok());
  EXPECT_EQ(VersionOf(*db), 1);

  dir.WriteFile("m/0002_b.sql", "CREATE TABLE b (y INTEGER);\nINSERT INTO b VALUES (1);");
  dir.WriteFile("m/README.md", "not a migration, ignored");
  auto v2 = Migrator::FromDirectory(mig);
  ASSERT_TRUE(v2.ok()) << v2.error().ToString();
  auto report = v2->Apply(*db);
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->from_version, 1);
  EXPECT_EQ(report->applied, std::vector<std::string>{"0002_b.sql"});
  EXPECT_TRUE(TableExists(*db, "b"));
}

TEST(MigratorTest, DatabaseFromTheFutureIsRefusedUntouched) {
  testing::TempDir dir;
  auto db = OpenDb(dir.File("future.db"));
  ASSERT_TRUE(db->Exec("future", "PRAGMA user_version = 7").ok());
  dir.WriteFile("m/0001_a.sql", "CREATE TABLE a (x INTEGER);");
  dir.WriteFile("m/0002_b.sql", "CREATE TABLE b (x INTEGER);");
  dir.WriteFile("m/0003_c.sql", "CREATE TABLE c (x INTEGER);");
  auto migrator = Migrator::FromDirectory(dir.File("m"));
  ASSERT_TRUE(migrator.ok());
  auto applied = migrator->Apply(*db);
  ASSERT_FALSE(applied.ok());
  EXPECT_EQ(applied.error().code, "schema_too_new");
  EXPECT_EQ(applied.error().message,
            "database schema version 7 is newer than this edgeprune-server (knows up to 3); "
            "refusing to open");
  EXPECT_FALSE(migrator->Pending(*db).ok());
  EXPECT_EQ(VersionOf(*db), 7);
  EXPECT_FALSE(TableExists(*db, "a"));
}

TEST(MigratorTest, FailingMigrationLeavesNothingHalfApplied) {
  testing::TempDir dir;
  dir.WriteFile("m/0001_ok.sql", "CREATE TABLE kept (x INTEGER);");
  // The first two statements succeed; the third fails, so all of 0002 must vanish.
  dir.WriteFile("m/0002_broken.sql",
                "CREATE TABLE half (x INTEGER);\n"
                "INSERT INTO kept VALUES (42);\n"
                "INSERT INTO no_such_table VALUES (1);\n");
  dir.WriteFile("m/0003_later.sql", "CREATE TABLE later (x INTEGER);");
  auto db = OpenDb(dir.File("s.db"));
  auto migrator = Migrator::FromDirectory(dir.File("m"));
  ASSERT_TRUE(migrator.ok());
  auto applied = migrator->Apply(*db);
  ASSERT_FALSE(applied.ok());
  EXPECT_NE(applied.error().message.find("0002_broken.sql"), std::string::npos);
  EXPECT_NE(applied.error().message.find("no_such_table"), std::string::npos);
  EXPECT_EQ(VersionOf(*db), 1);
  EXPECT_TRUE(TableExists(*db, "kept"));
  EXPECT_FALSE(TableExists(*db, "half"));
  EXPECT_FALSE(TableExists(*db, "later"));
  auto lease = db->Acquire();
  auto rows = (*lease)->Query("count", "SELECT count(*) FROM kept");
  ASSERT_TRUE(*rows->Step());
  EXPECT_EQ(rows->Int64(0), 0);
  EXPECT_FALSE((*lease)->InTransaction());
}

TEST(MigratorTest, GapsDuplicatesAndBadNamesAreErrors) {
  struct Case {
    std::vector<std::string> files;
    std::string expect;
  };
  const std::vector<Case> cases = {
      {{"0001_a.sql", "0003_c.sql"}, "without gaps"},
      {{"0002_b.sql"}, "without gaps"},
      {{"0001_a.sql", "0001_b.sql"}, "duplicate migration number 1"},
      {{"0001_a.sql", "1_b.sql"}, "does not match NNNN_name.sql"},
      {{"0001_A.sql"}, "does not match NNNN_name.sql"},
      {{}, "no migration files"},
  };
  for (const Case& c : cases) {
    testing::TempDir dir;
    dir.Subdir("m");
    for (const auto& f : c.files) dir.WriteFile("m/" + f, "SELECT 1;");
    auto migrator = Migrator::FromDirectory(dir.File("m"));
    ASSERT_FALSE(migrator.ok()) << c.expect;
    EXPECT_EQ(migrator.error().code, "invalid_migrations");
    EXPECT_NE(migrator.error().message.find(c.expect), std::string::npos)
        << migrator.error().message;
  }
  testing::TempDir dir;
  auto missing = Migrator::FromDirectory(dir.File("absent"));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().kind, ErrorKind::kNotFound);
  EXPECT_NE(missing.error().message.find("store.migrations_dir"), std::string::npos);
}

// The binary carries the same migrations as the source tree, so an installed server needs no
// migrations directory.
TEST(MigratorTest, EmbeddedMigrationsMatchTheDirectory) {
  for (Dialect dialect : {Dialect::kSqlite, Dialect::kPostgres}) {
    auto embedded = Migrator::Load("", dialect);
    ASSERT_TRUE(embedded.ok()) << embedded.error().ToString();
    auto from_dir = Migrator::Load(DefaultMigrationsDir(), dialect);
    ASSERT_TRUE(from_dir.ok());
    ASSERT_EQ(embedded->latest_version(), from_dir->latest_version());
    for (std::size_t i = 0; i < embedded->migrations().size(); ++i) {
      EXPECT_EQ(embedded->migrations()[i].name, from_dir->migrations()[i].name);
      EXPECT_EQ(embedded->migrations()[i].version, from_dir->migrations()[i].version);
      EXPECT_EQ(embedded->migrations()[i].sql, from_dir->migrations()[i].sql);
    }
  }
  auto embedded = Migrator::Load("", Dialect::kSqlite);
  auto from_dir = Migrator::Load(DefaultMigrationsDir(), Dialect::kSqlite);
  ASSERT_TRUE(embedded.ok() && from_dir.ok());
  testing::TempDir dir;
  auto db = OpenDb(dir.File("e.db"));
  auto applied = embedded->Apply(*db);
  ASSERT_TRUE(applied.ok()) << applied.error().ToString();
  EXPECT_EQ(VersionOf(*db), from_dir->latest_version());
}

TEST(MigratorTest, DefaultDirectoryIsTheProjectMigrations) {
  auto migrator = Migrator::FromDirectory(DefaultMigrationsDir() + "/sqlite");
  ASSERT_TRUE(migrator.ok()) << migrator.error().ToString();
  EXPECT_GE(migrator->latest_version(), 1);
}

// Both dialects have the same migrations, number for number: a schema version means the same
// schema on either.
TEST(MigratorTest, BothDialectsHaveTheSameMigrationNumbersAndNames) {
  auto sqlite = Migrator::Load(DefaultMigrationsDir(), Dialect::kSqlite);
  auto postgres = Migrator::Load(DefaultMigrationsDir(), Dialect::kPostgres);
  ASSERT_TRUE(sqlite.ok()) << sqlite.error().ToString();
  ASSERT_TRUE(postgres.ok()) << postgres.error().ToString();
  ASSERT_EQ(sqlite->migrations().size(), postgres->migrations().size());
  for (std::size_t i = 0; i < sqlite->migrations().size(); ++i) {
    EXPECT_EQ(sqlite->migrations()[i].name, postgres->migrations()[i].name);
  }
}

}  // namespace
}  // namespace edgeprune::store
