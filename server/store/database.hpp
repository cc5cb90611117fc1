#pragma once
// The server's database: a connection pool, RAII prepared statements and transactions, over one
// of two backends chosen when it is opened: SQLite (a file; the embedded default) or PostgreSQL
// (libpq; several server processes can share it). Callers write one SQL text for both: `?` and
// `?N` placeholders (and `:name`), which the PostgreSQL backend rewrites to `$N` once, when the
// statement is prepared. The backends live in sqlite_backend.* and postgres_backend.*.
//
// Every statement is prepared with parameters bound by the caller; no SQL is ever built from
// input. Exec() runs fixed SQL text only (migrations, pragmas). Each statement carries a short
// name ("device_by_id") that every error message repeats, so a failure names what was running.
// Both backends map their errors to the same Errors: busy/locked, a serialization failure or a
// deadlock → kUnavailable "database_busy"; a lost connection → kUnavailable
// "database_unavailable"; constraint failures → kConflict ("unique_violation",
// "foreign_key_violation", "constraint_violation"); I/O, disk full → kIo "database_io";
// corruption → kInternal "database_corrupt"; anything else → kInternal "database_error".
//
// Thread-safety: Database is thread-safe. A Connection (and every Statement/Transaction made
// from it) belongs to one thread at a time: take one with Database::Acquire(), use it, let the
// lease go. Leases are pooled (at most OpenOptions::max_connections open at once); a thread
// waiting longer than busy_timeout for a free connection gets kResourceExhausted.
// Every lease must be released before the Database is destroyed.
// Do not hold one lease while acquiring another on the same thread: the pool (and SQLite's
// writer queue) can then only time out, never succeed.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "edgeprune/common/result.hpp"

namespace edgeprune::store {

enum class Dialect { kSqlite, kPostgres };
// "sqlite" / "postgresql": also the migrations' sub-directory of each dialect.
const char* DialectName(Dialect dialect);

struct OpenOptions {
  bool create = true;                        // SQLite: create the file when missing
  bool synchronous_full = false;             // SQLite: synchronous=FULL instead of NORMAL (WAL)
  // SQLite: busy handler; PostgreSQL: lock_timeout. Both: the longest wait for a pooled
  // connection.
  std::chrono::milliseconds busy_timeout{5000};
  int max_connections = 8;                   // SQLite ":memory:" always uses exactly one
};

// How a write transaction keeps concurrent ones apart.
enum class WriteMode {
  kSerializable,  // SQLite: BEGIN IMMEDIATE (one writer); PostgreSQL: SERIALIZABLE
  kDurable,       // kSerializable, and the commit survives a power cut once it returns
  // For a transaction whose correctness rests on row locks it takes itself (SELECT … FOR UPDATE
  // SKIP LOCKED, UPDATE … WHERE <still true>, INSERT … ON CONFLICT DO UPDATE … WHERE):
  // PostgreSQL READ COMMITTED, so racing claimers skip or wait on each other's rows instead of
  // failing with serialization errors. SQLite: kSerializable (one writer is stronger still).
  kRowLocked,
};

// Bind helper for binary values (text is bound from std::string / std::string_view).
struct Blob {
  std::string_view bytes;
};

namespace detail {
// One prepared statement of one backend. Indexes: parameters from 1, columns from 0.
class StatementBackend {
 public:
  virtual ~StatementBackend() = default;
  virtual Status BindInt64(int index, std::int64_t value) = 0;
  virtual Status BindDouble(int index, double value) = 0;
  virtual Status BindText(int index, std::string_view text) = 0;
  virtual Status BindBlob(int index, std::string_view bytes) = 0;
  virtual Status BindNull(int index) = 0;
  virtual Result<int> IndexOf(std::string_view name) const = 0;
  virtual Result<bool> Step() = 0;
  virtual Result<std::int64_t> Run() = 0;
  virtual Status Reset() = 0;
  virtual int ColumnCount() const = 0;
  virtual bool IsNull(int column) const = 0;
  virtual std::int64_t Int64(int column) const = 0;
  virtual double Double(int column) const = 0;
  virtual std::string Text(int column) const = 0;
  virtual std::string BlobBytes(int column) const = 0;
};
}  // namespace detail

class Statement {
 public:
  Statement() = default;
  Statement(std::unique_ptr<detail::StatementBackend> impl, std::string name)
      : impl_(std::move(impl)), name_(std::move(name)) {}
  Statement(Statement&&) noexcept = default;
  Statement& operator=(Statement&&) noexcept = default;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement() = default;

