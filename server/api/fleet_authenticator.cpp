#include "server/api/fleet_authenticator.hpp"

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

}  // namespace edgeprune::api
