#pragma once
// The API's contract, server/api/openapi.json (OpenAPI 3.1), compiled into the binary at build
// time (server/api/embed_openapi.cmake) so the document a server serves is always the one of the
// source tree it was built from. GET /api/v1/openapi.json answers it to anyone (a client
// generator needs it before it has a token) with a strong ETag of its SHA-256, so a client that
// polls it gets 304 until the server is upgraded. tools/openapi/check_openapi.py keeps the
// document true to the route tables and to the responses of the end-to-end test.
//
// Thread-safety: the document is immutable; the handler is safe to call concurrently.

#include <string_view>
#include <vector>

#include "common/http/router.hpp"

namespace edgeprune::api {

// The embedded bytes of server/api/openapi.json (defined in the generated source).
std::string_view OpenApiDocument();

std::vector<http::Route> OpenApiRoutes();

}  // namespace edgeprune::api
