#pragma once
// A rollout's gates, judged over the devices of one phase against what each device ran before:
//   install_failure_rate   failed / devices with an install outcome (installed, verified, failed)
//   offline_after_update   devices silent for offline_after_ms since installing / installed ones
//   probe_accuracy_drop    mean over verified devices of (baseline − probe accuracy on the new
//                          variant); the baseline is the device's previous variant in the field,
//                          else that variant's test accuracy, else the new variant's own test
//                          accuracy (measured on the master's test split)
//   feedback_accuracy_drop label-weighted (baseline − feedback accuracy); samples are labels;
//                          the baseline is the previous variant's feedback accuracy, else the
//                          probe baseline
//   p95_over_slo           measured devices whose newest p95 exceeds their SLO / measured ones
// A gate is judged only with at least min_samples samples and trips when its value exceeds the
// threshold. Pure functions: the caller gathers the observations (rollouts.cpp).
//
// Thread-safety: pure functions and plain values.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <boost/json/object.hpp>

#include "server/deploy/rollout_spec.hpp"
#include "server/telemetry/field_stats.hpp"

namespace edgeprune::deploy {

struct DeviceObservation {
  std::string device_id;
  std::string state;                               // rollout device state
  bool silent = false;                             // no heartbeat for offline_after_ms
  std::optional<telemetry::VariantFieldStats> now; // on the variant the rollout gave it
  std::optional<double> baseline_probe;
  std::optional<double> baseline_feedback;
  std::optional<double> slo_ms;                    // the device's latency SLO, if any
};

struct GateValue {
  GateSpec spec;
  double value = 0.0;
  std::int64_t samples = 0;
  bool judged = false;                  // samples >= min_samples
  bool tripped = false;                 // judged and value > threshold
  std::vector<std::string> breaching;   // p95_over_slo: the devices above their SLO
};

std::vector<GateValue> EvaluateGates(const std::vector<GateSpec>& gates,
                                     const std::vector<DeviceObservation>& devices);

boost::json::object ToJson(const GateValue& g);

}  // namespace edgeprune::deploy
