#include "edgeprune/common/wire/telemetry.hpp"

#include "edgeprune/common/wire/fields.hpp"

namespace edgeprune::wire {
namespace {

constexpr std::int64_t kMaxSeq = std::int64_t{1} << 62;
constexpr std::int64_t kMaxCount = std::int64_t{1} << 50;
constexpr double kMaxLatencyMs = 3.6e6;

Result<std::optional<bj::object>> ReadOptObject(const bj::object& o, std::string_view key) {
  auto it = o.find(key);
  if (it == o.end() || it->value().is_null()) return std::optional<bj::object>();
  if (!it->value().is_object()) {
    return MakeError(ErrorKind::kInvalidArgument, "invalid_field",
                     "field '" + std::string(key) + "' must be an object");
  }
  return std::optional<bj::object>(it->value().get_object());
}

Result<std::optional<LatencyQuantiles>> ReadOptQuantiles(const bj::object& o, std::string_view key) {
  EP_ASSIGN_OR_RETURN(auto obj, ReadOptObject(o, key));
  if (!obj) return std::optional<LatencyQuantiles>();
  auto q = LatencyQuantilesFromJson(*obj);
  if (!q.ok()) return q.error().WithContext(std::string(key));
  return std::optional<LatencyQuantiles>(std::move(q).value());
}

}  // namespace

boost::json::object ToJson(const LatencyQuantiles& q) {
  return {{"p50_ms", q.p50_ms}, {"p95_ms", q.p95_ms}, {"p99_ms", q.p99_ms}, {"count", q.count}};
}

Result<LatencyQuantiles> LatencyQuantilesFromJson(const boost::json::object& o) {
  EP_RETURN_IF_ERROR(RejectUnknownKeys(o, {"p50_ms", "p95_ms", "p99_ms", "count"}, "latency"));
  LatencyQuantiles q;
  EP_ASSIGN_OR_RETURN(q.p50_ms, ReadDouble(o, "p50_ms", 0.0, kMaxLatencyMs));
  EP_ASSIGN_OR_RETURN(q.p95_ms, ReadDouble(o, "p95_ms", 0.0, kMaxLatencyMs));
  EP_ASSIGN_OR_RETURN(q.p99_ms, ReadDouble(o, "p99_ms", 0.0, kMaxLatencyMs));
  EP_ASSIGN_OR_RETURN(q.count, ReadInt(o, "count", 0, kMaxCount));
  if (q.p50_ms > q.p95_ms || q.p95_ms > q.p99_ms) {
    return MakeError(ErrorKind::kInvalidArgument, "invalid_field",
                     "latency quantiles must satisfy p50 <= p95 <= p99");
  }
  return q;
}

boost::json::object ToJson(const TelemetryReport& r) {
  boost::json::object o{{"seq", r.seq},
                        {"timestamp_ms", r.timestamp_ms},
                        {"variant_id", r.variant_id},
                        {"feedback_count", r.feedback_count},
                        {"inference_count", r.inference_count}};
  if (r.probe_accuracy) o["probe_accuracy"] = *r.probe_accuracy;
  if (r.probe_latency) o["probe_latency"] = ToJson(*r.probe_latency);
  if (r.live_latency) o["live_latency"] = ToJson(*r.live_latency);
  if (r.feedback_accuracy) o["feedback_accuracy"] = *r.feedback_accuracy;
  return o;
}

Result<TelemetryReport> TelemetryReportFromJson(const boost::json::object& o) {
  EP_RETURN_IF_ERROR(RejectUnknownKeys(
      o,
      {"seq", "timestamp_ms", "variant_id", "probe_accuracy", "probe_latency", "live_latency",
       "feedback_accuracy", "feedback_count", "inference_count"},
      "telemetry report"));
  TelemetryReport r;
  EP_ASSIGN_OR_RETURN(r.seq, ReadInt(o, "seq", 1, kMaxSeq));
  EP_ASSIGN_OR_RETURN(r.timestamp_ms, ReadInt(o, "timestamp_ms", 0, std::int64_t{1} << 50));
  EP_ASSIGN_OR_RETURN(r.variant_id, ReadString(o, "variant_id", 128, 0));
  EP_ASSIGN_OR_RETURN(r.probe_accuracy, ReadOptDouble(o, "probe_accuracy", 0.0, 1.0));
  EP_ASSIGN_OR_RETURN(r.probe_latency, ReadOptQuantiles(o, "probe_latency"));
  EP_ASSIGN_OR_RETURN(r.live_latency, ReadOptQuantiles(o, "live_latency"));
  EP_ASSIGN_OR_RETURN(r.feedback_accuracy, ReadOptDouble(o, "feedback_accuracy", 0.0, 1.0));
  EP_ASSIGN_OR_RETURN(r.feedback_count, ReadInt(o, "feedback_count", 0, kMaxCount));
  EP_ASSIGN_OR_RETURN(r.inference_count, ReadInt(o, "inference_count", 0, kMaxCount));
  return r;
}

boost::json::object ToJson(const TelemetryBatch& b) {
  bj::array reports;
  for (const auto& r : b.reports) reports.emplace_back(ToJson(r));
  return {{"reports", std::move(reports)}};
}

Result<TelemetryBatch> TelemetryBatchFromJson(const boost::json::object& o) {
  EP_RETURN_IF_ERROR(RejectUnknownKeys(o, {"reports"}, "telemetry batch"));
  auto it = o.find("reports");
  if (it == o.end() || !it->value().is_array()) {
    return MakeError(ErrorKind::kInvalidArgument, "invalid_field",
                     "field 'reports' must be an array");
  }
  const auto& a = it->value().get_array();
  if (a.empty() || a.size() > kMaxTelemetryReports) {
    return MakeError(ErrorKind::kInvalidArgument, "invalid_field",
                     "field 'reports' must hold 1 to " + std::to_string(kMaxTelemetryReports) +
                         " reports, got " + std::to_string(a.size()));
  }
  TelemetryBatch b;
  for (std::size_t i = 0; i < a.size(); ++i) {
    std::string where = "reports[" + std::to_string(i) + "]";
    if (!a[i].is_object()) {
      return MakeError(ErrorKind::kInvalidArgument, "invalid_field", where + " must be an object");
    }
    auto r = TelemetryReportFromJson(a[i].get_object());
    if (!r.ok()) return r.error().WithContext(where);
    if (!b.reports.empty() && r->seq <= b.reports.back().seq) {
      return MakeError(ErrorKind::kInvalidArgument, "invalid_field",
                       where + ": seq " + std::to_string(r->seq) +
                           " is not greater than the previous report's");
    }
    b.reports.push_back(std::move(r).value());
  }
  return b;
}

Result<TelemetryBatch> ParseTelemetryBatch(std::string_view body, std::size_t max_bytes) {
  if (body.size() > max_bytes) {
    return MakeError(ErrorKind::kPayloadTooLarge, "body_too_large",
                     "telemetry batch of " + std::to_string(body.size()) +
                         " bytes exceeds the limit of " + std::to_string(max_bytes));
  }
  EP_ASSIGN_OR_RETURN(auto o, json::ParseObject(body));
  return TelemetryBatchFromJson(o);
}

boost::json::object ToJson(const TelemetryAck& a) { return {{"acked_seq", a.acked_seq}}; }

Result<TelemetryAck> TelemetryAckFromJson(const boost::json::object& o) {
  TelemetryAck a;
  EP_ASSIGN_OR_RETURN(a.acked_seq, ReadInt(o, "acked_seq", 0, kMaxSeq));
  return a;
}

}  // namespace edgeprune::wire
