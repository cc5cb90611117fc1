#include "agent/state/machine.hpp"

#include <algorithm>

#include "edgeprune/common/log.hpp"

namespace edgeprune::agent {

const char* StateName(StateId s) {
  switch (s) {
    case StateId::kEnroll: return "enroll";
    case StateId::kProfile: return "profile";
    case StateId::kPoll: return "poll";
    case StateId::kRenew: return "renew";
    case StateId::kDownload: return "download";
    case StateId::kVerify: return "verify";
    case StateId::kInstall: return "install";
    case StateId::kServe: return "serve";
  }
  return "?";
}

const char* EventName(Event e) {
  switch (e) {
    case Event::kDone: return "done";
    case Event::kFailed: return "failed";
    case Event::kUpdateAvailable: return "update_available";
    case Event::kRenewDue: return "renew_due";
    case Event::kReprofile: return "reprofile";
    case Event::kIdentityRejected: return "identity_rejected";
    case Event::kAbandoned: return "abandoned";
  }
  return "?";
}

std::optional<StateId> ParseStateName(const std::string& name) {
  for (StateId s : {StateId::kEnroll, StateId::kProfile, StateId::kPoll, StateId::kRenew,
                    StateId::kDownload, StateId::kVerify, StateId::kInstall, StateId::kServe}) {
    if (name == StateName(s)) return s;
  }
  return std::nullopt;
}

const std::vector<Transition>& TransitionTable() {
  using S = StateId;
  using E = Event;
  // clang-format off
  static const std::vector<Transition> table = {
      // from          on                     to
      {S::kEnroll,   E::kDone,              S::kProfile},
      {S::kProfile,  E::kDone,              S::kPoll},
      {S::kProfile,  E::kIdentityRejected,  S::kEnroll},
      {S::kPoll,     E::kDone,              S::kPoll},
      {S::kPoll,     E::kReprofile,         S::kProfile},
      {S::kPoll,     E::kRenewDue,          S::kRenew},
      {S::kPoll,     E::kIdentityRejected,  S::kEnroll},
      {S::kPoll,     E::kUpdateAvailable,   S::kDownload},
      {S::kRenew,    E::kDone,              S::kPoll},
      {S::kRenew,    E::kIdentityRejected,  S::kEnroll},
      {S::kDownload, E::kDone,              S::kVerify},
      {S::kDownload, E::kAbandoned,         S::kServe},
      {S::kVerify,   E::kDone,              S::kInstall},
      {S::kVerify,   E::kAbandoned,         S::kServe},
      {S::kInstall,  E::kDone,              S::kServe},
      {S::kInstall,  E::kAbandoned,         S::kServe},
      {S::kServe,    E::kDone,              S::kServe},
      {S::kServe,    E::kReprofile,         S::kProfile},
      {S::kServe,    E::kRenewDue,          S::kRenew},
      {S::kServe,    E::kIdentityRejected,  S::kEnroll},
      {S::kServe,    E::kUpdateAvailable,   S::kDownload},
  };
  // clang-format on
  return table;
}

std::optional<StateId> NextState(StateId from, Event event) {
  if (event == Event::kFailed) return from;
  for (const auto& t : TransitionTable()) {
    if (t.from == from && t.on == event) return t.to;
  }
  return std::nullopt;
}

bool StopSignal::WaitFor(std::chrono::milliseconds d) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, d, [&] { return stopped_; });
  return !stopped_;
}

void StopSignal::Stop() {
  {
    std::lock_guard lock(mu_);
    stopped_ = true;
  }
  cv_.notify_all();
}

bool StopSignal::stopped() const {
  std::lock_guard lock(mu_);
  return stopped_;
}

Machine::Machine(Backoff backoff, std::shared_ptr<StopSignal> stop)
    : backoff_(std::move(backoff)), stop_(std::move(stop)) {}

void Machine::Register(StateId state, std::unique_ptr<StateHandler> handler) {
  handlers_[state] = std::move(handler);
}

bool WaitWithKeepAlive(StopSignal& stop, std::chrono::milliseconds wait, KeepAlive& keepalive) {
  using Clock = std::chrono::steady_clock;
  if (!keepalive.tick) return wait.count() <= 0 || stop.WaitFor(wait);
  const auto deadline = Clock::now() + wait;
  for (;;) {
    auto now = Clock::now();
    if (now >= keepalive.due) {
      keepalive.due = now + std::max(std::chrono::milliseconds(1), keepalive.tick());
      now = Clock::now();
    }
    if (stop.stopped()) return false;
    if (now >= deadline) return true;
    const auto until = std::min(deadline, keepalive.due);
    if (!stop.WaitFor(std::chrono::ceil<std::chrono::milliseconds>(until - now))) return false;
  }
}

bool Machine::Wait(StateId state, std::chrono::milliseconds wait) {
  if (keepalive_states_.count(state) == 0) return wait.count() <= 0 || stop_->WaitFor(wait);
  return WaitWithKeepAlive(*stop_, wait, keepalive_);
}

StateId Machine::Run(StateId start, int max_steps) {
  auto log = log::Get("agent");
  StateId current = start;
  for (int step = 0; (max_steps < 0 || step < max_steps) && !stop_->stopped(); ++step) {
    auto it = handlers_.find(current);
    if (it == handlers_.end()) {
      log->error("state '{}' has no handler; stopping", StateName(current));
      return current;
    }
    StepResult r = it->second->Run();
    std::chrono::milliseconds wait = r.wait;
    StateId next = current;
    if (r.event == Event::kFailed) {
      wait = backoff_.NextFailure();
      log->warn("{} failed ({}); retry {} in {} ms", StateName(current), r.detail,
                backoff_.failures(), wait.count());
    } else {
      backoff_.Reset();
      auto to = NextState(current, r.event);
      if (!to) {
        log->error("no transition from '{}' on '{}'", StateName(current), EventName(r.event));
      } else if (!Has(*to)) {
        log->warn("'{}' on '{}' leads to '{}', which this agent does not run yet; staying",
                  StateName(current), EventName(r.event), StateName(*to));
      } else {
        next = *to;
      }
    }
    if (next != current) {
      log->info("{} --{}--> {}{}{}", StateName(current), EventName(r.event), StateName(next),
                r.detail.empty() ? "" : ": ", r.detail);
      if (on_transition_) on_transition_(current, next, r.event);
      current = next;
    }
    if (!Wait(current, wait)) break;
  }
  return current;
}

}  // namespace edgeprune::agent
