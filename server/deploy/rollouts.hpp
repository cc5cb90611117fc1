#pragma once
// Rollouts: a model reaches a fleet phase by phase. A rollout selects its target (tags or ids,
// optionally growing with devices that gain the tags), orders it (random, or by `order_tags`),
// and starts each phase's devices at most `rate_per_minute` a minute inside the maintenance
// window: a started device gets its variant through AssignIn, the one assignment path it shares
// with deployments (the rollout owns a `deployments` row with its id). A device goes
//   pending → downloading → installed → verified   (or failed, no_fit)
// and may end rolled_back or stepped_down. Once every device of the phase settled, the phase
// bakes for its bake time while its gates (rollout_gates.hpp) are evaluated on every Tick; a
// tripped gate pauses the rollout, rolls every started device back to what it ran before (a
// signed roll-back), or steps the breaching devices down the ladder. A baked phase advances to
// the next (awaiting approval when it requires it); the last one completes the rollout.
//
// Everything is in the database (tables rollouts, rollout_devices): a restarted server resumes
// each rollout in the same phase with the same counts. Every transition is one transaction with
// its audit entry (fleet::AuditLog::RecordIn) naming why: the gate, its value and threshold.
//
// Thread-safety: thread-safe; every operation is one write transaction. Build requests run after
// the commit, on the calling thread.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include "edgeprune/common/clock.hpp"
#include "edgeprune/common/result.hpp"
#include "server/deploy/deployments.hpp"
#include "server/deploy/rollout_spec.hpp"
#include "server/store/database.hpp"
#include "server/telemetry/rollout_metrics.hpp"

namespace edgeprune::deploy {

enum class RolloutAction { kPause, kResume, kPromote, kAbort, kApprove };
Result<RolloutAction> RolloutActionFrom(const std::string& name);
const char* RolloutActionName(RolloutAction action);

inline constexpr const char* kDeviceStates[] = {"pending",   "downloading", "installed",
                                                "verified",  "failed",      "rolled_back",
                                                "stepped_down", "no_fit"};
inline constexpr const char* kRolloutStates[] = {"running",   "paused",      "awaiting_approval",
                                                 "completed", "rolled_back", "aborted"};

struct TickReport {
  int rollouts = 0;      // active rollouts stepped
  int transitions = 0;   // state or phase changes
  int started = 0;       // devices started
};

class RolloutService {
 public:
  RolloutService(std::shared_ptr<store::Database> db, DeploymentService::BuildRequester request_build,
                 std::shared_ptr<const Clock> clock)
      : db_(std::move(db)), request_build_(std::move(request_build)), clock_(std::move(clock)) {}

  // "model_not_found", "device_not_found" (404), "no_devices_selected" (400),
  // "device_in_active_rollout" (409). Starts the first phase's devices before answering.
  Result<boost::json::object> Create(const RolloutSpec& spec, const std::string& actor);
  // "rollout_not_found" (404); "rollout_state_conflict" (409) when the state forbids it.
  Result<boost::json::object> Act(const std::string& id, RolloutAction action,
                                  const std::string& actor);
  // Observes every active rollout's devices, evaluates its gates, acts, starts devices, advances.
  Result<TickReport> Tick();

  Result<boost::json::object> Get(const std::string& id) const;
  // Ordered by id, after `after_id`, at most `limit`.
  Result<boost::json::array> List(const std::optional<std::string>& after_id, int limit) const;
  // For the metrics (telemetry::RolloutMetrics): unfinished rollouts and those finished within a day.
  Result<std::vector<telemetry::RolloutGauge>> Gauges() const;

 private:
  std::shared_ptr<store::Database> db_;
  DeploymentService::BuildRequester request_build_;
  std::shared_ptr<const Clock> clock_;
};

}  // namespace edgeprune::deploy
