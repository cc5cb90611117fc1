#include "server/app/variants_module.hpp"

#include "edgeprune/common/log.hpp"
#include "edgeprune/common/wire/probe_file.hpp"
#include "server/model_worker/worker_client.hpp"
#include "server/model_worker/variant_build.hpp"

#include <unistd.h>

#include <climits>

namespace edgeprune::server {

void AddVariantsConfig(ConfigSchema& s) {
  if (!s.Find("signing.key")) {
    s.String("signing.key", "signing.key",
             "Ed25519 private key (PEM) signing variant manifests; created when missing "
             "(relative paths are under server.data_dir)");
  }
  s.String("variants.dataset_dir", "/usr/share/datasets/fashion-mnist",
           "directory of the Fashion-MNIST IDX files (model workers may read it, nothing else)");
  s.Int("variants.workers", 1, 0, 64,
        "worker threads building variants; 0: serve builds none (`edgeprune-server worker` "
        "processes on the same PostgreSQL database do)");
  s.Int("variants.lease_ms", 30'000, 1'000, 3'600'000,
        "how long a claimed build stays its worker's without a renewal (renewed every third of it); "
        "a worker that dies is replaced this long after its last renewal");
  s.Int("variants.train_limit", 0, 0, 1'000'000,
        "training images used for fine-tuning a variant (0 = all)");
  s.Int("variants.test_limit", 0, 0, 1'000'000, "test images used to evaluate a variant (0 = all)");
  // Step counts decide a variant's quality; the time limits are safety stops (a cut run is
  // logged and reported in the job's result), so a busy machine builds the same variant, later.
  // 3,500 steps: the fixed-step recipe of docs/benchmarks.md ("Server builds"); 900 s is several
  // times their time on one core of the 2-core reference machine.
  s.Int("variants.finetune_steps", 3500, 0, 1'000'000,
        "final fine-tuning steps (with distillation) per variant");
  s.Double("variants.finetune_seconds", 900.0, 0.0, 86400.0,
           "safety time limit of a variant's final fine-tuning");
  s.Int("variants.step_finetune_steps", 100, 0, 1'000'000,
        "fine-tuning steps after each pruning step");
  s.Double("variants.step_finetune_seconds", 60.0, 0.0, 86400.0,
           "safety time limit of the fine-tuning after each pruning step");
  s.Bool("variants.train_batch_norm", catalog::VariantBuildOptions{}.train_batch_norm,
         "fine-tune with batch norms in training mode (each batch's statistics, running "
         "statistics updated); false: the evaluation-mode graph with fixed statistics");
  s.Int("variants.prune_steps", 20, 1, 1000, "most pruning steps per variant");
  s.Double("variants.step_fraction", 0.5, 0.05, 0.95,
           "share of a violated budget bound removed per pruning step");
  s.String("variants.importance", "taylor", "channel importance: l1, l2, bn or taylor");
  s.Int("variants.batch_size", 128, 1, 4096, "fine-tuning batch size");
  s.Int("variants.threads", 1, 1, 256,
        "LibTorch intra-op threads of variant builds (process-wide)");
  s.Double("variants.max_accuracy_drop", 3.0, 0.0, 100.0,
           "accuracy floor: a variant more than this many points below its master on the test "
           "split is not shipped (the build fails, devices keep their variant)");
  s.Int("variants.probe_samples", deploy::VariantBuildJob::kDefaultProbeSamples, 0,
        wire::kMaxProbeSamples,
        "test samples of an operator's data set shipped and signed with each variant as its "
        "probe set (0: none; agents then use their local probe set)");
  s.Int("variants.max_model_bytes", 256 * 1024 * 1024, 1, std::int64_t{1} << 34,
        "largest master model accepted by POST /api/v1/models (the body limit applies too)");
  s.Int("datasets.max_upload_bytes", std::int64_t{4} << 30, 1, std::int64_t{1} << 40,
        "largest data set file accepted by POST /api/v1/datasets (refused from its length)");
  s.Int("datasets.max_decompressed_bytes", std::int64_t{8} << 30, 1, std::int64_t{1} << 40,
        "most bytes a data set may decompress to (zip and gzip bombs stop here)");
  s.Int("datasets.min_train_per_class", 5, 1, 1'000'000,
        "fewest training samples of every class a data set must hold");
  s.Int("datasets.min_test_per_class", 1, 1, 1'000'000,
        "fewest test samples of every class a data set must hold");
  s.String("model_worker.executable", "",
           "the edgeprune-server binary started as `model-worker`; empty: this process's binary");
  s.Int("model_worker.memory_bytes", std::int64_t{8} << 30, std::int64_t{256} << 20,
        std::int64_t{1} << 40, "address space a model worker may use (beyond it: model_resource_limit)");
  s.Int("model_worker.validate_seconds", 120, 1, 86400,
        "wall-clock limit for checking one uploaded model (beyond it: model_timeout)");
  s.Int("model_worker.build_seconds", 7200, 10, 7 * 86400,
        "wall-clock limit for one variant build (beyond it: model_timeout)");
  s.Int("closed_loop.breach_reports", 3, 1, 1000,
        "consecutive telemetry reports with p95 above the SLO before a device is moved");
  s.Int("rollouts.tick_seconds", 5, 1, 3600,
        "seconds between two steps of every unfinished rollout (gates, starts, phases); keep it "
        "below the agents' telemetry.interval_s so a bad canary is stopped within one report");
}

Result<catalog::VariantBuildOptions> VariantBuildOptionsFrom(const Config& c) {
  catalog::VariantBuildOptions options;
  options.dataset_dir = c.GetString("variants.dataset_dir");
  options.train_limit = c.GetInt("variants.train_limit");
  options.test_limit = c.GetInt("variants.test_limit");
  options.finetune_steps = c.GetInt("variants.finetune_steps");
  options.finetune_seconds = c.GetDouble("variants.finetune_seconds");
  options.step_finetune_steps = c.GetInt("variants.step_finetune_steps");
  options.step_finetune_seconds = c.GetDouble("variants.step_finetune_seconds");
  options.max_prune_steps = c.GetInt("variants.prune_steps");
  options.step_fraction = c.GetDouble("variants.step_fraction");
  options.importance = c.GetString("variants.importance");
  options.batch_size = c.GetInt("variants.batch_size");
  options.threads = c.GetInt("variants.threads");
  options.train_batch_norm = c.GetBool("variants.train_batch_norm");
  if (options.importance != "l1" && options.importance != "l2" && options.importance != "bn" &&
      options.importance != "taylor") {
    return MakeError(ErrorKind::kInvalidArgument, "invalid_config",
                     "variants.importance must be l1, l2, bn or taylor, not '" +
                         options.importance + "'");
  }
  return options;
}

namespace {

std::string UnderDataDir(const std::string& data_dir, const std::string& path) {
  if (path.empty() || path[0] == '/') return path;
  return data_dir + "/" + path;
}

}  // namespace

Result<std::unique_ptr<VariantsModule>> VariantsModule::Start(
    const Config& c, std::shared_ptr<store::Database> db,
    std::shared_ptr<prometheus::Registry> registry, const std::string& data_dir, LoopRole role) {
  const int build_threads = static_cast<int>(c.GetInt("variants.workers"));
  // Without build workers here, builds need a worker process, and only PostgreSQL is shared
  // with other processes (edgeprune-server worker refuses SQLite).
  if (build_threads == 0 && db->dialect() != store::Dialect::kPostgres) {
    return MakeError(ErrorKind::kInvalidArgument, "invalid_config",
                     "variants.workers = 0 leaves variant builds to `edgeprune-server worker` "
                     "processes, which need a PostgreSQL store.url; with SQLite set it to 1 or more");
  }
  if (build_threads == 0 && role == LoopRole::kWorker) {
    return MakeError(ErrorKind::kInvalidArgument, "invalid_config",
                     "edgeprune-server worker needs variants.workers of 1 or more");
  }
  std::unique_ptr<VariantsModule> m(new VariantsModule());
  auto s = std::make_shared<LoopServices>();
  // Blobs: masters, variants and job checkpoints, content-addressed under data_dir/blobs.
  EP_ASSIGN_OR_RETURN(std::unique_ptr<store::BlobStore> blobs, store::BlobStore::Open(data_dir));
  s->blobs = std::move(blobs);
  // Signing key: every manifest is signed with it; its public half goes to the agents.
  EP_ASSIGN_OR_RETURN(catalog::SigningKeyring keyring,
                      catalog::SigningKeyring::LoadOrCreate(
                          UnderDataDir(data_dir, c.GetString("signing.key"))));
  s->keyring = std::make_shared<const catalog::SigningKeyring>(std::move(keyring));
  log::Get("variants")->info("signing manifests with key {}", s->keyring->key_id());
  // Job queue: variant builds survive restarts.
  jobs::JobQueueOptions queue_options;
  queue_options.lease_ms = c.GetInt("variants.lease_ms");
  s->queue = std::make_shared<jobs::JobQueue>(*db, s->blobs.get(), queue_options);
  // Catalog and the loop's services.
  s->models = std::make_shared<catalog::ModelRegistry>(db);
  s->variants = std::make_shared<catalog::VariantRepository>(db);
  // Operators' data sets: validated uploads, content-addressed in the same blob store.
  datasets::ValidationLimits dataset_limits;
  dataset_limits.max_decompressed_bytes =
      static_cast<std::uint64_t>(c.GetInt("datasets.max_decompressed_bytes"));
  dataset_limits.min_train_per_class = c.GetInt("datasets.min_train_per_class");
  dataset_limits.min_test_per_class = c.GetInt("datasets.min_test_per_class");
  s->datasets = std::make_shared<catalog::DatasetCatalog>(db, s->blobs, dataset_limits);
  auto queue = s->queue;
  auto repo = s->variants;
  s->deployments = std::make_shared<deploy::DeploymentService>(db, [queue, repo](const catalog::VariantRecord& v) {
    if (auto st = deploy::VariantBuildJob::Request(*queue, *repo, v); !st.ok()) {
      log::Get("variants")->error("requesting build of {}: {}", v.id, st.error().ToString());
    }
  });
  s->rollouts = std::make_shared<deploy::RolloutService>(db, [queue, repo](const catalog::VariantRecord& v) {
    if (auto st = deploy::VariantBuildJob::Request(*queue, *repo, v); !st.ok()) {
      log::Get("variants")->error("requesting build of {}: {}", v.id, st.error().ToString());
    }
  }, std::make_shared<SystemClock>());
  s->telemetry = std::make_shared<telemetry::TelemetryStore>(db);
  s->loop = std::make_shared<deploy::ClosedLoop>(
      db, s->deployments,
      deploy::ClosedLoopOptions{static_cast<int>(c.GetInt("closed_loop.breach_reports"))});
  if (registry) s->metrics = std::make_shared<telemetry::TelemetryMetrics>(registry);
  // Model work (upload validation, variant builds) runs in sandboxed worker processes.
  model_worker::WorkerOptions worker;
  worker.executable = c.GetString("model_worker.executable");
  if (worker.executable.empty()) {
    char self[PATH_MAX];
    const ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) {
      return MakeError(ErrorKind::kInternal, "config_invalid",
                       "cannot find this binary to start model workers; set model_worker.executable");
    }
    worker.executable.assign(self, static_cast<std::size_t>(n));
  }
  worker.scratch_root = data_dir + "/work/sandbox";
  worker.memory_bytes = static_cast<std::uint64_t>(c.GetInt("model_worker.memory_bytes"));
  worker.validate_timeout = std::chrono::seconds(c.GetInt("model_worker.validate_seconds"));
  worker.build_timeout = std::chrono::seconds(c.GetInt("model_worker.build_seconds"));
  const model_worker::ModelWorkerClient workers(worker);
  s->validate_master = workers.Validator();
  s->audit = std::make_shared<const fleet::AuditLog>(db, std::make_shared<SystemClock>());
  s->max_model_bytes = c.GetInt("variants.max_model_bytes");
  s->max_dataset_bytes = c.GetInt("datasets.max_upload_bytes");
  s->upload_dir = data_dir + "/uploads";

