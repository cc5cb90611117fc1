#include "server/api/fleet_authenticator.hpp"

#include "edgeprune/common/log.hpp"

namespace edgeprune::api {

Result<http::Principal> FleetAuthenticator::AuthenticateBearer(std::string_view token) {
  EP_ASSIGN_OR_RETURN(fleet::ApiTokenInfo info, tokens_->Authenticate(token));
  return http::Principal{http::Principal::Kind::kUser, info.name, info.role};
}

Result<http::Principal> FleetAuthenticator::AuthenticateDevice(const tls::PeerCertificate& cert) {
  EP_ASSIGN_OR_RETURN(std::string device_id, devices_->AuthenticateCertificate(cert));
  return http::Principal{http::Principal::Kind::kDevice, device_id, http::Role::kViewer};
}

std::string ActorOf(const http::Principal& p) {
  switch (p.kind) {
    case http::Principal::Kind::kUser: return "token:" + p.id;
    case http::Principal::Kind::kDevice: return "device:" + p.id;
    case http::Principal::Kind::kAnonymous: return "anonymous";
  }
  return "anonymous";
}

void FleetAuthenticator::Refused(const http::Principal& principal, std::string_view method,
                                 std::string_view path, const Error& why) {
  if (!audit_) return;
  auto s = audit_->Record(ActorOf(principal), "request.denied",
                          std::string(method) + " " + std::string(path).substr(0, 512),
                          fleet::Outcome::kDenied, why.code + ": " + why.message);
  if (!s.ok()) log::Get("fleet")->warn("auditing a refused request: {}", s.error().ToString());
}

}  // namespace edgeprune::api
