#pragma once
// `edgeprune-agent run`: the long-running agent. Opens the state directory, resumes from a saved
// identity (or enrolls with agent.enrollment_token), then runs the state machine until SIGINT or
// SIGTERM. With the serving stack (agent/local_api/serving_stack.hpp) it also restores the
// installed variant, serves the local inference API, follows the desired variant of each
// heartbeat answer through download → verify → install, reports refusals and installs to the
// server, and sends telemetry from its durable queue.
//
// Thread-safety: Run() once per process, from main's thread.

#include "agent/state/agent_config.hpp"
#include "edgeprune/common/config.hpp"

namespace edgeprune::agent {

// Returns the process exit code.
int RunDaemon(const Config& config, const AgentSettings& settings);

}  // namespace edgeprune::agent
