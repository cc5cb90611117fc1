#pragma once
// Turns credentials into a Principal. The router calls it for every route that is not kPublic;
// the implementation (backed by the database) lives with the devices/users code.
//
// Thread-safety: implementations must be safe to call concurrently from every server thread.

#include <string_view>

#include "edgeprune/common/result.hpp"
#include "edgeprune/common/tls.hpp"
#include "common/http/request_context.hpp"

namespace edgeprune::http {

class Authenticator {
 public:
  virtual ~Authenticator() = default;
  // An operator's bearer token. Unknown or revoked → kUnauthenticated.
  virtual Result<Principal> AuthenticateBearer(std::string_view token) = 0;
  // A client certificate that already passed TLS verification against the device CA.
  // Unknown or revoked device → kUnauthenticated.
  virtual Result<Principal> AuthenticateDevice(const tls::PeerCertificate& certificate) = 0;
  // Told when the router refuses an authenticated principal a state-changing request (any method
  // but GET and HEAD) because of its role or kind, e.g. to audit the attempt. Default: nothing.
  virtual void Refused(const Principal& /*principal*/, std::string_view /*method*/,
                       std::string_view /*path*/, const Error& /*why*/) {}
};

}  // namespace edgeprune::http
