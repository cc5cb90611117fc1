#pragma once
// What a device may be given: the bounds a variant must fit. The fleet derives it from a device's
// profile (docs/budgets.md); the pruning engine's fitter takes it as its target. Header-only and
// free of LibTorch so both sides and the wire codecs share one type.
//
// Thread-safety: plain value type.

#include <cstdint>
#include <optional>
#include <string>

namespace edgeprune {

// How fast a device runs a model: latency_ms ≈ overhead_ms + macs / (macs_per_ms).
// Calibrated per device from its microbenchmarks and corrected from its telemetry.
struct LatencyModel {
  double macs_per_ms = 0.0;  // effective throughput for this kind of model at batch 1
  double overhead_ms = 0.0;  // fixed per-inference cost (dispatch, allocation)

  double PredictMs(double macs) const {
    return macs_per_ms > 0.0 ? overhead_ms + macs / macs_per_ms : 0.0;
  }
};

// Every bound is optional; an absent bound does not constrain.
struct Budget {
  std::optional<std::int64_t> max_param_bytes;
  std::optional<std::int64_t> max_macs;
  std::optional<std::int64_t> max_activation_bytes;  // peak activation memory at batch 1
  std::optional<double> max_latency_ms;              // needs latency_model to be checked
  std::optional<LatencyModel> latency_model;

  bool Unbounded() const {
    return !max_param_bytes && !max_macs && !max_activation_bytes && !max_latency_ms;
  }
};

}  // namespace edgeprune
