#include "agent/app/commands.hpp"

#include <cstdio>
#include <vector>

#include "agent/app/agent_commands.hpp"
#include "edgeprune/common/cli.hpp"

namespace edgeprune::agent {
namespace {

int RunVersion(int, char**) {
  std::printf("edgeprune-agent 0.1.0\n");
  return 0;
}

const std::vector<cli::Command>& Commands() {
  static const std::vector<cli::Command> commands = {
      {"run", "run the agent until SIGINT/SIGTERM (enrolls first when needed)", RunRun},
      {"enroll", "enroll this device with a one-time token", RunEnroll},
      {"profile", "measure this device and print its profile", RunProfile},
      {"microbench", "run the LibTorch microbenchmarks in this process", RunMicrobenchCommand},
      {"version", "print the version", RunVersion},
  };
  return commands;
}

}  // namespace

int Dispatch(int argc, char** argv) {
  return cli::Dispatch("edgeprune-agent", Commands(), "run", argc, argv);
}

}  // namespace edgeprune::agent
