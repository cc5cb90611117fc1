#pragma once
// Where the CLI talks to and as whom. A context names a server URL, the CA file that signed its
// certificate and the file holding the operator's bearer token; contexts live in one JSON file
// ($EDGEPRUNE_CONFIG, else $XDG_CONFIG_HOME/edgeprune/config.json, else
// ~/.config/edgeprune/config.json) that `edgeprune login` and `edgeprune context` write. JSON, not
// the server's TOML Config: contexts are a map the CLI writes back, the TOML Config a fixed schema
// that is only read.
//
// Thread-safety: plain values and free functions; the CLI is single-threaded.

#include <cstdint>
#include <map>
#include <string>

#include "edgeprune/common/result.hpp"

namespace edgeprune::ctl {

struct Context {
  std::string server{};      // https://host[:port]
  std::string ca{};          // PEM CA file; empty: the system trust store
  std::string token_file{};  // file holding the bearer token (mode 0600)
};

struct ContextFile {
  std::string path{};
  std::string current{};
  std::map<std::string, Context> contexts{};

  // A missing file is an empty one; a damaged one is an error naming the file.
  static Result<ContextFile> Load(const std::string& path);
  // Written atomically, mode 0600 (it names where the tokens are), its directory made 0700.
  Status Save() const;
};

std::string DefaultConfigPath();
// Where `login` stores a context's token: <config dir>/tokens/<context>.
std::string TokenPathFor(const std::string& config_path, const std::string& context);

// What the command line says, before a context fills the gaps.
struct GlobalFlags {
  std::string config{};      // --config (default DefaultConfigPath())
  std::string context{};     // --context (default: the file's current one, else EDGEPRUNE_CONTEXT)
  std::string server{};      // --server overrides the context's
  std::string ca{};          // --ca overrides the context's
  std::string token_file{};  // --token-file overrides the context's
  std::string output = "table";
  bool verbose = false;
  int timeout_s = 30;
};

// The server to call and the credentials to call it with.
struct Target {
  std::string context{};  // name, "" when none was used
  std::string url{};      // https://host:port, as given
  std::string host{};
  std::uint16_t port = 443;
  std::string ca{};
  std::string token{};  // never printed
};

// Merges flags over the context (EDGEPRUNE_TOKEN over every token file). need_token: a missing
// token is an error ("no_token", kUnauthenticated) instead of an empty one.
Result<Target> ResolveTarget(const GlobalFlags& flags, bool need_token);
// "https://host[:port][/]" → host and port; anything else is "invalid_server" (usage).
Status ParseServerUrl(const std::string& url, Target& target);
// Reads a token file: the first line, surrounding white space trimmed.
Result<std::string> ReadTokenFile(const std::string& path);

}  // namespace edgeprune::ctl
