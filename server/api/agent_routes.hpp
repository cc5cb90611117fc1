#pragma once
// The agent API under /agent/v1: enroll (token + CSR, the only route reachable without a client
// certificate), renew, profile and heartbeat (mTLS, the certificate names the device).
//
// Thread-safety: the handlers are safe to run concurrently.

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "server/fleet/fleet_service.hpp"
#include "common/http/router.hpp"

namespace edgeprune::api {

// What a device should run; the deployment code fills it in (null variant until then).
using DesiredVariantFn = std::function<std::optional<std::string>(const std::string& device_id)>;

std::vector<http::Route> AgentRoutes(std::shared_ptr<fleet::FleetService> fleet,
                                     DesiredVariantFn desired_variant = nullptr);

}  // namespace edgeprune::api
