#include "server/store/database.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <random>
#include <thread>
#include <utility>

#include "edgeprune/common/log.hpp"
#include "server/store/postgres_backend.hpp"
#include "server/store/sqlite_backend.hpp"

namespace edgeprune::store {

const char* DialectName(Dialect dialect) {
  return dialect == Dialect::kPostgres ? "postgresql" : "sqlite";
}

// ---- ConnectionLease ----------------------------------------------------------------------

ConnectionLease& ConnectionLease::operator=(ConnectionLease&& other) noexcept {
  if (this != &other) {
    Release();
    owner_ = std::exchange(other.owner_, nullptr);
    conn_ = std::move(other.conn_);
  }
  return *this;
}

ConnectionLease::~ConnectionLease() { Release(); }

void ConnectionLease::Release() {
  if (owner_ != nullptr && conn_ != nullptr) owner_->Return(std::move(conn_));
  conn_.reset();
}

// ---- Transaction --------------------------------------------------------------------------

Result<Transaction> Transaction::Begin(Connection& conn, WriteMode mode) {
  if (conn.InTransaction()) {
    return MakeError(ErrorKind::kInternal, "database_error",
                     "a transaction is already open on this connection");
  }
  EP_RETURN_IF_ERROR(conn.BeginWrite(mode));
  return Transaction(&conn);
}

Transaction::Transaction(Transaction&& other) noexcept
    : conn_(std::exchange(other.conn_, nullptr)), done_(std::exchange(other.done_, true)) {}

Transaction::~Transaction() { Rollback(); }

Status Transaction::Commit() {
  if (done_ || conn_ == nullptr) {
    return MakeError(ErrorKind::kInternal, "database_error", "transaction already finished");
  }
  Status status = conn_->CommitWrite();
  if (!status.ok()) {
    Rollback();
    return status;
  }
  done_ = true;
  return Ok();
}

void Transaction::Rollback() {
  if (done_ || conn_ == nullptr) return;
  done_ = true;
  conn_->RollbackWrite();
}

// ---- Database -----------------------------------------------------------------------------

Result<std::unique_ptr<Database>> Database::Open(const std::string& path,
                                                 const OpenOptions& options) {
  if (path.empty()) {
    return MakeError(ErrorKind::kInvalidArgument, "invalid_database_path",
                     "the database path is empty");
  }
  std::unique_ptr<Database> db(new Database(Dialect::kSqlite, path, options));
  if (path == ":memory:") db->options_.max_connections = 1;
  if (path != ":memory:" && options.create) {
    // SQLite creates files with 0644 & ~umask, and its -wal and -shm files copy the database
    // file's mode: creating it 0600 first keeps all three private to the server's user.
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0) ::close(fd);
  }
  db->factory_ = SqliteConnections(path, db->options_);
  return Start(std::move(db));
}

Result<std::unique_ptr<Database>> Database::OpenPostgres(const std::string& conninfo,
                                                         const std::string& display,
                                                         const OpenOptions& options) {
  std::unique_ptr<Database> db(new Database(Dialect::kPostgres, display, options));
  db->factory_ = PostgresConnections(conninfo, display, options);
  return Start(std::move(db));
}

Result<std::unique_ptr<Database>> Database::Start(std::unique_ptr<Database> db) {
  if (db->options_.max_connections < 1) {
    return MakeError(ErrorKind::kInvalidArgument, "invalid_option",
                     "max_connections must be at least 1");
  }
  auto first = db->factory_();
  if (!first.ok()) return first.error().WithContext("opening database " + db->path_);
  db->open_count_ = 1;
  db->Return(std::move(first).value());
  return db;
}

Database::~Database() {
  std::lock_guard<std::mutex> lock(mu_);
  idle_.clear();
}

Result<ConnectionLease> Database::Acquire() {
  std::unique_lock<std::mutex> lock(mu_);
  const auto deadline = std::chrono::steady_clock::now() + options_.busy_timeout;
  for (;;) {
    if (!idle_.empty()) {
      std::unique_ptr<Connection> conn = std::move(idle_.back());
      idle_.pop_back();
      return ConnectionLease(this, std::move(conn));
    }
    if (open_count_ < options_.max_connections) {
      ++open_count_;
      lock.unlock();
      auto conn = factory_();
      if (!conn.ok()) {
        lock.lock();
        --open_count_;
        cv_.notify_one();
        return conn.error().WithContext("opening database " + path_);
      }
      return ConnectionLease(this, std::move(conn).value());
    }
    if (cv_.wait_until(lock, deadline) == std::cv_status::timeout && idle_.empty() &&
        open_count_ >= options_.max_connections) {
      return MakeError(ErrorKind::kResourceExhausted, "database_pool_exhausted",
                       "all " + std::to_string(options_.max_connections) +
                           " database connections stayed busy for " +
                           std::to_string(options_.busy_timeout.count()) + " ms");
    }
  }
}

void Database::PauseBeforeRetry(int attempt) {
  thread_local std::mt19937 rng{std::random_device{}()};
  const int cap = 1 << std::clamp(attempt, 1, 8);
  std::uniform_int_distribution<int> ms(1, cap);
  std::this_thread::sleep_for(std::chrono::milliseconds(ms(rng)));
}

void Database::Return(std::unique_ptr<Connection> conn) {
  if (conn->Usable() && conn->InTransaction()) {
    // A caller left a transaction open (should not happen with Transaction): do not leak it
    // into the next lease.
    log::Get("store")->error("connection returned with an open transaction; rolling back");
    (void)conn->Exec("rollback", "ROLLBACK");
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (!conn->Usable()) {
    // A lost PostgreSQL connection is closed; the next Acquire opens a fresh one.
    --open_count_;
    conn.reset();
  } else {
    idle_.push_back(std::move(conn));
  }
  cv_.notify_one();
}

Status Database::Exec(std::string_view name, std::string_view sql) {
  EP_ASSIGN_OR_RETURN(ConnectionLease lease, Acquire());
  return lease->Exec(name, sql);
}

Status Database::Ping() {
  EP_ASSIGN_OR_RETURN(ConnectionLease lease, Acquire());
  // SQLite: read the file's header, so a damaged or vanished file fails the ping; PostgreSQL:
  // one round trip to the server.
  EP_ASSIGN_OR_RETURN(Statement stmt,
                      lease->Prepare("ping", dialect_ == Dialect::kSqlite ? "PRAGMA user_version"
                                                                          : "SELECT 1"));
  EP_ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) {
    return MakeError(ErrorKind::kUnavailable, "database_unavailable",
                     "database " + path_ + " did not answer a ping");
  }
  return Ok();
}

}  // namespace edgeprune::store
