#pragma once
// A real Authenticator over in-memory tables: bearer tokens → roles, device CNs → devices.

#include <map>
#include <set>
#include <string>

#include "common/http/authenticator.hpp"

namespace edgeprune::http::testing {

class MapAuthenticator : public Authenticator {
 public:
  std::map<std::string, Role, std::less<>> tokens;
  std::set<std::string, std::less<>> devices;  // enrolled certificate CNs

  Result<Principal> AuthenticateBearer(std::string_view token) override {
    auto it = tokens.find(token);
    if (it == tokens.end()) {
      return MakeError(ErrorKind::kUnauthenticated, "invalid_token", "unknown or revoked token");
    }
    return Principal{Principal::Kind::kUser, "user-" + std::string(token), it->second};
  }
  Result<Principal> AuthenticateDevice(const tls::PeerCertificate& c) override {
    if (!devices.count(c.subject_cn)) {
      return MakeError(ErrorKind::kUnauthenticated, "unknown_device",
                       "device " + c.subject_cn + " is not enrolled");
    }
    return Principal{Principal::Kind::kDevice, c.subject_cn, Role::kViewer};
  }
};

}  // namespace edgeprune::http::testing
