#pragma once
// `edgeprune-server routes [--config file.toml] [--set key=value]...`: prints every route the
// server would serve with that configuration as JSON, one object a line inside an array:
//   {"method": "GET", "path": "/api/v1/devices/{id}", "auth": "viewer", "name": "devices_get"}
// The list comes from Application::Routes(), the composition `serve` runs, so it cannot drift
// from what is served; the OpenAPI check (tools/openapi/check_openapi.py routes) reads it. The
// services are built on a fresh temporary data directory, never the configured one: a live
// database is not migrated and its queued builds are not picked up by a second worker pool.
//
// Thread-safety: a command, run once from main's thread.

#include <string>

#include "common/http/request_context.hpp"

namespace edgeprune::server {

// "public", "viewer", "operator", "admin", "device": the contract's x-edgeprune-auth values.
const char* AuthName(http::Auth auth);

int RunRoutes(int argc, char** argv);

}  // namespace edgeprune::server
