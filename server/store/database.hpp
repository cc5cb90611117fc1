#pragma once
// SQLite adapter: a connection pool, RAII prepared statements and transactions.
//
// Every statement is prepared with parameters bound by the caller; no SQL is ever built from
// input. Exec() runs fixed SQL text only (migrations, pragmas). Each statement carries a short
// name ("device_by_id") that every error message repeats, so a failure names what was running.
// SQLite errors become Errors: busy/locked → kUnavailable "database_busy", constraint failures →
// kConflict ("unique_violation", "foreign_key_violation", "constraint_violation"), I/O → kIo,
// corruption → kInternal "database_corrupt".
//
// Thread-safety: Database is thread-safe. A Connection (and every Statement/Transaction made
// from it) belongs to one thread at a time: take one with Database::Acquire(), use it, let the
// lease go. Leases are pooled (at most OpenOptions::max_connections open at once); a thread
// waiting longer than busy_timeout for a free connection gets kResourceExhausted.
// Write transactions (Transaction::Begin, BEGIN IMMEDIATE) are queued in-process by one mutex so
// writers wait in order instead of spinning in SQLite's busy handler; busy_timeout still covers
// writers in other processes (e.g. a CLI command run while the server is up).
// Every lease must be released before the Database is destroyed.
// Do not hold one lease while acquiring another on the same thread: the pool and writer queue
// can then only time out, never succeed.

#include <sqlite3.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "edgeprune/common/result.hpp"

namespace edgeprune::store {

// The in-process writer queue: at most one write transaction per Database at a time.
// (A mutex + condition variable rather than std::timed_mutex, whose timed lock ThreadSanitizer
// cannot follow.) Thread-safe.
class WriterGate {
 public:
  // True once this caller holds the gate; false after `timeout` without it.
  bool AcquireFor(std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    if (!cv_.wait_for(lock, timeout, [&] { return !held_; })) return false;
    held_ = true;
    return true;
  }
  void Release() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      held_ = false;
    }
    cv_.notify_one();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool held_ = false;
};

struct OpenOptions {
  bool create = true;                        // create the file when missing
  bool synchronous_full = false;             // synchronous=FULL instead of NORMAL (WAL)
  std::chrono::milliseconds busy_timeout{5000};
  int max_connections = 8;                   // ":memory:" always uses exactly one
};

// Bind helper for binary values (text is bound from std::string / std::string_view).
struct Blob {
  std::string_view bytes;
};

class Statement {
 public:
  Statement() = default;
  Statement(sqlite3_stmt* stmt, std::string name) : stmt_(stmt), name_(std::move(name)) {}
  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&& other) noexcept;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement();

  // Parameter indexes start at 1 (SQLite's convention). Names include their prefix (":id").
  Status Bind(int index, std::int64_t value);
  Status Bind(int index, int value) { return Bind(index, static_cast<std::int64_t>(value)); }
  Status Bind(int index, double value);
  Status Bind(int index, std::string_view text);
  Status Bind(int index, const std::string& text) { return Bind(index, std::string_view(text)); }
  Status Bind(int index, const char* text) { return Bind(index, std::string_view(text)); }
  Status Bind(int index, Blob blob);
  Status Bind(int index, std::nullptr_t);
  template <typename T>
  Status Bind(int index, const std::optional<T>& value) {
    return value ? Bind(index, *value) : Bind(index, nullptr);
  }
  template <typename T>
  Status Bind(std::string_view name, const T& value) {
    EP_ASSIGN_OR_RETURN(int index, IndexOf(name));
    return Bind(index, value);
  }
  // Binds every argument in order to parameters 1..N.
  template <typename... Args>
  Status BindAll(const Args&... args) {
    [[maybe_unused]] int index = 0;
    Status status;
    ((status.ok() ? (status = Bind(++index, args), 0) : 0), ...);
    return status;
  }

  // Advances: true when a row is available, false when the statement is done.
  Result<bool> Step();
  // Steps until done; returns the number of rows changed by an INSERT/UPDATE/DELETE.
  Result<std::int64_t> Run();
  // Makes the statement runnable again with new bindings.
  Status Reset();

  // Column getters for the current row; indexes start at 0. NULL reads as 0 / "".
  int ColumnCount() const;
  bool IsNull(int column) const;
  std::int64_t Int64(int column) const;
  double Double(int column) const;
  std::string Text(int column) const;
  std::string BlobBytes(int column) const;
  std::optional<std::int64_t> OptInt64(int column) const;
  std::optional<std::string> OptText(int column) const;

  const std::string& name() const { return name_; }
  sqlite3_stmt* raw() const { return stmt_; }

 private:
  Result<int> IndexOf(std::string_view name) const;
  Status Check(int rc, const char* what) const;

  sqlite3_stmt* stmt_ = nullptr;
  std::string name_;
};

// One SQLite connection. Not thread-safe: used by the thread holding its lease.
class Connection {
 public:
  Connection(sqlite3* db, std::string path, WriterGate* writer,
             std::chrono::milliseconds busy_timeout)
      : db_(db), path_(std::move(path)), writer_(writer), busy_timeout_(busy_timeout) {}
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection();

