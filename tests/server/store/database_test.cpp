// The SQLite backend's own behaviour (file, WAL, pragmas, a second process); what both backends
// share is in database_backends_test.cpp.
#include "server/store/database.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <thread>
#include <vector>

#include "support/temp_dir.hpp"

namespace edgeprune::store {
namespace {

std::unique_ptr<Database> OpenOrDie(const std::string& path, OpenOptions options = {}) {
  auto db = Database::Open(path, options);
  EXPECT_TRUE(db.ok()) << (db.ok() ? "" : db.error().ToString());
  return db.ok() ? std::move(db).value() : nullptr;
}

TEST(DatabaseTest, OpensWithWalForeignKeysAndBusyTimeout) {
  testing::TempDir dir;
  OpenOptions options;
  options.busy_timeout = std::chrono::milliseconds(1234);
  auto db = OpenOrDie(dir.File("a.db"), options);
  ASSERT_NE(db, nullptr);
  auto lease = db->Acquire();
  ASSERT_TRUE(lease.ok());
  auto query = [&](const char* sql) {
    auto stmt = (*lease)->Prepare("pragma", sql);
    EXPECT_TRUE(stmt.ok());
    EXPECT_TRUE(*stmt->Step());
    return stmt->Text(0);
  };
  EXPECT_EQ(query("PRAGMA journal_mode"), "wal");
  EXPECT_EQ(query("PRAGMA foreign_keys"), "1");
  EXPECT_EQ(query("PRAGMA busy_timeout"), "1234");
  EXPECT_EQ(query("PRAGMA synchronous"), "1");  // NORMAL
  EXPECT_TRUE(db->Ping().ok());
}

// Issue 13 item 9: the database (token hashes, audit log) is created readable by its owner only,
// and SQLite gives its -wal and -shm files the same mode.
TEST(DatabaseTest, CreatesTheFileAndItsWalOwnerOnly) {
  testing::TempDir dir;
  const mode_t old_umask = ::umask(022);  // the usual umask, which made the file 0644
  auto db = OpenOrDie(dir.File("private.db"));
  ::umask(old_umask);
  ASSERT_NE(db, nullptr);
  auto lease = db->Acquire();
  ASSERT_TRUE(lease.ok());
  ASSERT_TRUE((*lease)->Exec("t", "CREATE TABLE t (x INTEGER)").ok());
  for (const char* suffix : {"", "-wal", "-shm"}) {
    struct stat st {};
    ASSERT_EQ(::stat((dir.File("private.db") + suffix).c_str(), &st), 0) << suffix;
    EXPECT_EQ(st.st_mode & 0777, 0600u) << suffix;
  }
}

// Issue 13 item 10: security writes are durable at commit although the database runs
// synchronous=NORMAL (WAL synced only at checkpoints) for telemetry's sake.
TEST(DatabaseTest, DurableTransactionsCommitUnderSynchronousFull) {
  testing::TempDir dir;
  OpenOptions options;
  options.max_connections = 1;  // every lease is the same connection
  auto db = OpenOrDie(dir.File("d.db"), options);
  ASSERT_NE(db, nullptr);
  ASSERT_TRUE(db->Exec("t", "CREATE TABLE t (x INTEGER)").ok());
  auto synchronous = [](Connection& conn) -> std::int64_t {
    auto s = conn.Prepare("pragma", "PRAGMA synchronous");
    EXPECT_TRUE(s.ok());
    EXPECT_TRUE(s->Step().value_or(false));
    return s->Int64(0);
  };
  std::int64_t inside = -1;
  auto ok = db->WithDurableTransaction([&](Connection& conn) -> Status {
    inside = synchronous(conn);
    auto r = conn.Execute("insert", "INSERT INTO t (x) VALUES (1)");
    if (!r.ok()) return r.error();
    return Ok();
  });
  ASSERT_TRUE(ok.ok()) << ok.error().ToString();
  EXPECT_EQ(inside, 2) << "FULL while the durable transaction commits";
  {
    auto lease = db->Acquire();
    ASSERT_TRUE(lease.ok());
    EXPECT_EQ(synchronous(**lease), 1) << "NORMAL again for every other write";
  }
  // A failed durable transaction rolls back and restores the mode too.
  auto failed = db->WithDurableTransaction([&](Connection& conn) -> Status {
    EXPECT_TRUE(conn.Execute("insert", "INSERT INTO t (x) VALUES (2)").ok());
    return MakeError(ErrorKind::kInvalidArgument, "nope", "refused");
  });
  EXPECT_FALSE(failed.ok());
  auto again = db->Acquire();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(synchronous(**again), 1);
  auto count = (*again)->Prepare("count", "SELECT COUNT(*) FROM t");
  ASSERT_TRUE(count.ok());
  ASSERT_TRUE(count->Step().value_or(false));
  EXPECT_EQ(count->Int64(0), 1);
}

TEST(DatabaseTest, SynchronousFullByOption) {
  testing::TempDir dir;
  OpenOptions options;
  options.synchronous_full = true;
  auto db = OpenOrDie(dir.File("a.db"), options);
  auto lease = db->Acquire();
  auto stmt = (*lease)->Prepare("pragma", "PRAGMA synchronous");
  ASSERT_TRUE(*stmt->Step());
  EXPECT_EQ(stmt->Int64(0), 2);
}

TEST(DatabaseTest, BadPathsAreRefusedWithTheirName) {
  testing::TempDir dir;
  auto missing_dir = Database::Open(dir.File("no/such/dir/a.db"), {});
  ASSERT_FALSE(missing_dir.ok());
  EXPECT_EQ(missing_dir.error().kind, ErrorKind::kIo);
  EXPECT_NE(missing_dir.error().message.find("no/such/dir/a.db"), std::string::npos);

  OpenOptions no_create;
  no_create.create = false;
  EXPECT_FALSE(Database::Open(dir.File("absent.db"), no_create).ok());

  const std::string junk = dir.WriteFile("junk.db", std::string(4096, 'x'));
  auto not_db = Database::Open(junk, {});
  ASSERT_FALSE(not_db.ok());
  EXPECT_EQ(not_db.error().code, "database_corrupt");

  EXPECT_FALSE(Database::Open("", {}).ok());
}

// A second process-level writer (a separate Database on the same file, as a CLI command would
// open) waits on SQLite's busy timeout and then succeeds once the first commits.
TEST(DatabaseTest, SecondHandleWaitsForWriterThenSucceeds) {
  testing::TempDir dir;
  const std::string path = dir.File("a.db");
  auto first = OpenOrDie(path);
  ASSERT_TRUE(first->Exec("create", "CREATE TABLE t (v INTEGER)").ok());
  OpenOptions patient;
  patient.busy_timeout = std::chrono::milliseconds(20000);
  auto second = OpenOrDie(path, patient);

  auto lease = first->Acquire();
  auto tx = Transaction::Begin(**lease);
  ASSERT_TRUE(tx.ok());
  ASSERT_TRUE((*lease)->Execute("insert", "INSERT INTO t VALUES (1)").ok());

  std::atomic<bool> started{false};
  Status other;
  std::thread writer([&] {
    started = true;
    other = second->WithTransaction([](Connection& c) -> Status {
      EP_RETURN_IF_ERROR(c.Execute("insert", "INSERT INTO t VALUES (2)"));
      return Ok();
    });
  });
  while (!started) std::this_thread::yield();
  ASSERT_TRUE(tx->Commit().ok());
  writer.join();
  EXPECT_TRUE(other.ok()) << other.error().ToString();

  OpenOptions impatient;
  impatient.busy_timeout = std::chrono::milliseconds(0);
  auto third = OpenOrDie(path, impatient);
  auto tx2 = Transaction::Begin(**lease);
  ASSERT_TRUE(tx2.ok());
  Status busy = third->Exec("insert", "INSERT INTO t VALUES (3)");
  ASSERT_FALSE(busy.ok());
  EXPECT_EQ(busy.error().code, "database_busy");
  EXPECT_EQ(busy.error().kind, ErrorKind::kUnavailable);
}

}  // namespace
}  // namespace edgeprune::store
