#pragma once
// Telemetry and fleet gauges on the server's Prometheus registry:
//   edgeprune_device_latency_ms{device,variant,source=probe|live,quantile=0.5|0.95|0.99}
//   edgeprune_device_accuracy{device,variant,source=probe|feedback}
//   edgeprune_device_inferences_total{device,variant}
//   edgeprune_model_variants{model,status}, edgeprune_jobs{state}
// (devices by status: edgeprune_devices, exported by the fleet). Device figures follow each
// stored report; the counts are recounted by Refresh().
//
// Series are bounded (issue 13: 50,000 reports with fresh variant ids made 50,000 series): the
// caller passes only reports whose variant the device may run, and at most series_cap distinct
// (device, variant) pairs get series; reports beyond are counted in
//   edgeprune_metrics_reports_dropped_total{reason="unknown_variant|series_cap"}.
//
// Thread-safety: thread-safe.

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "edgeprune/common/result.hpp"
#include "edgeprune/common/wire/telemetry.hpp"

namespace edgeprune::telemetry {

class TelemetryMetrics {
 public:
  explicit TelemetryMetrics(std::shared_ptr<prometheus::Registry> registry);

  static constexpr std::size_t kDefaultSeriesCap = 20'000;

  // Reports for a variant not in known_variants are dropped (counted) rather than given series.
  void Observe(const std::string& device_id, const std::vector<wire::TelemetryReport>& reports,
               const std::set<std::string>& known_variants);
  // At most this many (device, variant) pairs with series; set before serving.
  void SetSeriesCap(std::size_t cap);
  std::size_t pairs() const;
  // Sets the gauges of variants per (model, status) and jobs per state to these counts (the
  // catalog and the job queue count their own tables; the application hands the counts over).
  struct VariantCount {
    std::string model_id;
    std::string status;
    std::int64_t n = 0;
  };
  void Refresh(const std::vector<VariantCount>& variants,
               const std::vector<std::pair<std::string, std::int64_t>>& jobs);

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Gauge>& latency_;
  prometheus::Family<prometheus::Gauge>& accuracy_;
  prometheus::Family<prometheus::Counter>& inferences_;
  prometheus::Family<prometheus::Gauge>& variants_;
  prometheus::Family<prometheus::Gauge>& jobs_;
  prometheus::Family<prometheus::Counter>& dropped_;
  prometheus::Counter* dropped_unknown_;
  prometheus::Counter* dropped_cap_;
  mutable std::mutex mu_;
  std::size_t series_cap_ = kDefaultSeriesCap;
  std::set<std::pair<std::string, std::string>> pairs_;  // (device, variant) with series
};

}  // namespace edgeprune::telemetry