  // Parameter indexes start at 1. Names include their prefix (":id").
  Status Bind(int index, std::int64_t value) { return impl_->BindInt64(index, value); }
  Status Bind(int index, int value) { return Bind(index, static_cast<std::int64_t>(value)); }
  Status Bind(int index, double value) { return impl_->BindDouble(index, value); }
  Status Bind(int index, std::string_view text) { return impl_->BindText(index, text); }
  Status Bind(int index, const std::string& text) { return Bind(index, std::string_view(text)); }
  Status Bind(int index, const char* text) { return Bind(index, std::string_view(text)); }
  Status Bind(int index, Blob blob) { return impl_->BindBlob(index, blob.bytes); }
  Status Bind(int index, std::nullptr_t) { return impl_->BindNull(index); }
  template <typename T>
  Status Bind(int index, const std::optional<T>& value) {
    return value ? Bind(index, *value) : Bind(index, nullptr);
  }
  template <typename T>
  Status Bind(std::string_view name, const T& value) {
    EP_ASSIGN_OR_RETURN(int index, impl_->IndexOf(name));
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
  Result<bool> Step() { return impl_->Step(); }
  // Steps until done; returns the number of rows changed by an INSERT/UPDATE/DELETE.
  Result<std::int64_t> Run() { return impl_->Run(); }
  // Makes the statement runnable again with new bindings.
  Status Reset() { return impl_->Reset(); }

  // Column getters for the current row; indexes start at 0. NULL reads as 0 / "". A boolean
  // expression reads as 0 or 1 on both backends.
  int ColumnCount() const { return impl_->ColumnCount(); }
  bool IsNull(int column) const { return impl_->IsNull(column); }
  std::int64_t Int64(int column) const { return impl_->Int64(column); }
  double Double(int column) const { return impl_->Double(column); }
  std::string Text(int column) const { return impl_->Text(column); }
  std::string BlobBytes(int column) const { return impl_->BlobBytes(column); }
  std::optional<std::int64_t> OptInt64(int column) const {
    if (IsNull(column)) return std::nullopt;
    return Int64(column);
  }
  std::optional<std::string> OptText(int column) const {
    if (IsNull(column)) return std::nullopt;
    return Text(column);
  }

  const std::string& name() const { return name_; }

 private:
  std::unique_ptr<detail::StatementBackend> impl_;
  std::string name_;
};

// One database connection of either backend. Not thread-safe: used by the thread holding its
// lease.
class Connection {
 public:
  virtual ~Connection() = default;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Prepares one statement; `name` appears in every error from it.
  virtual Result<Statement> Prepare(std::string_view name, std::string_view sql) = 0;
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
  virtual Status Exec(std::string_view name, std::string_view sql) = 0;

  virtual bool InTransaction() const = 0;
  virtual Dialect dialect() const = 0;
  // False once the connection is known to be unusable (PostgreSQL: the server went away); the
  // pool then closes it instead of lending it again.
  virtual bool Usable() const { return true; }

 protected:
  Connection() = default;

 private:
  friend class Transaction;
  // Opens a write transaction in `mode`.
  virtual Status BeginWrite(WriteMode mode) = 0;
  virtual Status CommitWrite() = 0;
  virtual void RollbackWrite() = 0;
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

// A write transaction, ROLLBACK on destruction unless Commit() succeeded.
// SQLite: BEGIN IMMEDIATE behind the Database's in-process writer queue.
// PostgreSQL: BEGIN ISOLATION LEVEL SERIALIZABLE, no in-process queue (postgres_backend.hpp).
class Transaction {
 public:
  static Result<Transaction> Begin(Connection& conn, bool durable = false) {
    return Begin(conn, durable ? WriteMode::kDurable : WriteMode::kSerializable);
  }
  static Result<Transaction> Begin(Connection& conn, WriteMode mode);
  Transaction(Transaction&& other) noexcept;
  Transaction& operator=(Transaction&&) = delete;
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  ~Transaction();

  Status Commit();
  // Rolls back now; the destructor then does nothing.
  void Rollback();

