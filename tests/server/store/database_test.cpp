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

TEST(DatabaseTest, TypedBindsAndColumnsRoundTrip) {
  testing::TempDir dir;
  auto db = OpenOrDie(dir.File("a.db"));
  ASSERT_TRUE(db->Exec("create", "CREATE TABLE t (i INTEGER, r REAL, s TEXT, b BLOB, n TEXT)").ok());
  auto lease = db->Acquire();
  ASSERT_TRUE(lease.ok());
  Connection& conn = **lease;
  const std::string blob("\0\x01\xff", 3);
  auto changed = conn.Execute("insert_t", "INSERT INTO t VALUES (?, ?, ?, ?, ?)",
                              std::int64_t{1} << 40, 2.5, std::string("héllo"), Blob{blob},
                              std::optional<std::string>());
  ASSERT_TRUE(changed.ok()) << changed.error().ToString();
  EXPECT_EQ(*changed, 1);

  auto named = conn.Prepare("insert_named", "INSERT INTO t (i, s, b) VALUES (:i, :s, :b)");
  ASSERT_TRUE(named.ok());
  ASSERT_TRUE(named->Bind(":i", 7).ok());
  ASSERT_TRUE(named->Bind(":s", "seven").ok());
  ASSERT_TRUE(named->Bind(":b", Blob{""}).ok());
  EXPECT_FALSE(named->Bind(":nope", 1).ok());
  ASSERT_TRUE(named->Run().ok());
  EXPECT_EQ(conn.LastInsertRowId(), 2);

  auto rows = conn.Query("select_t", "SELECT i, r, s, b, n FROM t ORDER BY rowid");
  ASSERT_TRUE(rows.ok());
  ASSERT_TRUE(*rows->Step());
  EXPECT_EQ(rows->Int64(0), std::int64_t{1} << 40);
  EXPECT_DOUBLE_EQ(rows->Double(1), 2.5);
  EXPECT_EQ(rows->Text(2), "héllo");
  EXPECT_EQ(rows->BlobBytes(3), blob);
  EXPECT_TRUE(rows->IsNull(4));
  EXPECT_EQ(rows->OptText(4), std::nullopt);
  ASSERT_TRUE(*rows->Step());
  EXPECT_EQ(rows->Int64(0), 7);
  EXPECT_FALSE(rows->IsNull(3));  // an empty blob is not NULL
  EXPECT_EQ(rows->BlobBytes(3), "");
  EXPECT_TRUE(rows->IsNull(1));
  EXPECT_FALSE(*rows->Step());
}

TEST(DatabaseTest, ErrorsNameTheStatementAndMapConstraints) {
  testing::TempDir dir;
  auto db = OpenOrDie(dir.File("a.db"));
  ASSERT_TRUE(db->Exec("create",
                       "CREATE TABLE p (id INTEGER PRIMARY KEY, name TEXT UNIQUE);"
                       "CREATE TABLE c (p INTEGER NOT NULL REFERENCES p(id))")
                  .ok());
  auto lease = db->Acquire();
  Connection& conn = **lease;
  ASSERT_TRUE(conn.Execute("insert_p", "INSERT INTO p (name) VALUES (?)", "a").ok());
  auto dup = conn.Execute("insert_p_again", "INSERT INTO p (name) VALUES (?)", "a");
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.error().code, "unique_violation");
  EXPECT_EQ(dup.error().kind, ErrorKind::kConflict);
  EXPECT_NE(dup.error().message.find("insert_p_again"), std::string::npos);
  EXPECT_NE(dup.error().message.find("UNIQUE"), std::string::npos);

  auto orphan = conn.Execute("insert_c", "INSERT INTO c (p) VALUES (?)", 99);
  ASSERT_FALSE(orphan.ok());
  EXPECT_EQ(orphan.error().code, "foreign_key_violation");

  auto bad_sql = conn.Prepare("broken", "SELEC nothing");
  ASSERT_FALSE(bad_sql.ok());
  EXPECT_NE(bad_sql.error().message.find("broken"), std::string::npos);

  auto two = conn.Prepare("two", "SELECT 1; SELECT 2");
  ASSERT_FALSE(two.ok());
  EXPECT_NE(two.error().message.find("more than one statement"), std::string::npos);
}

