#pragma once
// The agent's commands (registered in commands.cpp):
//   edgeprune-agent run     [--config f.toml] [--set k=v]...   the daemon
//   edgeprune-agent enroll  --server URL --token T --ca ca.pem [--state-dir D] [--config] [--set]
//   edgeprune-agent profile [--config] [--set]                  measure and print the profile JSON
//   edgeprune-agent microbench [--json] [--threads N] [--ms M] [--module path.so]
//                                       the LibTorch microbenchmarks, in the process that runs
//                                       them; `run` and `profile` start it as a child so that
//                                       the daemon does not map LibTorch (profile/measure.hpp)

namespace edgeprune::agent {

int RunRun(int argc, char** argv);
int RunEnroll(int argc, char** argv);
int RunProfile(int argc, char** argv);
int RunMicrobenchCommand(int argc, char** argv);

}  // namespace edgeprune::agent
