#include "agent/telemetry/telemetry_reporter.hpp"

#include "edgeprune/common/log.hpp"

namespace edgeprune::agent {

TelemetryReporter::TelemetryReporter(TelemetryCollector& collector, const ModelRuntime& runtime,
                                     TelemetryQueue& queue)
    : collector_(collector), runtime_(runtime), queue_(queue) {}

Result<std::int64_t> TelemetryReporter::Record(std::int64_t now_ms) {
  // One reference for the whole report: a swap meanwhile cannot pair one variant's id with
  // another's probe.
  const auto model = runtime_.active();
  const std::string variant_id = model ? ModelRuntime::SpecOf(*model).variant_id : "";
  auto report = collector_.TakeReport(variant_id, now_ms);
  if (model) {
    auto probed = ModelRuntime::ProbeOwn(*model);
    if (!probed.ok()) {
      log::Get("telemetry")->warn("probe of {} failed: {}", variant_id, probed.error().ToString());
    } else if (*probed) {
      report.probe_accuracy = (*probed)->accuracy;
      report.probe_latency = (*probed)->latency;
      last_probe_ = LastProbe{variant_id, **probed};
    }
  }
  return queue_.Append(report);
}

}  // namespace edgeprune::agent
