#pragma once
// Liveness and readiness: GET /healthz answers while the process serves; GET /readyz only while
// the database answers a query (503 otherwise, so a load balancer stops sending traffic).
//
// Thread-safety: the handlers are safe to call concurrently (Database is thread-safe).

#include <memory>
#include <vector>

#include "common/http/router.hpp"
#include "server/store/database.hpp"

namespace edgeprune::server {

std::vector<http::Route> ProbeRoutes(std::shared_ptr<store::Database> database);

}  // namespace edgeprune::server
