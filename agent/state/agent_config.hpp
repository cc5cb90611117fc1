#pragma once
// The agent's configuration: a TOML file (`--config`), EDGEPRUNE_<SECTION>_<KEY> environment
// variables and `--set section.key=value` flags, validated all at once against this schema.
//
// Thread-safety: pure functions; AgentSettings is a plain value.

#include <chrono>
#include <cstdint>
#include <string>

#include "edgeprune/common/config.hpp"
#include "edgeprune/common/wire/profile.hpp"

namespace edgeprune::agent {

ConfigSchema AgentConfigSchema();

struct AgentSettings {
  std::string server_url;
  std::string server_ca;          // PEM CA of the server certificate
  std::string state_dir;
  std::string enrollment_token;   // used by `run` when the agent has no identity yet
  std::string hostname;           // reported at enrollment; empty = the kernel's nodename
  std::int64_t bench_threads = 1;
  std::int64_t bench_ms = 1000;
  std::string runtime_module;     // runtime.module: the LibTorch module; empty = next to the binary
  std::chrono::seconds heartbeat_interval{10};  // until the server says otherwise
  std::chrono::milliseconds backoff_base{1000};
  std::chrono::milliseconds backoff_cap{60000};
  std::chrono::milliseconds request_timeout{10000};
  wire::DeviceCaps caps;          // declared by the operator of this device
};

AgentSettings SettingsFrom(const Config& config);

}  // namespace edgeprune::agent
