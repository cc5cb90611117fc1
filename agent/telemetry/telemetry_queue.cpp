#include "agent/telemetry/telemetry_queue.hpp"

#include <sqlite3.h>

#include "edgeprune/common/json.hpp"

namespace edgeprune::agent {
namespace {

Error DbError(sqlite3* db, const std::string& path, const std::string& what) {
  return MakeError(ErrorKind::kIo, "queue_io_failed",
                   "telemetry queue " + path + ": " + what + ": " + sqlite3_errmsg(db));
}

// A prepared statement finalized on scope exit.
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) { rc_ = sqlite3_prepare_v2(db, sql, -1, &s_, nullptr); }
  ~Stmt() { sqlite3_finalize(s_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  bool ok() const { return rc_ == SQLITE_OK; }
  sqlite3_stmt* get() const { return s_; }

 private:
  sqlite3_stmt* s_ = nullptr;
  int rc_ = SQLITE_ERROR;
};

constexpr const char* kSchema = R"SQL(
CREATE TABLE IF NOT EXISTS telemetry_outbox (
  seq INTEGER PRIMARY KEY,
  body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS telemetry_seq (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  last_seq INTEGER NOT NULL
);
INSERT OR IGNORE INTO telemetry_seq (id, last_seq) VALUES (1, 0);
)SQL";

}  // namespace

Result<std::unique_ptr<TelemetryQueue>> TelemetryQueue::Open(const std::string& path) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                           nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close(db);
    return MakeError(ErrorKind::kIo, "queue_open_failed", "telemetry queue " + path + ": " + msg);
  }
  std::unique_ptr<TelemetryQueue> q(new TelemetryQueue(db, path));
  sqlite3_busy_timeout(db, 5000);
  auto setup = q->Exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;");
  if (setup.ok()) setup = q->Exec(kSchema);
  if (!setup.ok()) {
    return MakeError(ErrorKind::kIo, "queue_corrupt", setup.error().message);
  }
  return q;
}

TelemetryQueue::~TelemetryQueue() { sqlite3_close(db_); }

Status TelemetryQueue::Exec(const char* sql) const {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    return MakeError(ErrorKind::kIo, "queue_io_failed", "telemetry queue " + path_ + ": " + msg);
  }
  return Ok();
}

Result<std::int64_t> TelemetryQueue::Append(const wire::TelemetryReport& report) {
  std::lock_guard lock(mu_);
  EP_RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
  auto fail = [&](const std::string& what) {
    auto e = DbError(db_, path_, what);
    Exec("ROLLBACK").ok();
    return e;
  };
  Stmt next(db_, "UPDATE telemetry_seq SET last_seq = last_seq + 1 WHERE id = 1 RETURNING last_seq");
  if (!next.ok() || sqlite3_step(next.get()) != SQLITE_ROW) return fail("assigning a sequence number");
  const std::int64_t seq = sqlite3_column_int64(next.get(), 0);
  sqlite3_reset(next.get());
  wire::TelemetryReport stamped = report;
  stamped.seq = seq;
  const std::string body = json::Serialize(wire::ToJson(stamped));
  Stmt insert(db_, "INSERT INTO telemetry_outbox (seq, body) VALUES (?1, ?2)");
  if (!insert.ok()) return fail("preparing insert");
  sqlite3_bind_int64(insert.get(), 1, seq);
  sqlite3_bind_text(insert.get(), 2, body.data(), static_cast<int>(body.size()), SQLITE_TRANSIENT);
  if (sqlite3_step(insert.get()) != SQLITE_DONE) return fail("inserting a report");
  auto commit = Exec("COMMIT");
  if (!commit.ok()) {
    Exec("ROLLBACK").ok();
    return commit.error();
  }
  return seq;
}

Result<std::vector<wire::TelemetryReport>> TelemetryQueue::Peek(std::size_t max_reports) const {
  std::lock_guard lock(mu_);
  Stmt s(db_, "SELECT seq, body FROM telemetry_outbox ORDER BY seq LIMIT ?1");
  if (!s.ok()) return DbError(db_, path_, "preparing peek");
  sqlite3_bind_int64(s.get(), 1, static_cast<sqlite3_int64>(max_reports));
  std::vector<wire::TelemetryReport> out;
  int rc;
  while ((rc = sqlite3_step(s.get())) == SQLITE_ROW) {
    const std::int64_t seq = sqlite3_column_int64(s.get(), 0);
    const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(s.get(), 1));
    auto o = json::ParseObject(text ? text : "");
    auto r = o.ok() ? wire::TelemetryReportFromJson(*o) : Result<wire::TelemetryReport>(o.error());
    if (!r.ok()) {
      return MakeError(ErrorKind::kIo, "queue_corrupt",
                       "telemetry queue " + path_ + ": report " + std::to_string(seq) + ": " +
                           r.error().message);
    }
    out.push_back(std::move(r).value());
  }
  if (rc != SQLITE_DONE) return DbError(db_, path_, "reading reports");
  return out;
}

Status TelemetryQueue::Ack(std::int64_t up_to_seq) {
  EP_ASSIGN_OR_RETURN(auto last, LastSeq());
  if (up_to_seq < 0 || up_to_seq > last) {
    return MakeError(ErrorKind::kInvalidArgument, "ack_out_of_range",
                     "ack up to seq " + std::to_string(up_to_seq) + " but the last seq assigned is " +
                         std::to_string(last));
  }
  std::lock_guard lock(mu_);
  Stmt s(db_, "DELETE FROM telemetry_outbox WHERE seq <= ?1");
  if (!s.ok()) return DbError(db_, path_, "preparing ack");
  sqlite3_bind_int64(s.get(), 1, up_to_seq);
  if (sqlite3_step(s.get()) != SQLITE_DONE) return DbError(db_, path_, "deleting acked reports");
  return Ok();
}

Result<std::int64_t> TelemetryQueue::Pending() const {
  std::lock_guard lock(mu_);
  Stmt s(db_, "SELECT COUNT(*) FROM telemetry_outbox");
  if (!s.ok() || sqlite3_step(s.get()) != SQLITE_ROW) return DbError(db_, path_, "counting");
  return static_cast<std::int64_t>(sqlite3_column_int64(s.get(), 0));
}

Result<std::int64_t> TelemetryQueue::LastSeq() const {
  std::lock_guard lock(mu_);
  Stmt s(db_, "SELECT last_seq FROM telemetry_seq WHERE id = 1");
  if (!s.ok() || sqlite3_step(s.get()) != SQLITE_ROW) return DbError(db_, path_, "reading seq");
  return static_cast<std::int64_t>(sqlite3_column_int64(s.get(), 0));
}

}  // namespace edgeprune::agent