  // The builder and its worker pool.
  EP_ASSIGN_OR_RETURN(catalog::VariantBuildOptions options, VariantBuildOptionsFrom(c));
  // Build completion → deployments: the devices waiting on a model's variants move.
  auto on_finished = [deployments = s->deployments](const std::string& model_id) {
    if (auto r = deployments->Reevaluate(model_id); !r.ok()) {
      log::Get("variants")->error("re-evaluating {}: {}", model_id, r.error().ToString());
    }
  };
  m->build_job_ = std::make_shared<deploy::VariantBuildJob>(
      s->models, s->variants, s->blobs, s->keyring, workers.Builder(options), data_dir + "/work",
      c.GetDouble("variants.max_accuracy_drop"), on_finished, s->datasets,
      c.GetInt("variants.probe_samples"));
  jobs::WorkerPoolOptions pool_options;
  pool_options.threads = build_threads;
  if (s->metrics) {
    pool_options.on_attempt_end = [metrics = s->metrics](const std::string& kind,
                                                         const char* outcome, double seconds) {
      metrics->ObserveJobAttempt(kind, outcome, seconds);
    };
  }
  // SQLite: this is the one process on the database, so a job running at startup was
  // abandoned by its predecessor and is taken back at once. PostgreSQL: other live processes may
  // run jobs; an abandoned one comes back when its lease expires (JobQueue::Claim).
  if (db->dialect() == store::Dialect::kSqlite) {
    EP_ASSIGN_OR_RETURN(int recovered, s->queue->RecoverAbandoned());
    if (recovered > 0) log::Get("variants")->info("{} interrupted job(s) requeued", recovered);
  }
  // Another process starting at the same moment may resubmit the same orphan; the dedupe key
  // keeps one job, and the loser's error is no reason to refuse to start.
  if (auto resubmitted = deploy::VariantBuildJob::ResubmitOrphans(*s->queue, *s->variants);
      !resubmitted.ok()) {
    log::Get("variants")->warn("resubmitting unfinished builds: {}",
                               resubmitted.error().ToString());
  }
  if (build_threads > 0) {
    m->pool_ = std::make_unique<jobs::WorkerPool>(*s->queue, std::move(pool_options));
    auto job = m->build_job_;
    EP_RETURN_IF_ERROR(m->pool_->Register(
        deploy::kBuildVariantJob, [job](jobs::JobContext& ctx) { return job->Run(ctx); }));
    EP_RETURN_IF_ERROR(m->pool_->Start());
  } else {
    log::Get("variants")->info("no build workers here (variants.workers = 0): builds run in "
                               "edgeprune-server worker processes");
  }
  if (role == LoopRole::kWorker) {
    m->services_ = std::move(s);
    return m;
  }

