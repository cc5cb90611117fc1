#include "server/store/database.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <limits>
#include <utility>

#include "edgeprune/common/log.hpp"

namespace edgeprune::store {

Error SqliteError(sqlite3* db, int rc, std::string_view statement) {
  const int primary = rc & 0xff;
  std::string detail = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  std::string message = "statement '" + std::string(statement) + "' failed: " + detail;
  switch (primary) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return MakeError(ErrorKind::kUnavailable, "database_busy", message);
    case SQLITE_CONSTRAINT:
      if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY) {
        return MakeError(ErrorKind::kConflict, "unique_violation", message);
      }
      if (rc == SQLITE_CONSTRAINT_FOREIGNKEY) {
        return MakeError(ErrorKind::kConflict, "foreign_key_violation", message);
      }
      return MakeError(ErrorKind::kConflict, "constraint_violation", message);
    case SQLITE_FULL:
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
    case SQLITE_PERM:
      return MakeError(ErrorKind::kIo, "database_io", message);
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return MakeError(ErrorKind::kInternal, "database_corrupt", message);
    case SQLITE_RANGE:
    case SQLITE_MISUSE:
    case SQLITE_ERROR:
    default:
      return MakeError(ErrorKind::kInternal, "database_error", message);
  }
}

// ---- Statement ----------------------------------------------------------------------------

Statement::Statement(Statement&& other) noexcept
    : stmt_(std::exchange(other.stmt_, nullptr)), name_(std::move(other.name_)) {}

Statement& Statement::operator=(Statement&& other) noexcept {
  if (this != &other) {
    if (stmt_ != nullptr) sqlite3_finalize(stmt_);
    stmt_ = std::exchange(other.stmt_, nullptr);
    name_ = std::move(other.name_);
  }
  return *this;
}

Statement::~Statement() {
  if (stmt_ != nullptr) sqlite3_finalize(stmt_);
}

Status Statement::Check(int rc, const char* what) const {
  if (rc == SQLITE_OK) return Ok();
  return SqliteError(sqlite3_db_handle(stmt_), rc, name_).WithContext(what);
}

Status Statement::Bind(int index, std::int64_t value) {
  return Check(sqlite3_bind_int64(stmt_, index, value), "binding an integer");
}

Status Statement::Bind(int index, double value) {
  return Check(sqlite3_bind_double(stmt_, index, value), "binding a real");
}

Status Statement::Bind(int index, std::string_view text) {
  return Check(sqlite3_bind_text64(stmt_, index, text.data(), text.size(), SQLITE_TRANSIENT,
                                   SQLITE_UTF8),
               "binding text");
}

Status Statement::Bind(int index, Blob blob) {
  // A zero-length blob must still be a blob, not NULL: sqlite3_bind_blob64 with a null pointer
  // binds NULL, so point at a static byte.
  static const char kEmpty = 0;
  const void* data = blob.bytes.empty() ? &kEmpty : blob.bytes.data();
  return Check(sqlite3_bind_blob64(stmt_, index, data, blob.bytes.size(), SQLITE_TRANSIENT),
               "binding a blob");
}

Status Statement::Bind(int index, std::nullptr_t) {
  return Check(sqlite3_bind_null(stmt_, index), "binding null");
}

Result<int> Statement::IndexOf(std::string_view name) const {
  const int index = sqlite3_bind_parameter_index(stmt_, std::string(name).c_str());
  if (index == 0) {
    return MakeError(ErrorKind::kInternal, "database_error",
                     "statement '" + name_ + "' has no parameter named '" + std::string(name) +
                         "'");
  }
  return index;
}

Result<bool> Statement::Step() {
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  // sqlite3_step's own code can be generic; the extended code of the handle is precise.
  sqlite3* db = sqlite3_db_handle(stmt_);
  return SqliteError(db, sqlite3_extended_errcode(db), name_);
}

Result<std::int64_t> Statement::Run() {
  for (;;) {
    EP_ASSIGN_OR_RETURN(bool row, Step());
    if (!row) break;
  }
  return static_cast<std::int64_t>(sqlite3_changes64(sqlite3_db_handle(stmt_)));
}

Status Statement::Reset() {
  sqlite3_reset(stmt_);  // returns the last step's error, already reported by Step()
  return Check(sqlite3_clear_bindings(stmt_), "clearing bindings");
}

int Statement::ColumnCount() const { return sqlite3_column_count(stmt_); }

bool Statement::IsNull(int column) const {
  return sqlite3_column_type(stmt_, column) == SQLITE_NULL;
}

