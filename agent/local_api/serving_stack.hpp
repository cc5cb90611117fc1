#pragma once
// Everything the agent needs to serve, built in order from config and the state dir, for the
// agent's run command to own: trusted keyring → variant store → runtime → probe set → updater →
// telemetry collector, queue and reporter → local API. Start() restores the installed variant
// (if any) and opens the local API. These are mechanisms: the state machine's handlers
// (agent/state) drive them and keep the loop's state themselves.
//
// Config keys (AddServingKeys): runtime.threads, runtime.module, runtime.warmup_iterations,
// probe.images,
// probe.labels, probe.samples, trust.keys_dir, local_api.host, local_api.port,
// local_api.threads, local_api.max_body_bytes, download.chunk_bytes, download.max_bytes_per_s,
// telemetry.interval_s, telemetry.batch_size.
//
// Thread-safety: build, Start() and Stop() on one thread; the parts are as thread-safe as stated
// in their own headers.

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "agent/download/variant_updater.hpp"
#include "agent/local_api/local_api_server.hpp"
#include "agent/telemetry/telemetry_reporter.hpp"
#include "edgeprune/common/config.hpp"

namespace edgeprune::agent {

void AddServingKeys(ConfigSchema& schema);

class ServingStack {
 public:
  // client gives the mTLS connection to the server when there is one; download_wait (optional)
  // is how a rate-capped download waits between chunks (DownloadOptions::wait: false ends the
  // download, e.g. when the agent stops; the daemon also heartbeats in it).
  static Result<std::unique_ptr<ServingStack>> Create(
      const Config& config, const std::string& state_root, ClientProvider client,
      std::function<bool(std::chrono::milliseconds)> download_wait = {});
  ~ServingStack();

  // Restores the installed variant and starts the local API.
  Status Start();
  void Stop();

  // One telemetry interval: record a report, then try to send what is queued. A send failure is
  // returned but the report stays queued.
  Result<FlushStats> TelemetryTick(std::int64_t now_ms);

  ModelRuntime& runtime() { return *runtime_; }
  VariantUpdater& updater() { return *updater_; }
  std::optional<std::string> installed_variant() const;
  std::uint16_t local_api_port() const { return api_ ? api_->port() : 0; }
  // telemetry.interval_s: how often the serve state calls TelemetryTick.
  std::chrono::seconds telemetry_interval() const { return telemetry_interval_; }

 private:
  ServingStack() = default;
  // Telemetry counts (made, queued) onto the local API's /metrics.
  void PublishTelemetryCounts();

  LocalApiOptions api_options_;
  std::chrono::seconds telemetry_interval_{60};
  SenderOptions sender_options_;
  ClientProvider client_;
  std::shared_ptr<const TrustedKeyring> keyring_;
  std::unique_ptr<VariantStore> store_;
  std::unique_ptr<ModelRuntime> runtime_;
  std::shared_ptr<const ProbeSet> probe_;
  std::unique_ptr<VariantUpdater> updater_;
  std::unique_ptr<TelemetryCollector> collector_;
  std::unique_ptr<TelemetryQueue> queue_;
  std::unique_ptr<TelemetryReporter> reporter_;
  std::unique_ptr<LocalApiServer> api_;
};

}  // namespace edgeprune::agent
