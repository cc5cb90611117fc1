#include "edgeprune/common/wire/heartbeat.hpp"

#include "edgeprune/common/wire/fields.hpp"

namespace edgeprune::wire {

boost::json::object ToJson(const Heartbeat& hb) {
  boost::json::object o{{"agent_state", hb.agent_state},
                        {"uptime_s", hb.uptime_s},
                        {"rss_bytes", hb.rss_bytes}};
  if (hb.installed_variant_id) o["installed_variant_id"] = *hb.installed_variant_id;
  else o["installed_variant_id"] = nullptr;
  return o;
}

Result<Heartbeat> HeartbeatFromJson(const boost::json::object& o) {
  Heartbeat hb;
  EP_ASSIGN_OR_RETURN(hb.agent_state, ReadString(o, "agent_state", 32));
  EP_ASSIGN_OR_RETURN(hb.installed_variant_id, ReadOptString(o, "installed_variant_id", 128));
  EP_ASSIGN_OR_RETURN(hb.uptime_s, ReadInt(o, "uptime_s", 0, std::int64_t{1} << 40));
  EP_ASSIGN_OR_RETURN(hb.rss_bytes, ReadInt(o, "rss_bytes", 0, std::int64_t{1} << 44));
  return hb;
}

boost::json::object ToJson(const HeartbeatResponse& r) {
  boost::json::object desired;
  if (r.desired_state.variant_id) desired["variant_id"] = *r.desired_state.variant_id;
  else desired["variant_id"] = nullptr;
  return {{"desired_state", std::move(desired)},
          {"heartbeat_interval_s", r.heartbeat_interval_s},
          {"server_time", r.server_time}};
}

Result<HeartbeatResponse> HeartbeatResponseFromJson(const boost::json::object& o) {
  HeartbeatResponse r;
  EP_ASSIGN_OR_RETURN(auto desired, json::GetObject(o, "desired_state"));
  EP_ASSIGN_OR_RETURN(r.desired_state.variant_id, ReadOptString(desired, "variant_id", 128));
  EP_ASSIGN_OR_RETURN(r.heartbeat_interval_s, ReadInt(o, "heartbeat_interval_s", 1, 86400));
  EP_ASSIGN_OR_RETURN(r.server_time, ReadInt(o, "server_time", 0, std::int64_t{1} << 40));
  return r;
}

}  // namespace edgeprune::wire
