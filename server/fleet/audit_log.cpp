#include "server/fleet/audit_log.hpp"

#include <algorithm>

namespace edgeprune::fleet {

const char* OutcomeName(Outcome outcome) {
  switch (outcome) {
    case Outcome::kOk: return "ok";
    case Outcome::kDenied: return "denied";
    case Outcome::kFailed: return "failed";
  }
  return "failed";
}

Status AuditLog::Insert(store::Connection& conn, std::int64_t at_ms, const std::string& actor,
                        const std::string& action, const std::string& target, Outcome outcome,
                        const std::string& detail) {
  auto rows = conn.Execute(
      "audit_insert",
      "INSERT INTO audit_log (at, actor, action, target, outcome, detail) VALUES (?, ?, ?, ?, ?, ?)",
      at_ms, actor, action, target, std::string(OutcomeName(outcome)), detail);
  if (!rows.ok()) return rows.error();
  return Ok();
}

Status AuditLog::Record(store::Connection& conn, const std::string& actor,
                        const std::string& action, const std::string& target, Outcome outcome,
                        const std::string& detail) const {
  return Insert(conn, clock_->NowMs(), actor, action, target, outcome, detail);
}

Status AuditLog::RecordIn(store::Connection& conn, const std::string& actor,
                          const std::string& action, const std::string& target,
                          const std::string& detail, Outcome outcome) {
  return Insert(conn, NowMs(), actor, action, target, outcome, detail);
}

Status AuditLog::Record(const std::string& actor, const std::string& action,
                        const std::string& target, Outcome outcome,
                        const std::string& detail) const {
  EP_ASSIGN_OR_RETURN(store::ConnectionLease lease, db_->Acquire());
  return Record(*lease, actor, action, target, outcome, detail);
}

Result<std::vector<AuditEntry>> AuditLog::List(const AuditQuery& q) const {
  EP_ASSIGN_OR_RETURN(store::ConnectionLease lease, db_->Acquire());
  // NULL parameters disable their filter; the SQL text itself never changes. CAST: PostgreSQL
  // must know a parameter's type where it first meets it, here at IS NULL.
  EP_ASSIGN_OR_RETURN(
      store::Statement stmt,
      lease->Query("audit_list",
                   "SELECT id, at, actor, action, target, outcome, detail FROM audit_log "
                   "WHERE (CAST(?1 AS TEXT) IS NULL OR actor = ?1) "
                   "AND (CAST(?2 AS TEXT) IS NULL OR action = ?2) "
                   "AND (CAST(?3 AS TEXT) IS NULL OR target = ?3) "
                   "AND (CAST(?4 AS BIGINT) IS NULL OR id < ?4) "
                   "ORDER BY id DESC LIMIT ?5",
                   q.actor, q.action, q.target, q.before_id,
                   static_cast<std::int64_t>(std::clamp(q.limit, 1, 1000))));
  std::vector<AuditEntry> out;
  while (true) {
    EP_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    out.push_back({stmt.Int64(0), stmt.Int64(1), stmt.Text(2), stmt.Text(3), stmt.Text(4),
                   stmt.Text(5), stmt.Text(6)});
  }
  return out;
}

boost::json::object AuditLog::ToJson(const AuditEntry& e) {
  return {{"id", e.id},         {"at_ms", e.at_ms},   {"actor", e.actor},  {"action", e.action},
          {"target", e.target}, {"outcome", e.outcome}, {"detail", e.detail}};
}

}  // namespace edgeprune::fleet
