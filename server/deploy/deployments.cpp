#include "server/deploy/deployments.hpp"
#include "server/deploy/assign.hpp"
#include "server/deploy/ladder.hpp"

#include <algorithm>
#include <set>

#include "edgeprune/common/clock.hpp"
#include "edgeprune/common/json.hpp"
#include "edgeprune/common/log.hpp"
#include "edgeprune/common/wire/budget.hpp"
#include "server/catalog/model_registry.hpp"
#include "server/fleet/device_directory.hpp"
#include "server/fleet/audit_log.hpp"

namespace edgeprune::deploy {
namespace bj = boost::json;
namespace {

constexpr std::size_t kMaxSelectorItems = 10000;

struct CurrentRow {
  std::optional<std::string> variant_id;
  std::string model_id;
  double throughput_scale = 1.0;
};

Result<std::vector<std::string>> StringList(const bj::array& a, const std::string& field) {
  std::vector<std::string> out;
  if (a.size() > kMaxSelectorItems) {
    return MakeError(ErrorKind::kInvalidArgument, "invalid_field",
                     field + " has more than " + std::to_string(kMaxSelectorItems) + " entries");
  }
  for (const auto& v : a) {
    if (!v.is_string() || v.as_string().empty()) {
      return MakeError(ErrorKind::kInvalidArgument, "invalid_field",
                       field + " must hold non-empty strings");
    }
    out.emplace_back(v.as_string());
  }
  return out;
}

Result<std::optional<CurrentRow>> Current(store::Connection& conn, const std::string& device_id) {
  EP_ASSIGN_OR_RETURN(auto s, conn.Query("assignment_by_device",
                                         "SELECT variant_id, model_id, throughput_scale "
                                         "FROM device_assignments WHERE device_id = ?",
                                         device_id));
  EP_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return std::optional<CurrentRow>();
  return std::optional<CurrentRow>(CurrentRow{s.OptText(0), s.Text(1), s.Double(2)});
}

const catalog::VariantRecord* Find(const std::vector<catalog::VariantRecord>& vs, const std::string& id) {
  for (const auto& v : vs) {
    if (v.id == id) return &v;
  }
  return nullptr;
}

}  // namespace

Result<Assignment> AssignIn(store::Connection& conn, const catalog::ModelRecord& model,
                            const fleet::DeviceFacts& device, const std::string& deployment_id,
                            std::vector<catalog::VariantRecord>& variants,
                            std::vector<catalog::VariantRecord>& builds, bool retry_failed,
                            Reuse reuse) {
  Assignment a;
  a.device_id = device.id;
  EP_ASSIGN_OR_RETURN(auto current, Current(conn, device.id));
  const double scale = current ? current->throughput_scale : 1.0;
  const bool same_model = current && current->model_id == model.id;
  std::optional<std::string> keep;  // the variant a device keeps while its new one builds
  if (same_model) keep = current->variant_id;

  if (!device.budget) {
    a.state = "unfit";
    a.reason = "the device has not reported a profile yet, so it has no budget";
  } else {
    const Budget budget = ScaledBudget(*device.budget, scale);
    const auto level = LevelFor(AffordableFraction(budget, model.cost));
    if (!level) {
      a.state = "unfit";
      a.reason = "the budget affords less than 1/256 of the master model";
    } else {
      a.bucket = BucketKey(*level);
      auto best = VariantLadder(ReadyRungs(variants)).BestFit(budget);
      if (best && reuse == Reuse::kOwnLevel) {
        const catalog::VariantRecord* chosen = Find(variants, best->variant_id);
        const auto chosen_level = chosen ? LevelFromBucket(chosen->bucket) : Result<int>(0);
        const bool smaller = chosen_level.ok() && *chosen_level > *level;
        const auto own = std::find_if(variants.begin(), variants.end(), [&](const auto& v) {
          return v.bucket == a.bucket;
        });
        // Built or failed, the own level has had its chance; only a missing or building one is
        // waited for.
        if (smaller && (own == variants.end() || own->status == "building")) best.reset();
      }
      if (best) {
        a.variant_id = best->variant_id;
        a.state = "assigned";
      } else {
        bool created = false;
        EP_ASSIGN_OR_RETURN(auto v, catalog::VariantRepository::EnsureIn(conn, model.id, a.bucket,
                                                                BudgetForLevel(model.cost, *level),
                                                                &created, retry_failed));
        if (created) {
          builds.push_back(v);
          variants.push_back(v);
        }
        if (v.status == "ready") {
          a.state = "unfit";
          a.reason = "variant " + v.id + " of bucket " + a.bucket + " does not fit the budget";
        } else if (v.status == "failed") {
          a.state = "unfit";
          a.reason = "the build of variant " + v.id + " failed: " + v.error +
                     " (deploy again to retry)";
        } else {
          a.state = "building";
          a.variant_id = keep;
        }
      }
    }
  }
  if (a.state == "unfit" && !a.variant_id) a.variant_id = keep;

  // A move to a lower version needs the signed roll-back permission. "Lower" is measured against
  // the newest of what the device was last given and what it reports running (its heartbeats):
  // a device moved to a model whose variant is still building keeps running the old model's
  // variant, and that is what a later assignment must be able to replace.
  if (a.variant_id) {
    auto version_of = [&](const std::string& id) -> std::optional<std::int64_t> {
      if (const catalog::VariantRecord* v = Find(variants, id)) return v->version;
      auto v = catalog::VariantRepository::GetIn(conn, id);
      if (v.ok()) return v->version;
      return std::nullopt;
    };
    std::vector<std::string> running;
    if (current && current->variant_id) running.push_back(*current->variant_id);
    if (device.installed_variant) running.push_back(*device.installed_variant);
    const auto to = version_of(*a.variant_id);
    for (const auto& id : running) {
      if (id == *a.variant_id || !to) continue;
      if (auto from = version_of(id); from && *to < *from) a.rollback = true;
    }
  }
  EP_RETURN_IF_ERROR(conn.Execute(
      "assignment_upsert",
      "INSERT INTO device_assignments (device_id, deployment_id, model_id, bucket, variant_id, "
      "rollback, assigned_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) "
      "ON CONFLICT (device_id) DO UPDATE SET deployment_id = ?2, model_id = ?3, bucket = ?4, "
      "variant_id = ?5, "
      // The old row's columns by the table's name: PostgreSQL finds a bare name ambiguous
      // next to the proposed row (EXCLUDED); SQLite reads it the same way qualified.
      "rollback = CASE WHEN device_assignments.variant_id IS NOT DISTINCT FROM ?5 "
      "THEN device_assignments.rollback ELSE ?6 END, "
      "assigned_at = CASE WHEN device_assignments.variant_id IS NOT DISTINCT FROM ?5 "
      "THEN device_assignments.assigned_at ELSE ?7 END, "
      "throughput_scale = CASE WHEN device_assignments.model_id = ?3 "
      "THEN device_assignments.throughput_scale ELSE 1.0 END, "
      "slo_breaches = CASE WHEN device_assignments.variant_id IS NOT DISTINCT FROM ?5 "
      "THEN device_assignments.slo_breaches ELSE 0 END",
      device.id, deployment_id, model.id, a.bucket, a.variant_id,
      static_cast<std::int64_t>(a.rollback), NowMs()));
  const bool changed = !current || current->variant_id != a.variant_id;
  if (changed && a.variant_id) {
    EP_RETURN_IF_ERROR(fleet::AuditLog::RecordIn(conn, "system", "device.assign", device.id,
                             json::Serialize(bj::object{{"variant", *a.variant_id},
                                                        {"bucket", a.bucket},
                                                        {"rollback", a.rollback}})));
  }
  return a;
}

Budget ScaledBudget(Budget budget, double throughput_scale) {
  if (budget.latency_model && throughput_scale > 0.0) {
    budget.latency_model->macs_per_ms *= throughput_scale;
  }
  return budget;
}

Result<Selector> SelectorFromJson(const bj::object& o) {
  for (const auto& kv : o) {
    if (kv.key() != "tags" && kv.key() != "devices") {
      return MakeError(ErrorKind::kInvalidArgument, "invalid_field",
                       "selector: unknown key '" + std::string(kv.key()) + "'");
    }
  }
  Selector s;
  if (o.contains("tags")) {
    EP_ASSIGN_OR_RETURN(bj::array a, json::GetArray(o, "tags"));
    EP_ASSIGN_OR_RETURN(s.tags, StringList(a, "selector.tags"));
  }
  if (o.contains("devices")) {
    EP_ASSIGN_OR_RETURN(bj::array a, json::GetArray(o, "devices"));
    EP_ASSIGN_OR_RETURN(s.devices, StringList(a, "selector.devices"));
  }
  if (s.tags.empty() == s.devices.empty()) {
    return MakeError(ErrorKind::kInvalidArgument, "invalid_field",
                     "selector needs exactly one non-empty list: tags or devices");
  }
  return s;
}

bj::object ToJson(const Selector& s) {
  bj::array a;
  for (const auto& x : s.tags.empty() ? s.devices : s.tags) a.emplace_back(x);
  return bj::object{{s.tags.empty() ? "devices" : "tags", a}};
}

bj::object ToJson(const Assignment& a) {
  bj::object o{{"device_id", a.device_id}, {"bucket", a.bucket}, {"state", a.state}};
  o["variant_id"] = a.variant_id ? bj::value(*a.variant_id) : bj::value(nullptr);
  if (!a.reason.empty()) o["reason"] = a.reason;
  if (a.rollback) o["rollback"] = true;
  return o;
}

bj::object ToJson(const DeploymentResult& d) {
  bj::array assignments, builds;
  for (const auto& a : d.assignments) assignments.push_back(ToJson(a));
  for (const auto& b : d.builds) builds.emplace_back(b);
  return bj::object{{"id", d.id},
                    {"model_id", d.model_id},
                    {"assignments", assignments},
                    {"builds", builds}};
}

Result<DeploymentResult> DeploymentService::Deploy(const std::string& model_id,
                                                   const Selector& selector,
                                                   const std::string& actor) {
  DeploymentResult result;
  result.id = catalog::NewId("dep-");
  result.model_id = model_id;
  std::vector<catalog::VariantRecord> builds;
  auto done = db_->WithTransaction([&](store::Connection& conn) -> Status {
    EP_ASSIGN_OR_RETURN(catalog::ModelRecord model, catalog::ModelRegistry::GetIn(conn, model_id));
    EP_ASSIGN_OR_RETURN(auto devices, fleet::DeviceDirectory::ActiveIn(conn));
    std::vector<fleet::DeviceFacts> targets;
    if (!selector.devices.empty()) {
      for (const auto& id : selector.devices) {
        auto it = std::find_if(devices.begin(), devices.end(),
                               [&](const fleet::DeviceFacts& d) { return d.id == id; });
        if (it == devices.end()) {
          return MakeError(ErrorKind::kNotFound, "device_not_found",
                           "no active device " + id);
        }
        targets.push_back(*it);
      }
    } else {
      for (const auto& d : devices) {
        const std::set<std::string> have(d.tags.begin(), d.tags.end());
        if (std::all_of(selector.tags.begin(), selector.tags.end(),
                        [&](const std::string& t) { return have.count(t) > 0; })) {
          targets.push_back(d);
        }
      }
      if (targets.empty()) {
        return MakeError(ErrorKind::kInvalidArgument, "no_devices_selected",
                         "no active device carries every tag of the selector");
      }
    }
    EP_RETURN_IF_ERROR(conn.Execute("deployment_insert",
                                    "INSERT INTO deployments (id, model_id, selector, created_at, "
                                    "created_by) VALUES (?, ?, ?, ?, ?)",
                                    result.id, model_id, json::Serialize(ToJson(selector)),
                                    NowMs(), actor));
    EP_ASSIGN_OR_RETURN(auto variants, catalog::VariantRepository::ListIn(conn, model_id));
    for (const auto& d : targets) {
      EP_ASSIGN_OR_RETURN(auto a, AssignIn(conn, model, d, result.id, variants, builds, true,
                                                    Reuse::kOwnLevel));
      result.assignments.push_back(std::move(a));
    }
    return fleet::AuditLog::RecordIn(conn, actor, "deployment.create", result.id,
                 json::Serialize(bj::object{{"model", model_id},
                                            {"devices", result.assignments.size()},
                                            {"builds", builds.size()}}));
  });
  if (!done.ok()) return done.error();
  for (const auto& v : builds) {
    result.builds.push_back(v.id);
    if (request_build_) request_build_(v);
  }
  return result;
}

Result<std::vector<Assignment>> DeploymentService::Reevaluate(const std::string& model_id) {
  std::vector<Assignment> out;
  std::vector<catalog::VariantRecord> builds;
  auto done = db_->WithTransaction([&](store::Connection& conn) -> Status {
    EP_ASSIGN_OR_RETURN(catalog::ModelRecord model, catalog::ModelRegistry::GetIn(conn, model_id));
    EP_ASSIGN_OR_RETURN(auto devices, fleet::DeviceDirectory::ActiveIn(conn));
    EP_ASSIGN_OR_RETURN(auto variants, catalog::VariantRepository::ListIn(conn, model_id));
    std::vector<std::pair<std::string, std::string>> rows;  // device, deployment
    {
      EP_ASSIGN_OR_RETURN(auto s, conn.Query("assignments_by_model",
                                             "SELECT device_id, deployment_id FROM "
                                             "device_assignments WHERE model_id = ?",
                                             model_id));
      while (true) {
        EP_ASSIGN_OR_RETURN(bool row, s.Step());
        if (!row) break;
        rows.emplace_back(s.Text(0), s.Text(1));
      }
    }
    for (const auto& [device_id, deployment_id] : rows) {
      auto it = std::find_if(devices.begin(), devices.end(),
                             [&](const fleet::DeviceFacts& d) { return d.id == device_id; });
      if (it == devices.end()) continue;  // revoked since
      EP_ASSIGN_OR_RETURN(auto a,
                          AssignIn(conn, model, *it, deployment_id, variants, builds, false,
                                      Reuse::kOwnLevel));
      out.push_back(std::move(a));
    }
    return Ok();
  });
  if (!done.ok()) return done.error();
  for (const auto& v : builds) {
    if (request_build_) request_build_(v);
  }
  return out;
}

Result<Assignment> DeploymentService::Reassign(const std::string& device_id,
                                               const std::string& actor, const std::string& why) {
  Assignment out;
  std::vector<catalog::VariantRecord> builds;
  auto done = db_->WithTransaction([&](store::Connection& conn) -> Status {
    EP_ASSIGN_OR_RETURN(auto current, Current(conn, device_id));
    if (!current) {
      return MakeError(ErrorKind::kNotFound, "assignment_not_found",
                       "device " + device_id + " has no deployment");
    }
    EP_ASSIGN_OR_RETURN(catalog::ModelRecord model, catalog::ModelRegistry::GetIn(conn, current->model_id));
    EP_ASSIGN_OR_RETURN(auto devices, fleet::DeviceDirectory::ActiveIn(conn));
    auto it = std::find_if(devices.begin(), devices.end(),
                           [&](const fleet::DeviceFacts& d) { return d.id == device_id; });
    if (it == devices.end()) {
      return MakeError(ErrorKind::kNotFound, "device_not_found", "no active device " + device_id);
    }
    EP_ASSIGN_OR_RETURN(auto s, conn.Query("assignment_deployment",
                                           "SELECT deployment_id FROM device_assignments "
                                           "WHERE device_id = ?",
                                           device_id));
    EP_ASSIGN_OR_RETURN(bool row, s.Step());
    const std::string deployment_id = row ? s.Text(0) : "";
    EP_ASSIGN_OR_RETURN(auto variants, catalog::VariantRepository::ListIn(conn, model.id));
    EP_ASSIGN_OR_RETURN(out, AssignIn(conn, model, *it, deployment_id, variants, builds, false,
                                      Reuse::kSmallerNow));
    return fleet::AuditLog::RecordIn(conn, actor, "device.reassign", device_id,
                 json::Serialize(bj::object{{"why", why}, {"assignment", ToJson(out)}}));
  });
  if (!done.ok()) return done.error();
  for (const auto& v : builds) {
    if (request_build_) request_build_(v);
  }
  return out;
}

Result<std::optional<std::string>> DeploymentService::AssignedModel(
    const std::string& device_id) const {
  EP_ASSIGN_OR_RETURN(auto lease, db_->Acquire());
  EP_ASSIGN_OR_RETURN(auto s, lease->Query("assignment_model",
                                           "SELECT model_id FROM device_assignments "
                                           "WHERE device_id = ?",
                                           device_id));
  EP_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return std::optional<std::string>();
  return std::optional<std::string>(s.Text(0));
}

Result<DesiredVariant> DeploymentService::Desired(const std::string& device_id) const {
  EP_ASSIGN_OR_RETURN(auto lease, db_->Acquire());
  EP_ASSIGN_OR_RETURN(auto s, lease->Query("desired_variant",
                                           "SELECT variant_id, rollback FROM device_assignments "
                                           "WHERE device_id = ?",
                                           device_id));
  EP_ASSIGN_OR_RETURN(bool row, s.Step());
  DesiredVariant d;
  if (row) {
    d.variant_id = s.OptText(0);
    d.rollback = s.Int64(1) != 0;
  }
  return d;
}

Result<bj::array> DeploymentService::List() const {
  EP_ASSIGN_OR_RETURN(auto lease, db_->Acquire());
  EP_ASSIGN_OR_RETURN(auto s, lease->Query("deployments_list",
                                           "SELECT d.id, d.model_id, d.selector, d.created_at, "
                                           "d.created_by, (SELECT COUNT(*) FROM "
                                           "device_assignments a WHERE a.deployment_id = d.id) "
                                           "FROM deployments d ORDER BY d.created_at"));
  bj::array out;
  while (true) {
    EP_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    auto selector = json::Parse(s.Text(2));
    out.push_back(bj::object{{"id", s.Text(0)},
                             {"model_id", s.Text(1)},
                             {"selector", selector.ok() ? *selector : bj::value(nullptr)},
                             {"created_at", s.Int64(3)},
                             {"created_by", s.Text(4)},
                             {"devices", s.Int64(5)}});
  }
  return out;
}

Result<bj::object> DeploymentService::Get(const std::string& deployment_id) const {
  EP_ASSIGN_OR_RETURN(auto lease, db_->Acquire());
  bj::object out;
  {
    EP_ASSIGN_OR_RETURN(auto s, lease->Query("deployment_by_id",
                                             "SELECT model_id, selector, created_at, created_by "
                                             "FROM deployments WHERE id = ?",
                                             deployment_id));
    EP_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) {
      return MakeError(ErrorKind::kNotFound, "deployment_not_found",
                       "no deployment " + deployment_id);
    }
    auto selector = json::Parse(s.Text(1));
    out = bj::object{{"id", deployment_id},
                     {"model_id", s.Text(0)},
                     {"selector", selector.ok() ? *selector : bj::value(nullptr)},
                     {"created_at", s.Int64(2)},
                     {"created_by", s.Text(3)}};
  }
  EP_ASSIGN_OR_RETURN(auto s, lease->Query("deployment_devices",
                                           "SELECT device_id, bucket, variant_id, rollback, "
                                           "throughput_scale, assigned_at FROM "
                                           "device_assignments WHERE deployment_id = ? "
                                           "ORDER BY device_id",
                                           deployment_id));
  bj::array devices;
  while (true) {
    EP_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    auto variant = s.OptText(2);
    devices.push_back(bj::object{{"device_id", s.Text(0)},
                                 {"bucket", s.Text(1)},
                                 {"variant_id", variant ? bj::value(*variant) : bj::value(nullptr)},
                                 {"rollback", s.Int64(3) != 0},
                                 {"throughput_scale", s.Double(4)},
                                 {"assigned_at", s.Int64(5)}});
  }
  out["devices"] = std::move(devices);
  return out;
}

}  // namespace edgeprune::deploy
