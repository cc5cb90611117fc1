#include "edgeprune/common/cli.hpp"

#include <cstdio>

namespace edgeprune::cli {
namespace {

void PrintUsage(const char* program, const std::vector<Command>& commands) {
  std::fprintf(stderr, "usage: %s <command> [flags]\n\ncommands:\n", program);
  for (const auto& c : commands) std::fprintf(stderr, "  %-10s %s\n", c.name, c.help);
  std::fprintf(stderr, "\n`%s <command> --help` describes a command's flags.\n", program);
}

}  // namespace

int Dispatch(const char* program, const std::vector<Command>& commands,
             const char* default_command, int argc, char** argv) {
  const std::string name = argc >= 2 ? argv[1] : default_command;
  if (name == "-h" || name == "--help" || name == "help") {
    PrintUsage(program, commands);
    return 0;
  }
  for (const auto& c : commands) {
    if (name != c.name) continue;
    if (argc >= 2) return c.run(argc - 1, argv + 1);
    char* args[] = {const_cast<char*>(c.name), nullptr};
    return c.run(1, args);
  }
  std::fprintf(stderr, "%s: unknown command '%s'\n\n", program, name.c_str());
  PrintUsage(program, commands);
  return 2;
}

void AddConfigFlags(CLI::App& app, ConfigFlags& flags) {
  app.add_option("--config", flags.file, "TOML configuration file")->check(CLI::ExistingFile);
  app.add_option("--set", flags.overrides, "override one key: section.key=value (repeatable)")
      ->take_all();
}

std::optional<int> Parse(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);  // prints the problem and the usage line
    return 2;
  }
  return std::nullopt;
}

}  // namespace edgeprune::cli
