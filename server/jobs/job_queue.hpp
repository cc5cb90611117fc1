#pragma once
// The persistent job queue in SQLite (table `jobs`, migration 0004). Producers Enqueue(); worker
// threads Claim() the oldest queued job of the kinds they handle, report progress, save
// checkpoints to the blob store and finish it. A job that fails with a transient error
// (kUnavailable, kTimeout, kResourceExhausted, kIo) is retried with exponential backoff until
// max_attempts; other errors fail it at once.
//
// Leases: a claim makes the worker the job's lease owner until now + lease_ms; the worker renews
// the lease while it runs (RenewLease, every lease_ms/3 from the worker pool). A job whose lease
// expired — its process died, hung or lost the database — is taken back by the next Claim() of
// any process sharing the database: requeued with its checkpoint, so the next attempt resumes;
// failed when that was its last attempt (a job that kills its worker every time still ends);
// cancelled when cancellation was asked meanwhile. Every worker-side write checks the lease
// owner, so a stale worker cannot write over a job that another worker took back. On PostgreSQL
// the claim is SELECT … FOR UPDATE SKIP LOCKED in a READ COMMITTED transaction, so replicas
// claiming at once take different jobs without waiting on each other.
//
// RecoverAbandoned() takes back every running job at once, leases or not: only for a database
// that one process uses (SQLite), where a job running at startup cannot be anybody's.
//
// Thread-safety: thread-safe (each call takes its own pooled connection). The observer is
// called on the caller's thread after the change commits.

#include <boost/json.hpp>

#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "edgeprune/common/result.hpp"
#include "server/jobs/job.hpp"
#include "server/store/blob_store.hpp"
#include "server/store/database.hpp"

namespace edgeprune::jobs {

struct JobQueueOptions {
  std::function<std::int64_t()> now_ms;  // epoch ms; the system clock when empty
  std::int64_t retry_base_ms = 2000;     // first retry delay; doubles per attempt
  std::int64_t retry_max_ms = 5 * 60 * 1000;
  // How long a claim or renewal holds a job; the worker pool renews at a third of it. Longer:
  // a dead worker's job waits longer; shorter: a worker stalled (GC, I/O, a busy database) for
  // this long loses its job.
  std::int64_t lease_ms = 30'000;
};

struct EnqueueOptions {
  std::optional<std::string> dedupe_key;  // while a queued/running job has it, return that one
  std::int64_t max_attempts = 3;
  std::int64_t priority = 0;              // higher first; FIFO within a priority
};

struct EnqueueResult {
  std::string id;
  bool created = true;  // false: an active job with the same dedupe key already existed
};

struct JobFilter {
  std::optional<JobState> state;
  std::optional<std::string> kind;
  std::int64_t limit = 100;  // newest first
};

// Notified after changes a worker pool must react to.
class JobQueueObserver {
 public:
  virtual ~JobQueueObserver() = default;
  virtual void OnEnqueued() = 0;
  virtual void OnCancelRequested(const std::string& job_id) = 0;
};

class JobQueue {
 public:
  // `blobs` holds checkpoints; may be null when no handler checkpoints.
  JobQueue(store::Database& db, store::BlobStore* blobs, JobQueueOptions options = {});

  // Producer / operator side.
  Result<EnqueueResult> Enqueue(std::string_view kind, const boost::json::object& payload,
                                const EnqueueOptions& options = {});
  Result<Job> Get(std::string_view id);
  Result<std::vector<Job>> List(const JobFilter& filter = {});
  // Queued → cancelled at once; running → cancel requested (the handler stops, then cancelled);
  // finished → kConflict "job_finished". Unknown id → kNotFound "job_not_found".
  // in_transaction (optional) runs inside the cancel's transaction with the updated job, so the
  // caller's record of it (the audit row) commits or rolls back with the cancel.
  using CancelHook = std::function<Status(store::Connection&, const Job&)>;
  Result<Job> Cancel(std::string_view id, const CancelHook& in_transaction = {});

  // Worker side. Claims the highest-priority, oldest queued job whose kind is in `kinds` and
  // whose backoff has passed; nullopt when there is none.
  Result<std::optional<Job>> Claim(const std::vector<std::string>& kinds, std::string_view worker);
  // Extends the lease of a job this worker runs to now + lease_ms. kConflict "job_not_running"
  // when it is no longer this worker's (taken back after the lease expired, or finished).
  Status RenewLease(std::string_view id, std::string_view worker);
  // Records progress; returns whether cancellation was requested meanwhile (also from another
  // process). percent is clamped to [0, 100].
  Result<bool> ReportProgress(std::string_view id, std::string_view worker, std::string_view phase,
                              double percent);
  // Stores bytes in the blob store and records them as the job's checkpoint.
  Status SaveCheckpoint(std::string_view id, std::string_view worker, std::string_view bytes);
  // The job's latest checkpoint, verified; nullopt when it has none.
  Result<std::optional<std::string>> LoadCheckpoint(const Job& job);
  Status Succeed(std::string_view id, std::string_view worker, const boost::json::object& result);
  // Retries transient errors with backoff while attempts remain; fails the job otherwise.
  Status Fail(std::string_view id, std::string_view worker, const Error& error);
  Status MarkCancelled(std::string_view id, std::string_view worker);
  // Back to queued without counting the attempt (the server is shutting down).
  Status Requeue(std::string_view id, std::string_view worker, std::string_view reason);

  // Takes back running jobs whose lease expired (Claim() does this first); returns how many were
  // requeued (those on their last attempt fail, cancel-requested ones are cancelled).
  Result<int> ExpireLeases();
  // One-process startup recovery (SQLite): every running job, expired or not. Never with other
  // live processes on the database: it would take their jobs.
  Result<int> RecoverAbandoned();
  std::int64_t lease_ms() const { return options_.lease_ms; }
  // Retention (the retention task): deletes succeeded, failed and cancelled jobs that finished
  // before `before_ms` (0: none); returns how many. Their checkpoints become unreferenced and go
  // with the blob collector's next pass. Queued and running jobs are never deleted.
  Result<std::int64_t> PruneFinished(std::int64_t before_ms);
  // The checkpoint blobs jobs in any state reference (a queued job may resume from one), for the
  // blob collector.
  Result<std::vector<std::string>> ReferencedBlobs();
  // Jobs per state name ("queued", "running", …), for the gauges.
  Result<std::vector<std::pair<std::string, std::int64_t>>> CountByState();

  void SetObserver(JobQueueObserver* observer);

  static bool IsRetryable(const Error& error);

 private:
  Result<std::optional<Job>> ClaimOnce(const std::string& kinds_json, std::string_view worker);
  struct TakenBack {
    std::int64_t requeued = 0, failed = 0, cancelled = 0;
  };
  // Takes back running jobs whose lease ends before `before`, inside the caller's transaction.
  Result<TakenBack> TakeBackIn(store::Connection& conn, std::int64_t now, std::int64_t before);
  void Report(const TakenBack& taken, const char* why);
  std::int64_t Now() const;
  void NotifyEnqueued();

  store::Database& db_;
  store::BlobStore* blobs_;
  JobQueueOptions options_;
  mutable std::mutex observer_mu_;
  JobQueueObserver* observer_ = nullptr;
};

}  // namespace edgeprune::jobs
