#include "server/app/fleet_wiring.hpp"

#include <cstdio>

#include "edgeprune/common/log.hpp"
#include "server/api/fleet_authenticator.hpp"
#include "server/api/operator_routes.hpp"

namespace edgeprune::server {

Result<FleetWiring> WireFleet(const Config& config, std::shared_ptr<store::Database> db,
                              std::shared_ptr<prometheus::Registry> registry,
                              api::DesiredVariantFn desired_variant) {
  FleetWiring w;
  EP_ASSIGN_OR_RETURN(auto fleet, fleet::FleetService::Build(config, std::move(db), std::move(registry)));
  w.fleet = std::move(fleet);
  // An empty database gets one admin token, printed once (docs/security.md).
  EP_ASSIGN_OR_RETURN(auto admin, w.fleet->api_tokens->EnsureAdmin());
  if (admin) {
    std::printf("admin token (shown once): %s\n", admin->secret.c_str());
    std::fflush(stdout);
    log::Get("fleet")->warn("created API token '{}' (admin); its secret was printed once on stdout",
                            admin->info.name);
  }
  w.authenticator = std::make_shared<api::FleetAuthenticator>(w.fleet->api_tokens, w.fleet->registry,
                                                          w.fleet->audit);
  w.routes = api::OperatorRoutes(w.fleet);
  for (auto& r : api::AgentRoutes(w.fleet, std::move(desired_variant))) w.routes.push_back(std::move(r));
  return w;
}

}  // namespace edgeprune::server
