#include "agent/state/agent_config.hpp"

#include "agent/local_api/serving_stack.hpp"

namespace edgeprune::agent {

ConfigSchema AgentConfigSchema() {
  ConfigSchema s;
  s.String("agent.server_url", "", "server base URL, https://host:port");
  s.String("agent.server_ca", "", "PEM file of the CA that signed the server certificate");
  s.String("agent.state_dir", "edgeprune-agent", "persistent state: identity, state, variants");
  s.String("agent.enrollment_token", "", "one-time token `run` enrolls with when not enrolled");
  s.String("agent.hostname", "", "name reported at enrollment (default: the kernel's nodename)");
  s.Int("agent.bench_threads", 1, 1, 256, "LibTorch intra-op threads for the microbenchmarks");
  s.Int("agent.bench_ms", 1000, 40, 60000, "total time of the microbenchmarks");
  s.Int("agent.heartbeat_interval_s", 10, 1, 3600,
        "heartbeat interval until the server announces its own");
  s.Int("agent.backoff_base_ms", 1000, 1, 3'600'000, "first retry delay after a failure");
  s.Int("agent.backoff_cap_ms", 60000, 1, 86'400'000, "longest retry delay");
  s.Int("agent.request_timeout_ms", 10000, 100, 600'000, "deadline of each step of a request");
  s.Int("caps.memory_reserve_bytes", 0, 0, wire::kMaxRamBytes,
        "RAM reserved for the model (0: no cap)");
  s.Double("caps.latency_slo_ms", 0.0, 0.0, wire::kMaxLatencySloMs,
           "latency objective per inference at batch 1 (0: no cap)");
  s.Int("caps.max_model_bytes", 0, 0, wire::kMaxDiskBytes, "largest variant file (0: no cap)");
  s.String("log.level", "info", "trace, debug, info, warn, error or off");
  AddServingKeys(s);
  return s;
}

AgentSettings SettingsFrom(const Config& c) {
  AgentSettings s;
  s.server_url = c.GetString("agent.server_url");
  s.server_ca = c.GetString("agent.server_ca");
  s.state_dir = c.GetString("agent.state_dir");
  s.enrollment_token = c.GetString("agent.enrollment_token");
  s.hostname = c.GetString("agent.hostname");
  s.bench_threads = c.GetInt("agent.bench_threads");
  s.bench_ms = c.GetInt("agent.bench_ms");
  s.runtime_module = c.GetString("runtime.module");
  s.heartbeat_interval = std::chrono::seconds(c.GetInt("agent.heartbeat_interval_s"));
  s.backoff_base = std::chrono::milliseconds(c.GetInt("agent.backoff_base_ms"));
  s.backoff_cap = std::chrono::milliseconds(c.GetInt("agent.backoff_cap_ms"));
  s.request_timeout = std::chrono::milliseconds(c.GetInt("agent.request_timeout_ms"));
  if (auto v = c.GetInt("caps.memory_reserve_bytes"); v > 0) s.caps.memory_reserve_bytes = v;
  if (auto v = c.GetDouble("caps.latency_slo_ms"); v > 0) s.caps.latency_slo_ms = v;
  if (auto v = c.GetInt("caps.max_model_bytes"); v > 0) s.caps.max_model_bytes = v;
  return s;
}

}  // namespace edgeprune::agent
