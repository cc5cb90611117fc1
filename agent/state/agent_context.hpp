#pragma once
// The agent's state, in one place with one owner: everything the state handlers (states.hpp)
// read and change between steps. Settings and the state directory; the identity once enrolled and
// the mTLS connection to the server; what the last heartbeat said; the installed variant; what
// the update flow remembers across attempts (variants refused for good, payload integrity
// refusals in a row) and the variant events the server has not recorded yet. The mechanisms the
// handlers call (the serving stack, the variant updater) hold no loop state: they are reached
// through the pointers below, which the daemon sets (tests point them at their own).
//
// Thread-safety: owned by the state machine's thread; not shared.

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>

#include "agent/download/variant_updater.hpp"
#include "agent/enroll/server_api.hpp"
#include "agent/local_api/serving_stack.hpp"
#include "agent/state/agent_config.hpp"
#include "agent/state/backoff.hpp"
#include "agent/state/machine.hpp"
#include "agent/state/state_dir.hpp"
#include "edgeprune/common/wire/heartbeat.hpp"
#include "edgeprune/common/wire/profile.hpp"

namespace edgeprune::agent {

// What the download → verify → install steps remember across steps and attempts.
struct UpdateProgress {
  std::set<std::string> refused;  // variant ids refused for a reason a retry cannot fix
  // Payload integrity refusals (Retry::kLimited) in a row per variant, and how many make the
  // refusal final (until the server assigns another variant or the agent restarts).
  std::map<std::string, int> integrity_failures;
  int max_integrity_attempts = 3;
  std::string last_error;  // for diagnostics
};

// A variant event for the server: "installed", "refused" (signature, version, manifest, payload)
// or "check_failed" (the model did not load or failed its check), with the reason.
struct VariantEvent {
  std::string variant_id, event, reason;
};

class AgentContext {
 public:
  AgentContext(AgentSettings s, StateDir d);
  AgentContext(const AgentContext&) = delete;
  AgentContext& operator=(const AgentContext&) = delete;

  // Identity.
  AgentSettings settings;
  StateDir dir;
  std::optional<Identity> identity;
  bool identity_rejected = false;  // the server refused our certificate (revoked?)
  std::optional<wire::DeviceProfile> measured;  // measured once per process

  // The server's side.
  std::optional<wire::HeartbeatResponse> last_heartbeat;  // its desired_state drives updates
  std::chrono::steady_clock::time_point last_heartbeat_at{};  // when the server last answered one

  // Serving and updating.
  ServingStack* serving = nullptr;               // telemetry of the serve state; null: none
  VariantUpdater* updater = nullptr;             // download/verify/install; null: those steps fail
  std::optional<std::string> installed_variant;  // refreshed on entering serve; sent in heartbeats
  UpdateProgress update;
  // The heartbeat run while the update states wait (the machine's backoff in download, verify and
  // install; a rate-capped download's waits between chunks): set by RegisterStates.
  std::shared_ptr<KeepAlive> keepalive = std::make_shared<KeepAlive>();

  // Variant events not yet recorded by the server, oldest first: Report() queues, FlushReports()
  // sends in order until one fails, so a refusal made while the server is unreachable (and never
  // retried, being final) still reaches it. Kept in memory: a restarted agent meets the variant
  // again and reports afresh.
  std::deque<VariantEvent> unsent;
  static constexpr std::size_t kMaxUnsent = 100;  // beyond, the oldest are dropped (logged)
  // Sends one event; false when it should be sent again later. Empty: POST it to the server
  // (tests replace it).
  std::function<bool(const std::string& variant_id, const std::string& event,
                     const std::string& reason)>
      report;
  void Report(const std::string& variant_id, const std::string& event, const std::string& reason);
  void FlushReports();

  // The machine.
  StateId current = StateId::kEnroll;
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  Backoff jitter;  // spreads heartbeat intervals
  std::function<std::int64_t()> now_s = [] {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  };

  // The variant the server wants (from the last heartbeat answer); nullopt: none assigned.
  std::optional<std::string> DesiredVariant() const;
  // Whether a variant was refused for good (the poll state then does not ask for it again).
  bool Refused(const std::string& variant_id) const {
    return update.refused.count(variant_id) != 0;
  }

  // The mTLS connection for the current identity, made on first use.
  Result<ServerApi*> Api();
  // Drops the connection (after enrollment or renewal changed the certificate).
  void ResetApi() { api_.reset(); }

 private:
  // POSTs one event; an event the server refuses as such (a permanent error) is not sent again.
  bool SendVariantEvent(const VariantEvent& e);

  std::unique_ptr<ServerApi> api_;
};

// Which event an error from an mTLS call means: a refused identity, or a failure to retry.
inline Event EventForCallError(const Error& e) {
  return e.kind == ErrorKind::kUnauthenticated || e.kind == ErrorKind::kPermissionDenied
             ? Event::kIdentityRejected
             : Event::kFailed;
}

}  // namespace edgeprune::agent
