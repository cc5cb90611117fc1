#include "agent/local_api/serving_stack.hpp"

#include "edgeprune/common/fs.hpp"
#include "edgeprune/common/log.hpp"

namespace edgeprune::agent {
void AddServingKeys(ConfigSchema& schema) {
  schema.Int("runtime.threads", 1, 1, 256, "LibTorch intra-op threads for inference")
      .String("runtime.module", "",
              "the LibTorch runtime module, opened when the first variant is loaded; "
              "default edgeprune_agent_torch.so next to the edgeprune-agent binary")
      .Int("runtime.warmup_iterations", 3, 0, 1000, "forwards on zeros after loading a variant")
      .String("probe.images", "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz",
              "IDX image file of the local probe set, for variants that ship none (gzip or plain)")
      .String("probe.labels", "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz",
              "IDX label file of the local probe set")
      .Int("probe.samples", 200, 0, 100000,
           "local probe samples to use; 0: no local set (variants that ship their own probe "
           "set are still checked on it)")
      .String("trust.keys_dir", "",
              "directory of trusted manifest-signing public keys; default <state>/trusted-keys")
      .String("local_api.host", "127.0.0.1", "address of the local inference API")
      .Int("local_api.port", 8480, 0, 65535, "port of the local inference API (0: any)")
      .Int("local_api.threads", 2, 1, 64,
           "local API I/O threads; each serves its own connections and runs their inferences")
      .Int("local_api.max_body_bytes", 4 * 1024 * 1024, 1024, 256 * 1024 * 1024,
           "largest /v1/infer request body")
      .Int("download.chunk_bytes", 8 * 1024 * 1024, 1024, 64 * 1024 * 1024,
           "payload bytes per Range request; an interrupted download loses at most one chunk")
      .Int("download.max_bytes_per_s", 0, 0, std::int64_t{1} << 40,
           "average payload download rate cap in bytes per second (0: no cap)")
      .Int("telemetry.interval_s", 60, 1, 86400, "seconds between telemetry reports")
      .Int("telemetry.batch_size", 100, 1, 500, "reports per telemetry POST");
}

Result<std::unique_ptr<ServingStack>> ServingStack::Create(const Config& config,
                                                           const std::string& state_root,
                                                           ClientProvider client,
                                                           std::function<bool(std::chrono::milliseconds)> download_wait) {
  std::unique_ptr<ServingStack> s(new ServingStack());
  s->client_ = client;
  // Trusted keys: a directory an operator provisions (or the enrollment step fills).
  std::string keys_dir = config.GetString("trust.keys_dir");
  if (keys_dir.empty()) keys_dir = state_root + "/trusted-keys";
  EP_RETURN_IF_ERROR(fs::EnsureDir(keys_dir, 0700));
  EP_ASSIGN_OR_RETURN(auto keyring, TrustedKeyring::LoadDir(keys_dir));
  if (keyring.empty()) {
    log::Get("agent")->warn("no trusted signing keys in {}: every variant will be refused",
                            keys_dir);
  }
  s->keyring_ = std::make_shared<const TrustedKeyring>(std::move(keyring));
  // Installed variants and their record.
  EP_ASSIGN_OR_RETURN(auto store,
                      VariantStore::Open(state_root + "/variants", state_root + "/installed.json"));
  s->store_ = std::make_unique<VariantStore>(std::move(store));
  // The runtime, and the local probe set for variants that ship none (older servers, built-in
  // data sets the server cannot sample).
  s->runtime_ = std::make_unique<ModelRuntime>(
      RuntimeOptions{static_cast<int>(config.GetInt("runtime.threads")),
                     static_cast<int>(config.GetInt("runtime.warmup_iterations")),
                     config.GetString("runtime.module")});
  if (const auto n = config.GetInt("probe.samples"); n > 0) {
    EP_ASSIGN_OR_RETURN(auto probe, LoadIdxProbeSet(config.GetString("probe.images"),
                                                    config.GetString("probe.labels"),
                                                    static_cast<std::size_t>(n)));
    s->probe_ = std::make_shared<const ProbeSet>(std::move(probe));
  }
  // Download → verify → install.
  UpdaterOptions updater_options;
  updater_options.download.chunk_bytes = config.GetInt("download.chunk_bytes");
  updater_options.download.max_bytes_per_s = config.GetInt("download.max_bytes_per_s");
  updater_options.download.wait = std::move(download_wait);
  s->updater_ = std::make_unique<VariantUpdater>(client, s->keyring_, *s->store_, *s->runtime_,
                                                 s->probe_, updater_options);
  // Telemetry: live window, durable queue, reporter.
  s->collector_ = std::make_unique<TelemetryCollector>();
  EP_ASSIGN_OR_RETURN(s->queue_, TelemetryQueue::Open(state_root + "/telemetry.db"));
  s->reporter_ = std::make_unique<TelemetryReporter>(*s->collector_, *s->runtime_, *s->queue_);
  s->sender_options_.batch_size = static_cast<std::size_t>(config.GetInt("telemetry.batch_size"));
  s->telemetry_interval_ = std::chrono::seconds(config.GetInt("telemetry.interval_s"));
  // Local API options (started in Start()).
  s->api_options_.listener.host = config.GetString("local_api.host");
  s->api_options_.listener.port = static_cast<std::uint16_t>(config.GetInt("local_api.port"));
  s->api_options_.listener.threads = static_cast<int>(config.GetInt("local_api.threads"));
  s->api_options_.max_infer_body_bytes =
      static_cast<std::size_t>(config.GetInt("local_api.max_body_bytes"));
  return s;
}

ServingStack::~ServingStack() { Stop(); }

Status ServingStack::Start() {
  auto restored = updater_->RestoreInstalled();
  if (!restored.ok()) {
    // Serving nothing is better than not starting: the next update can still fix it.
    log::Get("agent")->error("no installed variant can serve: {}", restored.error().ToString());
  } else if (*restored) {
    log::Get("agent")->info("serving installed variant {} v{}", (*restored)->variant_id,
                            (*restored)->version);
  }
  EP_ASSIGN_OR_RETURN(api_, LocalApiServer::Start(api_options_, *runtime_, *collector_, nullptr));
  PublishTelemetryCounts();
  return Ok();
}

void ServingStack::PublishTelemetryCounts() {
  if (!api_) return;
  auto made = queue_->LastSeq();
  auto queued = queue_->Pending();
  const auto& metrics = api_->metrics();
  if (made.ok() && queued.ok()) metrics->Telemetry(*made, *queued);
  // The installed variant shows before the first inference, so a scraper sees what a gateway
  // runs even when nobody uses it.
  if (auto spec = runtime_->active_spec()) metrics->ActiveVariant(spec->variant_id);
  if (const auto& probe = reporter_->last_probe()) {
    metrics->Probe(probe->variant_id, probe->report.accuracy, probe->report.latency.p50_ms,
                   probe->report.latency.p95_ms, probe->report.latency.p99_ms);
  }
}

void ServingStack::Stop() {
  if (api_) api_->Stop();
}

Result<FlushStats> ServingStack::TelemetryTick(std::int64_t now_ms) {
  auto recorded = reporter_->Record(now_ms);
  PublishTelemetryCounts();
  if (!recorded.ok()) return recorded.error();
  if (!client_) return FlushStats{};
  EP_ASSIGN_OR_RETURN(http::HttpsClient * client, client_());
  TelemetrySender sender(*queue_, *client, sender_options_);
  auto flushed = sender.Flush();
  PublishTelemetryCounts();
  return flushed;
}

std::optional<std::string> ServingStack::installed_variant() const {
  auto record = store_->Load();
  if (!record.ok() || !record->current) return std::nullopt;
  return record->current->variant_id;
}

}  // namespace edgeprune::agent
