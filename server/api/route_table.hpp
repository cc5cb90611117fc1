#pragma once
// The one way the server's route tables are written. A handler is a free function
//   Result<http::Response> Handler(const Services& services, const http::RequestContext& ctx)
// bound to the services it uses with Bind<Handler>(services), and each table is a list of
// http::Route {method, pattern, handler, auth, name} that reads like the API it serves.
//
// Thread-safety: Bind copies the (shared, thread-safe) services into the handler.

#include <string>
#include <utility>

#include "common/http/request_context.hpp"
#include "common/http/router.hpp"
#include "server/api/fleet_authenticator.hpp"
#include "edgeprune/common/result.hpp"

namespace edgeprune::api {

// The vocabulary of every route file.
using http::Auth;
using http::RequestContext;
using http::Response;
using http::Verb;

template <auto Handler, typename Services>
http::Handler Bind(Services services) {
  return [services = std::move(services)](const http::RequestContext& ctx) {
    return Handler(services, ctx);
  };
}

// Who made a request, as the audit log writes it (ActorOf: "token:<name>", "device:<id>").
inline std::string Actor(const http::RequestContext& ctx) { return ActorOf(ctx.principal); }

inline Error BadRequest(const std::string& code, const std::string& message) {
  return MakeError(ErrorKind::kInvalidArgument, code, message);
}

}  // namespace edgeprune::api