std::int64_t Statement::Int64(int column) const { return sqlite3_column_int64(stmt_, column); }

double Statement::Double(int column) const { return sqlite3_column_double(stmt_, column); }

std::string Statement::Text(int column) const {
  const auto* text = sqlite3_column_text(stmt_, column);
  const int size = sqlite3_column_bytes(stmt_, column);
  if (text == nullptr) return {};
  return std::string(reinterpret_cast<const char*>(text), static_cast<std::size_t>(size));
}

std::string Statement::BlobBytes(int column) const {
  const void* data = sqlite3_column_blob(stmt_, column);
  const int size = sqlite3_column_bytes(stmt_, column);
  if (data == nullptr) return {};
  return std::string(static_cast<const char*>(data), static_cast<std::size_t>(size));
}

std::optional<std::int64_t> Statement::OptInt64(int column) const {
  if (IsNull(column)) return std::nullopt;
  return Int64(column);
}

std::optional<std::string> Statement::OptText(int column) const {
  if (IsNull(column)) return std::nullopt;
  return Text(column);
}

// ---- Connection ---------------------------------------------------------------------------

Connection::~Connection() {
  // Statements are owned by callers and finalized before the lease returns; close_v2 defers
  // the close if one is still alive rather than failing.
  sqlite3_close_v2(db_);
}

Result<Statement> Connection::Prepare(std::string_view name, std::string_view sql) {
  if (sql.size() > static_cast<std::size_t>(std::numeric_limits<int>::max())) {
    return MakeError(ErrorKind::kInvalidArgument, "database_error",
                     "statement '" + std::string(name) + "' is too long");
  }
  sqlite3_stmt* stmt = nullptr;
  const char* tail = nullptr;
  const int rc =
      sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &stmt, &tail);
  if (rc != SQLITE_OK) {
    Error err = SqliteError(db_, sqlite3_extended_errcode(db_), name);
    sqlite3_finalize(stmt);
    return err;
  }
  if (stmt == nullptr) {
    return MakeError(ErrorKind::kInternal, "database_error",
                     "statement '" + std::string(name) + "' holds no SQL");
  }
  Statement result(stmt, std::string(name));
  // One statement per Prepare: trailing SQL would be silently ignored otherwise.
  for (const char* p = tail; p != nullptr && p < sql.data() + sql.size(); ++p) {
    if (*p != ' ' && *p != '\n' && *p != '\t' && *p != '\r' && *p != ';') {
      return MakeError(ErrorKind::kInternal, "database_error",
                       "statement '" + std::string(name) +
                           "' holds more than one statement; use Exec for scripts");
    }
  }
  return result;
}

Status Connection::Exec(std::string_view name, std::string_view sql) {
  char* errmsg = nullptr;
  const std::string text(sql);
  const int rc = sqlite3_exec(db_, text.c_str(), nullptr, nullptr, &errmsg);
  if (rc == SQLITE_OK) return Ok();
  sqlite3_free(errmsg);  // sqlite3_errmsg(db_) holds the same text
  return SqliteError(db_, sqlite3_extended_errcode(db_), name);
}

std::int64_t Connection::LastInsertRowId() const { return sqlite3_last_insert_rowid(db_); }

bool Connection::InTransaction() const { return sqlite3_get_autocommit(db_) == 0; }

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

Result<Transaction> Transaction::Begin(Connection& conn) {
  if (conn.InTransaction()) {
    return MakeError(ErrorKind::kInternal, "database_error",
                     "a transaction is already open on this connection");
  }
  if (!conn.writer_->AcquireFor(conn.busy_timeout_)) {
    return MakeError(ErrorKind::kUnavailable, "database_busy",
                     "timed out after " + std::to_string(conn.busy_timeout_.count()) +
                         " ms waiting for another writer to finish");
  }
  Status begun = conn.Exec("begin_immediate", "BEGIN IMMEDIATE");
  if (!begun.ok()) {
    conn.writer_->Release();
    return begun.error();
  }
  return Transaction(&conn, conn.writer_);
}

Transaction::Transaction(Transaction&& other) noexcept
    : conn_(std::exchange(other.conn_, nullptr)),
      writer_(std::exchange(other.writer_, nullptr)),
      done_(std::exchange(other.done_, true)) {}

void Transaction::ReleaseWriter() {
  if (writer_ != nullptr) std::exchange(writer_, nullptr)->Release();
}

Transaction::~Transaction() { Rollback(); }

Status Transaction::Commit() {
  if (done_ || conn_ == nullptr) {
    return MakeError(ErrorKind::kInternal, "database_error", "transaction already finished");
  }
  Status status = conn_->Exec("commit", "COMMIT");
  if (!status.ok()) {
    Rollback();
    return status;
  }
  done_ = true;
  ReleaseWriter();
  return Ok();
}

