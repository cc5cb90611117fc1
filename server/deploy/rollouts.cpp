#include "server/deploy/rollouts.hpp"

#include <algorithm>
#include <map>
#include <set>

#include "edgeprune/common/json.hpp"
#include "edgeprune/common/log.hpp"
#include "server/catalog/model_registry.hpp"
#include "server/deploy/rollout_step.hpp"
#include "server/fleet/audit_log.hpp"
#include "server/fleet/device_directory.hpp"

namespace edgeprune::deploy {
namespace bj = boost::json;
using rollout::DeviceRow;
using rollout::RolloutRow;

namespace {

Error StateConflict(const RolloutRow& r, RolloutAction action) {
  return MakeError(ErrorKind::kConflict, "rollout_state_conflict",
                   std::string("cannot ") + RolloutActionName(action) + " rollout " + r.id +
                       ": it is " + r.state);
}

// Per phase, the devices by state; pending devices count in the phase that will start them.
std::vector<std::map<std::string, std::int64_t>> PhaseCounts(const RolloutRow& r,
                                                             const std::vector<DeviceRow>& devices) {
  std::vector<std::map<std::string, std::int64_t>> out(r.spec.phases.size());
  for (auto& m : out) {
    for (const char* s : kDeviceStates) m[s] = 0;
  }
  const auto total = static_cast<std::int64_t>(devices.size());
  for (std::size_t i = 0; i < devices.size(); ++i) {
    const int phase = rollout::PhaseOf(r.spec, devices[i], static_cast<std::int64_t>(i), total);
    out[static_cast<std::size_t>(std::clamp(phase, 0, static_cast<int>(out.size()) - 1))]
       [devices[i].state] += 1;
  }
  return out;
}

bj::object Summary(const RolloutRow& r, std::int64_t devices) {
  return bj::object{{"id", r.id},
                    {"model_id", r.model_id},
                    {"state", r.state},
                    {"phase", r.phase},
                    {"phases", r.spec.phases.size()},
                    {"devices", devices},
                    {"reason", r.reason},
                    {"created_at", r.created_at},
                    {"created_by", r.created_by},
                    {"updated_at", r.updated_at}};
}

bj::object Detail(const RolloutRow& r, const std::vector<DeviceRow>& devices) {
  bj::object o = Summary(r, static_cast<std::int64_t>(devices.size()));
  o["phase_started_at"] = r.phase_started_at;
  o["phase_settled_at"] = r.phase_settled_at ? bj::value(*r.phase_settled_at) : bj::value(nullptr);
  o["spec"] = ToJson(r.spec);
  o["gates"] = r.gates;
  bj::array waived;
  for (const auto& w : r.waived) waived.emplace_back(w);
  o["waived"] = std::move(waived);
  const auto counts = PhaseCounts(r, devices);
  bj::array phases;
  const auto total = static_cast<std::int64_t>(devices.size());
  for (std::size_t i = 0; i < counts.size(); ++i) {
    bj::object c;
    for (const auto& [state, n] : counts[i]) c[state] = n;
    phases.push_back(bj::object{{"index", i},
                                {"reach", PhaseReach(r.spec.phases[i], total)},
                                {"counts", std::move(c)}});
  }
  o["phase_counts"] = std::move(phases);
  bj::array list;
  for (const auto& d : devices) {
    bj::object x{{"device_id", d.device_id},
                 {"state", d.state},
                 {"phase", d.phase ? bj::value(*d.phase) : bj::value(nullptr)},
                 {"variant_id", d.variant_id ? bj::value(*d.variant_id) : bj::value(nullptr)},
                 {"previous_variant_id",
                  d.prev_variant_id ? bj::value(*d.prev_variant_id) : bj::value(nullptr)}};
    if (!d.detail.empty()) x["detail"] = d.detail;
    list.push_back(std::move(x));
  }
  o["devices"] = std::move(list);
  return o;
}

}  // namespace

Result<RolloutAction> RolloutActionFrom(const std::string& name) {
  for (RolloutAction a : {RolloutAction::kPause, RolloutAction::kResume, RolloutAction::kPromote,
                          RolloutAction::kAbort, RolloutAction::kApprove}) {
    if (name == RolloutActionName(a)) return a;
  }
  return MakeError(ErrorKind::kNotFound, "unknown_action", "no rollout action '" + name + "'");
}

const char* RolloutActionName(RolloutAction a) {
  switch (a) {
    case RolloutAction::kPause: return "pause";
    case RolloutAction::kResume: return "resume";
    case RolloutAction::kPromote: return "promote";
    case RolloutAction::kAbort: return "abort";
    case RolloutAction::kApprove: return "approve";
  }
  return "unknown";
}

Result<bj::object> RolloutService::Create(const RolloutSpec& spec, const std::string& actor) {
  RolloutRow r;
  r.id = catalog::NewId("rol-");
  r.model_id = spec.model_id;
  r.spec = spec;
  r.state = spec.phases.front().requires_approval ? "awaiting_approval" : "running";
  const std::int64_t now = clock_->NowMs();
  r.phase_started_at = r.created_at = r.updated_at = now;
  r.created_by = actor;
  rollout::StepOutput out;
  bj::object answer;
  auto done = db_->WithTransaction([&](store::Connection& conn) -> Status {
    EP_ASSIGN_OR_RETURN(catalog::ModelRecord model, catalog::ModelRegistry::GetIn(conn, spec.model_id));
    (void)model;
    EP_ASSIGN_OR_RETURN(auto active, fleet::DeviceDirectory::ActiveIn(conn));
    std::vector<const fleet::DeviceFacts*> targets;
    const Selector& sel = spec.target.selector;
    if (!sel.devices.empty()) {
      std::set<std::string> seen;
      for (const auto& id : sel.devices) {
        auto it = std::find_if(active.begin(), active.end(),
                               [&](const fleet::DeviceFacts& d) { return d.id == id; });
        if (it == active.end()) {
          return MakeError(ErrorKind::kNotFound, "device_not_found", "no active device " + id);
        }
        if (seen.insert(id).second) targets.push_back(&*it);
      }
    } else {
      for (const auto& d : active) {
        if (std::all_of(sel.tags.begin(), sel.tags.end(), [&](const std::string& t) {
              return std::find(d.tags.begin(), d.tags.end(), t) != d.tags.end();
            })) {
          targets.push_back(&d);
        }
      }
    }
    if (targets.empty()) {
      return MakeError(ErrorKind::kInvalidArgument, "no_devices_selected",
                       "no active device carries every tag of the target");
    }
    std::vector<DeviceRow> rows;
    for (const auto* f : targets) {
      DeviceRow d;
      d.device_id = f->id;
      d.ordinal = rollout::Ordinal(r.id, f->id, f->tags, spec.order_tags);
      rows.push_back(std::move(d));
    }
    std::sort(rows.begin(), rows.end(), [](const DeviceRow& a, const DeviceRow& b) {
      return a.ordinal != b.ordinal ? a.ordinal < b.ordinal : a.device_id < b.device_id;
    });
    if (spec.target.cap && static_cast<std::int64_t>(rows.size()) > *spec.target.cap) {
      rows.resize(static_cast<std::size_t>(*spec.target.cap));
    }
    {
      bj::array ids;
      for (const auto& d : rows) ids.emplace_back(d.device_id);
      EP_ASSIGN_OR_RETURN(auto s, conn.Query("rollout_conflicts",
                                             "SELECT d.device_id, r.id FROM rollout_devices d "
                                             "JOIN rollouts r ON r.id = d.rollout_id WHERE "
                                             "r.state IN ('running', 'paused', "
                                             "'awaiting_approval') AND d.device_id IN "
                                             "(SELECT value FROM json_each(?)) LIMIT 1",
                                             json::Serialize(ids)));
      EP_ASSIGN_OR_RETURN(bool busy, s.Step());
      if (busy) {
        return MakeError(ErrorKind::kConflict, "device_in_active_rollout",
                         "device " + s.Text(0) + " is in unfinished rollout " + s.Text(1) +
                             "; finish, abort or wait for it first");
      }
    }
    EP_RETURN_IF_ERROR(conn.Execute("rollout_deployment",
                                    "INSERT INTO deployments (id, model_id, selector, created_at, "
                                    "created_by) VALUES (?, ?, ?, ?, ?)",
                                    r.id, r.model_id, json::Serialize(ToJson(sel)), now, actor));
    EP_RETURN_IF_ERROR(conn.Execute("rollout_insert",
                                    "INSERT INTO rollouts (id, model_id, spec, state, phase, "
                                    "phase_started_at, created_at, created_by, updated_at) "
                                    "VALUES (?, ?, ?, ?, 0, ?, ?, ?, ?)",
                                    r.id, r.model_id, json::Serialize(ToJson(spec)), r.state, now,
                                    now, actor, now));
    for (const auto& d : rows) EP_RETURN_IF_ERROR(rollout::InsertDeviceIn(conn, r.id, d));
    EP_RETURN_IF_ERROR(fleet::AuditLog::RecordIn(
        conn, actor, "rollout.create", r.id,
        json::Serialize(bj::object{{"model", r.model_id},
                                   {"devices", rows.size()},
                                   {"phases", spec.phases.size()},
                                   {"gates", spec.gates.size()}})));
    EP_RETURN_IF_ERROR(rollout::StepIn(conn, r, now, out));
    EP_ASSIGN_OR_RETURN(auto devices, rollout::LoadDevicesIn(conn, r.id));
    answer = Detail(r, devices);
    return Ok();
  });
  if (!done.ok()) return done.error();
  for (const auto& v : out.builds) {
    if (request_build_) request_build_(v);
  }
  return answer;
}

Result<bj::object> RolloutService::Act(const std::string& id, RolloutAction action,
                                       const std::string& actor) {
  rollout::StepOutput out;
  bj::object answer;
  const std::int64_t now = clock_->NowMs();
  auto done = db_->WithTransaction([&](store::Connection& conn) -> Status {
    EP_ASSIGN_OR_RETURN(RolloutRow r, rollout::LoadRolloutIn(conn, id));
    if (rollout::Finished(r.state)) return StateConflict(r, action);
    const bj::object why{{"by", actor}};
    switch (action) {
      case RolloutAction::kPause:
        if (r.state == "paused") return StateConflict(r, action);
        EP_RETURN_IF_ERROR(rollout::TransitionIn(conn, r, "paused", "pause", why, actor, now));
        break;
      case RolloutAction::kResume: {
        if (r.state != "paused") return StateConflict(r, action);
        // The gates that tripped in this phase are waived for its rest: the operator looked.
        for (const auto& g : r.gates) {
          if (g.is_object() && g.as_object().contains("tripped") &&
              g.as_object().at("tripped").is_bool() && g.as_object().at("tripped").as_bool()) {
            r.waived.emplace_back(g.as_object().at("gate").as_string());
          }
        }
        bj::object reason = why;
        bj::array waived;
        for (const auto& w : r.waived) waived.emplace_back(w);
        reason["waived"] = waived;
        EP_RETURN_IF_ERROR(rollout::TransitionIn(conn, r, "running", "resume", reason, actor, now));
        break;
      }
      case RolloutAction::kApprove:
        if (r.state != "awaiting_approval") return StateConflict(r, action);
        r.phase_started_at = now;
        EP_RETURN_IF_ERROR(rollout::TransitionIn(conn, r, "running", "approve", why, actor, now));
        break;
      case RolloutAction::kPromote: {
        // The next phase now, past bake time and approval; the last phase completes. A phase
        // awaiting approval is already the next one: promoting starts it.
        bj::object reason = why;
        if (r.state == "awaiting_approval") {
          r.phase_started_at = now;
          EP_RETURN_IF_ERROR(rollout::TransitionIn(conn, r, "running", "promote", reason, actor, now));
          break;
        }
        if (r.phase + 1 >= static_cast<int>(r.spec.phases.size())) {
          EP_RETURN_IF_ERROR(
              rollout::TransitionIn(conn, r, "completed", "promote", reason, actor, now));
          break;
        }
        r.phase += 1;
        r.phase_started_at = now;
        r.phase_settled_at.reset();
        r.waived.clear();
        r.gates = bj::array();
        EP_RETURN_IF_ERROR(rollout::TransitionIn(conn, r, "running", "promote", reason, actor, now));
        break;
      }
      case RolloutAction::kAbort: {
        EP_ASSIGN_OR_RETURN(auto devices, rollout::LoadDevicesIn(conn, r.id));
        EP_ASSIGN_OR_RETURN(int n, rollout::RestoreAllIn(conn, r, devices, "aborted by " + actor, now));
        bj::object reason = why;
        reason["devices_rolled_back"] = n;
        EP_RETURN_IF_ERROR(rollout::TransitionIn(conn, r, "aborted", "abort", reason, actor, now));
        break;
      }
    }
    EP_RETURN_IF_ERROR(rollout::StepIn(conn, r, now, out));
    EP_ASSIGN_OR_RETURN(auto devices, rollout::LoadDevicesIn(conn, r.id));
    answer = Detail(r, devices);
    return Ok();
  });
  if (!done.ok()) return done.error();
  for (const auto& v : out.builds) {
    if (request_build_) request_build_(v);
  }
  return answer;
}

Result<TickReport> RolloutService::Tick() {
  std::vector<std::string> ids;
  {
    EP_ASSIGN_OR_RETURN(auto lease, db_->Acquire());
    EP_ASSIGN_OR_RETURN(auto s, lease->Query("rollouts_active",
                                             "SELECT id FROM rollouts WHERE state IN ('running', "
                                             "'paused', 'awaiting_approval', 'completed') "
                                             "ORDER BY created_at"));
    while (true) {
      EP_ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      ids.push_back(s.Text(0));
    }
  }
  TickReport report;
  for (const auto& id : ids) {
    rollout::StepOutput out;
    // One transaction per rollout: one rollout's failure does not hold back the others.
    auto done = db_->WithTransaction([&](store::Connection& conn) -> Status {
      EP_ASSIGN_OR_RETURN(RolloutRow r, rollout::LoadRolloutIn(conn, id));
      if (r.state == "completed" && !r.spec.target.dynamic) return Ok();
      ++report.rollouts;
      return rollout::StepIn(conn, r, clock_->NowMs(), out);
    });
    if (!done.ok()) {
      log::Get("rollouts")->error("rollout {}: {}", id, done.error().ToString());
      continue;
    }
    report.transitions += out.transitions;
    report.started += out.started;
    for (const auto& v : out.builds) {
      if (request_build_) request_build_(v);
    }
  }
  return report;
}

Result<bj::object> RolloutService::Get(const std::string& id) const {
  EP_ASSIGN_OR_RETURN(auto lease, db_->Acquire());
  EP_ASSIGN_OR_RETURN(RolloutRow r, rollout::LoadRolloutIn(*lease, id));
  EP_ASSIGN_OR_RETURN(auto devices, rollout::LoadDevicesIn(*lease, id));
  return Detail(r, devices);
}

Result<bj::array> RolloutService::List(const std::optional<std::string>& after_id, int limit) const {
  EP_ASSIGN_OR_RETURN(auto lease, db_->Acquire());
  std::vector<std::pair<std::string, std::int64_t>> ids;
  {
    EP_ASSIGN_OR_RETURN(auto s, lease->Query("rollouts_list",
                                             "SELECT r.id, (SELECT COUNT(*) FROM rollout_devices d "
                                             "WHERE d.rollout_id = r.id) FROM rollouts r "
                                             "WHERE r.id > ? ORDER BY r.id LIMIT ?",
                                             after_id.value_or(""), static_cast<std::int64_t>(limit)));
    while (true) {
      EP_ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      ids.emplace_back(s.Text(0), s.Int64(1));
    }
  }
  bj::array out;
  for (const auto& [id, n] : ids) {
    EP_ASSIGN_OR_RETURN(RolloutRow r, rollout::LoadRolloutIn(*lease, id));
    out.push_back(Summary(r, n));
  }
  return out;
}

Result<std::vector<telemetry::RolloutGauge>> RolloutService::Gauges() const {
  EP_ASSIGN_OR_RETURN(auto lease, db_->Acquire());
  std::vector<std::string> ids;
  {
    // Unfinished rollouts, and finished ones for a day so their end shows on a dashboard.
    EP_ASSIGN_OR_RETURN(auto s, lease->Query("rollouts_gauged",
                                             "SELECT id FROM rollouts WHERE state IN ('running', "
                                             "'paused', 'awaiting_approval') OR updated_at > ? "
                                             "ORDER BY id",
                                             clock_->NowMs() - 86'400'000));
    while (true) {
      EP_ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      ids.push_back(s.Text(0));
    }
  }
  std::vector<telemetry::RolloutGauge> out;
  const std::int64_t now = clock_->NowMs();
  for (const auto& id : ids) {
    EP_ASSIGN_OR_RETURN(RolloutRow r, rollout::LoadRolloutIn(*lease, id));
    EP_ASSIGN_OR_RETURN(auto devices, rollout::LoadDevicesIn(*lease, id));
    telemetry::RolloutGauge g;
    g.id = id;
    g.state = r.state;
    g.phase_seconds = static_cast<double>(now - r.phase_started_at) / 1000.0;
    g.bake_seconds =
        static_cast<double>(r.spec.phases[static_cast<std::size_t>(r.phase)].bake_ms) / 1000.0;
    const auto counts = PhaseCounts(r, devices);
    for (std::size_t i = 0; i < counts.size(); ++i) {
      for (const auto& [state, n] : counts[i]) g.devices.push_back({static_cast<int>(i), state, n});
    }
    for (const auto& v : r.gates) {
      if (!v.is_object()) continue;
      const auto& o = v.as_object();
      if (o.contains("gate") && o.at("gate").is_string() && o.contains("value") &&
          o.at("value").is_number() && o.contains("threshold") && o.at("threshold").is_number()) {
        g.gates.push_back({std::string(o.at("gate").as_string()),
                           o.at("value").to_number<double>(), o.at("threshold").to_number<double>()});
      }
    }
    out.push_back(std::move(g));
  }
  return out;
}

}  // namespace edgeprune::deploy
