#include "server/fleet/budget.hpp"

#include <algorithm>
#include <cmath>

namespace edgeprune::fleet {
namespace {

bool InUnit(double v) { return std::isfinite(v) && v > 0.0 && v <= 1.0; }

std::int64_t Floor(double v) { return static_cast<std::int64_t>(std::floor(std::max(0.0, v))); }

}  // namespace

Status BudgetPolicy::Validate() const {
  if (!InUnit(ram_reserve_fraction) || !InUnit(param_share) || !InUnit(activation_share) ||
      !InUnit(disk_fraction) || !InUnit(safety_factor)) {
    return MakeError(ErrorKind::kInvalidArgument, "invalid_budget_policy",
                     "budget fractions and the safety factor must be in (0, 1]");
  }
  if (param_share + activation_share > 1.0) {
    return MakeError(ErrorKind::kInvalidArgument, "invalid_budget_policy",
                     "param_share + activation_share must not exceed 1");
  }
  if (!(default_latency_slo_ms > 0.0) || !std::isfinite(default_latency_slo_ms)) {
    return MakeError(ErrorKind::kInvalidArgument, "invalid_budget_policy",
                     "default_latency_slo_ms must be a positive number");
  }
  return Ok();
}

Result<Budget> BudgetFor(const wire::DeviceProfile& profile, const wire::DeviceCaps& device_caps,
                         const BudgetPolicy& policy) {
  EP_RETURN_IF_ERROR(policy.Validate());
  const wire::DeviceCaps caps = wire::DeviceCaps::Tighter(profile.caps, device_caps);

  // Memory: a declared reserve is honoured up to what is actually available.
  const double available = static_cast<double>(profile.ram_available_bytes);
  const double reserve = caps.memory_reserve_bytes
                             ? std::min(static_cast<double>(*caps.memory_reserve_bytes), available)
                             : available * policy.ram_reserve_fraction;

  Budget b;
  double param_bytes = reserve * policy.param_share;
  param_bytes = std::min(param_bytes, static_cast<double>(profile.disk_free_bytes) * policy.disk_fraction);
  if (caps.max_model_bytes) param_bytes = std::min(param_bytes, static_cast<double>(*caps.max_model_bytes));
  b.max_param_bytes = Floor(param_bytes);
  b.max_activation_bytes = Floor(reserve * policy.activation_share);

  // Compute: derated measured conv throughput (GMAC/s → MAC/ms) and per-inference overhead.
  LatencyModel model;
  model.macs_per_ms = profile.bench.conv_gmacs_per_s * 1e6 * policy.safety_factor;
  model.overhead_ms = profile.bench.conv_overhead_ms;
  const double slo = caps.latency_slo_ms.value_or(policy.default_latency_slo_ms);
  b.max_latency_ms = slo;
  b.max_macs = Floor((slo - model.overhead_ms) * model.macs_per_ms);
  b.latency_model = model;
  return b;
}

}  // namespace edgeprune::fleet
