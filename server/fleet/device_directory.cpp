#include "server/fleet/device_directory.hpp"

#include "edgeprune/common/json.hpp"
#include "edgeprune/common/wire/budget.hpp"

namespace edgeprune::fleet {
namespace {

constexpr const char* kColumns = "SELECT id, tags, budget, installed_variant, last_seen_at FROM devices ";

Result<DeviceFacts> ReadDevice(store::Statement& s) {
  DeviceFacts d;
  d.id = s.Text(0);
  // Tags are written by the fleet as a JSON array; anything else reads as no tags.
  if (auto tags = json::Parse(s.Text(1)); tags.ok() && tags->is_array()) {
    for (const auto& t : tags->as_array()) {
      if (t.is_string()) d.tags.emplace_back(t.as_string());
    }
  }
  if (auto text = s.OptText(2)) {
    EP_ASSIGN_OR_RETURN(boost::json::object o, json::ParseObject(*text));
    auto b = wire::BudgetFromJson(o);
    if (!b.ok()) return b.error().WithContext("device " + d.id + " budget");
    d.budget = *b;
  }
  d.installed_variant = s.OptText(3);
  d.last_seen_ms = s.OptInt64(4);
  return d;
}

Result<std::vector<DeviceFacts>> ReadDevices(store::Statement& s) {
  std::vector<DeviceFacts> out;
  while (true) {
    EP_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    EP_ASSIGN_OR_RETURN(auto d, ReadDevice(s));
    out.push_back(std::move(d));
  }
  return out;
}

}  // namespace

Result<std::vector<DeviceFacts>> DeviceDirectory::ActiveIn(store::Connection& conn) {
  EP_ASSIGN_OR_RETURN(auto s, conn.Query("directory_active", std::string(kColumns) +
                                                                 "WHERE status = 'active' ORDER BY id"));
  return ReadDevices(s);
}

Result<std::vector<DeviceFacts>> DeviceDirectory::ActiveAmongIn(store::Connection& conn,
                                                                const std::string& ids_json) {
  // The list drives the join (CROSS JOIN fixes SQLite's loop order; PostgreSQL plans it as a
  // join): with `id IN (…) AND status = 'active'` SQLite walked every active device by status.
  EP_ASSIGN_OR_RETURN(auto s, conn.Query("directory_among",
                                         "SELECT d.id, d.tags, d.budget, d.installed_variant, "
                                         "d.last_seen_at FROM json_each(?) j CROSS JOIN devices d "
                                         "WHERE d.id = j.value AND d.status = 'active'",
                                         ids_json));
  return ReadDevices(s);
}

Result<std::optional<DeviceFacts>> DeviceDirectory::FindActiveIn(store::Connection& conn,
                                                                 const std::string& device_id) {
  EP_ASSIGN_OR_RETURN(auto s, conn.Query("directory_find", std::string(kColumns) +
                                                               "WHERE id = ? AND status = 'active'",
                                         device_id));
  EP_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return std::optional<DeviceFacts>();
  EP_ASSIGN_OR_RETURN(auto d, ReadDevice(s));
  return std::optional<DeviceFacts>(std::move(d));
}

}  // namespace edgeprune::fleet
