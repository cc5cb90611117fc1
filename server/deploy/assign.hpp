#pragma once
// The one way a device gets a variant of a model, shared by deployments (all at once) and
// rollouts (phase by phase): AssignIn decides the device's variant on the model's ladder and
// writes its assignment row (device_assignments) and audit entry in the caller's transaction.
//
// Thread-safety: runs on the caller's connection inside its transaction.

#include <string>
#include <vector>

#include "edgeprune/common/result.hpp"
#include "server/catalog/model_registry.hpp"
#include "server/catalog/variant_repository.hpp"
#include "server/deploy/deployments.hpp"
#include "server/fleet/device_directory.hpp"
#include "server/store/database.hpp"

namespace edgeprune::deploy {

// What a device gets when the ready variants that fit it are all of smaller levels than its own.
enum class Reuse {
  // Its own level is built (once per bucket) and it waits for that: a device that affords more
  // must not be served a smaller, less accurate variant for good because a smaller device of a
  // phased rollout happened to go first (the quickstart's large device got the tiny variant).
  kOwnLevel,
  // The most accurate smaller variant at once: relief for a device over its latency or budget
  // (step downs, the closed loop, a budget that shrank).
  kSmallerNow,
};

// The most accurate ready variant that fits the device's budget (scaled by its closed-loop
// correction), or its bucket's variant created for building (appended to `variants` and
// `builds`); "unfit" with the reason otherwise. A move to a lower version is signed as a
// roll-back. `retry_failed` lets a failed rung of the device's bucket be built again.
Result<Assignment> AssignIn(store::Connection& conn, const catalog::ModelRecord& model,
                            const fleet::DeviceFacts& device, const std::string& deployment_id,
                            std::vector<catalog::VariantRecord>& variants,
                            std::vector<catalog::VariantRecord>& builds, bool retry_failed,
                            Reuse reuse);

}  // namespace edgeprune::deploy
