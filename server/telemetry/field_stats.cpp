#include "server/telemetry/field_stats.hpp"

#include "edgeprune/common/json.hpp"

namespace edgeprune::telemetry {
namespace bj = boost::json;
namespace {

std::string PairsJson(const FieldStats::Pairs& pairs) {
  bj::array a;
  a.reserve(pairs.size());
  for (const auto& [device, variant] : pairs) a.push_back(bj::array{device.c_str(), variant.c_str()});
  return json::Serialize(a);
}

// The pairs as a table k(d, v), from one bound JSON parameter: one statement for any count.
constexpr const char* kPairs =
    "WITH k(d, v) AS (SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') "
    "FROM json_each(?1)) ";

}  // namespace

Result<std::unordered_map<std::string, VariantFieldStats>> FieldStats::StatsIn(
    store::Connection& conn, const Pairs& pairs) {
  std::unordered_map<std::string, VariantFieldStats> out;
  if (pairs.empty()) return out;
  // MAX(seq) makes the bare p95 columns come from the newest report (SQLite's min/max rule).
  EP_ASSIGN_OR_RETURN(
      auto s, conn.Query("field_stats",
                         std::string(kPairs) +
                             "SELECT t.device_id, t.variant_id, COUNT(*), AVG(t.probe_accuracy), "
                             "SUM(t.feedback_count), SUM(t.feedback_accuracy * t.feedback_count), "
                             "MAX(t.seq), CASE WHEN t.live_count > 0 THEN t.live_p95_ms "
                             "ELSE t.probe_p95_ms END FROM k JOIN telemetry t "
                             "ON t.device_id = k.d AND t.variant_id = k.v "
                             "GROUP BY t.device_id, t.variant_id",
                         PairsJson(pairs)));
  while (true) {
    EP_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    VariantFieldStats v;
    v.reports = s.Int64(2);
    if (!s.IsNull(3)) v.probe_accuracy = s.Double(3);
    v.labels = s.IsNull(4) ? 0 : s.Int64(4);
    if (v.labels > 0 && !s.IsNull(5)) {
      v.feedback_accuracy = s.Double(5) / static_cast<double>(v.labels);
    }
    if (!s.IsNull(7)) v.p95_ms = s.Double(7);
    out.emplace(FieldKey(s.Text(0), s.Text(1)), v);
  }
  return out;
}

Result<std::unordered_map<std::string, VariantOutcome>> FieldStats::OutcomesIn(
    store::Connection& conn, const Pairs& pairs, std::int64_t since_ms) {
  std::unordered_map<std::string, VariantOutcome> out;
  if (pairs.empty()) return out;
  EP_ASSIGN_OR_RETURN(auto s, conn.Query("field_outcomes",
                                         std::string(kPairs) +
                                             "SELECT e.device_id, e.variant_id, e.event, e.reason "
                                             "FROM k JOIN variant_events e ON e.device_id = k.d "
                                             "AND e.variant_id = k.v WHERE e.at >= ?2 "
                                             "ORDER BY e.id",
                                         PairsJson(pairs), since_ms));
  while (true) {
    EP_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    VariantOutcome& o = out[FieldKey(s.Text(0), s.Text(1))];
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
