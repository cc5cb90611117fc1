#include "server/jobs/worker_pool.hpp"

#include <unistd.h>

#include <fmt/ranges.h>

#include <algorithm>
#include <exception>

#include "edgeprune/common/crypto.hpp"
#include "edgeprune/common/log.hpp"

namespace edgeprune::jobs {

// A worker-side write refused as kConflict: the job is no longer ours (taken back after our
// lease ran out); the handler stops and the pool writes nothing more to it.
Error JobContext::LostLeaseOr(Error error) {
  if (error.kind != ErrorKind::kConflict) return error;
  token_->LoseLease();
  return token_->Check().error();
}

Status JobContext::Progress(std::string_view phase, double percent) {
  auto cancel = queue_.ReportProgress(job_.id, worker_, phase, percent);
  if (!cancel.ok()) return LostLeaseOr(cancel.error());
  if (*cancel) token_->Cancel();
  return token_->Check();
}

Status JobContext::SaveCheckpoint(std::string_view bytes) {
  if (Status saved = queue_.SaveCheckpoint(job_.id, worker_, bytes); !saved.ok()) {
    return LostLeaseOr(saved.error());
  }
  job_.checkpoint_sha256 = crypto::Sha256Hex(bytes);
  return Ok();
}

Result<std::optional<std::string>> JobContext::LoadCheckpoint() {
  return queue_.LoadCheckpoint(job_);
}

WorkerPool::WorkerPool(JobQueue& queue, WorkerPoolOptions options)
    : queue_(queue), options_(options) {
  // Unique per process start, so a restarted process never matches its predecessor's claims.
  worker_prefix_ = "pid" + std::to_string(::getpid()) + "-" +
                   crypto::Sha256Hex(crypto::RandomToken(8)).substr(0, 6);
}

WorkerPool::~WorkerPool() { Stop(); }

Status WorkerPool::Register(std::string kind, JobHandler handler) {
  std::lock_guard<std::mutex> lock(mu_);
  if (started_) {
    return MakeError(ErrorKind::kFailedPrecondition, "pool_started",
                     "handlers must be registered before the worker pool starts");
  }
  if (!handler) {
    return MakeError(ErrorKind::kInvalidArgument, "invalid_handler",
                     "empty handler for job kind '" + kind + "'");
  }
  if (handlers_.count(kind) != 0) {
    return MakeError(ErrorKind::kConflict, "handler_exists",
                     "a handler for job kind '" + kind + "' is already registered");
  }
  kinds_.push_back(kind);
  handlers_.emplace(std::move(kind), std::move(handler));
  return Ok();
}

Status WorkerPool::Start() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (started_) {
      return MakeError(ErrorKind::kFailedPrecondition, "pool_started",
                       "the worker pool already started");
    }
    if (options_.threads < 1) {
      return MakeError(ErrorKind::kInvalidArgument, "invalid_option",
                       "the worker pool needs at least one thread");
    }
    started_ = true;
    stopping_ = false;
    renewer_stop_ = false;
  }
  // Lock order is queue observer lock → pool lock (the queue calls us under its lock), so the
  // observer is set without holding mu_.
  queue_.SetObserver(this);
  for (int i = 0; i < options_.threads; ++i) threads_.emplace_back([this, i] { WorkerLoop(i); });
  renewer_ = std::thread([this] { RenewLoop(); });
  log::Get("jobs")->info("worker pool started: {} thread(s), kinds [{}]", options_.threads,
                         fmt::join(kinds_, ", "));
  return Ok();
}

void WorkerPool::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!started_ || stopping_) return;
    stopping_ = true;
    for (auto& [id, run] : running_) run.token->Shutdown();
  }
  cv_.notify_all();
  // Workers first: the renewer keeps their leases until their jobs are back in the queue.
  for (auto& t : threads_) t.join();
  threads_.clear();
  {
    std::lock_guard<std::mutex> lock(mu_);
    renewer_stop_ = true;
  }
  cv_.notify_all();
  if (renewer_.joinable()) renewer_.join();
  queue_.SetObserver(nullptr);
  std::lock_guard<std::mutex> lock(mu_);
  started_ = false;
}

std::vector<std::string> WorkerPool::RunningJobIds() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> ids;
  for (const auto& [id, run] : running_) ids.push_back(id);
  return ids;
}

void WorkerPool::OnEnqueued() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++wake_seq_;
  }
  cv_.notify_all();
}

