#pragma once
// The database-backed http::Authenticator: bearer secrets against api_tokens, verified client
// certificates against the device registry (enrolled, unexpired, not revoked). A principal refused
// a state-changing route (role too low, wrong kind) is written to the audit log as "denied".
//
// Thread-safety: safe to call concurrently (both backends are).

#include <memory>

#include "server/fleet/api_tokens.hpp"
#include "server/fleet/audit_log.hpp"
#include "server/fleet/device_registry.hpp"
#include "common/http/authenticator.hpp"

namespace edgeprune::api {

class FleetAuthenticator : public http::Authenticator {
 public:
  FleetAuthenticator(std::shared_ptr<fleet::ApiTokens> tokens,
                     std::shared_ptr<fleet::DeviceRegistry> devices,
                     std::shared_ptr<const fleet::AuditLog> audit = nullptr)
      : tokens_(std::move(tokens)), devices_(std::move(devices)), audit_(std::move(audit)) {}

  Result<http::Principal> AuthenticateBearer(std::string_view token) override;
  Result<http::Principal> AuthenticateDevice(const tls::PeerCertificate& certificate) override;
  void Refused(const http::Principal& principal, std::string_view method, std::string_view path,
               const Error& why) override;

 private:
  std::shared_ptr<fleet::ApiTokens> tokens_;
  std::shared_ptr<fleet::DeviceRegistry> devices_;
  std::shared_ptr<const fleet::AuditLog> audit_;
};

// "token:<name>" for users, "device:<id>" for devices: the actor written to the audit log.
std::string ActorOf(const http::Principal& principal);

}  // namespace edgeprune::api