TEST(DatabaseTest, TransactionRollsBackUnlessCommitted) {
  testing::TempDir dir;
  auto db = OpenOrDie(dir.File("a.db"));
  ASSERT_TRUE(db->Exec("create", "CREATE TABLE t (v INTEGER)").ok());
  auto lease = db->Acquire();
  Connection& conn = **lease;
  {
    auto tx = Transaction::Begin(conn);
    ASSERT_TRUE(tx.ok());
    ASSERT_TRUE(conn.Execute("insert", "INSERT INTO t VALUES (1)").ok());
  }  // dropped without Commit
  {
    auto tx = Transaction::Begin(conn);
    ASSERT_TRUE(tx.ok());
    ASSERT_TRUE(conn.Execute("insert", "INSERT INTO t VALUES (2)").ok());
    ASSERT_TRUE(tx->Commit().ok());
  }
  Status failed = db->WithTransaction([](Connection& c) -> Status {
    EP_RETURN_IF_ERROR(c.Execute("insert", "INSERT INTO t VALUES (3)"));
    return MakeError(ErrorKind::kInvalidArgument, "nope", "caller gave up");
  });
  EXPECT_FALSE(failed.ok());
  auto rows = conn.Query("all", "SELECT group_concat(v) FROM t");
  ASSERT_TRUE(*rows->Step());
  EXPECT_EQ(rows->Text(0), "2");
  EXPECT_FALSE(conn.InTransaction());
}

// Several threads, each with its own pooled connection, increment one counter in write
// transactions; none may be lost and none may fail with "busy".
TEST(DatabaseTest, ConcurrentWritersAllSucceed) {
  testing::TempDir dir;
  OpenOptions options;
  options.max_connections = 4;
  options.busy_timeout = std::chrono::milliseconds(10000);
  auto db = OpenOrDie(dir.File("a.db"), options);
  ASSERT_TRUE(db->Exec("create",
                       "CREATE TABLE counter (v INTEGER NOT NULL); INSERT INTO counter VALUES (0);"
                       "CREATE TABLE log (thread INTEGER, n INTEGER)")
                  .ok());
  constexpr int kThreads = 6;  // more threads than connections: some wait for a lease
  constexpr int kPerThread = 40;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        Status s = db->WithTransaction([&](Connection& c) -> Status {
          auto read = c.Query("read_counter", "SELECT v FROM counter");
          if (!read.ok()) return read.error();
          EP_ASSIGN_OR_RETURN(bool row, read->Step());
          if (!row) return MakeError(ErrorKind::kInternal, "no_row", "counter missing");
          const std::int64_t v = read->Int64(0);
          EP_RETURN_IF_ERROR(c.Execute("write_counter", "UPDATE counter SET v = ?", v + 1));
          EP_RETURN_IF_ERROR(c.Execute("log", "INSERT INTO log VALUES (?, ?)", t, i));
          return Ok();
        });
        if (!s.ok()) {
          ADD_FAILURE() << s.error().ToString();
          failures++;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  auto lease = db->Acquire();
  auto rows = (*lease)->Query("check", "SELECT (SELECT v FROM counter), (SELECT count(*) FROM log)");
  ASSERT_TRUE(*rows->Step());
  EXPECT_EQ(rows->Int64(0), kThreads * kPerThread);
  EXPECT_EQ(rows->Int64(1), kThreads * kPerThread);
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

TEST(DatabaseTest, PoolExhaustionTimesOutWithAClearError) {
  testing::TempDir dir;
  OpenOptions options;
  options.max_connections = 1;
  options.busy_timeout = std::chrono::milliseconds(50);
  auto db = OpenOrDie(dir.File("a.db"), options);
  auto held = db->Acquire();
  ASSERT_TRUE(held.ok());
  auto second = db->Acquire();
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().code, "database_pool_exhausted");
  { ConnectionLease released = std::move(held).value(); }
  EXPECT_TRUE(db->Acquire().ok());
}

}  // namespace
}  // namespace edgeprune::store
