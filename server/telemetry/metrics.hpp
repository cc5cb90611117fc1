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
// The per-device families are not kept in the prometheus-cpp registry: rendering 90,000 series
// through Registry::Collect and its TextSerializer took about 0.5 s at 10,000 devices
// (tests/bench/metrics_render_bench.cpp). Each (device, variant) pair keeps its exposition lines,
// re-rendered when a report for it arrives, and AppendExposition concatenates them: a scrape
// costs a copy of the text, not a conversion of every series. The counts (variants, jobs,
// dropped reports) stay on the registry.
//
// Thread-safety: thread-safe.

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <map>
#include <memory>
#include <mutex>
#include <optional>
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
  // Appends edgeprune_device_latency_ms, edgeprune_device_accuracy and
  // edgeprune_device_inferences_total in the Prometheus text format (version 0.0.4), to follow
  // the registry's own exposition in the /metrics answer.
  void AppendExposition(std::string& out) const;
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
  // One job attempt's wall time (edgeprune_job_attempt_seconds{kind,outcome}), e.g. a variant
  // build from claim to its end.
  void ObserveJobAttempt(const std::string& kind, const std::string& outcome, double seconds);

 private:
  // The latest figures of one (device, variant) pair and its rendered lines, one string per
  // family (a family's lines must be contiguous in the exposition).
  struct PairSeries {
    std::optional<wire::LatencyQuantiles> probe_latency, live_latency;
    std::optional<double> probe_accuracy, feedback_accuracy;
    double inferences = 0.0;
    std::string latency_lines, accuracy_lines, inference_lines;
  };
  static void Render(const std::string& device_id, const std::string& variant_id, PairSeries& s);

  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Gauge>& variants_;
  prometheus::Family<prometheus::Gauge>& jobs_;
  prometheus::Family<prometheus::Histogram>& job_seconds_;
  prometheus::Family<prometheus::Counter>& dropped_;
  prometheus::Counter* dropped_unknown_;
  prometheus::Counter* dropped_cap_;
  mutable std::mutex mu_;
  std::size_t series_cap_ = kDefaultSeriesCap;
  std::map<std::pair<std::string, std::string>, PairSeries> pairs_;  // (device, variant)
};

}  // namespace edgeprune::telemetry
