#pragma once
// `edgeprune-agent run`: the long-running agent. Opens the state directory, resumes from a saved
// identity (or enrolls with agent.enrollment_token), then runs the state machine until SIGINT or
// SIGTERM.
//
// Thread-safety: Run() once per process, from main's thread.

#include "agent/app/agent_config.hpp"

namespace edgeprune::agent {

// Returns the process exit code.
int RunDaemon(const AgentSettings& settings);

}  // namespace edgeprune::agent
