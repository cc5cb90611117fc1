#include "server/store/sqlite_backend.hpp"

#include <limits>
#include <memory>
#include <unordered_map>
#include <utility>

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

namespace {

// Prepared statements of one connection kept between uses, keyed by their SQL text: preparing is
// a parse and a plan each time (about 6 % of a rollout step's CPU, more for small queries). A
// statement in use is out of the cache, so two live uses of one SQL text get two statements.
// Shared with the statements so one that outlives its connection finalizes itself instead.
class StatementCache {
 public:
  static constexpr std::size_t kCapacity = 256;

  ~StatementCache() { Close(); }

  sqlite3_stmt* Take(std::string_view sql) {
    auto it = idle_.find(std::string(sql));
    if (it == idle_.end()) return nullptr;
    sqlite3_stmt* stmt = it->second;
    idle_.erase(it);
    return stmt;
  }

  // Back from a use: reset for the next one, or finalized when the cache is closed or full.
  void Give(sqlite3_stmt* stmt) {
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
    if (closed_ || idle_.size() >= kCapacity) {
      sqlite3_finalize(stmt);
      return;
    }
    auto [it, added] = idle_.emplace(sqlite3_sql(stmt), stmt);
    if (!added) sqlite3_finalize(stmt);
  }

  // Before the connection closes: nothing is kept any more.
  void Close() {
    for (auto& [sql, stmt] : idle_) sqlite3_finalize(stmt);
    idle_.clear();
    closed_ = true;
  }

 private:
  std::unordered_map<std::string, sqlite3_stmt*> idle_;
  bool closed_ = false;
};

class SqliteStatement final : public detail::StatementBackend {
 public:
  SqliteStatement(sqlite3_stmt* stmt, std::string name, std::shared_ptr<StatementCache> cache)
      : stmt_(stmt), name_(std::move(name)), cache_(std::move(cache)) {}
  ~SqliteStatement() override {
    if (cache_) {
      cache_->Give(stmt_);
    } else {
      sqlite3_finalize(stmt_);
    }
  }

  Status BindInt64(int index, std::int64_t value) override {
    return Check(sqlite3_bind_int64(stmt_, index, value), "binding an integer");
  }
  Status BindDouble(int index, double value) override {
    return Check(sqlite3_bind_double(stmt_, index, value), "binding a real");
  }
  Status BindText(int index, std::string_view text) override {
    return Check(
        sqlite3_bind_text64(stmt_, index, text.data(), text.size(), SQLITE_TRANSIENT, SQLITE_UTF8),
        "binding text");
  }
  Status BindBlob(int index, std::string_view bytes) override {
    // A zero-length blob must still be a blob, not NULL: sqlite3_bind_blob64 with a null
    // pointer binds NULL, so point at a static byte.
    static const char kEmpty = 0;
    const void* data = bytes.empty() ? &kEmpty : bytes.data();
    return Check(sqlite3_bind_blob64(stmt_, index, data, bytes.size(), SQLITE_TRANSIENT),
                 "binding a blob");
  }
  Status BindNull(int index) override {
    return Check(sqlite3_bind_null(stmt_, index), "binding null");
  }
  Result<int> IndexOf(std::string_view name) const override {
    const int index = sqlite3_bind_parameter_index(stmt_, std::string(name).c_str());
    if (index == 0) {
      return MakeError(
          ErrorKind::kInternal, "database_error",
          "statement '" + name_ + "' has no parameter named '" + std::string(name) + "'");
    }
    return index;
  }
  Result<bool> Step() override {
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    // sqlite3_step's own code can be generic; the extended code of the handle is precise.
    sqlite3* db = sqlite3_db_handle(stmt_);
    return SqliteError(db, sqlite3_extended_errcode(db), name_);
  }
  Result<std::int64_t> Run() override {
    for (;;) {
      EP_ASSIGN_OR_RETURN(bool row, Step());
      if (!row) break;
    }
    return static_cast<std::int64_t>(sqlite3_changes64(sqlite3_db_handle(stmt_)));
  }
  Status Reset() override {
    sqlite3_reset(stmt_);  // returns the last step's error, already reported by Step()
    return Check(sqlite3_clear_bindings(stmt_), "clearing bindings");
  }
  int ColumnCount() const override { return sqlite3_column_count(stmt_); }
  bool IsNull(int column) const override {
    return sqlite3_column_type(stmt_, column) == SQLITE_NULL;
  }
  std::int64_t Int64(int column) const override { return sqlite3_column_int64(stmt_, column); }
  double Double(int column) const override { return sqlite3_column_double(stmt_, column); }
  std::string Text(int column) const override {
    const auto* text = sqlite3_column_text(stmt_, column);
    const int size = sqlite3_column_bytes(stmt_, column);
    if (text == nullptr) return {};
    return std::string(reinterpret_cast<const char*>(text), static_cast<std::size_t>(size));
  }
  std::string BlobBytes(int column) const override {
    const void* data = sqlite3_column_blob(stmt_, column);
    const int size = sqlite3_column_bytes(stmt_, column);
    if (data == nullptr) return {};
    return std::string(static_cast<const char*>(data), static_cast<std::size_t>(size));
  }

