#include "server/telemetry/field_stats.hpp"

#include <unordered_set>

#include "edgeprune/common/json.hpp"

namespace edgeprune::telemetry {
namespace bj = boost::json;
namespace {

// The distinct devices of the pairs as one JSON array: one bound parameter for any count. A flat
// array of strings is what SQLite's json_each reads fastest (nested [device, variant] arrays
// cost 10× more); the variant is matched here instead.
std::string DevicesJson(const FieldStats::Pairs& pairs) {
  std::unordered_set<std::string> seen;
  bj::array a;
  a.reserve(pairs.size());
  for (const auto& [device, variant] : pairs) {
    if (seen.insert(device).second) a.emplace_back(device);
  }
  return json::Serialize(a);
}

std::unordered_set<std::string> Keys(const FieldStats::Pairs& pairs) {
  std::unordered_set<std::string> keys;
  for (const auto& [device, variant] : pairs) keys.insert(FieldKey(device, variant));
  return keys;
}

}  // namespace

Result<std::unordered_map<std::string, VariantFieldStats>> FieldStats::StatsIn(
    store::Connection& conn, const Pairs& pairs) {
  std::unordered_map<std::string, VariantFieldStats> out;
  if (pairs.empty()) return out;
  const auto keys = Keys(pairs);
  // The p95 is the newest report's: read by its primary key (device_id, MAX(seq)), which both
  // SQLite and PostgreSQL accept (a bare column beside MAX() is SQLite's alone).
  EP_ASSIGN_OR_RETURN(
      auto s, conn.Query("field_stats",
                         "SELECT g.device_id, g.variant_id, g.n, g.accuracy, g.labels, "
                         "g.correct, g.last_seq, (SELECT CASE WHEN r.live_count > 0 "
                         "THEN r.live_p95_ms ELSE r.probe_p95_ms END FROM telemetry r "
                         "WHERE r.device_id = g.device_id AND r.seq = g.last_seq) "
                         "FROM (SELECT device_id, variant_id, COUNT(*) AS n, "
                         "AVG(probe_accuracy) AS accuracy, SUM(feedback_count) AS labels, "
                         "SUM(feedback_accuracy * feedback_count) AS correct, MAX(seq) AS last_seq "
                         "FROM telemetry WHERE device_id IN (SELECT value FROM json_each(?)) "
                         "GROUP BY device_id, variant_id) g",
                         DevicesJson(pairs)));
  while (true) {
    EP_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    std::string key = FieldKey(s.Text(0), s.Text(1));
    if (!keys.count(key)) continue;
    VariantFieldStats v;
    v.reports = s.Int64(2);
    if (!s.IsNull(3)) v.probe_accuracy = s.Double(3);
    v.labels = s.IsNull(4) ? 0 : s.Int64(4);
    if (v.labels > 0 && !s.IsNull(5)) {
      v.feedback_accuracy = s.Double(5) / static_cast<double>(v.labels);
    }
    if (!s.IsNull(7)) v.p95_ms = s.Double(7);
    out.emplace(std::move(key), v);
  }
  return out;
}

Result<std::unordered_map<std::string, VariantOutcome>> FieldStats::OutcomesIn(
    store::Connection& conn, const Pairs& pairs, std::int64_t since_ms) {
  std::unordered_map<std::string, VariantOutcome> out;
  if (pairs.empty()) return out;
  const auto keys = Keys(pairs);
  EP_ASSIGN_OR_RETURN(auto s, conn.Query("field_outcomes",
                                         "SELECT device_id, variant_id, event, reason FROM "
                                         "variant_events WHERE device_id IN (SELECT value FROM "
                                         "json_each(?)) AND at >= ? ORDER BY id",
                                         DevicesJson(pairs), since_ms));
  while (true) {
    EP_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    std::string key = FieldKey(s.Text(0), s.Text(1));
    if (!keys.count(key)) continue;
    VariantOutcome& o = out[key];
    const std::string event = s.Text(2);
    if (event == "installed") {
      o.installed = true;
      o.failed = false;
    } else if (event == "refused" || event == "check_failed") {
      o.failed = true;
      o.reason = s.Text(3);
    }
  }
  return out;
}

}  // namespace edgeprune::telemetry
