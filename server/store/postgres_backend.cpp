#include "server/store/postgres_backend.hpp"

#include <libpq-fe.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <unordered_map>
#include <utility>
#include <vector>

#include "server/store/sql_placeholders.hpp"

namespace edgeprune::store {

Error PostgresError(std::string_view sqlstate, std::string_view detail,
                    std::string_view statement) {
  std::string message = "statement '" + std::string(statement) +
                        "' failed: " + std::string(detail) + " (SQLSTATE " + std::string(sqlstate) +
                        ")";
  const std::string_view cls = sqlstate.substr(0, 2);
  if (sqlstate == "23505") return MakeError(ErrorKind::kConflict, "unique_violation", message);
  if (sqlstate == "23503") {
    return MakeError(ErrorKind::kConflict, "foreign_key_violation", message);
  }
  if (cls == "23") return MakeError(ErrorKind::kConflict, "constraint_violation", message);
  if (sqlstate == "40001" || sqlstate == "40P01" || sqlstate == "55P03" || sqlstate == "57014") {
    return MakeError(ErrorKind::kUnavailable, "database_busy", message);
  }
  // Connection exceptions, the server shutting down or not accepting connections yet.
  if (cls == "08" || sqlstate == "57P01" || sqlstate == "57P02" || sqlstate == "57P03") {
    return MakeError(ErrorKind::kUnavailable, "database_unavailable", message);
  }
  if (cls == "53" || cls == "58") return MakeError(ErrorKind::kIo, "database_io", message);
  if (sqlstate == "XX001" || sqlstate == "XX002") {
    return MakeError(ErrorKind::kInternal, "database_corrupt", message);
  }
  return MakeError(ErrorKind::kInternal, "database_error", message);
}

namespace {

constexpr unsigned kByteaOid = 17;

struct ResultFree {
  void operator()(PGresult* r) const { PQclear(r); }
};
using ResultPtr = std::unique_ptr<PGresult, ResultFree>;

struct Prepared {
  std::string server_name;  // "ep1", "ep2", … on this connection
  TranslatedSql translated;
};

class PgConnection;

// The error of a failed call on `conn`; marks the connection lost when it is.
Error ErrorOf(PgConnection& conn, const PGresult* res, std::string_view statement);

class PgConnection final : public Connection {
 public:
  explicit PgConnection(PGconn* conn) : conn_(conn) {}
  ~PgConnection() override { PQfinish(conn_); }

  Result<Statement> Prepare(std::string_view name, std::string_view sql) override;
  Status Exec(std::string_view name, std::string_view sql) override {
    ResultPtr res(PQexec(conn_, std::string(sql).c_str()));
    const ExecStatusType st = res ? PQresultStatus(res.get()) : PGRES_FATAL_ERROR;
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_EMPTY_QUERY) return Ok();
    return ErrorOf(*this, res.get(), name);
  }
  bool InTransaction() const override {
    const PGTransactionStatusType t = PQtransactionStatus(conn_);
    return t == PQTRANS_INTRANS || t == PQTRANS_INERROR || t == PQTRANS_ACTIVE;
  }
  Dialect dialect() const override { return Dialect::kPostgres; }
  bool Usable() const override { return !lost_ && PQstatus(conn_) == CONNECTION_OK; }

  PGconn* raw() const { return conn_; }
  void MarkLost() { lost_ = true; }

 private:
  // Commits are durable already (synchronous_commit=on), so kDurable needs nothing more.
  Status BeginWrite(WriteMode mode) override {
    if (mode == WriteMode::kRowLocked) {
      return Exec("begin_read_committed", "BEGIN ISOLATION LEVEL READ COMMITTED");
    }
    return Exec("begin", "BEGIN ISOLATION LEVEL SERIALIZABLE");
  }
  Status CommitWrite() override {
    // COMMIT of a transaction aborted by a failed statement "succeeds" as a ROLLBACK.
    if (PQtransactionStatus(conn_) == PQTRANS_INERROR) {
      return MakeError(ErrorKind::kInternal, "database_error",
                       "the transaction was aborted by an earlier failed statement; nothing "
                       "was committed");
    }
    return Exec("commit", "COMMIT");
  }
  void RollbackWrite() override {
    if (Usable() && InTransaction()) (void)Exec("rollback", "ROLLBACK");
  }

