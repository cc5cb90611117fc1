#include "agent/telemetry/telemetry_reporter.hpp"

#include "edgeprune/common/log.hpp"

namespace edgeprune::agent {

TelemetryReporter::TelemetryReporter(TelemetryCollector& collector, const ModelRuntime& runtime,
                                     std::shared_ptr<const ProbeSet> probe, TelemetryQueue& queue)
    : collector_(collector), runtime_(runtime), probe_(std::move(probe)), queue_(queue) {}

Result<std::int64_t> TelemetryReporter::Record(std::int64_t now_ms) {
  const auto spec = runtime_.active_spec();
  auto report = collector_.TakeReport(spec ? spec->variant_id : "", now_ms);
  if (spec && probe_) {
    auto probed = runtime_.Probe(*probe_);
    if (probed.ok()) {
      report.probe_accuracy = probed->accuracy;
      report.probe_latency = probed->latency;
      last_probe_ = LastProbe{spec->variant_id, *probed};
    } else {
      log::Get("telemetry")->warn("probe of {} failed: {}", spec->variant_id,
                                  probed.error().ToString());
    }
  }
  return queue_.Append(report);
}

}  // namespace edgeprune::agent
