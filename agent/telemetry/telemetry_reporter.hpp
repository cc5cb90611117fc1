#pragma once
// TelemetryReporter: what the serve state does for telemetry each interval. Record() closes the
// collector's window into a report, attaches probe accuracy and batch-1 probe latency of the
// active model on the probe set it was checked with (its own, or the agent's local one; none when
// it had neither) and appends it to the durable queue; Flush()
// hands the queue to the sender. Recording never needs the network, so reports taken while the
// server is unreachable are sent later in order.
//
// Thread-safety: not thread-safe; called from the state machine's thread (the collector it reads
// is thread-safe).

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "agent/runtime/runtime.hpp"
#include "agent/telemetry/telemetry_collector.hpp"
#include "agent/telemetry/telemetry_queue.hpp"
#include "agent/telemetry/telemetry_sender.hpp"

namespace edgeprune::agent {

class TelemetryReporter {
 public:
  TelemetryReporter(TelemetryCollector& collector, const ModelRuntime& runtime,
                    TelemetryQueue& queue);

  // Returns the seq the report got.
  Result<std::int64_t> Record(std::int64_t now_ms);
  Result<FlushStats> Flush(TelemetrySender& sender) { return sender.Flush(); }

  // The last successful probe, for the agent's /metrics.
  struct LastProbe {
    std::string variant_id;
    ProbeReport report;
  };
  const std::optional<LastProbe>& last_probe() const { return last_probe_; }

 private:
  TelemetryCollector& collector_;
  const ModelRuntime& runtime_;
  TelemetryQueue& queue_;
  std::optional<LastProbe> last_probe_;
};

}  // namespace edgeprune::agent
