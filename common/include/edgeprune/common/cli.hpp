#pragma once
// Command-line plumbing shared by edgeprune-server and edgeprune-agent: a table of subcommands
// ("<program> <command> [flags]"), the --config/--set flags every configurable command takes, and
// CLI11 parsing that turns --help and bad flags into an exit code.
//
// Thread-safety: pure functions over their arguments.

#include <CLI/CLI.hpp>

#include <optional>
#include <string>
#include <vector>

namespace edgeprune::cli {

using CommandFn = int (*)(int argc, char** argv);

struct Command {
  const char* name;
  const char* help;
  CommandFn run;  // receives argv shifted so argv[0] is the command name
};

// Runs the command named by argv[1] (default_command when there is none); prints the table for
// help, -h and --help (exit 0) and for an unknown command (exit 2).
int Dispatch(const char* program, const std::vector<Command>& commands,
             const char* default_command, int argc, char** argv);

struct ConfigFlags {
  std::string file;                    // --config: TOML file
  std::vector<std::string> overrides;  // --set section.key=value, repeatable
};

void AddConfigFlags(CLI::App& app, ConfigFlags& flags);

// Parses argv; returns an exit code when the command must stop here: 0 after --help, 2 after a
// bad flag (the problem is printed).
std::optional<int> Parse(CLI::App& app, int argc, char** argv);

}  // namespace edgeprune::cli