  PGconn* conn_;
  bool lost_ = false;
  std::unordered_map<std::string, std::shared_ptr<const Prepared>> prepared_;
};

Error ErrorOf(PgConnection& conn, const PGresult* res, std::string_view statement) {
  const char* state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : nullptr;
  if (PQstatus(conn.raw()) != CONNECTION_OK || state == nullptr) {
    conn.MarkLost();
    std::string detail = PQerrorMessage(conn.raw());
    while (!detail.empty() && (detail.back() == '\n' || detail.back() == ' ')) detail.pop_back();
    return MakeError(ErrorKind::kUnavailable, "database_unavailable",
                     "statement '" + std::string(statement) +
                         "' failed: the connection to PostgreSQL was lost: " + detail);
  }
  const char* primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
  std::string detail = primary ? primary : "";
  if (std::string_view(state) == "42P18") {
    // SQLite types parameters at run time; PostgreSQL where it first meets them.
    detail += "; give it a type where it first appears, e.g. CAST(? AS TEXT) IS NULL";
  }
  return PostgresError(state, detail, statement);
}

class PgStatement final : public detail::StatementBackend {
 public:
  PgStatement(PgConnection* conn, std::shared_ptr<const Prepared> prepared, std::string name)
      : conn_(conn), prepared_(std::move(prepared)), name_(std::move(name)) {
    const std::size_t n = static_cast<std::size_t>(prepared_->translated.parameters);
    values_.resize(n);
    null_.assign(n, true);
    formats_.assign(n, 0);
  }

  Status BindInt64(int index, std::int64_t value) override {
    return Set(index, std::to_string(value), 0);
  }
  Status BindDouble(int index, double value) override {
    char text[40];
    std::snprintf(text, sizeof text, "%.17g", value);
    std::string s(text);
    if (s == "inf") s = "Infinity";
    if (s == "-inf") s = "-Infinity";
    if (s == "nan" || s == "-nan") s = "NaN";
    return Set(index, std::move(s), 0);
  }
  Status BindText(int index, std::string_view text) override {
    return Set(index, std::string(text), 0);
  }
  Status BindBlob(int index, std::string_view bytes) override {
    return Set(index, std::string(bytes), 1);  // binary format: bytea's raw bytes
  }
  Status BindNull(int index) override {
    EP_RETURN_IF_ERROR(CheckIndex(index));
    null_[index - 1] = true;
    return Ok();
  }
  Result<int> IndexOf(std::string_view name) const override {
    const auto& names = prepared_->translated.names;
    for (std::size_t i = 0; i < names.size(); ++i) {
      if (names[i] == name) return static_cast<int>(i) + 1;
    }
    return MakeError(
        ErrorKind::kInternal, "database_error",
        "statement '" + name_ + "' has no parameter named '" + std::string(name) + "'");
  }
  Result<bool> Step() override {
    if (!result_) EP_RETURN_IF_ERROR(Execute());
    if (row_ + 1 >= PQntuples(result_.get())) {
      row_ = PQntuples(result_.get());
      return false;
    }
    ++row_;
    return true;
  }
  Result<std::int64_t> Run() override {
    if (!result_) EP_RETURN_IF_ERROR(Execute());
    row_ = PQntuples(result_.get());
    const char* changed = PQcmdTuples(result_.get());
    return static_cast<std::int64_t>(changed && *changed ? std::strtoll(changed, nullptr, 10) : 0);
  }
  Status Reset() override {
    result_.reset();
    row_ = -1;
    null_.assign(null_.size(), true);
    return Ok();
  }
  int ColumnCount() const override { return result_ ? PQnfields(result_.get()) : 0; }
  bool IsNull(int column) const override {
    return !HasCell(column) || PQgetisnull(result_.get(), row_, column) != 0;
  }
  std::int64_t Int64(int column) const override {
    if (IsNull(column)) return 0;
    const char* v = PQgetvalue(result_.get(), row_, column);
    if (v[0] == 't' && v[1] == '\0') return 1;  // a boolean expression
    if (v[0] == 'f' && v[1] == '\0') return 0;
    char* end = nullptr;
    const long long whole = std::strtoll(v, &end, 10);
    // numeric results (SUM of a BIGINT column) may carry a fraction: truncate like SQLite.
    if (end != nullptr && *end != '\0') return static_cast<std::int64_t>(std::strtod(v, nullptr));
    return whole;
  }
  double Double(int column) const override {
    if (IsNull(column)) return 0.0;
    const char* v = PQgetvalue(result_.get(), row_, column);
    if (v[0] == 't' && v[1] == '\0') return 1.0;
    if (v[0] == 'f' && v[1] == '\0') return 0.0;
    return std::strtod(v, nullptr);  // also reads Infinity and NaN
  }
  std::string Text(int column) const override {
    if (IsNull(column)) return {};
    return std::string(PQgetvalue(result_.get(), row_, column),
                       static_cast<std::size_t>(PQgetlength(result_.get(), row_, column)));
  }
  std::string BlobBytes(int column) const override {
    if (IsNull(column)) return {};
    if (PQftype(result_.get(), column) != kByteaOid) return Text(column);
    std::size_t size = 0;
    unsigned char* bytes = PQunescapeBytea(
        reinterpret_cast<const unsigned char*>(PQgetvalue(result_.get(), row_, column)), &size);
    if (bytes == nullptr) return {};
    std::string out(reinterpret_cast<const char*>(bytes), size);
    PQfreemem(bytes);
    return out;
  }

