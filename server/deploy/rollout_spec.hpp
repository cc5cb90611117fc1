#pragma once
// What an operator asks of a rollout (POST /api/v1/rollouts), validated at the edge: a target,
// ordered phases, gates, a start rate, a selection order and an optional maintenance window.
// Every error is kInvalidArgument with a named code ("invalid_field", "invalid_phases",
// "invalid_gate", "invalid_window") and a sentence naming the field.
//
// Thread-safety: plain values and pure functions.

#include <array>
#include <bitset>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <boost/json/object.hpp>

#include "edgeprune/common/result.hpp"
#include "server/deploy/deployments.hpp"

namespace edgeprune::deploy {

struct RolloutTarget {
  Selector selector;
  bool dynamic = false;             // devices that gain the tags later join (tags only)
  std::optional<std::int64_t> cap;  // at most this many devices
};

// Each phase names its cumulative reach: `percent` of the target or `count` devices, at least
// `min_devices`. Reaches never decrease and the last phase reaches the whole target (100 %).
struct PhaseSpec {
  std::optional<double> percent;       // (0, 100]
  std::optional<std::int64_t> count;   // >= 1
  std::int64_t min_devices = 0;
  std::int64_t bake_ms = 0;
  bool requires_approval = false;
};

enum class GateKind {
  kInstallFailureRate,   // failed / devices with an install outcome
  kOfflineAfterUpdate,   // installed devices silent for offline_after_ms / installed devices
  kProbeAccuracyDrop,    // baseline − probe accuracy on the new variant (points, 0..1)
  kFeedbackAccuracyDrop, // baseline − feedback accuracy, samples are labels
  kP95OverSlo,           // measured devices whose p95 exceeds their SLO / measured devices
};
enum class GateAction { kPause, kRollback, kStepDown };

const char* GateName(GateKind kind);
const char* ActionName(GateAction action);

struct GateSpec {
  GateKind kind = GateKind::kInstallFailureRate;
  double threshold = 0.0;          // trips when the value exceeds it
  std::int64_t min_samples = 1;    // not judged below this many samples
  GateAction action = GateAction::kPause;
};

// A cron-like daily/weekly window: `cron` is "minute hour day-of-month month day-of-week" with
// '*', numbers, ranges a-b and comma lists (day of week 0 = Sunday; day-of-month and day-of-week
// must both match), opening for `duration_minutes` in the time zone `utc_offset` ("+HH:MM").
struct MaintenanceWindow {
  std::string cron;
  std::int64_t duration_minutes = 60;
  std::string utc_offset = "+00:00";
  std::bitset<60> minutes;
  std::bitset<24> hours;
  std::bitset<32> days;    // 1..31
  std::bitset<13> months;  // 1..12
  std::bitset<7> weekdays;
  std::int64_t offset_minutes = 0;

  // Whether a window opened at most duration_minutes before `now_ms` (UTC) is still open.
  bool OpenAt(std::int64_t now_ms) const;
};

struct RolloutSpec {
  std::string model_id;
  RolloutTarget target;
  std::vector<PhaseSpec> phases;
  std::vector<GateSpec> gates;
  std::optional<std::int64_t> rate_per_minute;  // devices started per minute; none: no limit
  std::vector<std::string> order_tags;          // empty: random order
  std::optional<MaintenanceWindow> window;
  std::int64_t offline_after_ms = 300'000;
};

Result<RolloutSpec> RolloutSpecFromJson(const boost::json::object& o);
boost::json::object ToJson(const RolloutSpec& spec);
Result<MaintenanceWindow> WindowFromJson(const boost::json::object& o);

// The cumulative number of devices phase `index` reaches in a target of `total` devices.
std::int64_t PhaseReach(const PhaseSpec& phase, std::int64_t total);

}  // namespace edgeprune::deploy
