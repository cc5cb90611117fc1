#include "server/app/retention_task.hpp"

#include <prometheus/family.h>

#include <algorithm>

#include "edgeprune/common/log.hpp"

namespace edgeprune::server {
namespace {

constexpr std::int64_t kDayMs = 86'400'000;
// A telemetry row deleted while its agent could still resend it would be counted twice in the
// rollout sums (telemetry/store.hpp): keep far more than one unacknowledged batch.
constexpr std::int64_t kMinTelemetryPerDevice = 1000;

// The cutoff `days` before now, 0 (nothing) when days is 0.
std::int64_t Before(std::int64_t now_ms, std::int64_t days) {
  return days == 0 ? 0 : now_ms - days * kDayMs;
}

}  // namespace

void AddRetentionConfig(ConfigSchema& s) {
  s.Int("retention.interval_s", 3600, 0, 7 * 86'400,
        "how often old rows are pruned and unreferenced blobs collected, by one server process of "
        "those sharing the database (task lease \"retention\"); 0: never");
  s.Int("retention.telemetry_days", 30, 0, 36'500,
        "telemetry reports received longer ago are deleted (0: none for their age); the "
        "per-variant sums rollouts read are kept");
  s.Int("retention.telemetry_per_device", 10'000, 0, 1'000'000'000,
        "each device keeps at most its newest this many telemetry reports (0: no cap; else at "
        "least 1000)");
  s.Int("retention.profile_days", 180, 0, 36'500,
        "profile history older than this is deleted (0: none for its age); each device's newest "
        "profile always stays");
  s.Int("retention.profiles_per_device", 100, 0, 1'000'000,
        "each device keeps at most its newest this many profiles (0: no cap)");
  s.Int("retention.event_days", 90, 0, 36'500,
        "variant events (installed, refused, check_failed) older than this are deleted (0: kept); "
        "keep them longer than a rollout phase lasts");
  s.Int("retention.job_days", 30, 0, 36'500,
        "succeeded, failed and cancelled jobs finished longer ago are deleted (0: kept)");
  s.Int("retention.blob_grace_s", 86'400, 600, 365 * 86'400,
        "an unreferenced blob is removed only once its file is this old: covers blobs written "
        "and not yet recorded by their row");
}

Result<RetentionOptions> RetentionOptions::FromConfig(const Config& c) {
  RetentionOptions o;
  o.interval = std::chrono::seconds(c.GetInt("retention.interval_s"));
  o.telemetry_days = c.GetInt("retention.telemetry_days");
  o.telemetry_per_device = c.GetInt("retention.telemetry_per_device");
  o.profile_days = c.GetInt("retention.profile_days");
  o.profiles_per_device = c.GetInt("retention.profiles_per_device");
  o.event_days = c.GetInt("retention.event_days");
  o.job_days = c.GetInt("retention.job_days");
  o.blob_grace = std::chrono::seconds(c.GetInt("retention.blob_grace_s"));
  if (o.telemetry_per_device != 0 && o.telemetry_per_device < kMinTelemetryPerDevice) {
    return MakeError(ErrorKind::kInvalidArgument, "invalid_config",
                     "retention.telemetry_per_device must be 0 (no cap) or at least " +
                         std::to_string(kMinTelemetryPerDevice) + ", not " +
                         std::to_string(o.telemetry_per_device) +
                         ": an agent resending its last batch would be counted twice");
  }
  return o;
}

RetentionTask::RetentionTask(RetentionSources sources, RetentionOptions options,
                             std::shared_ptr<store::TaskLeases> leases,
                             std::shared_ptr<prometheus::Registry> registry,
                             std::shared_ptr<const Clock> clock)
    : sources_(std::move(sources)),
      options_(options),
      leases_(std::move(leases)),
      clock_(clock ? std::move(clock) : std::make_shared<SystemClock>()),
      registry_(std::move(registry)) {
  if (registry_) {
    pruned_ = &prometheus::BuildCounter()
                   .Name("edgeprune_retention_pruned_total")
                   .Help(
                       "Rows and blobs removed by retention, by kind (telemetry, profiles, "
                       "variant_events, jobs, blobs)")
                   .Register(*registry_);
    // Every kind exported from the start, so a rate over it is defined before the first prune.
    for (const char* kind : {"telemetry", "profiles", "variant_events", "jobs", "blobs"}) {
      pruned_->Add({{"kind", kind}});
    }
  }
}

Result<std::optional<RetentionReport>> RetentionTask::RunOnce() {
  if (leases_) {
    // Three intervals, at least ten minutes: a long pass should not hand the task over midway.
    const auto ttl =
        std::max<std::chrono::milliseconds>(3 * options_.interval, std::chrono::minutes(10));
    EP_ASSIGN_OR_RETURN(bool held, leases_->Hold(kLeaseName, ttl));
    if (!held) return std::optional<RetentionReport>();
  }
  EP_ASSIGN_OR_RETURN(RetentionReport report, Pass());
  return std::optional<RetentionReport>(report);
}

Result<RetentionReport> RetentionTask::Pass() {
  auto logger = log::Get("retention");
  const std::int64_t now = clock_->NowMs();
  RetentionReport r;
  std::optional<Error> first_error;
  auto step = [&](const char* what, Result<std::int64_t> done, std::int64_t* into) {
    if (done.ok()) {
      *into = *done;
      return;
    }
    logger->error("retention: pruning {}: {}", what, done.error().ToString());
    if (!first_error) first_error = done.error();
  };
  const RetentionSources& s = sources_;
  step("telemetry",
       s.telemetry->PruneReports(Before(now, options_.telemetry_days),
                                 options_.telemetry_per_device),
       &r.telemetry);
  step("profiles",
       s.devices->PruneProfiles(Before(now, options_.profile_days), options_.profiles_per_device),
       &r.profiles);
  step("variant events", s.telemetry->PruneVariantEvents(Before(now, options_.event_days)),
       &r.variant_events);
  step("jobs", s.jobs->PruneFinished(Before(now, options_.job_days)), &r.jobs);
  // Blobs last: jobs pruned above no longer hold their checkpoints.
  auto referenced = References();
  if (!referenced.ok()) {
    logger->error("retention: listing referenced blobs (no blob collected): {}",
                  referenced.error().ToString());
    if (!first_error) first_error = referenced.error();
  } else if (auto collected = s.blobs->Collect(*referenced, options_.blob_grace); collected.ok()) {
    r.blobs = *collected;
  } else {
    logger->error("retention: collecting blobs: {}", collected.error().ToString());
    if (!first_error) first_error = collected.error();
  }
  Count(r);
  logger->info(
      "retention: pruned {} telemetry report(s), {} profile(s), {} variant event(s), {} job(s); "
      "removed {} blob(s) ({} bytes), kept {} referenced and {} recent unreferenced",
      r.telemetry, r.profiles, r.variant_events, r.jobs, r.blobs.removed, r.blobs.removed_bytes,
      r.blobs.kept_referenced, r.blobs.kept_recent);
  if (first_error) return *first_error;
  return r;
}

Result<std::unordered_set<std::string>> RetentionTask::References() {
  std::unordered_set<std::string> out;
  auto add = [&](Result<std::vector<std::string>> names) -> Status {
    if (!names.ok()) return names.error();
    out.insert(names->begin(), names->end());
    return Ok();
  };
  EP_RETURN_IF_ERROR(add(sources_.models->ReferencedBlobs()));
  EP_RETURN_IF_ERROR(add(sources_.variants->ReferencedBlobs()));
  EP_RETURN_IF_ERROR(add(sources_.datasets->ReferencedBlobs()));
  EP_RETURN_IF_ERROR(add(sources_.jobs->ReferencedBlobs()));
  return out;
}

void RetentionTask::Count(const RetentionReport& r) {
  if (!pruned_) return;
  pruned_->Add({{"kind", "telemetry"}}).Increment(static_cast<double>(r.telemetry));
  pruned_->Add({{"kind", "profiles"}}).Increment(static_cast<double>(r.profiles));
  pruned_->Add({{"kind", "variant_events"}}).Increment(static_cast<double>(r.variant_events));
  pruned_->Add({{"kind", "jobs"}}).Increment(static_cast<double>(r.jobs));
  pruned_->Add({{"kind", "blobs"}}).Increment(static_cast<double>(r.blobs.removed));
}

void RetentionTask::Start() {
  if (options_.interval.count() == 0 || thread_.joinable()) return;
  thread_ = std::thread([this] {
    std::unique_lock<std::mutex> lock(mu_);
    while (!stopping_) {
      lock.unlock();
      if (auto done = RunOnce(); !done.ok()) {
        log::Get("retention")->warn("retention pass: {}", done.error().ToString());
      }
      lock.lock();
      cv_.wait_for(lock, options_.interval, [this] { return stopping_; });
    }
  });
}

void RetentionTask::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  // Hand the task over now rather than after the lease expires (a no-op when not the holder).
  if (leases_) (void)leases_->Release(kLeaseName);
}

}  // namespace edgeprune::server