 private:
  explicit Transaction(Connection* conn) : conn_(conn) {}
  Connection* conn_ = nullptr;
  bool done_ = false;
};

// Opens one more connection of a Database's backend (sqlite_backend / postgres_backend).
using ConnectionFactory = std::function<Result<std::unique_ptr<Connection>>()>;

class Database {
 public:
  // SQLite: opens (and with options.create, creates) the database file and applies the
  // connection settings: journal_mode=WAL, foreign_keys=ON, busy_timeout,
  // synchronous=NORMAL|FULL. The first connection is opened eagerly so a bad path fails here.
  static Result<std::unique_ptr<Database>> Open(const std::string& path,
                                                const OpenOptions& options);
  // PostgreSQL: `conninfo` is a libpq URI or key=value string; `display` names the database in
  // errors and logs and must not hold the password. The first connection is opened eagerly.
  static Result<std::unique_ptr<Database>> OpenPostgres(const std::string& conninfo,
                                                        const std::string& display,
                                                        const OpenOptions& options);
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  // Borrows a connection for the calling thread.
  Result<ConnectionLease> Acquire();

  // Runs fixed SQL on a pooled connection (see Connection::Exec).
  Status Exec(std::string_view name, std::string_view sql);
  // Runs `fn(conn)` inside a write transaction; rolls back when fn fails.
  template <typename Fn>
  auto WithTransaction(Fn&& fn) -> decltype(fn(std::declval<Connection&>())) {
    return RunTransaction(WriteMode::kSerializable, std::forward<Fn>(fn));
  }
  // Like WithTransaction, but the commit is durable when it returns. SQLite with the default
  // synchronous=NORMAL: the connection runs this one transaction under synchronous=FULL, so the
  // COMMIT fsyncs the WAL (and with it every commit before it). For security-relevant writes —
  // revocations, token changes, spent enrollment uses — that a power cut must not undo, without
  // paying an fsync per telemetry batch. PostgreSQL commits are durable already
  // (synchronous_commit=on, its default).
  template <typename Fn>
  auto WithDurableTransaction(Fn&& fn) -> decltype(fn(std::declval<Connection&>())) {
    return RunTransaction(WriteMode::kDurable, std::forward<Fn>(fn));
  }
  // Like WithDurableTransaction, run again when the database aborts it as busy: PostgreSQL's
  // serialization failures and deadlocks (two SERIALIZABLE transactions updated the same row, e.g.
  // the uses of one enrollment token shared by a batch of devices), SQLite past its busy timeout.
  // Up to `attempts` runs, with a short random pause between them. Only for `fn` whose every
  // effect is inside the transaction: it may run more than once.
  template <typename Fn>
  auto WithRetriedDurableTransaction(Fn&& fn, int attempts = 8)
      -> decltype(fn(std::declval<Connection&>())) {
    for (int attempt = 1;; ++attempt) {
      auto result = RunTransaction(WriteMode::kDurable, fn);
      if (result.ok() || attempt >= attempts || result.error().code != "database_busy") {
        return result;
      }
      PauseBeforeRetry(attempt);
    }
  }
  // Like WithTransaction in WriteMode::kRowLocked: `fn` must take the row locks it relies on.
  template <typename Fn>
  auto WithRowLockedTransaction(Fn&& fn) -> decltype(fn(std::declval<Connection&>())) {
    return RunTransaction(WriteMode::kRowLocked, std::forward<Fn>(fn));
  }
  // Cheap liveness check for /readyz: a connection can run a read.
  Status Ping();

  Dialect dialect() const { return dialect_; }
  // The SQLite file, or the PostgreSQL URL without its password.
  const std::string& path() const { return path_; }
  const OpenOptions& options() const { return options_; }

 private:
  friend class ConnectionLease;
  Database(Dialect dialect, std::string path, OpenOptions options)
      : dialect_(dialect), path_(std::move(path)), options_(options) {}
  static Result<std::unique_ptr<Database>> Start(std::unique_ptr<Database> db);
  template <typename Fn>
  auto RunTransaction(WriteMode mode, Fn&& fn) -> decltype(fn(std::declval<Connection&>())) {
    EP_ASSIGN_OR_RETURN(ConnectionLease lease, Acquire());
    EP_ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(*lease, mode));
    auto result = fn(*lease);
    if (!result.ok()) return result;
    EP_RETURN_IF_ERROR(tx.Commit());
    return result;
  }
  void Return(std::unique_ptr<Connection> conn);
  // A random pause of up to 2^attempt ms (at most 256), so that transactions that collided do
  // not collide again in step.
  static void PauseBeforeRetry(int attempt);

  Dialect dialect_;
  std::string path_;
  OpenOptions options_;
  ConnectionFactory factory_;  // captures what the backend's connections share
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<Connection>> idle_;
  int open_count_ = 0;
};

}  // namespace edgeprune::store
