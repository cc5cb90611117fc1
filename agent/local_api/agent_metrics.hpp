#pragma once
// The agent's Prometheus families, built once on a registry that GET /metrics serves:
//   edgeprune_agent_inferences_total{variant}           successful local inferences
//   edgeprune_agent_inference_errors_total{code}        refused or failed inference requests
//   edgeprune_agent_inference_seconds                   forward latency histogram
//   edgeprune_agent_feedback_total{outcome}             feedback: correct / wrong
//   edgeprune_agent_active_variant{variant}             1 for the serving variant
//   edgeprune_agent_telemetry_reports                   reports this device ever made (= the
//                                                       last telemetry seq; durable across restarts)
//   edgeprune_agent_telemetry_queued                    reports made but not yet acked by the server
//
// Thread-safety: every method may be called from any thread.

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <memory>
#include <mutex>
#include <string>

namespace edgeprune::agent {

class AgentMetrics {
 public:
  explicit AgentMetrics(std::shared_ptr<prometheus::Registry> registry);

  void Inference(const std::string& variant_id, double seconds);
  void InferenceError(const std::string& code);
  void Feedback(bool correct);
  void ActiveVariant(const std::string& variant_id);
  void Telemetry(std::int64_t reports_made, std::int64_t queued);

  const std::shared_ptr<prometheus::Registry>& registry() const { return registry_; }

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>& inferences_;
  prometheus::Family<prometheus::Counter>& errors_;
  prometheus::Histogram& latency_;
  prometheus::Family<prometheus::Counter>& feedback_;
  prometheus::Family<prometheus::Gauge>& active_;
  prometheus::Gauge& telemetry_reports_;
  prometheus::Gauge& telemetry_queued_;
  std::mutex mu_;  // guards active_variant_
  std::string active_variant_;
};

}  // namespace edgeprune::agent
