#include "agent/telemetry/telemetry_sender.hpp"

#include <algorithm>

#include "edgeprune/common/json.hpp"
#include "edgeprune/common/log.hpp"

namespace edgeprune::agent {

TelemetrySender::TelemetrySender(TelemetryQueue& queue, http::HttpsClient& client,
                                 SenderOptions options)
    : queue_(queue), client_(client), options_(std::move(options)) {}

Result<FlushStats> TelemetrySender::Flush() {
  FlushStats stats;
  const std::size_t batch_size =
      std::clamp<std::size_t>(options_.batch_size, 1, wire::kMaxTelemetryReports);
  while (stats.batches < options_.max_batches) {
    EP_ASSIGN_OR_RETURN(auto reports, queue_.Peek(batch_size));
    if (reports.empty()) break;
    const std::int64_t first = reports.front().seq;
    const std::int64_t last = reports.back().seq;
    wire::TelemetryBatch batch{std::move(reports)};
    const auto count = static_cast<std::int64_t>(batch.reports.size());
    EP_ASSIGN_OR_RETURN(auto resp,
                        client_.Post(options_.target, json::Serialize(wire::ToJson(batch))));
    ++stats.batches;
    stats.sent += count;
    if (resp.status != 200) {
      return MakeError(resp.status >= 500 ? ErrorKind::kUnavailable : ErrorKind::kFailedPrecondition,
                       "telemetry_rejected",
                       "POST " + options_.target + " answered HTTP " + std::to_string(resp.status) +
                           ": " + resp.body.substr(0, 300));
    }
    auto body = json::ParseObject(resp.body);
    auto ack = body.ok() ? wire::TelemetryAckFromJson(*body) : Result<wire::TelemetryAck>(body.error());
    if (!ack.ok()) return ack.error().WithContext("telemetry ack");
    if (ack->acked_seq < first) {
      return MakeError(ErrorKind::kFailedPrecondition, "telemetry_not_acked",
                       "the server acked seq " + std::to_string(ack->acked_seq) +
                           " for a batch of seq " + std::to_string(first) + ".." +
                           std::to_string(last));
    }
    const std::int64_t up_to = std::min(ack->acked_seq, last);
    EP_RETURN_IF_ERROR(queue_.Ack(up_to));
    stats.acked += up_to - first + 1;
  }
  if (stats.sent > 0) {
    log::Get("telemetry")->debug("flushed {} reports in {} batches", stats.acked, stats.batches);
  }
  return stats;
}

}  // namespace edgeprune::agent
