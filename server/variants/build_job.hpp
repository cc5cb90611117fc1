#pragma once
// The "build_variant" job: for a variant row in state 'building', prunes and fine-tunes the
// master to the variant's budget (BuildVariantFn), stores the payload in the blob store, signs
// its manifest with the server key and marks the variant ready; then re-evaluates the model's
// deployments so waiting devices get it. A variant whose measured accuracy falls more than the
// allowed drop below its master's is not stored: the build fails "below_accuracy_floor" (not
// retried: the same settings give the same variant) and its devices keep what they run. A failure
// marks the variant failed (with the reason) once the queue will not retry it; a cancel marks it
// failed "cancelled".
//
// Thread-safety: Run() may be called from several worker threads at once.

#include <boost/json/object.hpp>

#include <memory>
#include <optional>
#include <string>

#include "edgeprune/common/result.hpp"
#include "server/jobs/job_queue.hpp"
#include "server/jobs/worker_pool.hpp"
#include "server/signing/signing_keyring.hpp"
#include "server/store/blob_store.hpp"
#include "server/variants/deployments.hpp"
#include "server/variants/model_registry.hpp"
#include "server/variants/variant_builder.hpp"
#include "server/variants/variant_repository.hpp"

namespace edgeprune::variants {

inline constexpr const char* kBuildVariantJob = "build_variant";

class VariantBuildJob {
 public:
  VariantBuildJob(std::shared_ptr<ModelRegistry> models, std::shared_ptr<VariantRepository> repo,
                  std::shared_ptr<store::BlobStore> blobs,
                  std::shared_ptr<const signing::SigningKeyring> keyring, BuildVariantFn build,
                  std::string work_root)
      : models_(std::move(models)),
        repo_(std::move(repo)),
        blobs_(std::move(blobs)),
        keyring_(std::move(keyring)),
        build_(std::move(build)),
        work_root_(std::move(work_root)) {}

  // Set after construction (the deployment service needs the requester first).
  void SetDeployments(std::shared_ptr<DeploymentService> deployments) {
    deployments_ = std::move(deployments);
  }

  // Points of accuracy (0..100) a variant may lose against its master on the test split.
  void SetMaxAccuracyDrop(double points) { max_accuracy_drop_ = points; }

  // Enqueues the build of a variant (deduplicated by variant id) and records the job id.
  static Status Request(jobs::JobQueue& queue, VariantRepository& repo, const VariantRecord& v);
  // Re-requests every variant still 'building' whose job is gone (startup).
  static Status ResubmitOrphans(jobs::JobQueue& queue, VariantRepository& repo);

  Result<boost::json::object> Run(jobs::JobContext& ctx);

 private:
  // `measured` gets the variant's accuracy once the builder has measured it.
  Result<boost::json::object> Build(jobs::JobContext& ctx, const VariantRecord& variant,
                                    std::optional<double>* measured);

  std::shared_ptr<ModelRegistry> models_;
  std::shared_ptr<VariantRepository> repo_;
  std::shared_ptr<store::BlobStore> blobs_;
  std::shared_ptr<const signing::SigningKeyring> keyring_;
  BuildVariantFn build_;
  std::string work_root_;
  std::shared_ptr<DeploymentService> deployments_;
  double max_accuracy_drop_ = 3.0;
};

}  // namespace edgeprune::variants