 private:
  Status Check(int rc, const char* what) const {
    if (rc == SQLITE_OK) return Ok();
    return SqliteError(sqlite3_db_handle(stmt_), rc, name_).WithContext(what);
  }

  sqlite3_stmt* stmt_;
  std::string name_;
  std::shared_ptr<StatementCache> cache_;  // where the statement goes back after its use
};

class SqliteConnection final : public Connection {
 public:
  SqliteConnection(sqlite3* db, std::shared_ptr<WriterGate> writer, OpenOptions options)
      : db_(db), writer_(std::move(writer)), options_(options) {}
  // Statements are owned by callers and finalized before the lease returns; close_v2 defers
  // the close if one is still alive rather than failing.
  ~SqliteConnection() override {
    cache_->Close();
    sqlite3_close_v2(db_);
  }

  Result<Statement> Prepare(std::string_view name, std::string_view sql) override {
    if (sql.size() > static_cast<std::size_t>(std::numeric_limits<int>::max())) {
      return MakeError(ErrorKind::kInvalidArgument, "database_error",
                       "statement '" + std::string(name) + "' is too long");
    }
    if (sqlite3_stmt* cached = cache_->Take(sql)) {
      return Statement(std::make_unique<SqliteStatement>(cached, std::string(name), cache_),
                       std::string(name));
    }
    sqlite3_stmt* stmt = nullptr;
    const char* tail = nullptr;
    const int rc = sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &stmt, &tail);
    if (rc != SQLITE_OK) {
      Error err = SqliteError(db_, sqlite3_extended_errcode(db_), name);
      sqlite3_finalize(stmt);
      return err;
    }
    if (stmt == nullptr) {
      return MakeError(ErrorKind::kInternal, "database_error",
                       "statement '" + std::string(name) + "' holds no SQL");
    }
    // Only a statement whose text is exactly `sql` is kept: the cache is keyed by sqlite3_sql().
    const bool whole = sqlite3_sql(stmt) != nullptr && std::string_view(sqlite3_sql(stmt)) == sql;
    Statement result(
        std::make_unique<SqliteStatement>(stmt, std::string(name), whole ? cache_ : nullptr),
        std::string(name));
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

  Status Exec(std::string_view name, std::string_view sql) override {
    char* errmsg = nullptr;
    const std::string text(sql);
    const int rc = sqlite3_exec(db_, text.c_str(), nullptr, nullptr, &errmsg);
    if (rc == SQLITE_OK) return Ok();
    sqlite3_free(errmsg);  // sqlite3_errmsg(db_) holds the same text
    return SqliteError(db_, sqlite3_extended_errcode(db_), name);
  }

