#pragma once
// The "build_variant" job: for a variant row in state 'building', prunes and fine-tunes the
// master to the variant's budget (BuildVariantFn), stores the payload in the blob store, signs
// its manifest with the server key and marks the variant ready. A model of an operator's data set
// also gets its probe set: samples of the data set's test split (probe_sampler.hpp), stored as a
// blob and named (digest, size, count) in the signed manifest, so the agent checks the variant on
// its own data; then calls on_finished so the
// model's deployments are re-evaluated and waiting devices get it. A variant whose measured
// accuracy falls more than the allowed drop below its master's is not stored: the build fails
// "below_accuracy_floor" (not retried: the same settings give the same variant) and its devices
// keep what they run. A failure marks the variant failed (with the reason) once the queue will
// not retry it; a cancel marks it failed "cancelled".
//
// Thread-safety: Run() may be called from several worker threads at once.

#include <boost/json/object.hpp>

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "edgeprune/common/result.hpp"
#include "edgeprune/common/wire/manifest.hpp"
#include "server/catalog/dataset_catalog.hpp"
#include "server/catalog/model_registry.hpp"
#include "server/catalog/signing_keyring.hpp"
#include "server/catalog/variant_build.hpp"
#include "server/catalog/variant_repository.hpp"
#include "server/jobs/job_queue.hpp"
#include "server/jobs/worker_pool.hpp"
#include "server/store/blob_store.hpp"

namespace edgeprune::deploy {

inline constexpr const char* kBuildVariantJob = "build_variant";

class VariantBuildJob {
 public:
  // Called with the model id after a variant of it became ready or failed for good, so the
  // devices waiting on it move (the application connects it to DeploymentService::Reevaluate).
  using FinishedFn = std::function<void(const std::string& model_id)>;

  // max_accuracy_drop: points of accuracy (0..100) a variant may lose against its master on the
  // test split before it is refused.
  VariantBuildJob(std::shared_ptr<catalog::ModelRegistry> models,
                  std::shared_ptr<catalog::VariantRepository> repo,
                  std::shared_ptr<store::BlobStore> blobs,
                  std::shared_ptr<const catalog::SigningKeyring> keyring,
                  catalog::BuildVariantFn build, std::string work_root, double max_accuracy_drop,
                  FinishedFn on_finished,
                  std::shared_ptr<const catalog::DatasetCatalog> datasets = nullptr,
                  std::int64_t probe_samples = kDefaultProbeSamples)
      : models_(std::move(models)),
        repo_(std::move(repo)),
        blobs_(std::move(blobs)),
        datasets_(std::move(datasets)),
        keyring_(std::move(keyring)),
        build_(std::move(build)),
        work_root_(std::move(work_root)),
        max_accuracy_drop_(max_accuracy_drop),
        on_finished_(std::move(on_finished)),
        probe_samples_(probe_samples) {}

  // 200: the agent's default local probe set too; a few hundred forwards of a small variant take
  // well under a second on a gateway, and 1 sample is worth 0.5 points of probe accuracy.
  static constexpr std::int64_t kDefaultProbeSamples = 200;

  // Enqueues the build of a variant (deduplicated by variant id) and records the job id.
  static Status Request(jobs::JobQueue& queue, catalog::VariantRepository& repo, const catalog::VariantRecord& v);
  // Re-requests every variant still 'building' whose job is gone (startup).
  static Status ResubmitOrphans(jobs::JobQueue& queue, catalog::VariantRepository& repo);

  Result<boost::json::object> Run(jobs::JobContext& ctx);

 private:
  // Writes the probe set of an operator's data set to `path` and returns its sample count;
  // nullopt (nothing written) for built-in data sets (their agents use their local probe set) or
  // when probe_samples is 0.
  Result<std::optional<std::int64_t>> WriteProbe(const catalog::ModelRecord& model,
                                                 const std::string& path);
  // `measured` gets the variant's accuracy once the builder has measured it.
  Result<boost::json::object> Build(jobs::JobContext& ctx, const catalog::VariantRecord& variant,
                                    std::optional<double>* measured);

  std::shared_ptr<catalog::ModelRegistry> models_;
  std::shared_ptr<catalog::VariantRepository> repo_;
  std::shared_ptr<store::BlobStore> blobs_;
  std::shared_ptr<const catalog::DatasetCatalog> datasets_;  // operators' data sets; may be null
  std::shared_ptr<const catalog::SigningKeyring> keyring_;
  catalog::BuildVariantFn build_;
  std::string work_root_;
  double max_accuracy_drop_ = 3.0;
  FinishedFn on_finished_;
  std::int64_t probe_samples_ = kDefaultProbeSamples;  // 0: ship no probe set
};

}  // namespace edgeprune::deploy
