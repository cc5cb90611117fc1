#pragma once
// Heartbeat (POST /agent/v1/heartbeat) and the desired state the server answers with.
//
// Thread-safety: plain value types; codecs are pure functions.

#include <cstdint>
#include <optional>
#include <string>

#include "edgeprune/common/json.hpp"
#include "edgeprune/common/result.hpp"

namespace edgeprune::wire {

struct Heartbeat {
  std::string agent_state;                      // state machine state name: "poll", "serve" ...
  std::optional<std::string> installed_variant_id;
  std::int64_t uptime_s = 0;
  std::int64_t rss_bytes = 0;                   // agent process resident memory
};

// What the server wants the device to run. variant_id is null until a variant is assigned.
struct DesiredState {
  std::optional<std::string> variant_id;
};

struct HeartbeatResponse {
  DesiredState desired_state;
  std::int64_t heartbeat_interval_s = 10;
  std::int64_t server_time = 0;  // unix seconds
};

boost::json::object ToJson(const Heartbeat& hb);
Result<Heartbeat> HeartbeatFromJson(const boost::json::object& o);
boost::json::object ToJson(const HeartbeatResponse& r);
Result<HeartbeatResponse> HeartbeatResponseFromJson(const boost::json::object& o);

}  // namespace edgeprune::wire
