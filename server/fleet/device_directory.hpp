#pragma once
// What other modules may know about the fleet's devices: identity, tags, budget, the variant the
// device reports installed. deploy/ and telemetry/ read devices through this, never through SQL
// on the fleet's tables, so the fleet can change its schema (or its database) alone.
//
// The *In(conn, …) forms run inside the caller's transaction, so an assignment decided from a
// device's budget commits against the budget it read.
//
// Thread-safety: static functions over the caller's connection; safe from any thread.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "edgeprune/common/budget.hpp"
#include "edgeprune/common/result.hpp"
#include "server/store/database.hpp"

namespace edgeprune::fleet {

struct DeviceFacts {
  std::string id;
  std::vector<std::string> tags;
  std::optional<Budget> budget;                    // none until its first profile
  std::optional<std::string> installed_variant;    // as last reported by the device
  std::optional<std::int64_t> last_seen_ms;        // last heartbeat flushed, epoch ms
};

class DeviceDirectory {
 public:
  // Devices not revoked, ordered by id.
  static Result<std::vector<DeviceFacts>> ActiveIn(store::Connection& conn);
  // The active devices among `ids` (a JSON array of device ids, as json_each reads it), in no
  // particular order: what a caller pays follows the devices it asks about, not the fleet's size.
  static Result<std::vector<DeviceFacts>> ActiveAmongIn(store::Connection& conn,
                                                        const std::string& ids_json);
  // One device, active or not; nullopt when there is no such device or it is revoked.
  static Result<std::optional<DeviceFacts>> FindActiveIn(store::Connection& conn,
                                                         const std::string& device_id);
};

}  // namespace edgeprune::fleet
