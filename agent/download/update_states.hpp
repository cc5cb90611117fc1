#pragma once
// The state machine's download, verify and install states, on a VariantUpdater. The poll state
// (agent/state) learns the desired variant from the heartbeat answer and raises kUpdateAvailable;
// these handlers then run one step each:
//   download  fetch + check manifest and signature, fetch the payload (resumable) → kDone
//   verify    payload digest, runtime load + probe check, not yet serving          → kDone
//   install   move into place, record, hot swap                                      → kDone (serve)
// A failed step returns kFailed, so the machine retries it after a backoff; a refusal that a
// retry cannot fix (bad signature, stale version, probe below floor) is remembered per variant
// so the agent does not download the same refused variant in a loop: download then reports
// kDone with nothing pending and verify/install pass straight through to serve.
// A variant the server no longer offers (its manifest answers 403/404: the assignment changed
// while a download failed or waited) is dropped without a report and the flow passes through to
// serve, whose heartbeat brings the new desired variant; retrying it in place would never end.
// A payload whose size or SHA-256 differs from the signed manifest is refused too, but a retry
// may fix it (bytes damaged on the way or on the server's disk): the partial file is deleted, every
// such refusal is reported with its reason and attempt number, the download is retried with the
// machine's backoff, and after max_integrity_attempts refusals in a row the variant is refused
// for good (until the server assigns another variant or the agent restarts).
//
// Thread-safety: run on the state machine's thread only.

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "agent/download/variant_updater.hpp"
#include "agent/state/machine.hpp"

namespace edgeprune::agent {

// Shared by the three handlers: the updater and what was refused for good.
struct UpdateFlow {
  VariantUpdater* updater = nullptr;
  // The variant the server wants (from the latest heartbeat answer); nullopt: none assigned.
  std::function<std::optional<std::string>()> desired_variant;
  std::set<std::string> refused;  // variant ids refused for a reason a retry cannot fix
  // Payload integrity refusals in a row per variant, and how many make the refusal final.
  std::map<std::string, int> integrity_failures;
  int max_integrity_attempts = 3;
  std::string last_error;         // for heartbeat/diagnostics
  // Tells the server what happened to a variant: "installed", "refused" (signature, version,
  // manifest, payload) or "check_failed" (the model did not load or failed its probe check), with
  // the reason. Returns false when it should be sent again later (the server was not reached);
  // the callee logs a failure.
  std::function<bool(const std::string& variant_id, const std::string& event,
                     const std::string& reason)>
      report;
  // Events not yet recorded by the server, oldest first: Report() queues, FlushReports() sends
  // in order until one fails, so a refusal made while the server is unreachable (and never
  // retried, being final) still reaches it. Kept in memory: a restarted agent meets the variant
  // again and reports afresh.
  struct VariantEvent {
    std::string variant_id, event, reason;
  };
  std::deque<VariantEvent> unsent;
  static constexpr std::size_t kMaxUnsent = 100;  // beyond, the oldest are dropped (logged)

  void Report(const std::string& variant_id, const std::string& event, const std::string& reason);
  void FlushReports();
};

// Whether a permanent refusal is the model failing its check (vs the manifest being refused).
bool IsCheckFailure(const std::string& code);

// Whether an error code means the variant itself is unacceptable (no point retrying it).
bool IsPermanentRefusal(const std::string& code);

// Whether an error code means the payload bytes do not match the signed manifest (refused and
// reported, but retried up to UpdateFlow::max_integrity_attempts).
bool IsIntegrityFailure(const std::string& code);

std::unique_ptr<StateHandler> MakeDownloadState(std::shared_ptr<UpdateFlow> flow);
std::unique_ptr<StateHandler> MakeVerifyState(std::shared_ptr<UpdateFlow> flow);
std::unique_ptr<StateHandler> MakeInstallState(std::shared_ptr<UpdateFlow> flow);

}  // namespace edgeprune::agent
