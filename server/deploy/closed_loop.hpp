#pragma once
// The closed loop: when a device's measured p95 latency (live requests, or the probe set when
// there were none) stays above its latency SLO for `breach_reports` consecutive reports of the
// variant it is assigned, the device's throughput estimate is recalibrated from the measurement
// (macs_per_ms = variant MACs / (p95 − overhead)) and the device is reassigned under the
// corrected budget: to a smaller existing variant, or one is built. Both steps are audited
// ("device.recalibrate", "device.reassign").
//
// Thread-safety: thread-safe.

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "edgeprune/common/result.hpp"
#include "edgeprune/common/wire/telemetry.hpp"
#include "server/store/database.hpp"
#include "server/deploy/deployments.hpp"

namespace edgeprune::deploy {

struct ClosedLoopOptions {
  int breach_reports = 3;  // N consecutive reports above the SLO
};

class ClosedLoop {
 public:
  ClosedLoop(std::shared_ptr<store::Database> db, std::shared_ptr<DeploymentService> deployments,
             ClosedLoopOptions options)
      : db_(std::move(db)), deployments_(std::move(deployments)), options_(options) {}

  // Feeds newly stored reports; returns the new assignment when the device was moved.
  Result<std::optional<Assignment>> OnReports(const std::string& device_id,
                                              const std::vector<wire::TelemetryReport>& reports);

 private:
  std::shared_ptr<store::Database> db_;
  std::shared_ptr<DeploymentService> deployments_;
  ClosedLoopOptions options_;
};

}  // namespace edgeprune::deploy
