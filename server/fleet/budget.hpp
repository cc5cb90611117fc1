#pragma once
// BudgetFor(profile, caps): the documented formula (docs/budgets.md) that turns a measured device
// profile and operator caps into the Budget the pruning engine's fitter takes.
//
// Thread-safety: pure functions on value types.

#include "edgeprune/common/budget.hpp"
#include "edgeprune/common/result.hpp"
#include "edgeprune/common/wire/profile.hpp"

namespace edgeprune::fleet {

// The knobs of the formula. Defaults are documented in docs/budgets.md.
struct BudgetPolicy {
  double ram_reserve_fraction = 0.25;   // of available RAM, when no memory cap is declared
  double param_share = 0.50;            // of the reserve, for parameters
  double activation_share = 0.25;       // of the reserve, for peak activations at batch 1
  double disk_fraction = 0.10;          // of free disk, for one variant file
  double default_latency_slo_ms = 100.0;
  double safety_factor = 0.70;          // derates measured throughput

  Status Validate() const;
};

// device_caps are the operator's (API); the profile carries the agent's own. The tighter wins.
Result<Budget> BudgetFor(const wire::DeviceProfile& profile, const wire::DeviceCaps& device_caps,
                         const BudgetPolicy& policy = {});

}  // namespace edgeprune::fleet
