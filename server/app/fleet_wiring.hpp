#pragma once
// The fleet's part of the server application, in one call so Application::Run() stays a list of
// one-line steps: builds the FleetService (fleet.* config), prints a first admin token on an
// empty database, makes the Authenticator the router needs and the fleet's routes.
//
// Thread-safety: call once at startup.

#include <prometheus/registry.h>

#include <memory>
#include <vector>

#include "edgeprune/common/config.hpp"
#include "server/api/agent_routes.hpp"
#include "server/fleet/fleet_service.hpp"
#include "common/http/authenticator.hpp"
#include "common/http/router.hpp"

namespace edgeprune::server {

struct FleetWiring {
  std::shared_ptr<fleet::FleetService> fleet;
  std::shared_ptr<http::Authenticator> authenticator;
  std::vector<http::Route> routes;  // operator + agent routes
};

// desired_variant may be null until deployments exist.
Result<FleetWiring> WireFleet(const Config& config, std::shared_ptr<store::Database> db,
                              std::shared_ptr<prometheus::Registry> registry,
                              api::DesiredVariantFn desired_variant = nullptr);

}  // namespace edgeprune::server
