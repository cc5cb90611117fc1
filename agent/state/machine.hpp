#pragma once
// The agent daemon as one explicit transition table and one small handler per state. The table
// is here; the handlers, and the one object that owns the state they share (AgentContext), are in
// states.hpp and agent_context.hpp next to it.
//
//   enroll ─done→ profile ─done→ poll ─update_available→ download ─done→ verify ─done→ install
//   install ─done→ serve;  download/verify/install ─abandoned→ serve
//   serve ─update_available→ download;  poll/serve ─reprofile→ profile
//   poll/serve ─renew_due→ renew ─done→ poll;  profile/poll/renew/serve ─identity_rejected→ enroll
//
// A handler runs one step and reports an Event; the table alone decides the next state. A failed
// step stays in its state and waits an exponential backoff with jitter; any other event resets
// the backoff and waits what the handler asked (e.g. the heartbeat interval). A transition to a
// state whose handler is not registered is logged and the machine stays where it is.
//
// Abandoning a variant is its own event: download, verify or install report kAbandoned when the
// variant will not be installed after all (refused for good: bad signature, stale version, failed
// check, payload damaged too often; or no longer offered by the server), and the machine goes
// back to serving what it served. A retry that may still succeed is kFailed (stay, back off).
//
// Keep-alive: states that do not heartbeat themselves (download, verify, install) may be retried
// in place for a long time (a payload answering 5xx, the backoff growing to its cap). While the
// machine waits in such a state, it runs the keep-alive task whenever that task asked to run
// again, so the server keeps hearing from the agent at its heartbeat interval.
//
// Thread-safety: Run() on one thread; Stop() from any thread.

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "agent/state/backoff.hpp"
#include "edgeprune/common/result.hpp"

namespace edgeprune::agent {

enum class StateId { kEnroll, kProfile, kPoll, kRenew, kDownload, kVerify, kInstall, kServe };
enum class Event {
  kDone,
  kFailed,
  kUpdateAvailable,
  kRenewDue,
  kReprofile,
  kIdentityRejected,
  kAbandoned,  // the variant being updated to will not be installed: back to serving
};

const char* StateName(StateId s);
const char* EventName(Event e);
std::optional<StateId> ParseStateName(const std::string& name);

struct Transition {
  StateId from;
  Event on;
  StateId to;
};

// The whole table; kFailed always stays in place and is not listed.
const std::vector<Transition>& TransitionTable();
// The next state for (from, event); nullopt when the table has no row (a programming error).
std::optional<StateId> NextState(StateId from, Event event);

struct StepResult {
  Event event = Event::kDone;
  std::chrono::milliseconds wait{0};  // before the next step; ignored for kFailed (backoff)
  std::string detail;                 // for the log
};

class StateHandler {
 public:
  virtual ~StateHandler() = default;
  virtual StepResult Run() = 0;
};

// An interruptible wait: returns false when stopped.
class StopSignal {
 public:
  bool WaitFor(std::chrono::milliseconds d);
  void Stop();
  bool stopped() const;

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopped_ = false;
};

// A task that runs while something waits (the daemon's heartbeat): tick() does the work when it
// is due and returns how long until it should run again (> 0); it first runs at the first wait.
struct KeepAlive {
  std::function<std::chrono::milliseconds()> tick;  // empty: plain waits
  std::chrono::steady_clock::time_point due{};
};

// Waits `wait` on `stop`, running keepalive.tick whenever it is due; false when stopped. Used by
// the machine's waits and by the rate-capped download's waits between chunks.
bool WaitWithKeepAlive(StopSignal& stop, std::chrono::milliseconds wait, KeepAlive& keepalive);

class Machine {
 public:
  Machine(Backoff backoff, std::shared_ptr<StopSignal> stop);

  void Register(StateId state, std::unique_ptr<StateHandler> handler);
  bool Has(StateId state) const { return handlers_.count(state) != 0; }

  // Called after every transition (persists the state, updates heartbeat fields).
  void OnTransition(std::function<void(StateId from, StateId to, Event why)> fn) {
    on_transition_ = std::move(fn);
  }

  // While waiting in one of `states`, runs tick() when the time it last asked for has come
  // (immediately the first time); tick returns how long until it should run again (> 0).
  void SetKeepAlive(std::set<StateId> states, std::function<std::chrono::milliseconds()> tick) {
    keepalive_states_ = std::move(states);
    keepalive_.tick = std::move(tick);
  }

  // Runs from `start` until stopped or, when max_steps ≥ 0, that many steps were taken.
  // Returns the state it ended in.
  StateId Run(StateId start, int max_steps = -1);
  void Stop() { stop_->Stop(); }
  const Backoff& backoff() const { return backoff_; }

 private:
  Backoff backoff_;
  std::shared_ptr<StopSignal> stop_;
  std::map<StateId, std::unique_ptr<StateHandler>> handlers_;
  std::function<void(StateId, StateId, Event)> on_transition_;
  std::set<StateId> keepalive_states_;
  KeepAlive keepalive_;

  // Waits `wait` in `state`, running the keep-alive when due; false when stopped.
  bool Wait(StateId state, std::chrono::milliseconds wait);
};

}  // namespace edgeprune::agent
