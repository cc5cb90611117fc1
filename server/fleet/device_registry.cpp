#include "server/fleet/device_registry.hpp"

#include <algorithm>
#include <limits>

#include "edgeprune/common/log.hpp"
#include "edgeprune/common/wire/budget.hpp"
#include "edgeprune/common/wire/fields.hpp"
#include "server/store/retention.hpp"

namespace edgeprune::fleet {
namespace {

constexpr const char* kDeviceColumns =
    "SELECT d.id, d.hostname, d.status, d.tags, d.caps, d.enrolled_at, d.revoked_at, "
    "d.last_seen_at, d.agent_state, d.installed_variant, d.budget, "
    "(SELECT MAX(not_after) FROM device_certificates c WHERE c.device_id = d.id) FROM devices d ";

Result<DeviceRecord> DeviceRow(const store::Statement& s) {
  DeviceRecord d;
  d.id = s.Text(0);
  d.hostname = s.Text(1);
  d.status = s.Text(2);
  d.tags = TagsFromJsonText(s.Text(3));
  if (auto caps = json::ParseObject(s.Text(4)); caps.ok()) {
    auto parsed = wire::CapsFromJson(*caps);
    if (parsed.ok()) d.caps = *parsed;
  }
  d.enrolled_at_ms = s.Int64(5);
  d.revoked_at_ms = s.OptInt64(6);
  d.last_seen_ms = s.OptInt64(7);
  d.agent_state = s.Text(8);
  d.installed_variant = s.OptText(9);
  if (auto text = s.OptText(10)) {
    if (auto o = json::ParseObject(*text); o.ok()) {
      auto b = wire::BudgetFromJson(*o);
      if (b.ok()) d.budget = *b;
    }
  }
  d.cert_not_after_s = s.OptInt64(11);
  return d;
}

Error NotFound(const std::string& id) {
  return MakeError(ErrorKind::kNotFound, "device_not_found", "no device with id '" + id + "'");
}

}  // namespace

Result<DevicePatch> DevicePatch::FromJson(const boost::json::object& o) {
  EP_RETURN_IF_ERROR(wire::RejectUnknownKeys(o, {"tags", "caps"}, "device patch"));
  DevicePatch p;
  if (o.contains("tags")) {
    EP_ASSIGN_OR_RETURN(auto tags, wire::ReadStringList(o, "tags", 32, 64));
    EP_RETURN_IF_ERROR(ValidateTags(tags));
    p.tags = std::move(tags);
  }
  if (o.contains("caps")) {
    EP_ASSIGN_OR_RETURN(auto caps_obj, json::GetObject(o, "caps"));
    auto caps = wire::CapsFromJson(caps_obj);
    if (!caps.ok()) return caps.error().WithContext("caps");
    p.caps = *caps;
  }
  if (!p.tags && !p.caps) {
    return MakeError(ErrorKind::kInvalidArgument, "empty_patch",
                     "a device patch needs 'tags' or 'caps'");
  }
  return p;
}

DeviceRegistry::DeviceRegistry(std::shared_ptr<store::Database> db,
                               std::shared_ptr<const Clock> clock,
                               std::shared_ptr<const AuditLog> audit,
                               std::shared_ptr<const DeviceCa> ca,
                               std::shared_ptr<const EnrollmentTokens> tokens,
                               RegistryOptions options)
    : db_(std::move(db)),
      clock_(std::move(clock)),
      audit_(std::move(audit)),
      ca_(std::move(ca)),
      tokens_(std::move(tokens)),
      options_(std::move(options)) {}

Result<DeviceRecord> DeviceRegistry::Get(const std::string& device_id) const {
  EP_ASSIGN_OR_RETURN(store::ConnectionLease lease, db_->Acquire());
  EP_ASSIGN_OR_RETURN(store::Statement s, lease->Query("device_get",
                                                       std::string(kDeviceColumns) + "WHERE d.id = ?",
                                                       device_id));
  EP_ASSIGN_OR_RETURN(bool found, s.Step());
  if (!found) return NotFound(device_id);
  return DeviceRow(s);
}

Result<std::vector<DeviceRecord>> DeviceRegistry::List(const DeviceListQuery& q, int limit) const {
  EP_ASSIGN_OR_RETURN(store::ConnectionLease lease, db_->Acquire());
  EP_ASSIGN_OR_RETURN(
      store::Statement s,
      lease->Query("device_list",
                   std::string(kDeviceColumns) +
                       // CAST: PostgreSQL must know a parameter's type where it first
                       // meets it, here at IS NULL.
                       "WHERE (CAST(?1 AS TEXT) IS NULL OR d.id > ?1) "
                       "AND (CAST(?2 AS TEXT) IS NULL OR "
                       "EXISTS (SELECT 1 FROM json_each(d.tags) WHERE value = ?2)) "
                       "AND (?3 = 1 OR d.status = 'active') ORDER BY d.id LIMIT ?4",
                   q.after_id, q.tag, static_cast<std::int64_t>(q.include_revoked ? 1 : 0),
                   static_cast<std::int64_t>(std::max(0, limit))));
  std::vector<DeviceRecord> out;
  while (true) {
    EP_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    EP_ASSIGN_OR_RETURN(auto d, DeviceRow(s));
    out.push_back(std::move(d));
  }
  return out;
}

Result<Budget> DeviceRegistry::RecomputeBudget(store::Connection& conn, const std::string& device_id,
                                               const wire::DeviceCaps& caps) {
  EP_ASSIGN_OR_RETURN(store::Statement s,
                      conn.Query("device_latest_profile",
                                 "SELECT profile FROM device_profiles WHERE device_id = ? "
                                 "ORDER BY id DESC LIMIT 1",
                                 device_id));
  EP_ASSIGN_OR_RETURN(bool found, s.Step());
  if (!found) return Budget{};
  EP_ASSIGN_OR_RETURN(auto o, json::ParseObject(s.Text(0)));
  EP_RETURN_IF_ERROR(s.Reset());
  EP_ASSIGN_OR_RETURN(auto profile, wire::ProfileFromJson(o));
  return BudgetFor(profile, caps, options_.budget_policy);
}

Result<DeviceRecord> DeviceRegistry::Patch(const std::string& device_id, const DevicePatch& patch,
                                           const std::string& actor) {
  bool budget_changed = false;
  auto r = db_->WithTransaction([&](store::Connection& conn) -> Status {
    EP_ASSIGN_OR_RETURN(store::Statement s,
                        conn.Query("device_exists_budget",
                                   "SELECT status, budget FROM devices WHERE id = ?", device_id));
    EP_ASSIGN_OR_RETURN(bool found, s.Step());
    if (!found) return NotFound(device_id);
    const std::string old_budget = s.OptText(1).value_or("");
    EP_RETURN_IF_ERROR(s.Reset());
    std::string detail;
    if (patch.tags) {
      EP_RETURN_IF_ERROR(conn.Execute("device_set_tags", "UPDATE devices SET tags = ? WHERE id = ?",
                                      TagsToJsonText(*patch.tags), device_id));
      detail += "tags=" + TagsToJsonText(*patch.tags) + " ";
    }
    if (patch.caps) {
      const std::string caps_text = boost::json::serialize(wire::ToJson(*patch.caps));
      EP_RETURN_IF_ERROR(conn.Execute("device_set_caps", "UPDATE devices SET caps = ? WHERE id = ?",
                                      caps_text, device_id));
      EP_ASSIGN_OR_RETURN(Budget budget, RecomputeBudget(conn, device_id, *patch.caps));
      if (!budget.Unbounded()) {
        const std::string budget_text = boost::json::serialize(wire::ToJson(budget));
        EP_RETURN_IF_ERROR(conn.Execute("device_set_budget",
                                        "UPDATE devices SET budget = ? WHERE id = ?",
                                        budget_text, device_id));
        budget_changed = budget_text != old_budget;
      }
      detail += "caps=" + caps_text;
    }
    return audit_->Record(conn, actor, "device.patch", device_id, Outcome::kOk, detail);
  });
  if (!r.ok()) return r.error();
  if (budget_changed) NotifyBudgetChanged(device_id);
  return Get(device_id);
}

Result<Budget> DeviceRegistry::RecordProfile(const std::string& device_id,
                                             const wire::DeviceProfile& profile) {
  bool budget_changed = false;
  auto recorded = db_->WithTransaction([&](store::Connection& conn) -> Result<Budget> {
    EP_ASSIGN_OR_RETURN(store::Statement s,
                        conn.Query("device_caps",
                                   "SELECT caps, status, budget FROM devices WHERE id = ?",
                                   device_id));
    EP_ASSIGN_OR_RETURN(bool found, s.Step());
    if (!found) return NotFound(device_id);
    wire::DeviceCaps caps;
    if (auto o = json::ParseObject(s.Text(0)); o.ok()) caps = wire::CapsFromJson(*o).value_or({});
    const std::string old_budget = s.OptText(2).value_or("");
    EP_RETURN_IF_ERROR(s.Reset());
    EP_ASSIGN_OR_RETURN(Budget budget, BudgetFor(profile, caps, options_.budget_policy));
    const std::string budget_text = boost::json::serialize(wire::ToJson(budget));
    EP_RETURN_IF_ERROR(conn.Execute(
        "device_profile_insert",
        "INSERT INTO device_profiles (device_id, received_at, profile, budget) VALUES (?, ?, ?, ?)",
        device_id, clock_->NowMs(), boost::json::serialize(wire::ToJson(profile)), budget_text));
    EP_RETURN_IF_ERROR(conn.Execute("device_set_budget", "UPDATE devices SET budget = ? WHERE id = ?",
                                    budget_text, device_id));
    EP_RETURN_IF_ERROR(audit_->Record(conn, "device:" + device_id, "device.profile", device_id,
                                      Outcome::kOk, budget_text));
    budget_changed = budget_text != old_budget;
    return budget;
  });
  if (recorded.ok() && budget_changed) NotifyBudgetChanged(device_id);
  return recorded;
}

Result<std::vector<ProfileRecord>> DeviceRegistry::ProfileHistory(const std::string& device_id,
                                                                  int limit) const {
  EP_ASSIGN_OR_RETURN(store::ConnectionLease lease, db_->Acquire());
  EP_ASSIGN_OR_RETURN(store::Statement s,
                      lease->Query("device_profile_history",
                                   "SELECT received_at, profile, budget FROM device_profiles "
                                   "WHERE device_id = ? ORDER BY id DESC LIMIT ?",
                                   device_id, static_cast<std::int64_t>(std::clamp(limit, 1, 1000))));
  std::vector<ProfileRecord> out;
  while (true) {
    EP_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    ProfileRecord rec;
    rec.received_at_ms = s.Int64(0);
    EP_ASSIGN_OR_RETURN(auto p, json::ParseObject(s.Text(1)));
    EP_ASSIGN_OR_RETURN(rec.profile, wire::ProfileFromJson(p));
    EP_ASSIGN_OR_RETURN(auto b, json::ParseObject(s.Text(2)));
    EP_ASSIGN_OR_RETURN(rec.budget, wire::BudgetFromJson(b));
    out.push_back(std::move(rec));
  }
  return out;
}

Result<std::optional<ProfileRecord>> DeviceRegistry::LatestProfile(const std::string& device_id) const {
  EP_ASSIGN_OR_RETURN(auto history, ProfileHistory(device_id, 1));
  if (history.empty()) return std::optional<ProfileRecord>();
  return std::optional<ProfileRecord>(std::move(history.front()));
}

Result<std::unordered_map<std::string, std::int64_t>> DeviceRegistry::CountByStatus() const {
  EP_ASSIGN_OR_RETURN(store::ConnectionLease lease, db_->Acquire());
  EP_ASSIGN_OR_RETURN(store::Statement s,
                      lease->Query("device_count_by_status",
                                   "SELECT status, COUNT(*) FROM devices GROUP BY status"));
  std::unordered_map<std::string, std::int64_t> out{{"active", 0}, {"revoked", 0}};
  while (true) {
    EP_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    out[s.Text(0)] = s.Int64(1);
  }
  return out;
}

boost::json::object ToJson(const DeviceRecord& d) {
  boost::json::array tags;
  for (const auto& t : d.tags) tags.emplace_back(t);
  boost::json::object o{{"id", d.id},
                        {"hostname", d.hostname},
                        {"status", d.status},
                        {"tags", std::move(tags)},
                        {"caps", wire::ToJson(d.caps)},
                        {"enrolled_at_ms", d.enrolled_at_ms},
                        {"agent_state", d.agent_state}};
  o["revoked_at_ms"] = d.revoked_at_ms ? boost::json::value(*d.revoked_at_ms) : nullptr;
  o["last_seen_ms"] = d.last_seen_ms ? boost::json::value(*d.last_seen_ms) : nullptr;
  o["installed_variant"] = d.installed_variant ? boost::json::value(*d.installed_variant) : nullptr;
  o["budget"] = d.budget ? boost::json::value(wire::ToJson(*d.budget)) : nullptr;
  o["certificate_not_after"] =
      d.cert_not_after_s ? boost::json::value(*d.cert_not_after_s) : nullptr;
  return o;
}

Result<std::int64_t> DeviceRegistry::PruneProfiles(std::int64_t before_ms,
                                                   std::int64_t keep_per_device) {
  if (before_ms < 0 || keep_per_device < 0) {
    return MakeError(ErrorKind::kInvalidArgument, "invalid_retention",
                     "profile retention: negative age or count");
  }
  if (before_ms == 0 && keep_per_device == 0) return std::int64_t{0};
  const std::int64_t keep =
      keep_per_device == 0 ? std::numeric_limits<std::int64_t>::max() : keep_per_device;
  // rn 1 is a device's newest profile, never deleted.
  return store::DeleteInBatches(
      *db_, "device_profiles_prune",
      "DELETE FROM device_profiles WHERE id IN (SELECT id FROM (SELECT id, received_at, "
      "ROW_NUMBER() OVER (PARTITION BY device_id ORDER BY id DESC) AS rn FROM device_profiles) "
      "ranked WHERE rn > 1 AND (received_at < ?1 OR rn > ?2) LIMIT ?3)",
      before_ms, keep);
}

}  // namespace edgeprune::fleet
