#pragma once
// What the state handlers share: settings, the state directory, the identity once enrolled, the
// mTLS connection to the server and what the last heartbeat said.
//
// Thread-safety: owned by the state machine's thread; not shared.

#include <chrono>
#include <functional>
#include <memory>
#include <optional>

#include "agent/app/agent_config.hpp"
#include "agent/enroll/server_api.hpp"
#include "agent/state/backoff.hpp"
#include "agent/state/machine.hpp"
#include "agent/state/state_dir.hpp"
#include "edgeprune/common/wire/heartbeat.hpp"
#include "edgeprune/common/wire/profile.hpp"

namespace edgeprune::agent {

struct AgentContext {
  AgentContext(AgentSettings s, StateDir d)
      : settings(std::move(s)), dir(std::move(d)), jitter(std::chrono::milliseconds(1),
                                                          std::chrono::milliseconds(1),
                                                          std::random_device{}()) {}

  AgentSettings settings;
  StateDir dir;
  std::optional<Identity> identity;
  bool identity_rejected = false;  // the server refused our certificate (revoked?)
  std::optional<wire::DeviceProfile> measured;  // measured once per process
  std::optional<wire::HeartbeatResponse> last_heartbeat;  // its desired_state drives updates
  std::chrono::steady_clock::time_point last_heartbeat_at{};  // when the server last answered one
  std::optional<std::string> installed_variant;  // set by the install step; sent in heartbeats
  // Whether a variant was refused for good (the poll state then does not ask for it again).
  std::function<bool(const std::string&)> refused_variant;
  StateId current = StateId::kEnroll;
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  Backoff jitter;  // spreads heartbeat intervals
  std::function<std::int64_t()> now_s = [] {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  };

  // The mTLS connection for the current identity, made on first use.
  Result<ServerApi*> Api() {
    if (!identity) {
      return MakeError(ErrorKind::kFailedPrecondition, "not_enrolled", "the agent is not enrolled");
    }
    if (!api_) {
      EP_ASSIGN_OR_RETURN(api_, ServerApi::Connect({identity->server_url, dir.server_ca_path(),
                                                    dir.certificate_path(), dir.key_path(),
                                                    settings.request_timeout}));
    }
    return api_.get();
  }
  // Drops the connection (after enrollment or renewal changed the certificate).
  void ResetApi() { api_.reset(); }

 private:
  std::unique_ptr<ServerApi> api_;
};

// Which event an error from an mTLS call means: a refused identity, or a failure to retry.
inline Event EventForCallError(const Error& e) {
  return e.kind == ErrorKind::kUnauthenticated || e.kind == ErrorKind::kPermissionDenied
             ? Event::kIdentityRejected
             : Event::kFailed;
}

}  // namespace edgeprune::agent