  // Gauges of variants and jobs: the catalog and the queue count their own tables, the
  // telemetry module's metrics show the counts. Recounted every few seconds and after a deploy.
  if (s->metrics) {
    s->refresh_gauges = [variants = s->variants, queue = s->queue, metrics = s->metrics] {
      auto v = variants->CountByStatus();
      auto j = queue->CountByState();
      if (!v.ok() || !j.ok()) {
        log::Get("variants")->warn("metrics refresh: {}",
                                   (!v.ok() ? v.error() : j.error()).ToString());
        return;
      }
      std::vector<telemetry::TelemetryMetrics::VariantCount> counts;
      for (const auto& c : *v) counts.push_back({c.model_id, c.status, c.n});
      metrics->Refresh(counts, *j);
    };
    VariantsModule* self = m.get();
    m->refresher_ = std::thread([self, refresh = s->refresh_gauges] {
      std::unique_lock<std::mutex> lock(self->mu_);
      while (!self->stopping_) {
        lock.unlock();
        refresh();
        lock.lock();
        self->cv_.wait_for(lock, std::chrono::seconds(5), [self] { return self->stopping_; });
      }
    });
  }
  // Rollouts: one periodic task steps them and sets their gauges.
  m->rollout_task_ = std::make_unique<RolloutTask>(
      s->rollouts, registry ? std::make_shared<telemetry::RolloutMetrics>(registry) : nullptr,
      std::chrono::seconds(c.GetInt("rollouts.tick_seconds")),
      std::make_shared<store::TaskLeases>(*db, store::TaskLeases::ProcessOwner()));
  m->rollout_task_->Start();
  m->services_ = std::move(s);
  return m;
}

