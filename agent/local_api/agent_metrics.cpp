#include "agent/local_api/agent_metrics.hpp"

namespace edgeprune::agent {

AgentMetrics::AgentMetrics(std::shared_ptr<prometheus::Registry> registry)
    : registry_(std::move(registry)),
      inferences_(prometheus::BuildCounter()
                      .Name("edgeprune_agent_inferences_total")
                      .Help("Successful local inferences by variant")
                      .Register(*registry_)),
      errors_(prometheus::BuildCounter()
                  .Name("edgeprune_agent_inference_errors_total")
                  .Help("Refused or failed local inference requests by error code")
                  .Register(*registry_)),
      latency_(prometheus::BuildHistogram()
                   .Name("edgeprune_agent_inference_seconds")
                   .Help("Forward latency of local inferences at batch 1")
                   .Register(*registry_)
                   .Add({}, prometheus::Histogram::BucketBoundaries{
                                0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                0.1, 0.25, 0.5, 1.0})),
      feedback_(prometheus::BuildCounter()
                    .Name("edgeprune_agent_feedback_total")
                    .Help("Feedback on local inferences by outcome")
                    .Register(*registry_)),
      active_(prometheus::BuildGauge()
                  .Name("edgeprune_agent_active_variant")
                  .Help("1 for the variant serving local inference")
                  .Register(*registry_)),
      telemetry_reports_(prometheus::BuildGauge()
                             .Name("edgeprune_agent_telemetry_reports")
                             .Help("Telemetry reports this device ever made (its last sequence "
                                   "number)")
                             .Register(*registry_)
                             .Add({})),
      telemetry_queued_(prometheus::BuildGauge()
                            .Name("edgeprune_agent_telemetry_queued")
                            .Help("Telemetry reports made but not yet acknowledged by the server")
                            .Register(*registry_)
                            .Add({})),
      in_flight_(prometheus::BuildGauge()
                     .Name("edgeprune_agent_inferences_in_flight")
                     .Help("Local inferences running now")
                     .Register(*registry_)
                     .Add({})),
      probe_accuracy_(prometheus::BuildGauge()
                          .Name("edgeprune_agent_probe_accuracy")
                          .Help("Accuracy of the active variant on the labeled probe set at the "
                                "last telemetry interval")
                          .Register(*registry_)),
      probe_latency_(prometheus::BuildGauge()
                         .Name("edgeprune_agent_probe_latency_seconds")
                         .Help("Batch-1 latency quantiles of the active variant over the probe set "
                               "at the last telemetry interval")
                         .Register(*registry_)) {}

void AgentMetrics::Inference(const std::string& variant_id, double seconds) {
  inferences_.Add({{"variant", variant_id}}).Increment();
  latency_.Observe(seconds);
}

void AgentMetrics::InferenceError(const std::string& code) {
  errors_.Add({{"code", code}}).Increment();
}

void AgentMetrics::Feedback(bool correct) {
  feedback_.Add({{"outcome", correct ? "correct" : "wrong"}}).Increment();
}

void AgentMetrics::ActiveVariant(const std::string& variant_id) {
  std::lock_guard lock(mu_);
  if (variant_id == active_variant_) return;
  if (!active_variant_.empty()) active_.Add({{"variant", active_variant_}}).Set(0);
  active_.Add({{"variant", variant_id}}).Set(1);
  active_variant_ = variant_id;
}

void AgentMetrics::Probe(const std::string& variant_id, double accuracy, double p50_ms,
                         double p95_ms, double p99_ms) {
  std::lock_guard lock(mu_);
  // One accuracy series: the variant that was probed last. A swapped-out variant's value would
  // otherwise stay on the dashboard as if it were still measured.
  if (!probed_variant_.empty() && probed_variant_ != variant_id) {
    probe_accuracy_.Remove(&probe_accuracy_.Add({{"variant", probed_variant_}}));
  }
  probed_variant_ = variant_id;
  probe_accuracy_.Add({{"variant", variant_id}}).Set(accuracy);
  probe_latency_.Add({{"quantile", "0.5"}}).Set(p50_ms / 1000.0);
  probe_latency_.Add({{"quantile", "0.95"}}).Set(p95_ms / 1000.0);
  probe_latency_.Add({{"quantile", "0.99"}}).Set(p99_ms / 1000.0);
}

void AgentMetrics::Telemetry(std::int64_t reports_made, std::int64_t queued) {
  telemetry_reports_.Set(static_cast<double>(reports_made));
  telemetry_queued_.Set(static_cast<double>(queued));
}

}  // namespace edgeprune::agent
