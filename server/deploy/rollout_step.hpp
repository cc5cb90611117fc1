#pragma once
// The inside of a rollout (rollouts.hpp): its rows, and the step that moves it on, all on the
// caller's connection inside its transaction. Used by RolloutService only.
//
// Thread-safety: functions over the caller's connection.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <boost/json/object.hpp>

#include "edgeprune/common/result.hpp"
#include "server/catalog/variant_repository.hpp"
#include "server/deploy/rollout_spec.hpp"
#include "server/store/database.hpp"

namespace edgeprune::deploy::rollout {

struct RolloutRow {
  std::string id;
  std::string model_id;
  RolloutSpec spec;
  std::string state;
  int phase = 0;
  std::int64_t phase_started_at = 0;
  std::optional<std::int64_t> phase_settled_at;
  std::vector<std::string> waived;  // gates resumed past in this phase
  boost::json::object reason;
  boost::json::array gates;         // the last evaluation
  std::int64_t created_at = 0;
  std::string created_by;
  std::int64_t updated_at = 0;
};

struct DeviceRow {
  std::string device_id;
  std::int64_t ordinal = 0;
  std::optional<int> phase;
  std::string state = "pending";
  std::optional<std::string> variant_id;
  std::optional<std::int64_t> started_at;
  std::optional<std::int64_t> settled_at;
  bool had_assignment = false;
  std::optional<std::string> prev_deployment_id, prev_model_id, prev_bucket, prev_variant_id;
  std::optional<double> prev_scale;
  std::string detail;
  // The device's assignment, when it is this rollout's (read with the row): builds finish and
  // the closed loop moves devices between steps. Not stored in rollout_devices.
  bool assigned = false;
  std::optional<std::string> assigned_variant;
  std::optional<std::string> assigned_bucket;
  bool dirty = false;  // to be written back
};

bool Terminal(const std::string& rollout_state);   // rolled_back, aborted
bool Finished(const std::string& rollout_state);   // terminal or completed
bool Settled(const std::string& device_state);     // the device reached an outcome

// Selection order: a stable pseudo-random number per (rollout, device), after the index of the
// first of `order_tags` the device carries when the rollout orders by tags.
std::int64_t Ordinal(const std::string& rollout_id, const std::string& device_id,
                     const std::vector<std::string>& device_tags,
                     const std::vector<std::string>& order_tags);

Result<RolloutRow> LoadRolloutIn(store::Connection& conn, const std::string& id);
// The rollout's devices in selection order: all of them, or `limit` from `offset` on (what a
// phase reaches is a prefix of that order while the target is fixed).
Result<std::vector<DeviceRow>> LoadDevicesIn(store::Connection& conn, const std::string& id);
Result<std::vector<DeviceRow>> LoadDevicesIn(store::Connection& conn, const std::string& id,
                                             std::int64_t offset, std::int64_t limit);
Result<std::int64_t> CountDevicesIn(store::Connection& conn, const std::string& id);
Status SaveRolloutIn(store::Connection& conn, const RolloutRow& r, std::int64_t now);
Status InsertDeviceIn(store::Connection& conn, const std::string& rollout_id, const DeviceRow& d);
Status SaveDeviceIn(store::Connection& conn, const std::string& rollout_id, const DeviceRow& d);

// The phase a device belongs to: the phase that started it, else the first whose reach covers
// its rank in the selection order.
int PhaseOf(const RolloutSpec& spec, const DeviceRow& d, std::int64_t rank, std::int64_t total);

// A state change of the rollout with its audit entry ("rollout.<action>", the reason as detail).
Status TransitionIn(store::Connection& conn, RolloutRow& r, const std::string& state,
                    const std::string& action, boost::json::object reason,
                    const std::string& actor, std::int64_t now);

// Every started device still on this rollout's assignment back to what it ran before (a signed
// roll-back when that is a lower version); each audited "device.rollback" with `why`.
Result<int> RestoreAllIn(store::Connection& conn, const RolloutRow& r, std::vector<DeviceRow>& devices,
                         const std::string& why, std::int64_t now);

struct StepOutput {
  std::vector<catalog::VariantRecord> builds;  // to request after the commit
  int transitions = 0;
  int started = 0;
};

// Observe, judge, act, start, advance: one step of an unfinished rollout (or of a completed
// dynamic one, which only admits and starts late devices).
Status StepIn(store::Connection& conn, RolloutRow& r, std::int64_t now, StepOutput& out);

}  // namespace edgeprune::deploy::rollout
