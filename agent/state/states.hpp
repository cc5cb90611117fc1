#pragma once
// The handlers for the states this agent runs now; the full loop adds download, verify, install
// and serve next to them (machine.hpp has the table).
//
// Thread-safety: handlers run on the state machine's thread only.

#include <memory>

#include "agent/state/agent_context.hpp"
#include "agent/state/machine.hpp"

namespace edgeprune::agent {

// enroll: done when an identity exists and was not rejected; else key + CSR + token → identity.
std::unique_ptr<StateHandler> MakeEnrollState(AgentContext& ctx);
// profile: measure once per process, PUT /agent/v1/profile.
std::unique_ptr<StateHandler> MakeProfileState(AgentContext& ctx);
// poll: renewal due? else heartbeat; a desired variant different from the installed one is an
// update.
std::unique_ptr<StateHandler> MakePollState(AgentContext& ctx);
// renew: CSR over the same key, POST /agent/v1/renew, swap the certificate.
std::unique_ptr<StateHandler> MakeRenewState(AgentContext& ctx);

// Renewal is due at two thirds of the certificate's validity.
bool RenewalDue(const Identity& identity, std::int64_t now_s);

// The whole enrollment exchange, also used by `edgeprune-agent enroll`.
Result<Identity> EnrollOnce(const AgentSettings& settings, const StateDir& dir);

}  // namespace edgeprune::agent
