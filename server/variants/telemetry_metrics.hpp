#pragma once
// Telemetry and fleet gauges on the server's Prometheus registry:
//   edgeprune_device_latency_ms{device,variant,source=probe|live,quantile=0.5|0.95|0.99}
//   edgeprune_device_accuracy{device,variant,source=probe|feedback}
//   edgeprune_device_inferences_total{device,variant}
//   edgeprune_model_variants{model,status}, edgeprune_jobs{state}
// (devices by status: edgeprune_devices, exported by the fleet). Device figures follow each
// stored report; the counts are recounted by Refresh().
//
// Thread-safety: thread-safe.

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "edgeprune/common/result.hpp"
#include "edgeprune/common/wire/telemetry.hpp"
#include "server/store/database.hpp"

namespace edgeprune::variants {

class TelemetryMetrics {
 public:
  explicit TelemetryMetrics(std::shared_ptr<prometheus::Registry> registry);

  void Observe(const std::string& device_id, const std::vector<wire::TelemetryReport>& reports);
  // Recounts variants per model and jobs by state.
  Status Refresh(store::Database& db);

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Gauge>& latency_;
  prometheus::Family<prometheus::Gauge>& accuracy_;
  prometheus::Family<prometheus::Counter>& inferences_;
  prometheus::Family<prometheus::Gauge>& variants_;
  prometheus::Family<prometheus::Gauge>& jobs_;
  std::mutex mu_;
};

}  // namespace edgeprune::variants