  // Prepares one statement; `name` appears in every error from it.
  Result<Statement> Prepare(std::string_view name, std::string_view sql);
  // Prepares and binds arguments to parameters 1..N; the caller steps it.
  template <typename... Args>
  Result<Statement> Query(std::string_view name, std::string_view sql, const Args&... args) {
    EP_ASSIGN_OR_RETURN(Statement stmt, Prepare(name, sql));
    EP_RETURN_IF_ERROR(stmt.BindAll(args...));
    return stmt;
  }
  // Prepares, binds, runs to completion; returns the number of changed rows.
  template <typename... Args>
  Result<std::int64_t> Execute(std::string_view name, std::string_view sql, const Args&... args) {
    EP_ASSIGN_OR_RETURN(Statement stmt, Query(name, sql, args...));
    return stmt.Run();
  }
  // Runs fixed SQL text (may hold several statements). Never pass text derived from input.
  Status Exec(std::string_view name, std::string_view sql);

  std::int64_t LastInsertRowId() const;
  bool InTransaction() const;
  sqlite3* raw() const { return db_; }
  const std::string& path() const { return path_; }

 private:
  friend class Transaction;
  sqlite3* db_;
  std::string path_;
  WriterGate* writer_;  // the owning Database's writer queue
  std::chrono::milliseconds busy_timeout_;
};

class Database;

// Borrowed connection; returns it to the pool on destruction. Movable, not copyable.
class ConnectionLease {
 public:
  ConnectionLease(Database* owner, std::unique_ptr<Connection> conn)
      : owner_(owner), conn_(std::move(conn)) {}
  ConnectionLease(ConnectionLease&&) noexcept = default;
  ConnectionLease& operator=(ConnectionLease&& other) noexcept;
  ConnectionLease(const ConnectionLease&) = delete;
  ConnectionLease& operator=(const ConnectionLease&) = delete;
  ~ConnectionLease();

  Connection& operator*() const { return *conn_; }
  Connection* operator->() const { return conn_.get(); }
  Connection& get() const { return *conn_; }

 private:
  void Release();
  Database* owner_ = nullptr;
  std::unique_ptr<Connection> conn_;
};

// A write transaction: BEGIN IMMEDIATE on construction, ROLLBACK on destruction unless
// Commit() succeeded.
class Transaction {
 public:
  static Result<Transaction> Begin(Connection& conn);
  Transaction(Transaction&& other) noexcept;
  Transaction& operator=(Transaction&&) = delete;
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  ~Transaction();

  Status Commit();
  // Rolls back now; the destructor then does nothing.
  void Rollback();

 private:
  Transaction(Connection* conn, WriterGate* writer) : conn_(conn), writer_(writer) {}
  void ReleaseWriter();
  Connection* conn_ = nullptr;
  WriterGate* writer_ = nullptr;  // held while non-null
  bool done_ = false;
};

class Database {
 public:
  // Opens (and with options.create, creates) the database file and applies the connection
  // settings: journal_mode=WAL, foreign_keys=ON, busy_timeout, synchronous=NORMAL|FULL.
  // The first connection is opened eagerly so a bad path fails here.
  static Result<std::unique_ptr<Database>> Open(const std::string& path,
                                                const OpenOptions& options);
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  // Borrows a connection for the calling thread.
  Result<ConnectionLease> Acquire();

  // Runs fixed SQL on a pooled connection (see Connection::Exec).
  Status Exec(std::string_view name, std::string_view sql);
  // Runs `fn(conn)` inside BEGIN IMMEDIATE … COMMIT; rolls back when fn fails.
  template <typename Fn>
  auto WithTransaction(Fn&& fn) -> decltype(fn(std::declval<Connection&>())) {
    EP_ASSIGN_OR_RETURN(ConnectionLease lease, Acquire());
    EP_ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(*lease));
    auto result = fn(*lease);
    if (!result.ok()) return result;
    EP_RETURN_IF_ERROR(tx.Commit());
    return result;
  }
  // Like WithTransaction, but the commit is durable when it returns, also with the default
  // synchronous=NORMAL: the connection runs this one transaction under synchronous=FULL, so the
  // COMMIT fsyncs the WAL (and with it every commit before it). For security-relevant writes —
  // revocations, token changes, spent enrollment uses — that a power cut must not undo, without
  // paying an fsync per telemetry batch.
  template <typename Fn>
  auto WithDurableTransaction(Fn&& fn) -> decltype(fn(std::declval<Connection&>())) {
    EP_ASSIGN_OR_RETURN(ConnectionLease lease, Acquire());
    const bool switch_mode = !options_.synchronous_full;
    if (switch_mode) EP_RETURN_IF_ERROR(lease->Exec("synchronous_full", "PRAGMA synchronous=FULL"));
    struct Restore {
      Connection* conn;
      ~Restore() {
        if (conn) (void)conn->Exec("synchronous_normal", "PRAGMA synchronous=NORMAL");
      }
    } restore{switch_mode ? &*lease : nullptr};
    EP_ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(*lease));
    auto result = fn(*lease);
    if (!result.ok()) return result;
    EP_RETURN_IF_ERROR(tx.Commit());
    return result;
  }
  // Cheap liveness check for /readyz: a connection can run a read.
  Status Ping();

  const std::string& path() const { return path_; }
  const OpenOptions& options() const { return options_; }

 private:
  friend class ConnectionLease;
  Database(std::string path, OpenOptions options) : path_(std::move(path)), options_(options) {}
  Result<std::unique_ptr<Connection>> OpenConnection();
  void Return(std::unique_ptr<Connection> conn);

  std::string path_;
  OpenOptions options_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<Connection>> idle_;
  int open_count_ = 0;
  WriterGate writer_;
};

// Turns a SQLite result code into an Error naming the statement and SQLite's message.
Error SqliteError(sqlite3* db, int rc, std::string_view statement);

}  // namespace edgeprune::store