  bool InTransaction() const override { return sqlite3_get_autocommit(db_) == 0; }
  Dialect dialect() const override { return Dialect::kSqlite; }

 private:
  Status BeginWrite(WriteMode mode) override {
    const bool durable = mode == WriteMode::kDurable;
    if (!writer_->AcquireFor(options_.busy_timeout)) {
      return MakeError(ErrorKind::kUnavailable, "database_busy",
                       "timed out after " + std::to_string(options_.busy_timeout.count()) +
                           " ms waiting for another writer to finish");
    }
    // A durable transaction runs under synchronous=FULL so its COMMIT fsyncs the WAL; the
    // mode is set back when it ends (PRAGMA synchronous has no effect inside a transaction).
    switched_ = durable && !options_.synchronous_full;
    Status status = switched_ ? Exec("synchronous_full", "PRAGMA synchronous=FULL") : Ok();
    if (status.ok()) status = Exec("begin_immediate", "BEGIN IMMEDIATE");
    if (!status.ok()) EndWrite();
    return status;
  }
  Status CommitWrite() override {
    Status status = Exec("commit", "COMMIT");
    if (status.ok()) EndWrite();
    return status;
  }
  void RollbackWrite() override {
    // A failed statement may already have rolled SQLite's transaction back.
    if (InTransaction()) (void)Exec("rollback", "ROLLBACK");
    EndWrite();
  }
  void EndWrite() {
    if (switched_) (void)Exec("synchronous_normal", "PRAGMA synchronous=NORMAL");
    switched_ = false;
    writer_->Release();
  }

  sqlite3* db_;
  std::shared_ptr<WriterGate> writer_;
  OpenOptions options_;
  bool switched_ = false;  // synchronous=FULL for the open durable transaction
  std::shared_ptr<StatementCache> cache_ = std::make_shared<StatementCache>();
};

Result<std::unique_ptr<Connection>> OpenSqlite(const std::string& path,
                                               const std::shared_ptr<WriterGate>& writer,
                                               const OpenOptions& options) {
  sqlite3* raw = nullptr;
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE;
  if (options.create) flags |= SQLITE_OPEN_CREATE;
  const int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
  if (rc != SQLITE_OK) {
    Error err = SqliteError(raw, rc, "open");
    sqlite3_close_v2(raw);
    return err;
  }
  auto conn = std::make_unique<SqliteConnection>(raw, writer, options);
  sqlite3_extended_result_codes(raw, 1);
  sqlite3_busy_timeout(raw, static_cast<int>(options.busy_timeout.count()));
  // Read something first: a file that is not a database fails here, not on first use.
  EP_RETURN_IF_ERROR(conn->Exec("check_header", "SELECT count(*) FROM sqlite_master"));
  if (path != ":memory:") {
    EP_ASSIGN_OR_RETURN(Statement wal, conn->Prepare("journal_mode", "PRAGMA journal_mode=WAL"));
    EP_ASSIGN_OR_RETURN(bool row, wal.Step());
    if (!row || wal.Text(0) != "wal") {
      return MakeError(ErrorKind::kIo, "database_io",
                       "could not switch " + path + " to WAL journal mode");
    }
  }
  EP_RETURN_IF_ERROR(conn->Exec("foreign_keys", "PRAGMA foreign_keys=ON"));
  EP_RETURN_IF_ERROR(conn->Exec("synchronous", options.synchronous_full
                                                   ? "PRAGMA synchronous=FULL"
                                                   : "PRAGMA synchronous=NORMAL"));
  return std::unique_ptr<Connection>(std::move(conn));
}

}  // namespace

ConnectionFactory SqliteConnections(const std::string& path, const OpenOptions& options) {
  auto writer = std::make_shared<WriterGate>();
  return [path, options, writer]() { return OpenSqlite(path, writer, options); };
}

}  // namespace edgeprune::store
