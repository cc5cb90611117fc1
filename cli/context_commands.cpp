// login and context: where the CLI's contexts come from (cli/contexts.hpp). `login` checks a token
// against the server before it stores it (mode 0600) and never echoes or prints it.
#include <termios.h>
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "cli/command.hpp"
#include "cli/exit_codes.hpp"
#include "cli/output.hpp"
#include "edgeprune/common/fs.hpp"
#include "edgeprune/common/json.hpp"

namespace edgeprune::ctl {
namespace {

namespace bj = boost::json;

std::string ConfigPath(const Session& s) {
  return s.flags.config.empty() ? DefaultConfigPath() : s.flags.config;
}

// One line from stdin; on a terminal with a prompt and without echo.
Result<std::string> ReadTokenFromStdin() {
  const bool tty = ::isatty(STDIN_FILENO) == 1;
  termios saved{};
  if (tty) {
    std::fprintf(stderr, "token: ");
    std::fflush(stderr);
    ::tcgetattr(STDIN_FILENO, &saved);
    termios quiet = saved;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    ::tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
  }
  std::string line;
  std::getline(std::cin, line);
  if (tty) {
    ::tcsetattr(STDIN_FILENO, TCSANOW, &saved);
    std::fprintf(stderr, "\n");
  }
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
  if (line.empty()) return UsageError("no token on stdin (or give --token-file)");
  return line;
}

std::string Absolute(const std::string& path) {
  if (path.empty() || path[0] == '/') return path;
  char buf[PATH_MAX];
  if (::realpath(path.c_str(), buf)) return buf;
  return path;
}

Status Login(Session& s) {
  const std::string path = ConfigPath(s);
  EP_ASSIGN_OR_RETURN(ContextFile file, ContextFile::Load(path));
  const std::string name = !s.flags.context.empty() ? s.flags.context
                           : !file.current.empty()   ? file.current
                                                     : "default";
  Context c = file.contexts.count(name) ? file.contexts[name] : Context{};
  if (!s.flags.server.empty()) c.server = s.flags.server;
  if (!s.flags.ca.empty()) c.ca = Absolute(s.flags.ca);
  if (c.server.empty()) return UsageError("give --server https://HOST:PORT for context '" + name + "'");
  Target target;
  target.context = name;
  EP_RETURN_IF_ERROR(ParseServerUrl(c.server, target));
  target.ca = c.ca;
  if (!s.flags.token_file.empty()) {
    EP_ASSIGN_OR_RETURN(target.token, ReadTokenFile(s.flags.token_file));
  } else {
    EP_ASSIGN_OR_RETURN(target.token, ReadTokenFromStdin());
  }
  EP_ASSIGN_OR_RETURN(auto api, ApiClient::Open(target, {s.flags.verbose, s.flags.timeout_s}));
  // Any valid token may list devices (viewer and up): the cheapest proof that it works here.
  auto check = api->Get("/api/v1/devices?limit=1");
  if (!check.ok()) return check.error().WithContext("the server refused the token");
  c.token_file = TokenPathFor(path, name);
  EP_RETURN_IF_ERROR(fs::EnsureDir(c.token_file.substr(0, c.token_file.find_last_of('/')), 0700));
  EP_RETURN_IF_ERROR(fs::WriteFileAtomic(c.token_file, target.token + "\n", 0600));
  file.contexts[name] = c;
  file.current = name;
  EP_RETURN_IF_ERROR(file.Save());
  PrintOut("logged in to " + c.server + " as context '" + name + "' (token stored in " + c.token_file + ")");
  return Ok();
}

}  // namespace

void AddContextCommands(CLI::App& app, Chosen& chosen) {
  AddVerb(&app, "login", "check a token (stdin or --token-file) and store it for a context", chosen,
          Needs::kNothing, Login);

  auto* noun = app.add_subcommand("context", "the CLI's contexts (server, CA, token file)")->require_subcommand(1);
  AddVerb(noun, "ls", "list contexts", chosen, Needs::kNothing, [](Session& s) -> Status {
    EP_ASSIGN_OR_RETURN(ContextFile file, ContextFile::Load(ConfigPath(s)));
    if (s.json()) {
      auto text = fs::ReadFile(file.path, 1 << 20);
      PrintOut(text.ok() ? *text : std::string(R"({"current": "", "contexts": {}})"));
      return Ok();
    }
    Table t({"", "name", "server", "ca", "token file"});
    for (const auto& [name, c] : file.contexts) {
      t.Row({name == file.current ? "*" : "", name, c.server, c.ca.empty() ? "-" : c.ca,
             c.token_file.empty() ? "-" : c.token_file});
    }
    PrintOut(t.Render());
    return Ok();
  });
  auto name = std::make_shared<std::string>();
  auto* v = AddVerb(noun, "use", "make a context the current one", chosen, Needs::kNothing,
                    [name](Session& s) -> Status {
                      EP_ASSIGN_OR_RETURN(ContextFile file, ContextFile::Load(ConfigPath(s)));
                      if (!file.contexts.count(*name)) {
                        return MakeError(ErrorKind::kNotFound, "context_not_found",
                                         "no context '" + *name + "' in " + file.path);
                      }
                      file.current = *name;
                      EP_RETURN_IF_ERROR(file.Save());
                      PrintOut("current context: " + *name);
                      return Ok();
                    });
  v->add_option("name", *name, "context name")->required();
}

}  // namespace edgeprune::ctl
