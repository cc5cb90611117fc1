#include "cli/contexts.hpp"

#include <cctype>
#include <charconv>
#include <cstdlib>

#include "cli/exit_codes.hpp"
#include "edgeprune/common/fs.hpp"
#include "edgeprune/common/json.hpp"

namespace edgeprune::ctl {
namespace {

namespace bj = boost::json;

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

std::string DirOf(const std::string& path) {
  auto slash = path.find_last_of('/');
  return slash == std::string::npos ? std::string(".") : path.substr(0, slash);
}

std::string Trim(std::string s) {
  auto first = s.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return "";
  auto last = s.find_last_not_of(" \t\r\n");
  return s.substr(first, last - first + 1);
}

Error Damaged(const std::string& path, const std::string& why) {
  return MakeError(ErrorKind::kInvalidArgument, "invalid_config",
                   "the CLI configuration '" + path + "' " + why);
}

}  // namespace

std::string DefaultConfigPath() {
  if (auto p = Env("EDGEPRUNE_CONFIG"); !p.empty()) return p;
  if (auto x = Env("XDG_CONFIG_HOME"); !x.empty()) return x + "/edgeprune/config.json";
  return Env("HOME") + "/.config/edgeprune/config.json";
}

std::string TokenPathFor(const std::string& config_path, const std::string& context) {
  return DirOf(config_path) + "/tokens/" + context;
}

Result<ContextFile> ContextFile::Load(const std::string& path) {
  ContextFile f;
  f.path = path;
  auto text = fs::ReadFile(path, 1 << 20);
  if (!text.ok()) {
    if (text.error().kind == ErrorKind::kNotFound) return f;
    return text.error();
  }
  auto root = json::ParseObject(*text);
  if (!root.ok()) return Damaged(path, "is not a JSON object: " + root.error().message);
  auto current = json::GetOptString(*root, "current");
  if (!current.ok()) return Damaged(path, current.error().message);
  f.current = current->value_or("");
  if (const auto* contexts = json::FindField(*root, "contexts")) {
    if (!contexts->is_object()) return Damaged(path, "has 'contexts' that is not an object");
    for (const auto& [name, v] : contexts->as_object()) {
      if (!v.is_object()) return Damaged(path, "has context '" + std::string(name) + "' that is not an object");
      Context c;
      for (auto [key, field] : {std::pair{"server", &c.server}, {"ca", &c.ca}, {"token_file", &c.token_file}}) {
        auto s = json::GetOptString(v.as_object(), key);
        if (!s.ok()) return Damaged(path, "context '" + std::string(name) + "': " + s.error().message);
        *field = s->value_or("");
      }
      f.contexts[std::string(name)] = c;
    }
  }
  return f;
}

Status ContextFile::Save() const {
  EP_RETURN_IF_ERROR(fs::EnsureDir(DirOf(path), 0700));
  bj::object contexts_json;
  for (const auto& [name, c] : contexts) {
    contexts_json[name] = bj::object{{"server", c.server}, {"ca", c.ca}, {"token_file", c.token_file}};
  }
  bj::object root{{"current", current}, {"contexts", std::move(contexts_json)}};
  return fs::WriteFileAtomic(path, json::SerializePretty(root) + "\n", 0600);
}

Status ParseServerUrl(const std::string& url, Target& target) {
  const std::string scheme = "https://";
  if (url.rfind(scheme, 0) != 0) {
    return UsageError("the server URL '" + url + "' must start with https://");
  }
  std::string rest = url.substr(scheme.size());
  if (auto slash = rest.find('/'); slash != std::string::npos) {
    if (rest.find_first_not_of('/', slash) != std::string::npos) {
      return UsageError("the server URL '" + url + "' must not name a path");
    }
    rest.resize(slash);
  }
  std::string host = rest, port_text;
  if (!rest.empty() && rest[0] == '[') {  // [v6 literal]:port
    auto close = rest.find(']');
    if (close == std::string::npos) return UsageError("the server URL '" + url + "' has a broken [address]");
    host = rest.substr(1, close - 1);
    if (close + 1 < rest.size()) {
      if (rest[close + 1] != ':') return UsageError("the server URL '" + url + "' is malformed");
      port_text = rest.substr(close + 2);
    }
  } else if (auto colon = rest.rfind(':'); colon != std::string::npos) {
    host = rest.substr(0, colon);
    port_text = rest.substr(colon + 1);
  }
  if (host.empty()) return UsageError("the server URL '" + url + "' names no host");
  unsigned port = 443;
  if (!port_text.empty()) {
    auto [p, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (ec != std::errc() || p != port_text.data() + port_text.size() || port == 0 || port > 65535) {
      return UsageError("the server URL '" + url + "' has a bad port");
    }
  }
  target.url = url;
  target.host = host;
  target.port = static_cast<std::uint16_t>(port);
  return Ok();
}

Result<std::string> ReadTokenFile(const std::string& path) {
  auto text = fs::ReadFile(path, 4096);
  if (!text.ok()) {
    return MakeError(ErrorKind::kUnauthenticated, "no_token",
                     "cannot read the token file: " + text.error().message);
  }
  std::string line = text->substr(0, text->find('\n'));
  line = Trim(line);
  if (line.empty()) {
    return MakeError(ErrorKind::kUnauthenticated, "no_token", "the token file '" + path + "' is empty");
  }
  return line;
}

Result<Target> ResolveTarget(const GlobalFlags& flags, bool need_token) {
  const std::string path = flags.config.empty() ? DefaultConfigPath() : flags.config;
  EP_ASSIGN_OR_RETURN(ContextFile file, ContextFile::Load(path));
  Target t;
  t.context = !flags.context.empty() ? flags.context
              : !Env("EDGEPRUNE_CONTEXT").empty() ? Env("EDGEPRUNE_CONTEXT")
                                                  : file.current;
  Context c;
  if (!t.context.empty()) {
    auto it = file.contexts.find(t.context);
    if (it != file.contexts.end()) {
      c = it->second;
    } else if (!flags.context.empty() || flags.server.empty()) {
      return UsageError("no context '" + t.context + "' in " + path +
                        " (edgeprune context ls; edgeprune login --context " + t.context +
                        " --server URL)");
    }
  }
  const std::string server = !flags.server.empty() ? flags.server : c.server;
  if (server.empty()) {
    return UsageError("no server: give --server https://HOST:PORT or log in (edgeprune login --server ...)");
  }
  EP_RETURN_IF_ERROR(ParseServerUrl(server, t));
  t.ca = !flags.ca.empty() ? flags.ca : c.ca;
  if (!need_token) return t;
  if (auto env = Trim(Env("EDGEPRUNE_TOKEN")); !env.empty()) {
    t.token = env;
  } else if (!flags.token_file.empty() || !c.token_file.empty()) {
    EP_ASSIGN_OR_RETURN(t.token, ReadTokenFile(!flags.token_file.empty() ? flags.token_file : c.token_file));
  } else {
    return MakeError(ErrorKind::kUnauthenticated, "no_token",
                     "no token: run `edgeprune login`, set EDGEPRUNE_TOKEN or give --token-file");
  }
  return t;
}

}  // namespace edgeprune::ctl
