#pragma once
// Builds the model → variant → device loop's services in order from the config and owns them:
// blob store, signing keyring, job queue + a worker pool for "build_variant", model registry,
// variant repository, deployments, rollouts (and their periodic task), telemetry store, closed
// loop and metrics. The Application
// calls AddVariantsConfig() on its schema, Start() after the database is migrated, adds Routes()
// to its router and calls Stop() after the HTTP server drained.
//
// Thread-safety: Start/Stop from the owning thread; the services are thread-safe.

#include <prometheus/registry.h>

#include <condition_variable>
#include <functional>
#include <optional>
#include <memory>
#include <mutex>
#include <thread>
#include <string>
#include <vector>

#include "edgeprune/common/config.hpp"
#include "edgeprune/common/result.hpp"
#include "common/http/router.hpp"
#include "server/jobs/job_queue.hpp"
#include "server/jobs/worker_pool.hpp"
#include "server/model_worker/variant_build.hpp"
#include "server/store/database.hpp"
#include "server/deploy/build_job.hpp"
#include "server/api/loop_routes.hpp"
#include "server/app/rollout_task.hpp"

namespace edgeprune::server {

// The loop's services, built by VariantsModule::Start in order and owned here; Routes() hands each
// route table the few it uses.
struct LoopServices {
  std::shared_ptr<store::BlobStore> blobs;
  std::shared_ptr<catalog::ModelRegistry> models;
  std::shared_ptr<catalog::VariantRepository> variants;
  std::shared_ptr<catalog::DatasetCatalog> datasets;
  std::shared_ptr<deploy::DeploymentService> deployments;
  std::shared_ptr<deploy::RolloutService> rollouts;
  std::shared_ptr<telemetry::TelemetryStore> telemetry;
  std::shared_ptr<deploy::ClosedLoop> loop;
  std::shared_ptr<const catalog::SigningKeyring> keyring;
  std::shared_ptr<jobs::JobQueue> queue;
  std::shared_ptr<telemetry::TelemetryMetrics> metrics;  // null without a registry
  std::function<void()> refresh_gauges;                  // recounts variant and job gauges
  catalog::ValidateMasterFn validate_master;
  std::shared_ptr<const fleet::AuditLog> audit;
  std::int64_t max_model_bytes = 0;
  std::int64_t max_dataset_bytes = 0;
  std::string upload_dir;  // temp files of uploads being validated
};

// variants.*, closed_loop.*, rollouts.* and (unless already declared) signing.key.
void AddVariantsConfig(ConfigSchema& schema);
// The builder's settings from variants.*; "invalid_config" naming the key.
Result<catalog::VariantBuildOptions> VariantBuildOptionsFrom(const Config& config);

// What a process runs of the loop: `serve` everything its config asks (variants.workers build
// threads, 0 for none); `worker` (edgeprune-server worker) the build workers only — no rollout
// task and no gauges, as it serves no routes.
enum class LoopRole { kServe, kWorker };

class VariantsModule {
 public:
  // Builds every service; resubmits builds a previous process left unfinished and starts the
  // worker pool.
  static Result<std::unique_ptr<VariantsModule>> Start(
      const Config& config, std::shared_ptr<store::Database> db,
      std::shared_ptr<prometheus::Registry> registry, const std::string& data_dir,
      LoopRole role = LoopRole::kServe);
  ~VariantsModule();

  // Every route of the loop: models, deployments and jobs, delivery, telemetry.
  std::vector<http::Route> Routes() const;
  const std::shared_ptr<LoopServices>& services() const { return services_; }
  // For the heartbeat's desired_state (api::AgentRoutes): the device's assigned variant, or null.
  std::function<std::optional<std::string>(const std::string&)> DesiredVariant() const;
  // Stops the worker pool (running builds go back to the queue and resume on the next start).
  void Stop();

 private:
  VariantsModule() = default;

  std::shared_ptr<LoopServices> services_;
  std::shared_ptr<deploy::VariantBuildJob> build_job_;
  std::unique_ptr<jobs::WorkerPool> pool_;
  std::unique_ptr<RolloutTask> rollout_task_;
  std::thread refresher_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
};

}  // namespace edgeprune::server
