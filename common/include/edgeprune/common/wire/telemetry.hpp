#pragma once
// Telemetry from an agent (POST /agent/v1/telemetry) and the server's ack. Every report carries a
// per-device sequence number assigned by the agent's durable queue; the server commits a batch,
// drops reports whose seq it has already stored and answers {"acked_seq": N}: at-least-once
// delivery, exactly-once effect. The device is the mTLS client identity, not a field.
//
// Thread-safety: plain value types; codecs are pure functions.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "edgeprune/common/json.hpp"
#include "edgeprune/common/result.hpp"

namespace edgeprune::wire {

struct LatencyQuantiles {
  double p50_ms = 0.0;
  double p95_ms = 0.0;
  double p99_ms = 0.0;
  std::int64_t count = 0;  // samples behind the quantiles
};

struct TelemetryReport {
  std::int64_t seq = 0;         // ≥ 1, strictly increasing per device
  std::int64_t timestamp_ms = 0;  // unix milliseconds when the report was taken
  std::string variant_id;       // the variant serving when the report was taken; "" before any
  std::optional<double> probe_accuracy;      // [0, 1] on the labeled probe set
  std::optional<LatencyQuantiles> probe_latency;  // batch 1 forward on the probe set
  std::optional<LatencyQuantiles> live_latency;   // local API requests since the last report
  std::optional<double> feedback_accuracy;   // [0, 1] over feedback since the last report
  std::int64_t feedback_count = 0;
  std::int64_t inference_count = 0;  // local API inferences since the last report
};

struct TelemetryBatch {
  std::vector<TelemetryReport> reports;  // ascending seq
};

struct TelemetryAck {
  std::int64_t acked_seq = 0;  // every report with seq ≤ acked_seq is stored
};

inline constexpr std::size_t kMaxTelemetryReports = 500;
inline constexpr std::size_t kMaxTelemetryBatchBytes = 1024 * 1024;

boost::json::object ToJson(const LatencyQuantiles& q);
Result<LatencyQuantiles> LatencyQuantilesFromJson(const boost::json::object& o);
boost::json::object ToJson(const TelemetryReport& r);
Result<TelemetryReport> TelemetryReportFromJson(const boost::json::object& o);
boost::json::object ToJson(const TelemetryBatch& b);
// Requires 1..kMaxTelemetryReports reports in strictly ascending seq.
Result<TelemetryBatch> TelemetryBatchFromJson(const boost::json::object& o);
// Parses a request body; "body_too_large" above max_bytes before parsing.
Result<TelemetryBatch> ParseTelemetryBatch(std::string_view body,
                                           std::size_t max_bytes = kMaxTelemetryBatchBytes);
boost::json::object ToJson(const TelemetryAck& a);
Result<TelemetryAck> TelemetryAckFromJson(const boost::json::object& o);

}  // namespace edgeprune::wire
