#include "server/deploy/build_job.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>

#include "edgeprune/common/fs.hpp"
#include "edgeprune/common/json.hpp"
#include "edgeprune/common/log.hpp"

namespace edgeprune::deploy {
namespace bj = boost::json;
namespace {

// The agent's probe set is a small slice, so its accuracy is noisy: the floor sits this far below
// the accuracy measured on the server's evaluation split.
constexpr double kAccuracyFloorMargin = 0.10;

std::int64_t NowSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

Status VariantBuildJob::Request(jobs::JobQueue& queue, catalog::VariantRepository& repo,
                                const catalog::VariantRecord& v) {
  jobs::EnqueueOptions options;
  options.dedupe_key = "variant:" + v.id;
  options.max_attempts = 3;
  EP_ASSIGN_OR_RETURN(auto enqueued,
                      queue.Enqueue(kBuildVariantJob, bj::object{{"variant_id", v.id}}, options));
  return repo.SetJob(v.id, enqueued.id);
}

Status VariantBuildJob::ResubmitOrphans(jobs::JobQueue& queue, catalog::VariantRepository& repo) {
  EP_ASSIGN_OR_RETURN(auto building, repo.ListBuilding());
  for (const auto& v : building) {
    bool alive = false;
    if (!v.job_id.empty()) {
      auto job = queue.Get(v.job_id);
      alive = job.ok() && !jobs::IsFinished(job->state);
    }
    if (!alive) EP_RETURN_IF_ERROR(Request(queue, repo, v));
  }
  return Ok();
}

Result<bj::object> VariantBuildJob::Run(jobs::JobContext& ctx) {
  EP_ASSIGN_OR_RETURN(std::string variant_id, json::GetString(ctx.payload(), "variant_id"));
  EP_ASSIGN_OR_RETURN(catalog::VariantRecord variant, repo_->Get(variant_id));
  if (variant.status != "building") {
    return bj::object{{"variant_id", variant_id}, {"skipped", variant.status}};
  }
  std::optional<double> measured;
  auto result = Build(ctx, variant, &measured);
  if (result.ok()) return result;

  const Error& error = result.error();
  const bool cancelled = ctx.token().reason() == jobs::CancellationToken::Reason::kCancelled;
  // Shut down, or lease lost (another worker builds it now): the variant is not ours to fail.
  const bool handed_over =
      ctx.token().reason() == jobs::CancellationToken::Reason::kShutdown ||
      ctx.token().reason() == jobs::CancellationToken::Reason::kLeaseLost;
  const bool will_retry = jobs::JobQueue::IsRetryable(error) &&
                          ctx.job().attempts < ctx.job().max_attempts;
  if (!handed_over && (cancelled || !will_retry)) {
    const std::string reason = cancelled ? "cancelled by an operator" : error.ToString();
    if (auto s = repo_->MarkFailed(variant.id, reason, measured); !s.ok()) {
      log::Get("variants")->error("variant {}: {}", variant.id, s.error().ToString());
    }
    if (on_finished_) on_finished_(variant.model_id);
  }
  return error;
}

Result<std::optional<std::int64_t>> VariantBuildJob::WriteProbe(
    const catalog::ModelRecord& model, const std::string& path) {
  if (probe_samples_ <= 0 || !datasets_ || !catalog::IsDatasetId(model.dataset)) {
    return std::optional<std::int64_t>();
  }
  EP_ASSIGN_OR_RETURN(catalog::DatasetRecord d, datasets_->Get(model.dataset));
  EP_ASSIGN_OR_RETURN(wire::ProbeFile probe, datasets_->SampleProbe(d, probe_samples_));
  std::vector<std::int64_t> shape{1};
  shape.insert(shape.end(), probe.sample_shape.begin(), probe.sample_shape.end());
  // The agent refuses a probe set of another shape; better to fail the build, which names it.
  if (shape != model.input_shape) {
    return MakeError(
        ErrorKind::kFailedPrecondition, "probe_shape_mismatch",
        "data set " + d.id + " holds samples of another shape than model " + model.id + " takes");
  }
  EP_RETURN_IF_ERROR(fs::WriteFileAtomic(path, wire::SerializeProbeFile(probe), 0600));
  return std::optional<std::int64_t>(static_cast<std::int64_t>(probe.labels.size()));
}

Result<bj::object> VariantBuildJob::Build(jobs::JobContext& ctx, const catalog::VariantRecord& variant,
                                          std::optional<double>* measured) {
  auto logger = log::Get("variants");
  EP_RETURN_IF_ERROR(ctx.Progress("prepare", 1));
  EP_ASSIGN_OR_RETURN(catalog::ModelRecord model, models_->Get(variant.model_id));
  EP_ASSIGN_OR_RETURN(std::string master_path, blobs_->PathOf(model.blob_sha256));

  const std::string work_dir = work_root_ + "/" + variant.id;
  std::error_code ec;
  std::filesystem::remove_all(work_dir, ec);
  std::filesystem::create_directories(work_dir, ec);
  if (ec) {
    return MakeError(ErrorKind::kIo, "work_dir_unusable", work_dir + ": " + ec.message());
  }
  struct Cleanup {
    std::string dir;
    ~Cleanup() {
      std::error_code e;
      std::filesystem::remove_all(dir, e);
    }
  } cleanup{work_dir};

  catalog::BuildRequest request;
  request.master_path = master_path;
  request.input_shape = model.input_shape;
  request.num_classes = model.num_classes;
  request.dataset = model.dataset;
  if (catalog::IsDatasetId(model.dataset)) {
    // An operator's data set: the worker reads the stored file itself (read-only).
    if (!datasets_) {
      return MakeError(ErrorKind::kFailedPrecondition, "dataset_unavailable",
                       "model " + model.id + " trains on data set " + model.dataset +
                           " but this server has no data set catalog");
    }
    EP_ASSIGN_OR_RETURN(catalog::DatasetRecord d, datasets_->Get(model.dataset));
    EP_ASSIGN_OR_RETURN(request.dataset, datasets_->PathOf(d));
  }
  // Drawn before the long build: a data set that no longer reads fails it at once.
  const std::string probe_path = work_dir + "/probe.bin";
  EP_ASSIGN_OR_RETURN(std::optional<std::int64_t> probe_samples, WriteProbe(model, probe_path));
  request.budget = variant.budget;
  request.work_dir = work_dir;
  request.output_path = work_dir + "/variant.pt";
  // The build's own 0..100 maps onto 2..90; storing and signing take the rest.
  request.progress = [&ctx](std::string_view phase, double percent) {
    return ctx.Progress(phase, 2.0 + 0.88 * std::clamp(percent, 0.0, 100.0));
  };
  // A retried build (server restart, transient failure) resumes from the pruned checkpoint.
  request.checkpoint = [&ctx](std::string_view bytes) { return ctx.SaveCheckpoint(bytes); };
  if (auto cp = ctx.LoadCheckpoint(); cp.ok()) {
    request.resume = std::move(cp).value();
  } else {
    logger->warn("variant {}: checkpoint unreadable, building from the start: {}", variant.id,
                 cp.error().ToString());
  }
  logger->info("building variant {} ({} of model {}{})", variant.id, variant.bucket, model.id,
               request.resume ? ", resuming from its checkpoint" : "");
  EP_ASSIGN_OR_RETURN(catalog::BuildOutcome outcome, build_(request));
  EP_RETURN_IF_ERROR(ctx.Check());
  *measured = outcome.accuracy;
  const double floor = outcome.master_accuracy - max_accuracy_drop_ / 100.0;
  if (outcome.accuracy < floor) {
    char why[160];
    std::snprintf(why, sizeof why,
                  "accuracy %.2f %% is below the floor %.2f %% (master %.2f %% minus %g points); "
                  "not shipped",
                  100.0 * outcome.accuracy, 100.0 * floor, 100.0 * outcome.master_accuracy,
                  max_accuracy_drop_);
    return MakeError(ErrorKind::kFailedPrecondition, "below_accuracy_floor", why);
  }
  if (outcome.finetune_steps < outcome.finetune_steps_planned) {
    logger->warn("variant {}: a time limit cut fine-tuning ({} of {} steps)", variant.id,
                 outcome.finetune_steps, outcome.finetune_steps_planned);
  }

  EP_RETURN_IF_ERROR(ctx.Progress("store", 92));
  EP_ASSIGN_OR_RETURN(store::BlobRef ref, blobs_->PutFile(request.output_path));
  std::optional<wire::ManifestProbe> probe;
  if (probe_samples) {
    // Stored with the payload, not when drawn: the blob collector spares a blob no row names yet
    // only for its grace period (retention.blob_grace_s), which a long build could outlast.
    EP_ASSIGN_OR_RETURN(store::BlobRef p, blobs_->PutFile(probe_path));
    probe = wire::ManifestProbe{p.sha256, static_cast<std::int64_t>(p.size), *probe_samples};
  }

  EP_RETURN_IF_ERROR(ctx.Progress("sign", 96));
  wire::VariantManifest m;
  m.model_id = model.id;
  m.variant_id = variant.id;
  m.version = variant.version;
  m.payload.sha256 = ref.sha256;
  m.payload.size_bytes = static_cast<std::int64_t>(ref.size);
  m.probe = probe;
  m.input_shape = model.input_shape;
  m.num_classes = model.num_classes;
  m.normalize.mean = outcome.normalize_mean;
  m.normalize.std = outcome.normalize_std;
  m.metrics.accuracy = std::clamp(outcome.accuracy, 0.0, 1.0);
  m.metrics.accuracy_floor = std::max(0.0, m.metrics.accuracy - kAccuracyFloorMargin);
  m.metrics.params = outcome.parameters;
  m.metrics.macs = outcome.macs;
  m.budget = variant.budget;
  m.created_at = NowSeconds();
  EP_ASSIGN_OR_RETURN(catalog::SignedManifest signed_manifest, keyring_->Sign(m));

  catalog::ReadyVariant ready;
  ready.blob_sha256 = ref.sha256;
  ready.size_bytes = static_cast<std::int64_t>(ref.size);
  ready.cost = catalog::ModelCost{outcome.parameters, outcome.macs, outcome.activation_bytes};
  ready.accuracy = m.metrics.accuracy;
  ready.accuracy_floor = m.metrics.accuracy_floor;
  ready.manifest = signed_manifest.manifest_json;
  ready.signature = signed_manifest.signature;
  ready.key_id = signed_manifest.key_id;
  if (probe) ready.probe_sha256 = probe->sha256;
  EP_RETURN_IF_ERROR(repo_->MarkReady(variant.id, ready));
  logger->info("variant {} ready: {} parameters, {} MACs, accuracy {:.4f}", variant.id,
               outcome.parameters, outcome.macs, outcome.accuracy);

  if (on_finished_) on_finished_(model.id);
  return bj::object{{"variant_id", variant.id},
                    {"parameters", outcome.parameters},
                    {"macs", outcome.macs},
                    {"accuracy", outcome.accuracy},
                    {"master_accuracy", outcome.master_accuracy},
                    {"pruning_steps", outcome.pruning_steps},
                    {"finetune_steps", outcome.finetune_steps},
                    {"finetune_steps_planned", outcome.finetune_steps_planned},
                    {"min_keep_ratio", outcome.min_keep_ratio},
                    {"sha256", ref.sha256},
                    {"size_bytes", static_cast<std::int64_t>(ref.size)}};
}

}  // namespace edgeprune::deploy
