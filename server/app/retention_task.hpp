#pragma once
// Retention and garbage collection (issue 18, item 6): a periodic task that keeps the database
// and the blob store from growing without bound. Every `retention.interval_s` it asks each module
// to prune its own tables — old telemetry reports (telemetry::TelemetryStore), profile history
// (fleet::DeviceRegistry), variant events (telemetry::TelemetryStore), finished jobs
// (jobs::JobQueue) — and then collects the blob store: every blob that no model, variant, data
// set or job names (each module lists its own references) and that was written more than
// `retention.blob_grace_s` ago is removed (store::BlobStore::Collect). Finished jobs go first, so
// the checkpoints only they named are collected in the same pass.
//
// Once per fleet: with several server processes on one database, only the holder of the
// "retention" task lease (store::TaskLeases, three intervals long) runs it; the others skip and
// take over once the holder stops. Two passes overlapping (a pass longer than the lease) only
// repeat work: deletions are by condition, and the blob collector tolerates a second collector.
// What each pass removed is logged and counted in edgeprune_retention_pruned_total{kind}.
//
// Thread-safety: Start/Stop from the owning thread; the task runs on its own thread.

#include <prometheus/counter.h>
#include <prometheus/registry.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "edgeprune/common/clock.hpp"
#include "edgeprune/common/config.hpp"
#include "edgeprune/common/result.hpp"
#include "server/catalog/dataset_catalog.hpp"
#include "server/catalog/model_registry.hpp"
#include "server/catalog/variant_repository.hpp"
#include "server/fleet/device_registry.hpp"
#include "server/jobs/job_queue.hpp"
#include "server/store/blob_store.hpp"
#include "server/store/task_lease.hpp"
#include "server/telemetry/store.hpp"

namespace edgeprune::server {

// retention.* keys.
void AddRetentionConfig(ConfigSchema& schema);

// Ages in days (0: nothing is removed for its age), counts per device (0: no cap).
struct RetentionOptions {
  std::chrono::seconds interval{3600};  // 0: the task never runs
  std::int64_t telemetry_days = 30;
  std::int64_t telemetry_per_device = 10'000;
  std::int64_t profile_days = 180;
  std::int64_t profiles_per_device = 100;
  std::int64_t event_days = 90;
  std::int64_t job_days = 30;
  std::chrono::seconds blob_grace{86'400};

  // From retention.*; "invalid_config" naming the key for a value the schema's range lets
  // through but retention cannot use.
  static Result<RetentionOptions> FromConfig(const Config& config);
};

// What one pass removed.
struct RetentionReport {
  std::int64_t telemetry = 0, profiles = 0, variant_events = 0, jobs = 0;
  store::BlobCollection blobs;
};

// The modules whose tables and blobs retention covers.
struct RetentionSources {
  std::shared_ptr<telemetry::TelemetryStore> telemetry;
  std::shared_ptr<fleet::DeviceRegistry> devices;
  std::shared_ptr<jobs::JobQueue> jobs;
  std::shared_ptr<catalog::ModelRegistry> models;
  std::shared_ptr<catalog::VariantRepository> variants;
  std::shared_ptr<catalog::DatasetCatalog> datasets;
  std::shared_ptr<store::BlobStore> blobs;
};

class RetentionTask {
 public:
  static constexpr const char* kLeaseName = "retention";

  RetentionTask(RetentionSources sources, RetentionOptions options,
                std::shared_ptr<store::TaskLeases> leases,       // null: always run (one process)
                std::shared_ptr<prometheus::Registry> registry,  // may be null
                std::shared_ptr<const Clock> clock = nullptr);   // null: the system clock
  ~RetentionTask() { Stop(); }
  RetentionTask(const RetentionTask&) = delete;
  RetentionTask& operator=(const RetentionTask&) = delete;

  // Starts the thread (a pass at once, then every interval); does nothing when the interval is 0.
  void Start();
  void Stop();
  // One pass now, on the calling thread: nullopt when another process holds the lease. A step
  // that fails is logged and the others still run (the blob collector only when every module
  // could list its references); the error is then the first failure.
  Result<std::optional<RetentionReport>> RunOnce();

 private:
  Result<RetentionReport> Pass();
  Result<std::unordered_set<std::string>> References();
  void Count(const RetentionReport& report);

  RetentionSources sources_;
  RetentionOptions options_;
  std::shared_ptr<store::TaskLeases> leases_;
  std::shared_ptr<const Clock> clock_;
  std::shared_ptr<prometheus::Registry> registry_;  // keeps pruned_ alive
  prometheus::Family<prometheus::Counter>* pruned_ = nullptr;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
};

}  // namespace edgeprune::server