 private:
  Status CheckIndex(int index) const {
    if (index < 1 || index > static_cast<int>(values_.size())) {
      return MakeError(ErrorKind::kInternal, "database_error",
                       "statement '" + name_ + "' has no parameter " + std::to_string(index) +
                           " (it has " + std::to_string(values_.size()) + ")");
    }
    return Ok();
  }
  Status Set(int index, std::string value, int format) {
    EP_RETURN_IF_ERROR(CheckIndex(index));
    values_[index - 1] = std::move(value);
    null_[index - 1] = false;
    formats_[index - 1] = format;
    return Ok();
  }
  bool HasCell(int column) const {
    return result_ && row_ >= 0 && row_ < PQntuples(result_.get()) && column >= 0 &&
           column < PQnfields(result_.get());
  }
  Status Execute() {
    const std::size_t n = values_.size();
    std::vector<const char*> ptrs(n);
    std::vector<int> lengths(n);
    for (std::size_t i = 0; i < n; ++i) {
      ptrs[i] = null_[i] ? nullptr : values_[i].c_str();
      lengths[i] = static_cast<int>(values_[i].size());
    }
    ResultPtr res(PQexecPrepared(conn_->raw(), prepared_->server_name.c_str(), static_cast<int>(n),
                                 ptrs.data(), lengths.data(), formats_.data(), 0));
    const ExecStatusType st = res ? PQresultStatus(res.get()) : PGRES_FATAL_ERROR;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) return ErrorOf(*conn_, res.get(), name_);
    result_ = std::move(res);
    row_ = -1;
    return Ok();
  }

  PgConnection* conn_;
  std::shared_ptr<const Prepared> prepared_;
  std::string name_;
  std::vector<std::string> values_;
  std::vector<bool> null_;
  std::vector<int> formats_;
  ResultPtr result_;
  int row_ = -1;
};

