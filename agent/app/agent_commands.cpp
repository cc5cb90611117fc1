#include "agent/app/agent_commands.hpp"

#include <CLI/CLI.hpp>

#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "agent/state/agent_config.hpp"
#include "agent/app/daemon.hpp"
#include "agent/profile/measure.hpp"
#include "agent/state/states.hpp"
#include "edgeprune/common/cli.hpp"
#include "edgeprune/common/json.hpp"
#include "edgeprune/common/log.hpp"

namespace edgeprune::agent {
namespace {

using cli::ConfigFlags;
using cli::AddConfigFlags;
using cli::Parse;

// Loads the config; prints every problem and returns nullopt on failure.
std::optional<Config> LoadConfig(const ConfigFlags& flags) {
  auto config = Config::Load(AgentConfigSchema(), flags.file, flags.overrides);
  if (!config.ok()) {
    std::fprintf(stderr, "edgeprune-agent: %s\n", config.error().message.c_str());
    return std::nullopt;
  }
  if (auto s = log::SetLevel(config->GetString("log.level")); !s.ok()) {
    std::fprintf(stderr, "edgeprune-agent: %s\n", s.error().message.c_str());
    return std::nullopt;
  }
  return std::move(config).value();
}

std::optional<AgentSettings> Load(const ConfigFlags& flags) {
  auto config = LoadConfig(flags);
  if (!config) return std::nullopt;
  return SettingsFrom(*config);
}

}  // namespace

int RunRun(int argc, char** argv) {
  CLI::App app{"Run the agent: enroll if needed, report the profile, heartbeat until SIGTERM",
               "edgeprune-agent run"};
  ConfigFlags flags;
  AddConfigFlags(app, flags);
  if (auto code = Parse(app, argc, argv)) return *code;
  auto config = LoadConfig(flags);
  if (!config) return 2;
  return RunDaemon(*config, SettingsFrom(*config));
}

int RunEnroll(int argc, char** argv) {
  CLI::App app{"Enroll this device once: make its key, send a CSR with the token, store the "
               "certificate in the state directory",
               "edgeprune-agent enroll"};
  ConfigFlags flags;
  std::string server, token, ca, state_dir;
  app.add_option("--server", server, "server URL, https://host:port");
  app.add_option("--token", token, "enrollment token from POST /api/v1/enrollment-tokens");
  app.add_option("--ca", ca, "PEM CA of the server certificate")->check(CLI::ExistingFile);
  app.add_option("--state-dir", state_dir, "state directory (default: agent.state_dir)");
  AddConfigFlags(app, flags);
  if (auto code = Parse(app, argc, argv)) return *code;
  auto settings = Load(flags);
  if (!settings) return 2;
  if (!server.empty()) settings->server_url = server;
  if (!token.empty()) settings->enrollment_token = token;
  if (!ca.empty()) settings->server_ca = ca;
  if (!state_dir.empty()) settings->state_dir = state_dir;
  if (settings->enrollment_token.empty()) {
    std::fprintf(stderr, "edgeprune-agent: enroll needs --token (or agent.enrollment_token)\n");
    return 2;
  }
  auto dir = StateDir::Open(settings->state_dir);
  if (!dir.ok()) {
    std::fprintf(stderr, "edgeprune-agent: %s\n", dir.error().ToString().c_str());
    return 1;
  }
  if (dir->HasIdentity()) {
    auto id = dir->LoadIdentity();
    std::fprintf(stderr, "edgeprune-agent: already enrolled as %s in %s; nothing changed\n",
                 id.ok() ? id->device_id.c_str() : "?", settings->state_dir.c_str());
    return 3;
  }
  auto id = EnrollOnce(*settings, *dir);
  if (!id.ok()) {
    std::fprintf(stderr, "edgeprune-agent: enrollment failed: %s\n", id.error().ToString().c_str());
    return 1;
  }
  std::printf("enrolled as %s\n", id->device_id.c_str());
  return 0;
}

int RunProfile(int argc, char** argv) {
  CLI::App app{"Measure this device and print its profile as JSON (nothing is sent)",
               "edgeprune-agent profile"};
  ConfigFlags flags;
  AddConfigFlags(app, flags);
  if (auto code = Parse(app, argc, argv)) return *code;
  auto settings = Load(flags);
  if (!settings) return 2;
  auto p = MeasureProfile({.data_dir = settings->state_dir.empty() ? "." : settings->state_dir,
                           .bench_threads = settings->bench_threads,
                           .bench_ms = settings->bench_ms,
                           .caps = settings->caps,
                           .backend_path = settings->runtime_module,
                           .agent_bin = ""});
  if (!p.ok()) {
    std::fprintf(stderr, "edgeprune-agent: %s\n", p.error().ToString().c_str());
    return 1;
  }
  std::printf("%s\n", json::SerializePretty(wire::ToJson(*p)).c_str());
  return 0;
}

int RunMicrobenchCommand(int argc, char** argv) {
  CLI::App app{"Run the LibTorch microbenchmarks in this process and print them (the agent runs "
               "this as a short-lived child when it measures its profile)",
               "edgeprune-agent microbench"};
  bool as_json = false;
  MeasureOptions o;
  app.add_flag("--json", as_json, "print one JSON object: {torch_version, bench}");
  app.add_option("--threads", o.bench_threads, "LibTorch intra-op threads")
      ->check(CLI::Range(1, 256));
  app.add_option("--ms", o.bench_ms, "total time of the microbenchmarks")
      ->check(CLI::Range(40, 60000));
  app.add_option("--module", o.backend_path,
                 "the LibTorch runtime module (default: edgeprune_agent_torch.so next to "
                 "this binary)");
  if (auto code = Parse(app, argc, argv)) return *code;
  auto r = RunMicrobenchHere(o);
  if (!r.ok()) {
    std::fprintf(stderr, "edgeprune-agent: %s\n", r.error().ToString().c_str());
    return 1;
  }
  if (as_json) {
    std::printf("%s\n", json::Serialize(ToJson(*r)).c_str());
  } else {
    std::printf("LibTorch %s, %lld thread(s)\n", r->torch_version.c_str(),
                static_cast<long long>(r->bench.threads));
    std::printf("matmul %.2f GFLOP/s, conv %.2f GMAC/s, dispatch %.4f ms, memory %.2f GB/s\n",
                r->bench.matmul_gflops, r->bench.conv_gmacs_per_s, r->bench.conv_overhead_ms,
                r->bench.mem_bandwidth_gbps);
  }
  return 0;
}

}  // namespace edgeprune::agent
