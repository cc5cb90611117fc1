#pragma once
// The agent's commands (registered in commands.cpp):
//   edgeprune-agent run     [--config f.toml] [--set k=v]...   the daemon
//   edgeprune-agent enroll  --server URL --token T --ca ca.pem [--state-dir D] [--config] [--set]
//   edgeprune-agent profile [--config] [--set]                  measure and print the profile JSON

namespace edgeprune::agent {

int RunRun(int argc, char** argv);
int RunEnroll(int argc, char** argv);
int RunProfile(int argc, char** argv);

}  // namespace edgeprune::agent
