#include "agent/telemetry/telemetry_collector.hpp"

#include "agent/runtime/latency_stats.hpp"

namespace edgeprune::agent {

TelemetryCollector::TelemetryCollector(CollectorOptions options) : options_(options) {}

void TelemetryCollector::RecordInference(const std::string& request_id,
                                         std::int64_t predicted_class, double latency_ms) {
  std::lock_guard lock(mu_);
  ++inferences_;
  if (latencies_ms_.size() < options_.max_latency_samples) latencies_ms_.push_back(latency_ms);
  if (options_.remembered_requests == 0) return;
  if (predictions_.emplace(request_id, Prediction{predicted_class, false}).second) {
    order_.push_back(request_id);
  }
  while (order_.size() > options_.remembered_requests) {
    predictions_.erase(order_.front());
    order_.pop_front();
  }
}

Result<bool> TelemetryCollector::RecordFeedback(const std::string& request_id, std::int64_t label) {
  std::lock_guard lock(mu_);
  auto it = predictions_.find(request_id);
  if (it == predictions_.end()) {
    return MakeError(ErrorKind::kNotFound, "unknown_request",
                     "no recent inference has request id '" + request_id + "'");
  }
  if (it->second.feedback_given) {
    return MakeError(ErrorKind::kConflict, "feedback_duplicate",
                     "feedback for request '" + request_id + "' was already recorded");
  }
  it->second.feedback_given = true;
  const bool correct = it->second.predicted == label;
  ++feedback_;
  if (correct) ++feedback_correct_;
  return correct;
}

wire::TelemetryReport TelemetryCollector::TakeReport(const std::string& variant_id,
                                                     std::int64_t timestamp_ms) {
  std::lock_guard lock(mu_);
  wire::TelemetryReport r;
  r.timestamp_ms = timestamp_ms;
  r.variant_id = variant_id;
  r.inference_count = inferences_;
  if (!latencies_ms_.empty()) r.live_latency = QuantilesOf(std::move(latencies_ms_));
  r.feedback_count = feedback_;
  if (feedback_ > 0) {
    r.feedback_accuracy = static_cast<double>(feedback_correct_) / static_cast<double>(feedback_);
  }
  latencies_ms_.clear();
  inferences_ = 0;
  feedback_ = 0;
  feedback_correct_ = 0;
  return r;
}

}  // namespace edgeprune::agent
