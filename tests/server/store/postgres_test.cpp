// The PostgreSQL backend's own behaviour: store.url parsing, placeholder rewriting, errors by
// SQLSTATE, a lost connection, startup errors that never show the password.
#include <gtest/gtest.h>
#include <unistd.h>

#include <thread>

#include "server/store/migrator.hpp"
#include "server/store/postgres_backend.hpp"
#include "server/store/sql_placeholders.hpp"
#include "server/store/store_url.hpp"
#include "support/store_backends.hpp"

namespace edgeprune::store {
namespace {

TEST(SqlPlaceholdersTest, RewritesToDollarNumbersAsSqliteNumbersThem) {
  auto t = ToDollarParameters("SELECT ? , ?, ?5, ? WHERE a = :x AND b = :x AND c = :y");
  EXPECT_EQ(t.sql, "SELECT $1 , $2, $5, $6 WHERE a = $7 AND b = $7 AND c = $8");
  EXPECT_EQ(t.parameters, 8);
  ASSERT_EQ(t.names.size(), 8u);
  EXPECT_EQ(t.names[6], ":x");
  EXPECT_EQ(t.names[7], ":y");
  EXPECT_EQ(t.names[0], "");
}

TEST(SqlPlaceholdersTest, LeavesLiteralsCommentsAndCastsAlone) {
  auto t = ToDollarParameters(
      "SELECT '?:a''?', \"we?ird\", x::text, ? -- what? :no\n/* ? */ FROM t WHERE y = ?");
  EXPECT_EQ(t.sql,
            "SELECT '?:a''?', \"we?ird\", x::text, $1 -- what? :no\n/* ? */ FROM t WHERE y = $2");
  EXPECT_EQ(t.parameters, 2);
}

TEST(StoreUrlTest, EmptyIsTheDataDirectorysSqliteFile) {
  auto l = ParseStoreUrl("", "/srv/data");
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(l->dialect, Dialect::kSqlite);
  EXPECT_EQ(l->target, "/srv/data/edgeprune.db");
  auto file = ParseStoreUrl("sqlite:///var/lib/x.db", "/srv/data");
  ASSERT_TRUE(file.ok());
  EXPECT_EQ(file->target, "/var/lib/x.db");
}

TEST(StoreUrlTest, PostgresUrlsAreShownWithoutThePassword) {
  auto l = ParseStoreUrl("postgresql://ep:s3cret-pw@db.example:5433/fleet?sslmode=require", "");
  ASSERT_TRUE(l.ok()) << l.error().ToString();
  EXPECT_EQ(l->dialect, Dialect::kPostgres);
  EXPECT_EQ(l->display, "postgresql://ep@db.example:5433/fleet");
  EXPECT_EQ(l->display.find("s3cret"), std::string::npos);
  auto socket = ParseStoreUrl("postgresql:///fleet?host=/run/postgresql", "");
  ASSERT_TRUE(socket.ok()) << socket.error().ToString();
  EXPECT_EQ(socket->display, "postgresql:///fleet?host=/run/postgresql");
  EXPECT_TRUE(ParseStoreUrl("postgres://h/db", "").ok());
}

TEST(StoreUrlTest, MalformedUrlsAreRefusedByNameNeverEchoingThePassword) {
  const char* bad[] = {
      "mysql://root:s3cret-pw@h/db",                   // unknown scheme
      "sqlite://relative/path.db",                     // not absolute
      "sqlite:///",                                    // no file
      "/var/lib/edgeprune.db",                         // no scheme
      "postgresql://u:s3cret-pw@h/db?nonsense_key=1",  // libpq refuses the option
      "postgresql://u:s3cret-pw%zz@h/db",              // bad percent-encoding in the password
  };
  for (const char* url : bad) {
    auto l = ParseStoreUrl(url, "/srv/data");
    ASSERT_FALSE(l.ok()) << url;
    EXPECT_EQ(l.error().code, "invalid_store_url") << url;
    EXPECT_EQ(l.error().kind, ErrorKind::kInvalidArgument) << url;
    EXPECT_NE(l.error().message.find("store.url"), std::string::npos) << l.error().message;
    EXPECT_EQ(l.error().message.find("s3cret"), std::string::npos) << l.error().message;
  }
}

TEST(StoreUrlTest, UnreachableDatabaseIsOneClearErrorWithoutThePassword) {
  testing::TempDir dir;  // no server listens on a socket here
  auto l = ParseStoreUrl(
      "postgresql://ep:s3cret-pw@/fleet?host=" + dir.path() + "&connect_timeout=2", "");
  ASSERT_TRUE(l.ok()) << l.error().ToString();
  auto db = OpenStore(*l, OpenOptions{});
  ASSERT_FALSE(db.ok());
  EXPECT_EQ(db.error().code, "database_unavailable");
  EXPECT_EQ(db.error().kind, ErrorKind::kUnavailable);
  EXPECT_NE(db.error().message.find("postgresql://ep@/fleet"), std::string::npos)
      << db.error().message;
  EXPECT_EQ(db.error().message.find("s3cret"), std::string::npos) << db.error().message;
}

TEST(PostgresErrorTest, SqlstatesMapToTheSqliteBackendsCodes) {
  EXPECT_EQ(PostgresError("23505", "", "s").code, "unique_violation");
  EXPECT_EQ(PostgresError("23503", "", "s").code, "foreign_key_violation");
  EXPECT_EQ(PostgresError("23514", "", "s").code, "constraint_violation");
  for (const char* busy : {"40001", "40P01", "55P03"}) {
    EXPECT_EQ(PostgresError(busy, "", "s").code, "database_busy") << busy;
    EXPECT_EQ(PostgresError(busy, "", "s").kind, ErrorKind::kUnavailable) << busy;
  }
  EXPECT_EQ(PostgresError("08006", "", "s").code, "database_unavailable");
  EXPECT_EQ(PostgresError("57P01", "", "s").kind, ErrorKind::kUnavailable);
  EXPECT_EQ(PostgresError("53100", "", "s").code, "database_io");
  EXPECT_EQ(PostgresError("XX001", "", "s").code, "database_corrupt");
  EXPECT_EQ(PostgresError("42P01", "", "s").code, "database_error");
}

class PostgresTest : public ::testing::Test {
 protected:
  testing::TestDatabase backend_{Dialect::kPostgres};
};

// PostgreSQL refuses root; the test server then runs as nobody. Either way it is up and reached
// only through its socket directory.
TEST_F(PostgresTest, TheTestServerRunsUnprivilegedOnAPrivateSocket) {
  testing::PostgresServer& server = testing::PostgresServer::Shared();
  ASSERT_TRUE(server.ok()) << server.error();
  EXPECT_EQ(server.dropped_privileges(), ::geteuid() == 0);
  auto db = backend_.Open(false);
  ASSERT_NE(db, nullptr);
  auto lease = db->Acquire();
  ASSERT_TRUE(lease.ok());
  auto s = (*lease)->Query("settings",
                           "SELECT current_setting('listen_addresses'), "
                           "current_setting('unix_socket_directories')");
  ASSERT_TRUE(s.ok()) << s.error().ToString();
  ASSERT_TRUE(*s->Step());
  EXPECT_EQ(s->Text(0), "");
  EXPECT_EQ(s->Text(1), server.socket_dir());
}

// A connection the server drops is reported as unavailable, closed, and replaced on the next
// lease.
TEST_F(PostgresTest, ALostConnectionIsUnavailableAndReplaced) {
  OpenOptions options;
  options.max_connections = 1;
  auto db = backend_.Open(false, options);
  ASSERT_NE(db, nullptr);
  {
    auto lease = db->Acquire();
    ASSERT_TRUE(lease.ok());
    auto pid = (*lease)->Query("pid", "SELECT pg_backend_pid()");
    ASSERT_TRUE(pid.ok() && *pid->Step());
    const std::int64_t backend = pid->Int64(0);
    auto admin = Database::OpenPostgres(testing::PostgresServer::Shared().Url("postgres"), "admin",
                                        OpenOptions{});
    ASSERT_TRUE(admin.ok());
    {
      auto admin_lease = (*admin)->Acquire();
      ASSERT_TRUE(admin_lease.ok());
      auto killed = (*admin_lease)->Query("kill", "SELECT pg_terminate_backend(?)", backend);
      ASSERT_TRUE(killed.ok() && *killed->Step());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the backend exits
    auto after = (*lease)->Query("after", "SELECT 1");
    Status failed =
        after.ok() ? (after->Step().ok() ? Ok() : after->Step().error()) : after.error();
    ASSERT_FALSE(failed.ok());
    EXPECT_EQ(failed.error().kind, ErrorKind::kUnavailable);
    EXPECT_FALSE((*lease)->Usable());
  }
  EXPECT_TRUE(db->Ping().ok()) << "the pool opened a fresh connection";
}

// Two write transactions that each read what the other writes cannot both commit under
// SERIALIZABLE: the loser gets database_busy, and committing the failed one commits nothing.
TEST_F(PostgresTest, ASerializationFailureIsDatabaseBusy) {
  auto db = backend_.Open(false);
  ASSERT_NE(db, nullptr);
  ASSERT_TRUE(db->Exec("create",
                       "CREATE TABLE t (k TEXT PRIMARY KEY, v BIGINT);"
                       "INSERT INTO t VALUES ('a', 0), ('b', 0)")
                  .ok());
  auto one = db->Acquire();
  auto two = db->Acquire();
  ASSERT_TRUE(one.ok() && two.ok());
  auto tx1 = Transaction::Begin(**one);
  auto tx2 = Transaction::Begin(**two);
  ASSERT_TRUE(tx1.ok() && tx2.ok());
  auto sum = [](Connection& c) {
    auto s = c.Query("sum", "SELECT sum(v) FROM t");
    EXPECT_TRUE(s.ok() && *s->Step());
    return s->Int64(0);
  };
  EXPECT_EQ(sum(**one), 0);
  EXPECT_EQ(sum(**two), 0);
  ASSERT_TRUE((*one)->Execute("w1", "UPDATE t SET v = 1 WHERE k = 'a'").ok());
  ASSERT_TRUE((*two)->Execute("w2", "UPDATE t SET v = 1 WHERE k = 'b'").ok());
  ASSERT_TRUE(tx1->Commit().ok());
  Status second = tx2->Commit();
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().code, "database_busy");
  EXPECT_EQ(sum(**one), 1);
}

TEST_F(PostgresTest, OpenAndMigrateFollowsStoreUrl) {
  MigrationReport report;
  auto db = OpenAndMigrate(backend_.url(), "/nonexistent-data-dir", "", &report);
  ASSERT_TRUE(db.ok()) << db.error().ToString();
  EXPECT_EQ((*db)->dialect(), Dialect::kPostgres);
  EXPECT_GE(report.to_version, 7);
  EXPECT_EQ((*db)->path().find("postgresql://"), 0u);
}

}  // namespace
}  // namespace edgeprune::store