Result<Statement> PgConnection::Prepare(std::string_view name, std::string_view sql) {
  const std::string key(sql);
  auto found = prepared_.find(key);
  if (found == prepared_.end()) {
    auto prepared = std::make_shared<Prepared>();
    prepared->server_name = "ep" + std::to_string(prepared_.size() + 1);
    prepared->translated = ToDollarParameters(sql);
    ResultPtr res(PQprepare(conn_, prepared->server_name.c_str(), prepared->translated.sql.c_str(),
                            0, nullptr));
    if (!res || PQresultStatus(res.get()) != PGRES_COMMAND_OK) {
      const char* state = res ? PQresultErrorField(res.get(), PG_DIAG_SQLSTATE) : nullptr;
      const char* primary = res ? PQresultErrorField(res.get(), PG_DIAG_MESSAGE_PRIMARY) : nullptr;
      if (state != nullptr && std::string_view(state) == "42601" && primary != nullptr &&
          std::string_view(primary).find("multiple commands") != std::string_view::npos) {
        // Said as the SQLite backend says it.
        return MakeError(ErrorKind::kInternal, "database_error",
                         "statement '" + std::string(name) +
                             "' holds more than one statement; use Exec for scripts");
      }
      return ErrorOf(*this, res.get(), name);
    }
    found = prepared_.emplace(key, std::move(prepared)).first;
  }
  return Statement(std::make_unique<PgStatement>(this, found->second, std::string(name)),
                   std::string(name));
}

// libpq's messages name host, port, user and database, never the password; scrub it anyway in
// case a future message quotes the connection string.
std::string Scrubbed(std::string message, const std::string& password) {
  if (!password.empty()) {
    for (std::size_t at = message.find(password); at != std::string::npos;
         at = message.find(password, at)) {
      message.replace(at, password.size(), "***");
    }
  }
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
  return message;
}

std::string PasswordOf(const std::string& conninfo) {
  char* err = nullptr;
  PQconninfoOption* options = PQconninfoParse(conninfo.c_str(), &err);
  if (err != nullptr) PQfreemem(err);
  std::string password;
  for (PQconninfoOption* o = options; o != nullptr && o->keyword != nullptr; ++o) {
    if (std::string_view(o->keyword) == "password" && o->val != nullptr) password = o->val;
  }
  if (options != nullptr) PQconninfoFree(options);
  return password;
}

void IgnoreNotice(void*, const char*) {}

Result<std::unique_ptr<Connection>> ConnectPostgres(const std::string& conninfo,
                                                    const std::string& display,
                                                    const OpenOptions& options) {
  // Defaults first: the caller's conninfo (expanded from "dbname") overrides them.
  const char* keywords[] = {"connect_timeout", "application_name", "dbname", nullptr};
  const char* values[] = {"10", "edgeprune-server", conninfo.c_str(), nullptr};
  PGconn* raw = PQconnectdbParams(keywords, values, 1);
  if (raw == nullptr) {
    return MakeError(ErrorKind::kResourceExhausted, "database_unavailable",
                     "cannot allocate a PostgreSQL connection");
  }
  auto conn = std::make_unique<PgConnection>(raw);
  if (PQstatus(raw) != CONNECTION_OK) {
    return MakeError(ErrorKind::kUnavailable, "database_unavailable",
                     "cannot connect to PostgreSQL at " + display + ": " +
                         Scrubbed(PQerrorMessage(raw), PasswordOf(conninfo)));
  }
  PQsetNoticeProcessor(raw, IgnoreNotice, nullptr);
  // lock_timeout plays SQLite's busy_timeout; times are epoch ms computed by the server, so the
  // session time zone matters only to humans reading it.
  const std::string setup = "SET lock_timeout = " + std::to_string(options.busy_timeout.count()) +
                            "; SET client_min_messages = warning; SET TIME ZONE 'UTC'";
  EP_RETURN_IF_ERROR(conn->Exec("session_settings", setup));
  return std::unique_ptr<Connection>(std::move(conn));
}

}  // namespace

ConnectionFactory PostgresConnections(const std::string& conninfo, const std::string& display,
                                      const OpenOptions& options) {
  return [conninfo, display, options]() { return ConnectPostgres(conninfo, display, options); };
}

}  // namespace edgeprune::store