std::function<std::optional<std::string>(const std::string&)> VariantsModule::DesiredVariant()
    const {
  auto deployments = services_->deployments;
  return [deployments](const std::string& device_id) -> std::optional<std::string> {
    auto d = deployments->Desired(device_id);
    if (!d.ok()) {
      log::Get("variants")->error("desired variant of {}: {}", device_id, d.error().ToString());
      return std::nullopt;
    }
    return d->variant_id;
  };
}

std::vector<http::Route> VariantsModule::Routes() const {
  const LoopServices& s = *services_;
  std::vector<http::Route> routes;
  auto add = [&](std::vector<http::Route> table) {
    for (auto& r : table) routes.push_back(std::move(r));
  };
  add(api::ModelRoutes({s.models, s.variants, s.datasets, s.blobs, s.validate_master, s.audit,
                        s.max_model_bytes, s.upload_dir}));
  add(api::DatasetRoutes({s.datasets, s.audit, s.max_dataset_bytes, s.upload_dir}));
  add(api::DeployRoutes({s.deployments, s.variants, s.queue, s.audit, s.refresh_gauges}));
  add(api::RolloutRoutes({s.rollouts, s.audit, s.refresh_gauges}));
  add(api::DeliveryRoutes({s.variants, s.deployments, s.blobs, s.keyring}));
  add(api::TelemetryRoutes({s.telemetry, s.deployments, s.variants, s.loop, s.metrics}));
  return routes;
}

void VariantsModule::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (refresher_.joinable()) refresher_.join();
  if (rollout_task_) rollout_task_->Stop();
  if (pool_) pool_->Stop();
}

VariantsModule::~VariantsModule() { Stop(); }

}  // namespace edgeprune::server
