#include "server/jobs/job_queue.hpp"

#include <algorithm>
#include <chrono>
#include <limits>
#include <random>
#include <thread>

#include "edgeprune/common/crypto.hpp"
#include "edgeprune/common/json.hpp"
#include "edgeprune/common/log.hpp"
#include "server/store/retention.hpp"

namespace edgeprune::jobs {
namespace {

using store::Connection;
using store::Statement;

constexpr std::string_view kColumns =
    "id, kind, payload, state, priority, dedupe_key, phase, percent, attempts, max_attempts, "
    "not_before, cancel_requested, checkpoint_sha256, result, error, worker, created_at, "
    "updated_at, started_at, finished_at, lease_owner, lease_expires_ms";

Result<Job> RowToJob(const Statement& row) {
  Job job;
  job.id = row.Text(0);
  job.kind = row.Text(1);
  auto payload = json::ParseObject(row.Text(2));
  if (!payload.ok()) return payload.error().WithContext("job " + job.id + " payload");
  job.payload = std::move(payload).value();
  EP_ASSIGN_OR_RETURN(job.state, ParseJobState(row.Text(3)));
  job.priority = row.Int64(4);
  job.dedupe_key = row.OptText(5);
  job.phase = row.Text(6);
  job.percent = row.Double(7);
  job.attempts = row.Int64(8);
  job.max_attempts = row.Int64(9);
  job.not_before = row.Int64(10);
  job.cancel_requested = row.Int64(11) != 0;
  job.checkpoint_sha256 = row.OptText(12);
  auto result = json::ParseObject(row.Text(13));
  if (!result.ok()) return result.error().WithContext("job " + job.id + " result");
  job.result = std::move(result).value();
  job.error = row.Text(14);
  job.worker = row.Text(15);
  job.created_at = row.Int64(16);
  job.updated_at = row.Int64(17);
  job.started_at = row.OptInt64(18);
  job.finished_at = row.OptInt64(19);
  job.lease_owner = row.Text(20);
  job.lease_expires_ms = row.Int64(21);
  return job;
}

Result<Job> LoadJob(Connection& conn, std::string_view id) {
  EP_ASSIGN_OR_RETURN(Statement row, conn.Query("job_by_id",
                                                "SELECT " + std::string(kColumns) +
                                                    " FROM jobs WHERE id = ?",
                                                id));
  EP_ASSIGN_OR_RETURN(bool found, row.Step());
  if (!found) {
    return MakeError(ErrorKind::kNotFound, "job_not_found",
                     "no job with id '" + std::string(id.substr(0, 80)) + "'");
  }
  return RowToJob(row);
}

Status CheckKind(std::string_view kind) {
  const bool ok = !kind.empty() && kind.size() <= 64 &&
                  std::all_of(kind.begin(), kind.end(), [](char c) {
                    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
                           c == '.' || c == '-';
                  });
  if (ok) return Ok();
  return MakeError(ErrorKind::kInvalidArgument, "invalid_job_kind",
                   "job kind '" + std::string(kind.substr(0, 64)) +
                       "' must be 1-64 characters of a-z, 0-9, '_', '.', '-'");
}

// A worker-side update that changed nothing: the job is no longer this worker's to update.
Error NotOwned(std::string_view id, std::string_view worker) {
  return MakeError(ErrorKind::kConflict, "job_not_running",
                   "job " + std::string(id) + " is not running on worker " + std::string(worker));
}

}  // namespace

JobQueue::JobQueue(store::Database& db, store::BlobStore* blobs, JobQueueOptions options)
    : db_(db), blobs_(blobs), options_(std::move(options)) {}

std::int64_t JobQueue::Now() const {
  if (options_.now_ms) return options_.now_ms();
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void JobQueue::SetObserver(JobQueueObserver* observer) {
  std::lock_guard<std::mutex> lock(observer_mu_);
  observer_ = observer;
}

void JobQueue::NotifyEnqueued() {
  std::lock_guard<std::mutex> lock(observer_mu_);
  if (observer_ != nullptr) observer_->OnEnqueued();
}

bool JobQueue::IsRetryable(const Error& error) {
  switch (error.kind) {
    case ErrorKind::kUnavailable:
    case ErrorKind::kTimeout:
    case ErrorKind::kResourceExhausted:
    case ErrorKind::kIo:
      return true;
    default:
      return false;
  }
}

Result<EnqueueResult> JobQueue::Enqueue(std::string_view kind, const boost::json::object& payload,
                                        const EnqueueOptions& options) {
  EP_RETURN_IF_ERROR(CheckKind(kind));
  if (options.max_attempts < 1) {
    return MakeError(ErrorKind::kInvalidArgument, "invalid_max_attempts",
                     "max_attempts must be at least 1");
  }
  const std::string payload_json = json::Serialize(payload);
  auto result = db_.WithTransaction([&](Connection& conn) -> Result<EnqueueResult> {
    if (options.dedupe_key) {
      EP_ASSIGN_OR_RETURN(
          Statement existing,
          conn.Query("job_by_dedupe_key",
                     "SELECT id FROM jobs WHERE dedupe_key = ? AND state IN ('queued', 'running')",
                     *options.dedupe_key));
      EP_ASSIGN_OR_RETURN(bool found, existing.Step());
      if (found) return EnqueueResult{existing.Text(0), false};
    }
    const std::string id = "job-" + crypto::Sha256Hex(crypto::RandomToken(16)).substr(0, 16);
    const std::int64_t now = Now();
    EP_RETURN_IF_ERROR(conn.Execute(
        "insert_job",
        "INSERT INTO jobs (id, kind, payload, priority, dedupe_key, max_attempts, created_at, "
        "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        id, kind, payload_json, options.priority, options.dedupe_key, options.max_attempts, now,
        now));
    return EnqueueResult{id, true};
  });
  if (!result.ok()) return result.error().WithContext("enqueueing a " + std::string(kind) + " job");
  if (result->created) {
    log::Get("jobs")->info("enqueued {} job {}", kind, result->id);
    NotifyEnqueued();
  }
  return result;
}

Result<Job> JobQueue::Get(std::string_view id) {
  EP_ASSIGN_OR_RETURN(store::ConnectionLease lease, db_.Acquire());
  return LoadJob(*lease, id);
}

Result<std::vector<Job>> JobQueue::List(const JobFilter& filter) {
  EP_ASSIGN_OR_RETURN(store::ConnectionLease lease, db_.Acquire());
  std::optional<std::string> state;
  if (filter.state) state = JobStateName(*filter.state);
  const std::int64_t limit = std::clamp<std::int64_t>(filter.limit, 1, 10000);
  EP_ASSIGN_OR_RETURN(Statement rows,
                      lease->Query("list_jobs",
                                   // CAST: PostgreSQL must know a parameter's type
                                   // where it first meets it, here at IS NULL.
                                   "SELECT " + std::string(kColumns) +
                                       " FROM jobs WHERE (CAST(?1 AS TEXT) IS NULL OR state = ?1)"
                                       " AND (CAST(?2 AS TEXT) IS NULL OR kind = ?2)"
                                       " ORDER BY rowid DESC LIMIT ?3",
                                   state, filter.kind, limit));
  std::vector<Job> jobs;
  for (;;) {
    EP_ASSIGN_OR_RETURN(bool row, rows.Step());
    if (!row) break;
    EP_ASSIGN_OR_RETURN(Job job, RowToJob(rows));
    jobs.push_back(std::move(job));
  }
  return jobs;
}

Result<Job> JobQueue::Cancel(std::string_view id, const CancelHook& in_transaction) {
  bool was_running = false;
  auto job = db_.WithTransaction([&](Connection& conn) -> Result<Job> {
    EP_ASSIGN_OR_RETURN(Job current, LoadJob(conn, id));
    const std::int64_t now = Now();
    if (current.state == JobState::kQueued) {
      EP_RETURN_IF_ERROR(conn.Execute(
          "cancel_queued_job",
          "UPDATE jobs SET state = 'cancelled', cancel_requested = 1, error = 'cancelled by "
          "operator', finished_at = ?, updated_at = ? WHERE id = ?",
          now, now, id));
    } else if (current.state == JobState::kRunning) {
      was_running = true;
      EP_RETURN_IF_ERROR(conn.Execute(
          "request_job_cancel",
          "UPDATE jobs SET cancel_requested = 1, updated_at = ? WHERE id = ?", now, id));
    } else {
      return MakeError(ErrorKind::kConflict, "job_finished",
                       "job " + current.id + " already " + JobStateName(current.state));
    }
    EP_ASSIGN_OR_RETURN(Job updated, LoadJob(conn, id));
    if (in_transaction) EP_RETURN_IF_ERROR(in_transaction(conn, updated));
    return updated;
  });
  if (!job.ok()) return job;
  log::Get("jobs")->info("cancel requested for job {} ({})", job->id, JobStateName(job->state));
  if (was_running) {
    std::lock_guard<std::mutex> lock(observer_mu_);
    if (observer_ != nullptr) observer_->OnCancelRequested(job->id);
  }
  return job;
}

Result<std::optional<Job>> JobQueue::Claim(const std::vector<std::string>& kinds,
                                           std::string_view worker) {
  if (kinds.empty()) return std::optional<Job>();
  boost::json::array kind_list;
  for (const auto& k : kinds) kind_list.emplace_back(k);
  const std::string kinds_json = json::Serialize(kind_list);
  // SKIP LOCKED keeps PostgreSQL claimers apart; what can still fail as unavailable (a SQLite
  // writer timing out, a lost connection, a deadlock) is tried again after a random pause that
  // grows so retries stop colliding.
  constexpr int kAttempts = 16;
  thread_local std::minstd_rand jitter(std::random_device{}());
  for (int attempt = 1;; ++attempt) {
    auto claimed = ClaimOnce(kinds_json, worker);
    if (claimed.ok() || claimed.error().kind != ErrorKind::kUnavailable || attempt == kAttempts) {
      return claimed;
    }
    const int ceiling_ms = 1 << std::min(attempt, 6);
    std::this_thread::sleep_for(std::chrono::milliseconds(jitter() % ceiling_ms));
  }
}

Result<std::optional<Job>> JobQueue::ClaimOnce(const std::string& kinds_json,
                                               std::string_view worker) {
  TakenBack taken;
  auto claimed = db_.WithRowLockedTransaction([&](Connection& conn) -> Result<std::optional<Job>> {
    const std::int64_t now = Now();
    // Expired leases first, so their jobs compete in priority order with the queued ones.
    EP_ASSIGN_OR_RETURN(taken, TakeBackIn(conn, now, now));
    // PostgreSQL: lock the row we take and skip rows other claimers hold (READ COMMITTED, see
    // WriteMode::kRowLocked). SQLite runs one writer at a time and has no FOR UPDATE.
    const bool postgres = conn.dialect() == store::Dialect::kPostgres;
    EP_ASSIGN_OR_RETURN(
        Statement next,
        conn.Query("next_queued_job",
                   std::string("SELECT id FROM jobs WHERE state = 'queued' AND not_before <= ? "
                               "AND kind IN (SELECT value FROM json_each(?)) "
                               "ORDER BY priority DESC, rowid LIMIT 1") +
                       (postgres ? " FOR UPDATE SKIP LOCKED" : ""),
                   now, kinds_json));
    EP_ASSIGN_OR_RETURN(bool found, next.Step());
    if (!found) return std::optional<Job>();
    const std::string id = next.Text(0);
    EP_RETURN_IF_ERROR(conn.Execute(
        "claim_job",
        "UPDATE jobs SET state = 'running', attempts = attempts + 1, worker = ?1, "
        "lease_owner = ?1, lease_expires_ms = ?2, started_at = COALESCE(started_at, ?3), "
        "updated_at = ?3 WHERE id = ?4",
        worker, now + options_.lease_ms, now, id));
    EP_ASSIGN_OR_RETURN(Job job, LoadJob(conn, id));
    return std::optional<Job>(std::move(job));
  });
  if (claimed.ok()) Report(taken, "their lease expired");
  return claimed;
}

Status JobQueue::RenewLease(std::string_view id, std::string_view worker) {
  EP_ASSIGN_OR_RETURN(store::ConnectionLease lease, db_.Acquire());
  const std::int64_t now = Now();
  EP_ASSIGN_OR_RETURN(std::int64_t changed,
                      lease->Execute("renew_job_lease",
                                     "UPDATE jobs SET lease_expires_ms = ? WHERE id = ? AND "
                                     "state = 'running' AND lease_owner = ?",
                                     now + options_.lease_ms, id, worker));
  if (changed == 0) return NotOwned(id, worker);
  return Ok();
}

Result<bool> JobQueue::ReportProgress(std::string_view id, std::string_view worker,
                                      std::string_view phase, double percent) {
  percent = std::clamp(percent, 0.0, 100.0);
  EP_ASSIGN_OR_RETURN(store::ConnectionLease lease, db_.Acquire());
  EP_ASSIGN_OR_RETURN(
      Statement update,
      lease->Query("report_job_progress",
                   "UPDATE jobs SET phase = ?, percent = ?, updated_at = ? WHERE id = ? AND "
                   "state = 'running' AND lease_owner = ? RETURNING cancel_requested",
                   phase, percent, Now(), id, worker));
  EP_ASSIGN_OR_RETURN(bool row, update.Step());
  if (!row) return NotOwned(id, worker);
  const bool cancel = update.Int64(0) != 0;
  EP_RETURN_IF_ERROR(update.Run());  // let RETURNING finish so the write completes
  return cancel;
}

Status JobQueue::SaveCheckpoint(std::string_view id, std::string_view worker,
                                std::string_view bytes) {
  if (blobs_ == nullptr) {
    return MakeError(ErrorKind::kFailedPrecondition, "no_blob_store",
                     "this job queue has no blob store for checkpoints");
  }
  auto ref = blobs_->Put(bytes);
  if (!ref.ok()) return ref.error().WithContext("saving checkpoint of job " + std::string(id));
  EP_ASSIGN_OR_RETURN(store::ConnectionLease lease, db_.Acquire());
  EP_ASSIGN_OR_RETURN(std::int64_t changed,
                      lease->Execute("save_job_checkpoint",
                                     "UPDATE jobs SET checkpoint_sha256 = ?, updated_at = ? "
                                     "WHERE id = ? AND state = 'running' AND lease_owner = ?",
                                     ref->sha256, Now(), id, worker));
  if (changed == 0) return NotOwned(id, worker);
  return Ok();
}

Result<std::optional<std::string>> JobQueue::LoadCheckpoint(const Job& job) {
  if (!job.checkpoint_sha256) return std::optional<std::string>();
  if (blobs_ == nullptr) {
    return MakeError(ErrorKind::kFailedPrecondition, "no_blob_store",
                     "this job queue has no blob store for checkpoints");
  }
  auto bytes = blobs_->Get(*job.checkpoint_sha256);
  if (!bytes.ok()) return bytes.error().WithContext("loading checkpoint of job " + job.id);
  return std::optional<std::string>(std::move(bytes).value());
}

Status JobQueue::Succeed(std::string_view id, std::string_view worker,
                         const boost::json::object& result) {
  EP_ASSIGN_OR_RETURN(store::ConnectionLease lease, db_.Acquire());
  const std::int64_t now = Now();
  EP_ASSIGN_OR_RETURN(
      std::int64_t changed,
      lease->Execute("job_succeeded",
                     "UPDATE jobs SET state = 'succeeded', result = ?, percent = 100, error = '', "
                     "lease_owner = '', lease_expires_ms = 0, finished_at = ?, updated_at = ? "
                     "WHERE id = ? AND state = 'running' AND lease_owner = ?",
                     json::Serialize(result), now, now, id, worker));
  if (changed == 0) return NotOwned(id, worker);
  log::Get("jobs")->info("job {} succeeded", id);
  return Ok();
}

Status JobQueue::Fail(std::string_view id, std::string_view worker, const Error& error) {
  bool retried = false;
  // Read-then-write: on PostgreSQL two workers failing jobs at the same moment can abort each
  // other's SERIALIZABLE commit (SQLSTATE 40001), and a failure left unrecorded keeps the job
  // "running" until its lease expires. Every effect is inside the transaction, so it is re-run.
  Status status = db_.WithRetriedDurableTransaction([&](Connection& conn) -> Status {
    retried = false;
    EP_ASSIGN_OR_RETURN(Job job, LoadJob(conn, id));
    if (job.state != JobState::kRunning || job.lease_owner != worker) return NotOwned(id, worker);
    const std::int64_t now = Now();
    if (IsRetryable(error) && job.attempts < job.max_attempts) {
      std::int64_t delay = options_.retry_base_ms;
      for (std::int64_t i = 1; i < job.attempts && delay < options_.retry_max_ms; ++i) delay *= 2;
      delay = std::min(delay, options_.retry_max_ms);
      retried = true;
      EP_RETURN_IF_ERROR(conn.Execute(
          "job_retry_later",
          "UPDATE jobs SET state = 'queued', lease_owner = '', lease_expires_ms = 0, "
          "not_before = ?, error = ?, updated_at = ? WHERE id = ?",
          now + delay, error.ToString(), now, id));
      return Ok();
    }
    EP_RETURN_IF_ERROR(conn.Execute(
        "job_failed",
        "UPDATE jobs SET state = 'failed', lease_owner = '', lease_expires_ms = 0, error = ?, "
        "finished_at = ?, updated_at = ? WHERE id = ?",
        error.ToString(), now, now, id));
    return Ok();
  });
  if (!status.ok()) return status;
  log::Get("jobs")->warn("job {} {}: {}", id, retried ? "will retry" : "failed", error.ToString());
  if (retried) NotifyEnqueued();
  return Ok();
}

Status JobQueue::MarkCancelled(std::string_view id, std::string_view worker) {
  EP_ASSIGN_OR_RETURN(store::ConnectionLease lease, db_.Acquire());
  const std::int64_t now = Now();
  EP_ASSIGN_OR_RETURN(
      std::int64_t changed,
      lease->Execute("job_cancelled",
                     "UPDATE jobs SET state = 'cancelled', error = 'cancelled by operator', "
                     "lease_owner = '', lease_expires_ms = 0, finished_at = ?, updated_at = ? "
                     "WHERE id = ? AND state = 'running' AND lease_owner = ?",
                     now, now, id, worker));
  if (changed == 0) return NotOwned(id, worker);
  log::Get("jobs")->info("job {} cancelled", id);
  return Ok();
}

Status JobQueue::Requeue(std::string_view id, std::string_view worker, std::string_view reason) {
  EP_ASSIGN_OR_RETURN(store::ConnectionLease lease, db_.Acquire());
  EP_ASSIGN_OR_RETURN(
      std::int64_t changed,
      lease->Execute("job_requeued",
                     "UPDATE jobs SET state = 'queued', lease_owner = '', lease_expires_ms = 0, "
                     "attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END, error = ?, "
                     "updated_at = ? WHERE id = ? AND state = 'running' AND lease_owner = ?",
                     reason, Now(), id, worker));
  if (changed == 0) return NotOwned(id, worker);
  NotifyEnqueued();
  return Ok();
}

Result<JobQueue::TakenBack> JobQueue::TakeBackIn(Connection& conn, std::int64_t now,
                                                  std::int64_t before) {
  TakenBack taken;
  EP_ASSIGN_OR_RETURN(
      taken.cancelled,
      conn.Execute("take_back_cancelled_jobs",
                   "UPDATE jobs SET state = 'cancelled', lease_owner = '', lease_expires_ms = 0, "
                   "error = 'cancelled by operator', finished_at = ?1, updated_at = ?1 "
                   "WHERE state = 'running' AND lease_expires_ms < ?2 AND cancel_requested = 1",
                   now, before));
  EP_ASSIGN_OR_RETURN(
      taken.failed,
      conn.Execute("take_back_exhausted_jobs",
                   "UPDATE jobs SET state = 'failed', error = 'abandoned: worker ' || lease_owner "
                   "|| ' stopped during the last attempt (' || attempts || ' of ' || "
                   "max_attempts || ')', lease_owner = '', lease_expires_ms = 0, "
                   "finished_at = ?1, updated_at = ?1 WHERE state = 'running' AND "
                   "lease_expires_ms < ?2 AND attempts >= max_attempts",
                   now, before));
  EP_ASSIGN_OR_RETURN(
      taken.requeued,
      conn.Execute("take_back_running_jobs",
                   "UPDATE jobs SET state = 'queued', error = 'interrupted: worker ' || "
                   "lease_owner || ' stopped; resuming from its checkpoint', lease_owner = '', "
                   "lease_expires_ms = 0, updated_at = ?1 WHERE state = 'running' AND "
                   "lease_expires_ms < ?2",
                   now, before));
  return taken;
}

void JobQueue::Report(const TakenBack& taken, const char* why) {
  if (taken.requeued + taken.failed + taken.cancelled == 0) return;
  log::Get("jobs")->warn("took back jobs ({}): {} requeued, {} failed, {} cancelled", why,
                         taken.requeued, taken.failed, taken.cancelled);
  if (taken.requeued > 0) NotifyEnqueued();
}

Result<int> JobQueue::ExpireLeases() {
  auto taken = db_.WithRowLockedTransaction([&](Connection& conn) -> Result<TakenBack> {
    const std::int64_t now = Now();
    return TakeBackIn(conn, now, now);
  });
  if (!taken.ok()) return taken.error().WithContext("taking back jobs with expired leases");
  Report(*taken, "their lease expired");
  return static_cast<int>(taken->requeued);
}

Result<int> JobQueue::RecoverAbandoned() {
  auto taken = db_.WithTransaction([&](Connection& conn) -> Result<TakenBack> {
    return TakeBackIn(conn, Now(), std::numeric_limits<std::int64_t>::max());
  });
  if (!taken.ok()) return taken.error().WithContext("recovering abandoned jobs");
  Report(*taken, "found running at startup");
  return static_cast<int>(taken->requeued);
}

Result<std::vector<std::pair<std::string, std::int64_t>>> JobQueue::CountByState() {
  EP_ASSIGN_OR_RETURN(auto lease, db_.Acquire());
  EP_ASSIGN_OR_RETURN(auto s,
                      lease->Query("job_counts", "SELECT state, COUNT(*) FROM jobs GROUP BY state"));
  std::vector<std::pair<std::string, std::int64_t>> out;
  while (true) {
    EP_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    out.emplace_back(s.Text(0), s.Int64(1));
  }
  return out;
}

Result<std::int64_t> JobQueue::PruneFinished(std::int64_t before_ms) {
  if (before_ms < 0) {
    return MakeError(ErrorKind::kInvalidArgument, "invalid_retention",
                     "job retention: negative age");
  }
  if (before_ms == 0) return std::int64_t{0};
  // A finished job always has finished_at; updated_at only guards a row written otherwise.
  return store::DeleteInBatches(
      db_, "jobs_prune_finished",
      "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs WHERE state IN ('succeeded', 'failed', "
      "'cancelled') AND COALESCE(finished_at, updated_at) < ?1 LIMIT ?2)",
      before_ms);
}

Result<std::vector<std::string>> JobQueue::ReferencedBlobs() {
  return store::ReadStrings(db_, "jobs_checkpoint_blobs",
                            "SELECT DISTINCT checkpoint_sha256 FROM jobs "
                            "WHERE checkpoint_sha256 IS NOT NULL");
}

}  // namespace edgeprune::jobs
