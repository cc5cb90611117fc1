#include "server/telemetry/field_stats.hpp"

#include <unordered_set>

#include "edgeprune/common/json.hpp"

namespace edgeprune::telemetry {
namespace bj = boost::json;
namespace {

// The distinct devices of the pairs as one JSON array: one bound parameter for any count. A flat
// array of strings is what SQLite's json_each reads fastest (nested [device, variant] arrays
// cost 10× more); the variant is matched here instead.
// A device repeated further down the list costs SQLite nothing (IN reads a set); only
// neighbours, the usual (new, previous) pair of one device, are skipped here.
std::string DevicesJson(const FieldStats::Pairs& pairs) {
  bj::array a;
  a.reserve(pairs.size());
  const std::string* last = nullptr;
  for (const auto& [device, variant] : pairs) {
    if (last && *last == device) continue;
    a.emplace_back(device);
    last = &device;
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
  // One row per (device, variant), kept at ingest (telemetry_variant_stats): the cost follows
  // the devices asked about, not how long they have been reporting.
  EP_ASSIGN_OR_RETURN(
      auto s, conn.Query("field_stats",
                         "SELECT device_id || ? || variant_id, reports, probe_reports, probe_sum, "
                         "labels, correct, last_p95_ms FROM telemetry_variant_stats "
                         "WHERE device_id IN (SELECT value FROM json_each(?))",
                         FieldKey("", ""), DevicesJson(pairs)));
  out.reserve(pairs.size());
  while (true) {
    EP_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    VariantFieldStats v;
    v.reports = s.Int64(1);
    const std::int64_t probe_reports = s.Int64(2);
    if (probe_reports > 0) v.probe_accuracy = s.Double(3) / static_cast<double>(probe_reports);
    v.labels = s.Int64(4);
    if (v.labels > 0 && !s.IsNull(5)) {
      v.feedback_accuracy = s.Double(5) / static_cast<double>(v.labels);
    }
    if (!s.IsNull(6)) v.p95_ms = s.Double(6);
    out.emplace(s.Text(0), v);  // the key, FieldKey(device, variant), built by the query
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
