#include "server/jobs/job.hpp"

namespace edgeprune::jobs {

const char* JobStateName(JobState state) {
  switch (state) {
    case JobState::kQueued: return "queued";
    case JobState::kRunning: return "running";
    case JobState::kSucceeded: return "succeeded";
    case JobState::kFailed: return "failed";
    case JobState::kCancelled: return "cancelled";
  }
  return "queued";
}

Result<JobState> ParseJobState(std::string_view text) {
  for (JobState s : {JobState::kQueued, JobState::kRunning, JobState::kSucceeded,
                     JobState::kFailed, JobState::kCancelled}) {
    if (text == JobStateName(s)) return s;
  }
  return MakeError(ErrorKind::kInvalidArgument, "invalid_job_state",
                   "'" + std::string(text.substr(0, 40)) +
                       "' is not a job state (queued, running, succeeded, failed, cancelled)");
}

boost::json::object JobToJson(const Job& job) {
  boost::json::object o;
  o["id"] = job.id;
  o["kind"] = job.kind;
  o["state"] = JobStateName(job.state);
  o["payload"] = job.payload;
  o["priority"] = job.priority;
  if (job.dedupe_key) o["dedupe_key"] = *job.dedupe_key;
  o["phase"] = job.phase;
  o["percent"] = job.percent;
  o["attempts"] = job.attempts;
  o["max_attempts"] = job.max_attempts;
  o["cancel_requested"] = job.cancel_requested;
  if (job.checkpoint_sha256) o["checkpoint_sha256"] = *job.checkpoint_sha256;
  o["result"] = job.result;
  o["error"] = job.error;
  o["created_at"] = job.created_at;
  o["updated_at"] = job.updated_at;
  o["started_at"] = job.started_at ? boost::json::value(*job.started_at) : nullptr;
  o["finished_at"] = job.finished_at ? boost::json::value(*job.finished_at) : nullptr;
  // Which worker holds a running job and until when: with several processes on one database,
  // this tells an operator where a build runs and when another process would take it back.
  o["lease_owner"] = job.lease_owner;
  o["lease_expires_at"] = job.state == JobState::kRunning && job.lease_expires_ms > 0
                              ? boost::json::value(job.lease_expires_ms)
                              : nullptr;
  return o;
}

}  // namespace edgeprune::jobs
