#pragma once
// TelemetryCollector: what the local API observes between two reports — inference latencies and
// count, and feedback (the true label for an earlier request, matched by request id against the
// class predicted then). TakeReport() turns the window into a report and starts a new window.
//
// Thread-safety: every method may be called from any thread.

#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "agent/runtime/runtime.hpp"
#include "edgeprune/common/result.hpp"
#include "edgeprune/common/wire/telemetry.hpp"

namespace edgeprune::agent {

struct CollectorOptions {
  std::size_t remembered_requests = 10000;  // how far back feedback can refer
  std::size_t max_latency_samples = 100000; // per window; further samples are dropped
};

class TelemetryCollector {
 public:
  explicit TelemetryCollector(CollectorOptions options = {});

  void RecordInference(const std::string& request_id, std::int64_t predicted_class,
                       double latency_ms);
  // "unknown_request" (kNotFound) when the id is not among the remembered requests,
  // "feedback_duplicate" (kConflict) when feedback for it was already given.
  // Returns whether the prediction was correct.
  Result<bool> RecordFeedback(const std::string& request_id, std::int64_t label);

  // The window as a report (seq left 0 for the queue to assign); probe results are attached by
  // the caller. Resets the window.
  wire::TelemetryReport TakeReport(const std::string& variant_id, std::int64_t timestamp_ms);

 private:
  struct Prediction {
    std::int64_t predicted = 0;
    bool feedback_given = false;
  };

  CollectorOptions options_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Prediction> predictions_;
  std::deque<std::string> order_;  // request ids, oldest first, for eviction
  std::vector<double> latencies_ms_;
  std::int64_t inferences_ = 0;
  std::int64_t feedback_ = 0;
  std::int64_t feedback_correct_ = 0;
};

}  // namespace edgeprune::agent
