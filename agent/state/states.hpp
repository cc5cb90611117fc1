#pragma once
// Every state's handler (machine.hpp has the table), on the one AgentContext. Each runs one step
// and reports an event; the mechanisms they call (enroll/, profile/, download/, local_api/) know
// nothing of the machine.
//
//   enroll    done when an identity exists and was not rejected; else key + CSR + token → identity
//   profile   measure once per process, PUT /agent/v1/profile
//   renew     CSR over the same key, POST /agent/v1/renew, swap the certificate
//   poll      renewal due? else heartbeat; a desired variant different from the installed one
//             (and not refused for good) is kUpdateAvailable
//   serve     poll's step, plus a telemetry tick once per telemetry interval and a flush of the
//             variant events the server has not recorded yet (poll runs the same handler, so an
//             agent restarted into poll with an installed variant reports like one that just
//             installed)
//   download  fetch + check manifest and signature, fetch the payload (resumable)   → kDone
//   verify    payload digest and spec, then the runtime loads and probes the model  → kDone
//   install   move into place, record, hot swap, report "installed"                  → kDone
//
// How download/verify/install treat a failure is decided by the error's Retry, never its code:
//   kTransient  kFailed: retried in place after the machine's backoff
//   kLimited    reported ("refused", with the attempt number) and retried from byte 0; after
//               max_integrity_attempts in a row refused for good: kAbandoned
//   kPermanent  refused for good and reported ("check_failed" when the model failed its check in
//               verify, else "refused"): kAbandoned. A permanent kNotFound is the server no longer
//               offering the variant (the assignment changed): dropped without a report and
//               kAbandoned; the next heartbeat says what is wanted, and it may be taken again.
//
// Thread-safety: handlers run on the state machine's thread only.

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "agent/state/agent_context.hpp"
#include "agent/state/machine.hpp"

namespace edgeprune::agent {

std::unique_ptr<StateHandler> MakeEnrollState(AgentContext& ctx);
std::unique_ptr<StateHandler> MakeProfileState(AgentContext& ctx);
std::unique_ptr<StateHandler> MakeRenewState(AgentContext& ctx);
// The heartbeat step of poll and serve.
std::unique_ptr<StateHandler> MakePollState(AgentContext& ctx);
// serve (and poll): telemetry tick, event flush, then `heartbeat`'s step.
std::unique_ptr<StateHandler> MakeServeState(AgentContext& ctx,
                                             std::unique_ptr<StateHandler> heartbeat);
std::unique_ptr<StateHandler> MakeDownloadState(AgentContext& ctx);
std::unique_ptr<StateHandler> MakeVerifyState(AgentContext& ctx);
std::unique_ptr<StateHandler> MakeInstallState(AgentContext& ctx);

// The keep-alive task (see KeepAlive): a heartbeat whenever the server's interval has passed
// since the last answer. Its answer refreshes the desired variant, so a withdrawn assignment is
// seen by the next retry of a download.
std::function<std::chrono::milliseconds()> MakeHeartbeatKeepAlive(AgentContext& ctx);

// Registers every state's handler on `machine`, and the heartbeat keep-alive for the states that
// do not heartbeat themselves (download, verify, install; also set on ctx.keepalive for the
// download's own waits). `heartbeat` replaces the poll step inside poll and serve (tests stand in
// one that sends nothing); with it, no keep-alive is set.
void RegisterStates(Machine& machine, AgentContext& ctx,
                    std::function<std::unique_ptr<StateHandler>()> heartbeat = {});

// How a failed download/verify/install step goes on (see above). refusal_event is what a
// permanent refusal is reported as ("refused" or "check_failed").
StepResult UpdateStepFailed(AgentContext& ctx, const std::string& variant_id, const Error& error,
                            const char* refusal_event);

// Renewal is due at two thirds of the certificate's validity.
bool RenewalDue(const Identity& identity, std::int64_t now_s);

// The whole enrollment exchange, also used by `edgeprune-agent enroll`.
Result<Identity> EnrollOnce(const AgentSettings& settings, const StateDir& dir);

}  // namespace edgeprune::agent
