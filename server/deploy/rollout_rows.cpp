// The rows of a rollout and the changes that need no judgement: load, save, transition, restore.
#include <algorithm>

#include "edgeprune/common/json.hpp"
#include "server/catalog/variant_repository.hpp"
#include "server/deploy/rollout_step.hpp"
#include "server/fleet/audit_log.hpp"

namespace edgeprune::deploy::rollout {
namespace bj = boost::json;
namespace {

std::uint64_t Fnv1a(const std::string& s, std::uint64_t h = 1469598103934665603ULL) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

std::optional<std::int64_t> VersionOf(store::Connection& conn, const std::optional<std::string>& id) {
  if (!id) return std::nullopt;
  auto v = catalog::VariantRepository::GetIn(conn, *id);
  if (!v.ok()) return std::nullopt;
  return v->version;
}

}  // namespace

bool Terminal(const std::string& s) { return s == "rolled_back" || s == "aborted"; }
bool Finished(const std::string& s) { return Terminal(s) || s == "completed"; }
bool Settled(const std::string& s) { return s != "pending" && s != "downloading"; }

std::int64_t Ordinal(const std::string& rollout_id, const std::string& device_id,
                     const std::vector<std::string>& device_tags,
                     const std::vector<std::string>& order_tags) {
  const std::int64_t noise = static_cast<std::int64_t>(Fnv1a(device_id, Fnv1a(rollout_id)) >> 24);
  if (order_tags.empty()) return noise;
  std::int64_t rank = static_cast<std::int64_t>(order_tags.size());
  for (std::size_t i = 0; i < order_tags.size(); ++i) {
    if (std::find(device_tags.begin(), device_tags.end(), order_tags[i]) != device_tags.end()) {
      rank = static_cast<std::int64_t>(i);
      break;
    }
  }
  return (rank << 40) | (noise & ((std::int64_t{1} << 40) - 1));
}

Result<RolloutRow> LoadRolloutIn(store::Connection& conn, const std::string& id) {
  EP_ASSIGN_OR_RETURN(auto s, conn.Query("rollout_load",
                                         "SELECT model_id, spec, state, phase, phase_started_at, "
                                         "phase_settled_at, waived, reason, gates, created_at, "
                                         "created_by, updated_at FROM rollouts WHERE id = ?",
                                         id));
  EP_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return MakeError(ErrorKind::kNotFound, "rollout_not_found", "no rollout " + id);
  RolloutRow r;
  r.id = id;
  r.model_id = s.Text(0);
  EP_ASSIGN_OR_RETURN(bj::object spec, json::ParseObject(s.Text(1)));
  auto parsed = RolloutSpecFromJson(spec);
  if (!parsed.ok()) return parsed.error().WithContext("stored spec of rollout " + id);
  r.spec = std::move(parsed).value();
  r.state = s.Text(2);
  r.phase = static_cast<int>(s.Int64(3));
  r.phase_started_at = s.Int64(4);
  r.phase_settled_at = s.OptInt64(5);
  if (auto w = json::Parse(s.Text(6)); w.ok() && w->is_array()) {
    for (const auto& g : w->as_array()) {
      if (g.is_string()) r.waived.emplace_back(g.as_string());
    }
  }
  if (auto o = json::Parse(s.Text(7)); o.ok() && o->is_object()) r.reason = o->as_object();
  if (auto a = json::Parse(s.Text(8)); a.ok() && a->is_array()) r.gates = a->as_array();
  r.created_at = s.Int64(9);
  r.created_by = s.Text(10);
  r.updated_at = s.Int64(11);
  if (r.phase < 0 || r.phase >= static_cast<int>(r.spec.phases.size())) {
    return MakeError(ErrorKind::kInternal, "rollout_corrupt",
                     "rollout " + id + " is in phase " + std::to_string(r.phase) +
                         " of " + std::to_string(r.spec.phases.size()));
  }
  return r;
}

namespace {

constexpr const char* kDeviceColumns =
    "SELECT d.device_id, d.ordinal, d.phase, d.state, d.variant_id, d.started_at, d.settled_at, "
    "d.had_assignment, d.prev_deployment_id, d.prev_model_id, d.prev_bucket, d.prev_variant_id, "
    "d.prev_scale, d.detail, a.device_id, a.variant_id, a.bucket "
    "FROM rollout_devices d LEFT JOIN device_assignments a "
    "ON a.device_id = d.device_id AND a.deployment_id = d.rollout_id "
    "WHERE d.rollout_id = ?";

Result<std::vector<DeviceRow>> ReadDevices(store::Statement& s) {
  std::vector<DeviceRow> out;
  while (true) {
    EP_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    DeviceRow d;
    d.device_id = s.Text(0);
    d.ordinal = s.Int64(1);
    if (auto p = s.OptInt64(2)) d.phase = static_cast<int>(*p);
    d.state = s.Text(3);
    d.variant_id = s.OptText(4);
    d.started_at = s.OptInt64(5);
    d.settled_at = s.OptInt64(6);
    d.had_assignment = s.Int64(7) != 0;
    d.prev_deployment_id = s.OptText(8);
    d.prev_model_id = s.OptText(9);
    d.prev_bucket = s.OptText(10);
    d.prev_variant_id = s.OptText(11);
    if (!s.IsNull(12)) d.prev_scale = s.Double(12);
    d.detail = s.Text(13);
    d.assigned = !s.IsNull(14);
    d.assigned_variant = s.OptText(15);
    d.assigned_bucket = s.OptText(16);
    out.push_back(std::move(d));
  }
  return out;
}

}  // namespace

// Every device: read in primary-key order and sorted here. Through the ordinal index SQLite would
// look each row up in the table again, which measured slower than sorting (docs/benchmarks/
// rollouts.md, "The step's queries").
Result<std::vector<DeviceRow>> LoadDevicesIn(store::Connection& conn, const std::string& id) {
  EP_ASSIGN_OR_RETURN(auto s, conn.Query("rollout_devices_load", kDeviceColumns, id));
  EP_ASSIGN_OR_RETURN(auto devices, ReadDevices(s));
  std::sort(devices.begin(), devices.end(), [](const DeviceRow& a, const DeviceRow& b) {
    return a.ordinal != b.ordinal ? a.ordinal < b.ordinal : a.device_id < b.device_id;
  });
  return devices;
}

Result<std::vector<DeviceRow>> LoadDevicesIn(store::Connection& conn, const std::string& id,
                                             std::int64_t offset, std::int64_t limit) {
  if (limit <= 0) return std::vector<DeviceRow>();
  EP_ASSIGN_OR_RETURN(auto s, conn.Query("rollout_devices_load_range",
                                         std::string(kDeviceColumns) +
                                             " ORDER BY d.ordinal, d.device_id LIMIT ? OFFSET ?",
                                         id,
                                         limit, offset));
  return ReadDevices(s);
}

Result<std::int64_t> CountDevicesIn(store::Connection& conn, const std::string& id) {
  EP_ASSIGN_OR_RETURN(auto s, conn.Query("rollout_devices_count",
                                         "SELECT COUNT(*) FROM rollout_devices WHERE rollout_id = ?",
                                         id));
  EP_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return std::int64_t{0};
  return s.Int64(0);
}

Status SaveRolloutIn(store::Connection& conn, const RolloutRow& r, std::int64_t now) {
  bj::array waived;
  for (const auto& w : r.waived) waived.emplace_back(w);
  EP_ASSIGN_OR_RETURN(std::int64_t n,
                      conn.Execute("rollout_save",
                                   "UPDATE rollouts SET state = ?, phase = ?, phase_started_at = ?, "
                                   "phase_settled_at = ?, waived = ?, reason = ?, gates = ?, "
                                   "updated_at = ? WHERE id = ?",
                                   r.state, static_cast<std::int64_t>(r.phase), r.phase_started_at,
                                   r.phase_settled_at, json::Serialize(waived),
                                   json::Serialize(r.reason), json::Serialize(r.gates), now, r.id));
  if (n != 1) return MakeError(ErrorKind::kNotFound, "rollout_not_found", "no rollout " + r.id);
  return Ok();
}

Status InsertDeviceIn(store::Connection& conn, const std::string& rollout_id, const DeviceRow& d) {
  EP_RETURN_IF_ERROR(conn.Execute("rollout_device_insert",
                                  "INSERT INTO rollout_devices (rollout_id, device_id, ordinal, "
                                  "state) VALUES (?, ?, ?, 'pending')",
                                  rollout_id, d.device_id, d.ordinal));
  return Ok();
}

Status SaveDeviceIn(store::Connection& conn, const std::string& rollout_id, const DeviceRow& d) {
  std::optional<std::int64_t> phase;
  if (d.phase) phase = *d.phase;
  EP_RETURN_IF_ERROR(conn.Execute("rollout_device_save",
               "UPDATE rollout_devices SET phase = ?, state = ?, variant_id = ?, started_at = ?, "
               "settled_at = ?, had_assignment = ?, prev_deployment_id = ?, prev_model_id = ?, "
               "prev_bucket = ?, prev_variant_id = ?, prev_scale = ?, detail = ? "
               "WHERE rollout_id = ? AND device_id = ?",
               phase, d.state, d.variant_id, d.started_at, d.settled_at,
               static_cast<std::int64_t>(d.had_assignment), d.prev_deployment_id, d.prev_model_id,
               d.prev_bucket, d.prev_variant_id, d.prev_scale, d.detail, rollout_id, d.device_id));
  return Ok();
}

int PhaseOf(const RolloutSpec& spec, const DeviceRow& d, std::int64_t rank, std::int64_t total) {
  if (d.phase) return *d.phase;
  for (std::size_t i = 0; i < spec.phases.size(); ++i) {
    if (rank < PhaseReach(spec.phases[i], total)) return static_cast<int>(i);
  }
  return static_cast<int>(spec.phases.size()) - 1;
}

Status TransitionIn(store::Connection& conn, RolloutRow& r, const std::string& state,
                    const std::string& action, bj::object reason, const std::string& actor,
                    std::int64_t now) {
  reason["from"] = r.state;
  reason["to"] = state;
  reason["phase"] = r.phase;
  r.state = state;
  r.reason = reason;
  EP_RETURN_IF_ERROR(SaveRolloutIn(conn, r, now));
  return fleet::AuditLog::RecordIn(conn, actor, "rollout." + action, r.id, json::Serialize(reason));
}

Result<int> RestoreAllIn(store::Connection& conn, const RolloutRow& r, std::vector<DeviceRow>& devices,
                         const std::string& why, std::int64_t now) {
  int restored = 0;
  for (auto& d : devices) {
    if (!d.started_at || d.state == "rolled_back" || d.state == "no_fit") continue;
    EP_ASSIGN_OR_RETURN(auto s, conn.Query("rollout_current",
                                           "SELECT deployment_id, variant_id FROM "
                                           "device_assignments WHERE device_id = ?",
                                           d.device_id));
    EP_ASSIGN_OR_RETURN(bool row, s.Step());
    // Only what this rollout assigned is taken back; a later deployment's assignment stays.
    const bool ours = row && s.Text(0) == r.id;
    const std::optional<std::string> current = row ? s.OptText(1) : std::nullopt;
    EP_RETURN_IF_ERROR(s.Reset());
    if (ours) {
      if (d.had_assignment && d.prev_deployment_id && d.prev_model_id) {
        const auto from = VersionOf(conn, current), to = VersionOf(conn, d.prev_variant_id);
        const bool lower = from && to && *to < *from;
        EP_RETURN_IF_ERROR(conn.Execute(
            "rollout_restore",
            "UPDATE device_assignments SET deployment_id = ?, model_id = ?, bucket = ?, "
            "variant_id = ?, rollback = ?, throughput_scale = ?, slo_breaches = 0, "
            "assigned_at = ? WHERE device_id = ?",
            *d.prev_deployment_id, *d.prev_model_id, d.prev_bucket.value_or(""),
            d.prev_variant_id, static_cast<std::int64_t>(lower), d.prev_scale.value_or(1.0), now,
            d.device_id));
      } else {
        EP_RETURN_IF_ERROR(conn.Execute("rollout_unassign",
                                        "DELETE FROM device_assignments WHERE device_id = ?",
                                        d.device_id));
      }
      EP_RETURN_IF_ERROR(fleet::AuditLog::RecordIn(
          conn, "system", "device.rollback", d.device_id,
          json::Serialize(bj::object{
              {"rollout", r.id},
              {"from", current ? bj::value(*current) : bj::value(nullptr)},
              {"to", d.prev_variant_id ? bj::value(*d.prev_variant_id) : bj::value(nullptr)},
              {"why", why}})));
    }
    d.state = "rolled_back";
    d.detail = ours ? why : why + " (its assignment had moved on; left as it is)";
    d.settled_at = now;
    EP_RETURN_IF_ERROR(SaveDeviceIn(conn, r.id, d));
    ++restored;
  }
  return restored;
}

}  // namespace edgeprune::deploy::rollout
