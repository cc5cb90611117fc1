#pragma once
// Everything the agent needs to serve, built in order from config and the state dir, for the
// agent's run command to own: trusted keyring → variant store → runtime → probe set → updater
// (+ the state machine's download/verify/install handlers) → telemetry collector, queue and
// reporter → local API. Start() restores the installed variant (if any) and opens the local API.
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
#include <memory>
#include <optional>
#include <string>

#include "agent/download/update_states.hpp"
#include "agent/download/variant_updater.hpp"
#include "agent/local_api/local_api_server.hpp"
#include "agent/telemetry/telemetry_reporter.hpp"
#include "edgeprune/common/config.hpp"

namespace edgeprune::agent {

void AddServingKeys(ConfigSchema& schema);

class ServingStack {
 public:
  // client gives the mTLS connection to the server when there is one; stop (optional) ends the
  // waits of a rate-capped download when the agent is stopped.
  static Result<std::unique_ptr<ServingStack>> Create(const Config& config,
                                                      const std::string& state_root,
                                                      ClientProvider client,
                                                      std::shared_ptr<StopSignal> stop = nullptr);
  ~ServingStack();

  // Restores the installed variant and starts the local API.
  Status Start();
  void Stop();

  // Registers download/verify/install on the machine; desired_variant is read by download. With
  // a heartbeat factory (making the agent's poll state), also registers poll and serve, each as a
  // heartbeat step (its event drives the machine: kUpdateAvailable → download) plus, once per
  // telemetry.interval_s, a telemetry tick — so an agent restarted into poll with an installed
  // variant reports telemetry and flushes its queue like one that just installed.
  void RegisterStates(Machine& machine, std::function<std::optional<std::string>()> desired_variant,
                      std::function<std::unique_ptr<StateHandler>()> heartbeat = {});

  // One telemetry interval: record a report, then try to send what is queued. A send failure is
  // returned but the report stays queued.
  Result<FlushStats> TelemetryTick(std::int64_t now_ms);

  ModelRuntime& runtime() { return *runtime_; }
  VariantUpdater& updater() { return *updater_; }
  std::optional<std::string> installed_variant() const;
  std::uint16_t local_api_port() const { return api_ ? api_->port() : 0; }
  const std::shared_ptr<UpdateFlow>& flow() const { return flow_; }
  // Runs `tick` (see KeepAlive) while a rate-capped download waits between chunks, so a long
  // download does not silence the heartbeat. Call before the machine runs (same thread).
  void SetDownloadKeepAlive(std::function<std::chrono::milliseconds()> tick) {
    download_keepalive_->tick = std::move(tick);
  }

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
  std::shared_ptr<UpdateFlow> flow_;
  std::shared_ptr<KeepAlive> download_keepalive_ = std::make_shared<KeepAlive>();
  std::unique_ptr<TelemetryCollector> collector_;
  std::unique_ptr<TelemetryQueue> queue_;
  std::unique_ptr<TelemetryReporter> reporter_;
  std::unique_ptr<LocalApiServer> api_;
};

}  // namespace edgeprune::agent
