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
//   edgeprune_agent_inferences_in_flight                inferences running now (the queue depth:
//                                                       requests beyond the local API's threads wait
//                                                       in its accept queue, not here)
//   edgeprune_agent_probe_accuracy{variant}             accuracy on the labeled probe set at the
//                                                       last telemetry interval
//   edgeprune_agent_probe_latency_seconds{quantile}     batch-1 probe latency at the last interval
// GET /metrics also carries the process_* series (resident memory, CPU, descriptors).
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
  // The last probe of the active variant (p50/p95/p99 in milliseconds, as the runtime reports).
  void Probe(const std::string& variant_id, double accuracy, double p50_ms, double p95_ms,
             double p99_ms);

  // Counts an inference as running for as long as it lives.
  class InFlight {
   public:
    explicit InFlight(AgentMetrics* m) : m_(m) {
      if (m_) m_->in_flight_.Increment();
    }
    ~InFlight() {
      if (m_) m_->in_flight_.Decrement();
    }
    InFlight(const InFlight&) = delete;
    InFlight& operator=(const InFlight&) = delete;

   private:
    AgentMetrics* m_;
  };

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
  prometheus::Gauge& in_flight_;
  prometheus::Family<prometheus::Gauge>& probe_accuracy_;
  prometheus::Family<prometheus::Gauge>& probe_latency_;
  std::mutex mu_;  // guards active_variant_ and probed_variant_
  std::string active_variant_;
  std::string probed_variant_;
};

}  // namespace edgeprune::agent
