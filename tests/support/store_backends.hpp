#pragma once
// Runs a test suite on both store backends: a fresh SQLite file, or a fresh database on the test
// binary's own PostgreSQL server (postgres_server.hpp), created for the test and dropped after it.
//
//   class QueueTest : public edgeprune::testing::StoreBackendTest {};
//   TEST_P(QueueTest, ClaimsInOrder) { auto db = OpenDatabase(); ... }
//   EDGEPRUNE_STORE_BACKENDS(QueueTest);   // QueueTest.ClaimsInOrder/sqlite and …/postgresql
//
// Header-only: only binaries that link edgeprune::store include it. Including it registers the
// GoogleTest environment that stops the shared PostgreSQL server when the binary ends.
// Thread-safety: a fixture belongs to its test's thread.

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <ostream>
#include <string>

#include "server/store/database.hpp"
#include "server/store/migrator.hpp"
#include "server/store/store_url.hpp"
#include "support/postgres_server.hpp"
#include "support/temp_dir.hpp"

namespace edgeprune::store {
// Test names and failure messages say "sqlite" / "postgresql", not a byte dump.
inline void PrintTo(Dialect dialect, std::ostream* os) { *os << DialectName(dialect); }
}  // namespace edgeprune::store

namespace edgeprune::testing {

class PostgresEnvironment : public ::testing::Environment {
 public:
  void TearDown() override { PostgresServer::StopShared(); }
};
inline ::testing::Environment* const kPostgresEnvironment =
    ::testing::AddGlobalTestEnvironment(new PostgresEnvironment);

// A database of one backend, made for one test: a file in a temp dir, or a PostgreSQL database
// created on the shared server (and dropped, with every connection to it, on destruction).
class TestDatabase {
 public:
  explicit TestDatabase(store::Dialect dialect) : dialect_(dialect) {
    if (dialect == store::Dialect::kSqlite) {
      url_ = "sqlite://" + dir_.File("edgeprune.db");
      return;
    }
    PostgresServer& server = PostgresServer::Shared();
    if (!server.ok()) {
      error_ = "PostgreSQL test server: " + server.error();
      return;
    }
    static std::atomic<int> counter{0};
    name_ = "t" + std::to_string(::getpid()) + "_" + std::to_string(++counter);
    auto admin = Admin();
    if (!admin.ok()) {
      error_ = admin.error().ToString();
      return;
    }
    auto made = (*admin)->Exec("create_database", "CREATE DATABASE " + name_);
    if (!made.ok()) error_ = made.error().ToString();
    url_ = server.Url(name_);
  }
  ~TestDatabase() {
    if (name_.empty()) return;
    auto admin = Admin();
    if (admin.ok())
      (void)(*admin)->Exec("drop_database", "DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
  }
  TestDatabase(const TestDatabase&) = delete;
  TestDatabase& operator=(const TestDatabase&) = delete;

  const std::string& error() const { return error_; }
  // The store.url of this database.
  const std::string& url() const { return url_; }
  store::Dialect dialect() const { return dialect_; }
  TempDir& dir() { return dir_; }

  // Opens it; `migrate`: with the project's migrations applied.
  std::shared_ptr<store::Database> Open(bool migrate = true, store::OpenOptions options = {}) {
    EXPECT_TRUE(error_.empty()) << error_;
    if (!error_.empty()) return nullptr;
    auto location = store::ParseStoreUrl(url_, dir_.path());
    EXPECT_TRUE(location.ok()) << location.error().ToString();
    if (!location.ok()) return nullptr;
    auto db = store::OpenStore(*location, options);
    EXPECT_TRUE(db.ok()) << db.error().ToString();
    if (!db.ok()) return nullptr;
    std::shared_ptr<store::Database> shared = std::move(db).value();
    if (migrate) {
      auto migrator = store::Migrator::Load(store::DefaultMigrationsDir(), dialect_);
      EXPECT_TRUE(migrator.ok()) << migrator.error().ToString();
      if (!migrator.ok()) return nullptr;
      auto applied = migrator->Apply(*shared);
      EXPECT_TRUE(applied.ok()) << applied.error().ToString();
      if (!applied.ok()) return nullptr;
    }
    return shared;
  }

 private:
  static Result<std::unique_ptr<store::Database>> Admin() {
    store::OpenOptions options;
    options.max_connections = 1;
    return store::Database::OpenPostgres(PostgresServer::Shared().Url("postgres"),
                                         "the test server", options);
  }

  TempDir dir_{"edgeprune-store"};
  store::Dialect dialect_;
  std::string name_;  // the PostgreSQL database, when one was made
  std::string url_;
  std::string error_;
};

// A suite parameterized over the backends; OpenDatabase() gives each test a fresh one.
class StoreBackendTest : public ::testing::TestWithParam<store::Dialect> {
 protected:
  TestDatabase& Backend() {
    if (!backend_) backend_ = std::make_unique<TestDatabase>(GetParam());
    return *backend_;
  }
  std::shared_ptr<store::Database> OpenDatabase(bool migrate = true,
                                                store::OpenOptions options = {}) {
    return Backend().Open(migrate, options);
  }
  store::Dialect dialect() const { return GetParam(); }

 private:
  std::unique_ptr<TestDatabase> backend_;
};

struct BackendName {
  std::string operator()(const ::testing::TestParamInfo<store::Dialect>& info) const {
    return store::DialectName(info.param);
  }
};

}  // namespace edgeprune::testing

#define EDGEPRUNE_STORE_BACKENDS(suite)                                               \
  INSTANTIATE_TEST_SUITE_P(, suite,                                                   \
                           ::testing::Values(::edgeprune::store::Dialect::kSqlite,    \
                                             ::edgeprune::store::Dialect::kPostgres), \
                           ::edgeprune::testing::BackendName())
