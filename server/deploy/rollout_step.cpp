// One step of a rollout: admit late devices, observe, judge the gates, act, start, advance.
#include <algorithm>
#include <cmath>
#include <set>
#include <unordered_map>

#include "edgeprune/common/json.hpp"
#include "server/catalog/model_registry.hpp"
#include "server/deploy/assign.hpp"
#include "server/deploy/rollout_gates.hpp"
#include "server/deploy/rollout_step.hpp"
#include "server/fleet/audit_log.hpp"
#include "server/fleet/device_directory.hpp"
#include "server/telemetry/field_stats.hpp"

namespace edgeprune::deploy::rollout {
namespace bj = boost::json;
namespace {

using Facts = std::unordered_map<std::string, const fleet::DeviceFacts*>;

bool Carries(const fleet::DeviceFacts& d, const std::vector<std::string>& tags) {
  return std::all_of(tags.begin(), tags.end(), [&](const std::string& t) {
    return std::find(d.tags.begin(), d.tags.end(), t) != d.tags.end();
  });
}

// Devices that gained the target's tags (or enrolled) since: pending, up to the cap, unless
// another unfinished rollout has them.
Status AdmitIn(store::Connection& conn, const RolloutRow& r,
               const std::vector<fleet::DeviceFacts>& active, std::vector<DeviceRow>& devices) {
  std::set<std::string> have;
  for (const auto& d : devices) have.insert(d.device_id);
  const std::int64_t cap = r.spec.target.cap.value_or(INT64_MAX);
  bool added = false;
  for (const auto& f : active) {
    if (static_cast<std::int64_t>(devices.size()) >= cap) break;
    if (have.count(f.id) || !Carries(f, r.spec.target.selector.tags)) continue;
    EP_ASSIGN_OR_RETURN(auto s, conn.Query("rollout_busy",
                                           "SELECT 1 FROM rollout_devices d JOIN rollouts r ON "
                                           "r.id = d.rollout_id WHERE d.device_id = ? AND "
                                           "r.id != ? AND r.state IN ('running', 'paused', "
                                           "'awaiting_approval')",
                                           f.id, r.id));
    EP_ASSIGN_OR_RETURN(bool busy, s.Step());
    if (busy) continue;
    DeviceRow d;
    d.device_id = f.id;
    d.ordinal = Ordinal(r.id, f.id, f.tags, r.spec.order_tags);
    EP_RETURN_IF_ERROR(InsertDeviceIn(conn, r.id, d));
    EP_RETURN_IF_ERROR(fleet::AuditLog::RecordIn(conn, "system", "rollout.admit", r.id,
                                                 json::Serialize(bj::object{{"device", f.id}})));
    devices.push_back(std::move(d));
    added = true;
  }
  if (added) {
    std::sort(devices.begin(), devices.end(), [](const DeviceRow& a, const DeviceRow& b) {
      return a.ordinal != b.ordinal ? a.ordinal < b.ordinal : a.device_id < b.device_id;
    });
  }
  return Ok();
}

struct Field {
  std::unordered_map<std::string, telemetry::VariantFieldStats> stats;
  std::unordered_map<std::string, telemetry::VariantOutcome> outcomes;
};

// Moves started devices along downloading → installed → verified, or to failed.
Result<Field> ObserveIn(store::Connection& conn, const RolloutRow& r, std::vector<DeviceRow>& devices,
                        const Facts& facts, std::int64_t now) {
  telemetry::FieldStats::Pairs pairs, moving_pairs;
  std::int64_t since = now;
  for (auto& d : devices) {
    if (!d.started_at || d.state == "rolled_back" || d.state == "no_fit") continue;
    // The assignment moved (a build finished, the closed loop stepped the device).
    if (d.assigned && d.assigned_variant != d.variant_id) {
      d.variant_id = d.assigned_variant;
      d.dirty = true;
    }
    // Field data only where it is used: devices still moving towards an outcome, and the
    // current phase's devices while its gates are judged. Earlier phases cost nothing.
    const bool moving = d.state == "downloading" || d.state == "installed";
    const bool judged = r.state == "running" && d.phase && *d.phase == r.phase;
    if (!moving && !judged) continue;
    if (d.variant_id) pairs.emplace_back(d.device_id, *d.variant_id);
    if (d.prev_variant_id && judged) pairs.emplace_back(d.device_id, *d.prev_variant_id);
    // Install outcomes only move devices that have none yet: a settled phase reads no events.
    if (moving && d.variant_id) {
      moving_pairs.emplace_back(d.device_id, *d.variant_id);
      since = std::min(since, *d.started_at);
    }
  }
  Field field;
  EP_ASSIGN_OR_RETURN(field.stats, telemetry::FieldStats::StatsIn(conn, pairs));
  EP_ASSIGN_OR_RETURN(field.outcomes,
                      telemetry::FieldStats::OutcomesIn(conn, moving_pairs, since));
  for (auto& d : devices) {
    if ((d.state != "downloading" && d.state != "installed") || !d.variant_id) continue;
    const std::string key = telemetry::FieldKey(d.device_id, *d.variant_id);
    auto outcome = field.outcomes.find(key);
    auto stats = field.stats.find(key);
    auto fact = facts.find(d.device_id);
    const bool reported = stats != field.stats.end() && stats->second.reports > 0;
    if (d.state == "downloading") {
      if (outcome != field.outcomes.end() && outcome->second.failed) {
        d.state = "failed";
        d.detail = outcome->second.reason;
        d.settled_at = now;
        d.dirty = true;
        continue;
      }
      const bool running = fact != facts.end() && fact->second->installed_variant == d.variant_id;
      if ((outcome != field.outcomes.end() && outcome->second.installed) || running || reported) {
        d.state = "installed";
        d.settled_at = now;
        d.dirty = true;
      }
    }
    // Verified: the agent reports probe accuracy only from a model that passed its probe check.
    if (d.state == "installed" && reported && stats->second.probe_accuracy) {
      d.state = "verified";
      d.dirty = true;
    }
  }
  return field;
}

// What each device of the phase shows, against its previous variant.
Result<std::vector<DeviceObservation>> ObservationsIn(store::Connection& conn, const RolloutRow& r,
                                                      const std::vector<DeviceRow>& devices,
                                                      const Facts& facts, const Field& field,
                                                      std::int64_t now) {
  std::unordered_map<std::string, std::optional<double>> test_accuracy;
  auto accuracy_of = [&](const std::string& id) -> Result<std::optional<double>> {
    if (auto it = test_accuracy.find(id); it != test_accuracy.end()) return it->second;
    std::optional<double> a;
    auto v = catalog::VariantRepository::GetIn(conn, id);
    if (v.ok() && v->status == "ready") {
      a = v->accuracy;
    } else if (!v.ok() && v.error().kind != ErrorKind::kNotFound) {
      return v.error();
    }
    test_accuracy.emplace(id, a);
    return a;
  };
  std::vector<DeviceObservation> out;
  for (const auto& d : devices) {
    if (!d.phase || *d.phase != r.phase) continue;
    DeviceObservation o;
    o.device_id = d.device_id;
    o.state = d.state;
    auto fact = facts.find(d.device_id);
    if (fact != facts.end()) {
      const auto seen = fact->second->last_seen_ms;
      const std::int64_t since = std::max(seen.value_or(0), d.settled_at.value_or(0));
      o.silent = now - since > r.spec.offline_after_ms;
      if (fact->second->budget) o.slo_ms = fact->second->budget->max_latency_ms;
    }
    if (d.variant_id) {
      if (auto it = field.stats.find(telemetry::FieldKey(d.device_id, *d.variant_id));
          it != field.stats.end()) {
        o.now = it->second;
      }
    }
    if (d.prev_variant_id) {
      if (auto it = field.stats.find(telemetry::FieldKey(d.device_id, *d.prev_variant_id));
          it != field.stats.end()) {
        o.baseline_probe = it->second.probe_accuracy;
        o.baseline_feedback = it->second.feedback_accuracy;
      }
      if (!o.baseline_probe) {
        EP_ASSIGN_OR_RETURN(o.baseline_probe, accuracy_of(*d.prev_variant_id));
      }
    }
    if (!o.baseline_probe && d.variant_id) {
      EP_ASSIGN_OR_RETURN(o.baseline_probe, accuracy_of(*d.variant_id));
    }
    out.push_back(std::move(o));
  }
  return out;
}

bj::object Why(const GateValue& g) {
  return bj::object{{"gate", GateName(g.spec.kind)}, {"value", g.value},
                    {"threshold", g.spec.threshold}, {"samples", g.samples},
                    {"action", ActionName(g.spec.action)}};
}

struct Loop {
  catalog::ModelRecord model;
  std::vector<catalog::VariantRecord> variants;
};

// The next smaller rung for a device whose p95 is above its SLO: its speed estimate down one
// ladder level (√2), then the best fit under it. No smaller variant: back to what it ran before.
Status StepDownIn(store::Connection& conn, const RolloutRow& r, Loop& loop, DeviceRow& d,
                  const fleet::DeviceFacts& facts, const GateValue& g, std::optional<double> p95,
                  std::int64_t now, StepOutput& out) {
  EP_ASSIGN_OR_RETURN(auto s, conn.Query("rollout_scale",
                                         "SELECT throughput_scale, variant_id FROM "
                                         "device_assignments WHERE device_id = ? AND "
                                         "deployment_id = ?",
                                         d.device_id, r.id));
  EP_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return Ok();
  const double scale = s.Double(0);
  const auto from = s.OptText(1);
  EP_RETURN_IF_ERROR(s.Reset());
  // One ladder level down, or lower still when the measurement says the device is slower than
  // that (the closed loop's recalibration: macs_per_ms = variant MACs / (p95 − overhead)).
  double new_scale = scale * M_SQRT1_2;
  const auto variant = std::find_if(loop.variants.begin(), loop.variants.end(),
                                    [&](const catalog::VariantRecord& v) { return v.id == from; });
  if (p95 && facts.budget && facts.budget->latency_model &&
      facts.budget->latency_model->macs_per_ms > 0.0 && variant != loop.variants.end()) {
    const LatencyModel& lm = *facts.budget->latency_model;
    const double measured = static_cast<double>(variant->cost.macs) /
                            std::max(*p95 - lm.overhead_ms, 1e-3);
    new_scale = std::min(new_scale, measured / lm.macs_per_ms);
  }
  EP_RETURN_IF_ERROR(conn.Execute("rollout_scale_down",
                                  "UPDATE device_assignments SET throughput_scale = ? "
                                  "WHERE device_id = ?",
                                  new_scale, d.device_id));
  EP_ASSIGN_OR_RETURN(Assignment a, AssignIn(conn, loop.model, facts, r.id, loop.variants,
                                             out.builds, false, Reuse::kSmallerNow));
  bj::object why = Why(g);
  why["rollout"] = r.id;
  why["from"] = from ? bj::value(*from) : bj::value(nullptr);
  why["p95_ms"] = p95 ? bj::value(*p95) : bj::value(nullptr);
  if (facts.budget && facts.budget->max_latency_ms) why["slo_ms"] = *facts.budget->max_latency_ms;
  if (a.state == "building" || (a.state == "assigned" && a.variant_id != from)) {
    d.state = "stepped_down";
    d.variant_id = a.variant_id;
    d.detail = a.state == "building" ? "a smaller variant is building" : "";
    d.dirty = true;
    // While the smaller variant builds the device keeps what it runs: `to` is that bucket's
    // variant once it exists, not the variant that breached.
    why["to"] = a.state == "assigned" && a.variant_id ? bj::value(*a.variant_id) : bj::value(nullptr);
    why["bucket"] = a.bucket;
    why["building"] = a.state == "building";
    return fleet::AuditLog::RecordIn(conn, "system", "device.step_down", d.device_id,
                                     json::Serialize(why));
  }
  std::vector<DeviceRow> one{d};
  EP_ASSIGN_OR_RETURN(int n, RestoreAllIn(conn, r, one, "p95 above the SLO and no smaller "
                                                        "variant fits: " + a.reason, now));
  (void)n;
  d = one.front();
  return Ok();
}

// Starts the pending devices the current phase reaches, within the rate and the window.
Status StartIn(store::Connection& conn, RolloutRow& r, Loop& loop, std::vector<DeviceRow>& devices,
               std::int64_t total, const Facts& facts, std::int64_t now, StepOutput& out) {
  if (r.spec.window && !r.spec.window->OpenAt(now)) return Ok();
  const std::int64_t reach = std::min<std::int64_t>(
      r.state == "completed" ? total
                             : PhaseReach(r.spec.phases[static_cast<std::size_t>(r.phase)], total),
      static_cast<std::int64_t>(devices.size()));
  std::int64_t allowance = INT64_MAX;
  if (r.spec.rate_per_minute) {
    std::int64_t recent = 0;
    for (const auto& d : devices) {
      if (d.started_at && *d.started_at > now - 60'000) ++recent;
    }
    allowance = std::max<std::int64_t>(0, *r.spec.rate_per_minute - recent);
  }
  for (std::int64_t i = 0; i < reach && allowance > 0; ++i) {
    DeviceRow& d = devices[static_cast<std::size_t>(i)];
    if (d.state != "pending") continue;
    d.phase = r.phase;
    d.started_at = now;
    d.dirty = true;
    --allowance;
    ++out.started;
    auto fact = facts.find(d.device_id);
    if (fact == facts.end()) {
      d.state = "no_fit";
      d.detail = "the device is no longer active";
      d.settled_at = now;
      continue;
    }
    EP_ASSIGN_OR_RETURN(auto s, conn.Query("rollout_prev",
                                           "SELECT deployment_id, model_id, bucket, variant_id, "
                                           "throughput_scale FROM device_assignments "
                                           "WHERE device_id = ?",
                                           d.device_id));
    EP_ASSIGN_OR_RETURN(bool row, s.Step());
    d.had_assignment = row;
    if (row) {
      d.prev_deployment_id = s.Text(0);
      d.prev_model_id = s.Text(1);
      d.prev_bucket = s.Text(2);
      d.prev_variant_id = s.OptText(3);
      d.prev_scale = s.Double(4);
    }
    if (!d.prev_variant_id) d.prev_variant_id = fact->second->installed_variant;
    EP_RETURN_IF_ERROR(s.Reset());
    EP_ASSIGN_OR_RETURN(Assignment a, AssignIn(conn, loop.model, *fact->second, r.id,
                                               loop.variants, out.builds, false, Reuse::kOwnLevel));
    if (a.state == "unfit") {
      // Nothing changes for a device the model cannot serve: its previous assignment stays.
      EP_RETURN_IF_ERROR(SaveDeviceIn(conn, r.id, d));
      std::vector<DeviceRow> one{d};
      EP_ASSIGN_OR_RETURN(int n, RestoreAllIn(conn, r, one, a.reason, now));
      (void)n;
      d = one.front();
      d.state = "no_fit";
      d.detail = a.reason;
      continue;
    }
    d.state = "downloading";
    d.variant_id = a.variant_id;
  }
  return Ok();
}

// A device waiting for its variant's build when that build failed cannot take the model: like a
// device the model cannot serve at its start, it goes back to what it ran and settles as no_fit,
// so the phase does not wait for it forever. A device stepped down to a level whose build failed
// is rolled back, as when no smaller variant fits at all.
Status SettleFailedBuildsIn(store::Connection& conn, const RolloutRow& r, const Loop& loop,
                            std::vector<DeviceRow>& devices, std::int64_t now) {
  for (auto& d : devices) {
    const bool waiting = d.state == "downloading" && !d.variant_id;
    // A step down whose smaller variant had to be built runs the breaching variant meanwhile.
    const bool stepping = d.state == "stepped_down";
    if ((!waiting && !stepping) || !d.assigned || !d.assigned_bucket) continue;
    const catalog::VariantRecord* failed = nullptr;
    bool pending = false;  // a rebuild of the bucket is under way, or it is ready after all
    for (const auto& v : loop.variants) {
      if (v.bucket != *d.assigned_bucket) continue;
      if (v.status == "failed") {
        failed = &v;
      } else {
        pending = true;
      }
    }
    if (!failed || pending) continue;
    const std::string why = "the build of variant " + failed->id + " failed: " + failed->error;
    std::vector<DeviceRow> one{d};
    if (stepping) {
      // No smaller variant after all: the device must not stay on the one that broke its SLO.
      EP_ASSIGN_OR_RETURN(int n, RestoreAllIn(conn, r, one, "p95 above the SLO and " + why, now));
      (void)n;
      d = one.front();
      continue;
    }
    EP_ASSIGN_OR_RETURN(int n, RestoreAllIn(conn, r, one, why, now));
    (void)n;
    d = one.front();
    d.state = "no_fit";
    d.detail = why;
    d.dirty = true;
  }
  return Ok();
}

// Whether a step left what SaveRolloutIn writes as it was.
bool SameRow(const RolloutRow& a, const RolloutRow& b) {
  return a.state == b.state && a.phase == b.phase && a.phase_started_at == b.phase_started_at &&
         a.phase_settled_at == b.phase_settled_at && a.waived == b.waived &&
         a.reason == b.reason && a.gates == b.gates;
}

// Whether every device the phase reaches has started and settled.
bool PhaseSettled(const RolloutRow& r, const std::vector<DeviceRow>& devices, std::int64_t total) {
  const std::int64_t reach =
      std::min<std::int64_t>(PhaseReach(r.spec.phases[static_cast<std::size_t>(r.phase)], total),
                             static_cast<std::int64_t>(devices.size()));
  for (std::int64_t i = 0; i < reach; ++i) {
    if (!Settled(devices[static_cast<std::size_t>(i)].state)) return false;
  }
  return true;
}

// What a step reads of the fleet: the rollout's devices the current phase reaches and their facts.
// A fixed target's selection order never changes, so the phase reaches a prefix of it and the
// step reads that prefix alone: a first phase of 50 devices in a rollout of 50,000 costs what 50
// devices cost. A dynamic target reads every device and the whole fleet (new devices are admitted
// anywhere in the order).
struct Reach {
  std::vector<fleet::DeviceFacts> active;
  Facts facts;
  std::vector<DeviceRow> devices;
  std::int64_t total = 0;
};

void IndexFacts(Reach& reach) {
  reach.facts.clear();
  for (const auto& f : reach.active) reach.facts.emplace(f.id, &f);
}

// Adds the facts of devices[from..] to `reach`.
Status ReadFactsIn(store::Connection& conn, Reach& reach, std::size_t from) {
  if (from >= reach.devices.size()) return Ok();
  bj::array ids;
  for (std::size_t i = from; i < reach.devices.size(); ++i) ids.emplace_back(reach.devices[i].device_id);
  EP_ASSIGN_OR_RETURN(auto more, fleet::DeviceDirectory::ActiveAmongIn(conn, json::Serialize(ids)));
  for (auto& f : more) reach.active.push_back(std::move(f));
  IndexFacts(reach);
  return Ok();
}

Status ReadReachIn(store::Connection& conn, const RolloutRow& r, Reach& reach) {
  if (r.spec.target.dynamic) {
    EP_ASSIGN_OR_RETURN(reach.active, fleet::DeviceDirectory::ActiveIn(conn));
    EP_ASSIGN_OR_RETURN(reach.devices, LoadDevicesIn(conn, r.id));
    EP_RETURN_IF_ERROR(AdmitIn(conn, r, reach.active, reach.devices));
    reach.total = static_cast<std::int64_t>(reach.devices.size());
    IndexFacts(reach);
    return Ok();
  }
  EP_ASSIGN_OR_RETURN(reach.total, CountDevicesIn(conn, r.id));
  const std::int64_t n = PhaseReach(r.spec.phases[static_cast<std::size_t>(r.phase)], reach.total);
  if (n >= reach.total) {
    EP_ASSIGN_OR_RETURN(reach.devices, LoadDevicesIn(conn, r.id));
  } else {
    EP_ASSIGN_OR_RETURN(reach.devices, LoadDevicesIn(conn, r.id, 0, n));
  }
  return ReadFactsIn(conn, reach, 0);
}

// After the phase advanced: the devices (and facts) its larger reach adds.
Status ExtendReachIn(store::Connection& conn, const RolloutRow& r, Reach& reach) {
  if (r.spec.target.dynamic) return Ok();
  const std::int64_t n = PhaseReach(r.spec.phases[static_cast<std::size_t>(r.phase)], reach.total);
  const auto have = static_cast<std::int64_t>(reach.devices.size());
  if (n <= have) return Ok();
  EP_ASSIGN_OR_RETURN(auto more, LoadDevicesIn(conn, r.id, have, n - have));
  for (auto& d : more) reach.devices.push_back(std::move(d));
  return ReadFactsIn(conn, reach, static_cast<std::size_t>(have));
}

}  // namespace

Status StepIn(store::Connection& conn, RolloutRow& r, std::int64_t now, StepOutput& out) {
  if (Terminal(r.state) || (r.state == "completed" && !r.spec.target.dynamic)) return Ok();
  const RolloutRow before = r;
  Reach reach;
  EP_RETURN_IF_ERROR(ReadReachIn(conn, r, reach));
  auto& devices = reach.devices;
  const Facts& facts = reach.facts;
  Loop loop;
  EP_ASSIGN_OR_RETURN(loop.model, catalog::ModelRegistry::GetIn(conn, r.model_id));
  EP_ASSIGN_OR_RETURN(loop.variants, catalog::VariantRepository::ListIn(conn, r.model_id));
  EP_ASSIGN_OR_RETURN(Field field, ObserveIn(conn, r, devices, facts, now));
  EP_RETURN_IF_ERROR(SettleFailedBuildsIn(conn, r, loop, devices, now));

  bool held = false;  // a gate tripped this step: the phase does not advance
  if (r.state == "running") {
    EP_ASSIGN_OR_RETURN(auto observed, ObservationsIn(conn, r, devices, facts, field, now));
    const auto values = EvaluateGates(r.spec.gates, observed);
    r.gates = bj::array();
    for (const auto& g : values) r.gates.push_back(ToJson(g));
    // Rollback first (it ends the rollout), then pause, then step downs (the rollout goes on).
    for (GateAction action : {GateAction::kRollback, GateAction::kPause, GateAction::kStepDown}) {
      for (const auto& g : values) {
        if (!g.tripped || g.spec.action != action || r.state != "running") continue;
        const std::string name = GateName(g.spec.kind);
        if (std::find(r.waived.begin(), r.waived.end(), name) != r.waived.end()) continue;
        if (action == GateAction::kStepDown) {
          for (auto& d : devices) {
            if (std::find(g.breaching.begin(), g.breaching.end(), d.device_id) == g.breaching.end() ||
                (d.state != "installed" && d.state != "verified")) {
              continue;
            }
            auto fact = facts.find(d.device_id);
            if (fact == facts.end()) continue;
            std::optional<double> p95;
            for (const auto& o : observed) {
              if (o.device_id == d.device_id && o.now) p95 = o.now->p95_ms;
            }
            EP_RETURN_IF_ERROR(StepDownIn(conn, r, loop, d, *fact->second, g, p95, now, out));
            ++out.transitions;
          }
          continue;
        }
        held = true;
        if (action == GateAction::kRollback) {
          EP_ASSIGN_OR_RETURN(int n, RestoreAllIn(conn, r, devices, "gate " + name + " tripped", now));
          bj::object why = Why(g);
          why["devices_rolled_back"] = n;
          EP_RETURN_IF_ERROR(TransitionIn(conn, r, "rolled_back", "rollback", why, "system", now));
        } else {
          EP_RETURN_IF_ERROR(TransitionIn(conn, r, "paused", "pause", Why(g), "system", now));
        }
        ++out.transitions;
      }
    }
  }

  // Start, settle, bake, advance; a phase that advances starts its devices in the same step.
  for (std::size_t guard = 0; guard <= r.spec.phases.size(); ++guard) {
    if (r.state != "running" && r.state != "completed") break;
    EP_RETURN_IF_ERROR(ExtendReachIn(conn, r, reach));
    EP_RETURN_IF_ERROR(StartIn(conn, r, loop, devices, reach.total, facts, now, out));
    if (r.state != "running" || held || !PhaseSettled(r, devices, reach.total)) break;
    if (!r.phase_settled_at) r.phase_settled_at = now;
    const PhaseSpec& phase = r.spec.phases[static_cast<std::size_t>(r.phase)];
    if (now - *r.phase_settled_at < phase.bake_ms) break;
    bj::object why{{"why", "baked"}, {"bake_seconds", phase.bake_ms / 1000}};
    if (r.phase + 1 >= static_cast<int>(r.spec.phases.size())) {
      EP_RETURN_IF_ERROR(TransitionIn(conn, r, "completed", "complete", why, "system", now));
    } else {
      r.phase += 1;
      r.phase_started_at = now;
      r.phase_settled_at.reset();
      r.waived.clear();
      r.gates = bj::array();
      const bool approval = r.spec.phases[static_cast<std::size_t>(r.phase)].requires_approval;
      EP_RETURN_IF_ERROR(TransitionIn(conn, r, approval ? "awaiting_approval" : "running",
                                      "phase", why, "system", now));
    }
    ++out.transitions;
  }
  bool changed = false;
  for (const auto& d : devices) {
    if (!d.dirty) continue;
    EP_RETURN_IF_ERROR(SaveDeviceIn(conn, r.id, d));
    changed = true;
  }
  // A step that changed nothing writes nothing: the transaction commits without a write (no
  // fsync), and updated_at stays the time of the last change.
  if (!changed && SameRow(before, r)) return Ok();
  return SaveRolloutIn(conn, r, now);
}

}  // namespace edgeprune::deploy::rollout