void Transaction::Rollback() {
  if (done_ || conn_ == nullptr) return;
  done_ = true;
  // A failed statement may already have rolled SQLite's transaction back.
  if (conn_->InTransaction()) {
    Status status = conn_->Exec("rollback", "ROLLBACK");
    if (!status.ok()) log::Get("store")->error("rollback failed: {}", status.error().ToString());
  }
  ReleaseWriter();
}

// ---- Database -----------------------------------------------------------------------------

Result<std::unique_ptr<Database>> Database::Open(const std::string& path,
                                                 const OpenOptions& options) {
  if (path.empty()) {
    return MakeError(ErrorKind::kInvalidArgument, "invalid_database_path",
                     "the database path is empty");
  }
  if (options.max_connections < 1) {
    return MakeError(ErrorKind::kInvalidArgument, "invalid_option",
                     "max_connections must be at least 1");
  }
  std::unique_ptr<Database> db(new Database(path, options));
  if (path == ":memory:") db->options_.max_connections = 1;
  if (path != ":memory:" && options.create) {
    // SQLite creates files with 0644 & ~umask, and its -wal and -shm files copy the database
    // file's mode: creating it 0600 first keeps all three private to the server's user.
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0) ::close(fd);
  }
  auto first = db->OpenConnection();
  if (!first.ok()) return first.error().WithContext("opening database " + path);
  db->open_count_ = 1;
  db->Return(std::move(first).value());
  return db;
}

Database::~Database() {
  std::lock_guard<std::mutex> lock(mu_);
  idle_.clear();
}

Result<std::unique_ptr<Connection>> Database::OpenConnection() {
  sqlite3* raw = nullptr;
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE;
  if (options_.create) flags |= SQLITE_OPEN_CREATE;
  const int rc = sqlite3_open_v2(path_.c_str(), &raw, flags, nullptr);
  if (rc != SQLITE_OK) {
    Error err = SqliteError(raw, rc, "open");
    sqlite3_close_v2(raw);
    return err;
  }
  auto conn = std::make_unique<Connection>(raw, path_, &writer_, options_.busy_timeout);
  sqlite3_extended_result_codes(raw, 1);
  sqlite3_busy_timeout(raw, static_cast<int>(options_.busy_timeout.count()));
  // Read something first: a file that is not a database fails here, not on first use.
  EP_RETURN_IF_ERROR(conn->Exec("check_header", "SELECT count(*) FROM sqlite_master"));
  if (path_ != ":memory:") {
    EP_ASSIGN_OR_RETURN(Statement wal, conn->Prepare("journal_mode", "PRAGMA journal_mode=WAL"));
    EP_ASSIGN_OR_RETURN(bool row, wal.Step());
    if (!row || wal.Text(0) != "wal") {
      return MakeError(ErrorKind::kIo, "database_io",
                       "could not switch " + path_ + " to WAL journal mode");
    }
  }
  EP_RETURN_IF_ERROR(conn->Exec("foreign_keys", "PRAGMA foreign_keys=ON"));
  EP_RETURN_IF_ERROR(conn->Exec("synchronous", options_.synchronous_full
                                                   ? "PRAGMA synchronous=FULL"
                                                   : "PRAGMA synchronous=NORMAL"));
  return conn;
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
      auto conn = OpenConnection();
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

void Database::Return(std::unique_ptr<Connection> conn) {
  std::lock_guard<std::mutex> lock(mu_);
  if (conn->InTransaction()) {
    // A caller left a transaction open (should not happen with Transaction): do not leak it
    // into the next lease.
    log::Get("store")->error("connection returned with an open transaction; rolling back");
    (void)conn->Exec("rollback", "ROLLBACK");
  }
  idle_.push_back(std::move(conn));
  cv_.notify_one();
}

Status Database::Exec(std::string_view name, std::string_view sql) {
  EP_ASSIGN_OR_RETURN(ConnectionLease lease, Acquire());
  return lease->Exec(name, sql);
}

Status Database::Ping() {
  EP_ASSIGN_OR_RETURN(ConnectionLease lease, Acquire());
  EP_ASSIGN_OR_RETURN(Statement stmt, lease->Prepare("ping", "PRAGMA user_version"));
  EP_ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) {
    return MakeError(ErrorKind::kUnavailable, "database_unavailable",
                     "database " + path_ + " did not answer a ping");
  }
  return Ok();
}

}  // namespace edgeprune::store
