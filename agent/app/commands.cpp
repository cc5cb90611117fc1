#include "agent/app/commands.hpp"

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "agent/app/agent_commands.hpp"

namespace edgeprune::agent {
namespace {

using CommandFn = int (*)(int argc, char** argv);

struct Command {
  const char* name;
  const char* help;
  CommandFn run;  // receives argv shifted so argv[0] is the command name
};

int RunVersion(int, char**) {
  std::printf("edgeprune-agent 0.1.0\n");
  return 0;
}

const std::vector<Command>& Commands() {
  static const std::vector<Command> commands = {
      {"run", "run the agent until SIGINT/SIGTERM (enrolls first when needed)", RunRun},
      {"enroll", "enroll this device with a one-time token", RunEnroll},
      {"profile", "measure this device and print its profile", RunProfile},
      {"version", "print the version", RunVersion},
  };
  return commands;
}

void PrintUsage() {
  std::fprintf(stderr, "usage: edgeprune-agent <command> [flags]\n\ncommands:\n");
  for (const auto& c : Commands()) std::fprintf(stderr, "  %-10s %s\n", c.name, c.help);
  std::fprintf(stderr, "\n`edgeprune-agent <command> --help` describes a command's flags.\n");
}

}  // namespace

int Dispatch(int argc, char** argv) {
  std::string name = argc >= 2 ? argv[1] : "run";
  if (name == "-h" || name == "--help" || name == "help") {
    PrintUsage();
    return 0;
  }
  for (const auto& c : Commands()) {
    if (name == c.name) {
      if (argc >= 2) return c.run(argc - 1, argv + 1);
      char* args[] = {const_cast<char*>(c.name), nullptr};
      return c.run(1, args);
    }
  }
  std::fprintf(stderr, "edgeprune-agent: unknown command '%s'\n\n", name.c_str());
  PrintUsage();
  return 2;
}

}  // namespace edgeprune::agent
