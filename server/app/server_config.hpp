#pragma once
// The server's configuration schema: every key with its type, default, bounds and meaning.
// Loaded from `--config file.toml`, EDGEPRUNE_<SECTION>_<KEY> environment variables and
// `--set section.key=value` flags (later wins); all problems are reported at once.
//
// Thread-safety: pure functions; the returned values are immutable.

#include <string>

#include "edgeprune/common/config.hpp"
#include "common/http/server.hpp"

namespace edgeprune::server {

ConfigSchema ServerConfigSchema();

// The HTTPS server's options from a loaded config (server.*, timeouts.*, limits.*).
http::ServerOptions HttpOptionsFrom(const Config& config);

}  // namespace edgeprune::server
