#include "server/telemetry/metrics.hpp"

namespace edgeprune::telemetry {

TelemetryMetrics::TelemetryMetrics(std::shared_ptr<prometheus::Registry> registry)
    : registry_(std::move(registry)),
      latency_(prometheus::BuildGauge()
                   .Name("edgeprune_device_latency_ms")
                   .Help("Latest reported batch-1 latency quantile per device and variant")
                   .Register(*registry_)),
      accuracy_(prometheus::BuildGauge()
                    .Name("edgeprune_device_accuracy")
                    .Help("Latest reported accuracy per device and variant (probe or feedback)")
                    .Register(*registry_)),
      inferences_(prometheus::BuildCounter()
                      .Name("edgeprune_device_inferences_total")
                      .Help("Local API inferences reported per device and variant")
                      .Register(*registry_)),
      variants_(prometheus::BuildGauge()
                    .Name("edgeprune_model_variants")
                    .Help("Variants per model and status")
                    .Register(*registry_)),
      jobs_(prometheus::BuildGauge()
                .Name("edgeprune_jobs")
                .Help("Jobs by state")
                .Register(*registry_)),
      dropped_(prometheus::BuildCounter()
                   .Name("edgeprune_metrics_reports_dropped_total")
                   .Help("Telemetry reports stored but given no per-device series: a variant the "
                         "device is not assigned, or the series cap reached")
                   .Register(*registry_)),
      dropped_unknown_(&dropped_.Add({{"reason", "unknown_variant"}})),
      dropped_cap_(&dropped_.Add({{"reason", "series_cap"}})) {}

void TelemetryMetrics::SetSeriesCap(std::size_t cap) {
  std::lock_guard<std::mutex> lock(mu_);
  series_cap_ = cap;
}

std::size_t TelemetryMetrics::pairs() const {
  std::lock_guard<std::mutex> lock(mu_);
  return pairs_.size();
}

void TelemetryMetrics::Observe(const std::string& device_id,
                               const std::vector<wire::TelemetryReport>& reports,
                               const std::set<std::string>& known_variants) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& r : reports) {
    const std::string& v = r.variant_id;
    if (!known_variants.count(v)) {
      dropped_unknown_->Increment();
      continue;
    }
    if (!pairs_.count({device_id, v})) {
      if (pairs_.size() >= series_cap_) {
        dropped_cap_->Increment();
        continue;
      }
      pairs_.emplace(device_id, v);
    }
    auto quantiles = [&](const char* source, const wire::LatencyQuantiles& q) {
      latency_.Add({{"device", device_id}, {"variant", v}, {"source", source}, {"quantile", "0.5"}})
          .Set(q.p50_ms);
      latency_.Add({{"device", device_id}, {"variant", v}, {"source", source}, {"quantile", "0.95"}})
          .Set(q.p95_ms);
      latency_.Add({{"device", device_id}, {"variant", v}, {"source", source}, {"quantile", "0.99"}})
          .Set(q.p99_ms);
    };
    if (r.probe_latency) quantiles("probe", *r.probe_latency);
    if (r.live_latency && r.live_latency->count > 0) quantiles("live", *r.live_latency);
    if (r.probe_accuracy) {
      accuracy_.Add({{"device", device_id}, {"variant", v}, {"source", "probe"}})
          .Set(*r.probe_accuracy);
    }
    if (r.feedback_accuracy) {
      accuracy_.Add({{"device", device_id}, {"variant", v}, {"source", "feedback"}})
          .Set(*r.feedback_accuracy);
    }
    if (r.inference_count > 0) {
      inferences_.Add({{"device", device_id}, {"variant", v}})
          .Increment(static_cast<double>(r.inference_count));
    }
  }
}

void TelemetryMetrics::Refresh(const std::vector<VariantCount>& variants,
                               const std::vector<std::pair<std::string, std::int64_t>>& jobs) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& r : variants) {
    variants_.Add({{"model", r.model_id}, {"status", r.status}}).Set(static_cast<double>(r.n));
  }
  for (const char* state : {"queued", "running", "succeeded", "failed", "cancelled"}) {
    jobs_.Add({{"state", state}}).Set(0);
  }
  for (const auto& [state, n] : jobs) jobs_.Add({{"state", state}}).Set(static_cast<double>(n));
}

}  // namespace edgeprune::telemetry