void WorkerPool::OnCancelRequested(const std::string& job_id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = running_.find(job_id);
  if (it != running_.end()) it->second.token->Cancel();
}

void WorkerPool::RenewLoop() {
  const auto interval = options_.lease_renew_interval.count() > 0
                            ? options_.lease_renew_interval
                            : std::chrono::milliseconds(std::max<std::int64_t>(1, queue_.lease_ms() / 3));
  std::unique_lock<std::mutex> lock(mu_);
  while (!renewer_stop_) {
    cv_.wait_for(lock, interval, [this] { return renewer_stop_; });
    if (renewer_stop_) return;
    lock.unlock();
    RenewRunning();
    lock.lock();
  }
}

void WorkerPool::RenewRunning() {
  std::vector<std::pair<std::string, Running>> running;
  {
    std::lock_guard<std::mutex> lock(mu_);
    running.assign(running_.begin(), running_.end());
  }
  for (const auto& [id, run] : running) {
    Status renewed = queue_.RenewLease(id, run.worker);
    if (renewed.ok()) continue;
    if (renewed.error().kind == ErrorKind::kConflict) {
      // Taken back (our lease had run out) or finished meanwhile: stop the handler either way;
      // a finished job's handler has returned already and ignores it.
      run.token->LoseLease();
    } else {
      // The lease may still hold; the next renewal, a third of a lease later, tries again.
      log::Get("jobs")->warn("renewing the lease of job {}: {}", id, renewed.error().ToString());
    }
  }
}

void WorkerPool::WorkerLoop(int index) {
  const std::string worker = worker_prefix_ + "/" + std::to_string(index);
  for (;;) {
    std::uint64_t seen;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;
      seen = wake_seq_;
    }
    auto claimed = queue_.Claim(kinds_, worker);
    if (claimed.ok() && claimed->has_value()) {
      RunJob(std::move(**claimed), worker);
      continue;
    }
    if (!claimed.ok()) log::Get("jobs")->error("claiming a job: {}", claimed.error().ToString());
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, options_.poll_interval, [&] { return stopping_ || wake_seq_ != seen; });
  }
}

void WorkerPool::RunJob(Job job, const std::string& worker) {
  auto token = std::make_shared<CancellationToken>();
  if (job.cancel_requested) token->Cancel();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) token->Shutdown();
    running_[job.id] = Running{worker, token};
  }
  const std::string id = job.id;
  const std::string kind = job.kind;
  log::Get("jobs")->info("{} runs {} job {} (attempt {} of {})", worker, kind, id, job.attempts,
                         job.max_attempts);
  JobContext context(queue_, std::move(job), worker, token);
  const auto started = std::chrono::steady_clock::now();
  Result<boost::json::object> result =
      MakeError(ErrorKind::kInternal, "handler_missing", "no handler for job kind " + kind);
  if (auto it = handlers_.find(kind); it != handlers_.end()) {
    try {
      result = it->second(context);
    } catch (const std::exception& e) {
      result = MakeError(ErrorKind::kInternal, "handler_threw",
                         "the " + kind + " handler threw: " + e.what());
    } catch (...) {
      result = MakeError(ErrorKind::kInternal, "handler_threw",
                         "the " + kind + " handler threw a non-standard exception");
    }
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    running_.erase(id);
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  Status finished;
  const char* outcome;
  if (result.ok()) {
    outcome = "succeeded";
    finished = queue_.Succeed(id, worker, *result);
  } else if (token->reason() == CancellationToken::Reason::kCancelled) {
    outcome = "cancelled";
    finished = queue_.MarkCancelled(id, worker);
  } else if (token->reason() == CancellationToken::Reason::kLeaseLost) {
    // Another worker runs it now; any write of ours would be refused (and must be).
    outcome = "lease_lost";
    log::Get("jobs")->warn("{} lost the lease of job {}; left to the worker that took it back",
                           worker, id);
  } else if (token->reason() == CancellationToken::Reason::kShutdown) {
    outcome = "interrupted";
    finished = queue_.Requeue(id, worker, "interrupted by shutdown; resuming from its checkpoint");
  } else {
    outcome = "failed";
    finished = queue_.Fail(id, worker, result.error());
  }
  if (options_.on_attempt_end) options_.on_attempt_end(kind, outcome, seconds);
  if (!finished.ok()) {
    log::Get("jobs")->error("recording the end of job {}: {}", id, finished.error().ToString());
  }
}

}  // namespace edgeprune::jobs
