#pragma once
// The operator API for the fleet under /api/v1 (bearer tokens; the role each route needs is in
// its Route::auth):
//   POST   /api/v1/tokens                  admin     create an API token (secret shown once)
//   GET    /api/v1/tokens                  admin     list API tokens (never secrets)
//   DELETE /api/v1/tokens/{name}           admin     revoke an API token
//   POST   /api/v1/enrollment-tokens       operator  create an enrollment token (shown once)
//   GET    /api/v1/devices                 viewer    ?status=&tag=&limit=&cursor=
//   GET    /api/v1/devices/{id}            viewer    device, liveness, latest profile, budget
//   GET    /api/v1/devices/{id}/profiles   viewer    profile history, newest first
//   PATCH  /api/v1/devices/{id}            operator  {"tags": [...], "caps": {...}}
//   POST   /api/v1/devices/{id}/revoke     operator
//   GET    /api/v1/audit                   operator  ?actor=&action=&target=&limit=&cursor=
// Every state-changing call is written to the audit log, failures included.
//
// Thread-safety: the handlers are safe to run concurrently.

#include <memory>
#include <vector>

#include "server/fleet/fleet_service.hpp"
#include "common/http/router.hpp"

namespace edgeprune::api {

std::vector<http::Route> OperatorRoutes(std::shared_ptr<fleet::FleetService> fleet);

}  // namespace edgeprune::api
