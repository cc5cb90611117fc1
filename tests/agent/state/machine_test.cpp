#include <gtest/gtest.h>

#include <deque>
#include <set>

#include "agent/state/backoff.hpp"
#include "agent/state/machine.hpp"
#include "agent/state/states.hpp"

namespace edgeprune::agent {
namespace {

using std::chrono::milliseconds;

// Replays a fixed script of events and records every visit.
class Scripted : public StateHandler {
 public:
  Scripted(std::vector<StateId>* visits, StateId id, std::deque<Event> script)
      : visits_(visits), id_(id), script_(std::move(script)) {}
  StepResult Run() override {
    visits_->push_back(id_);
    Event e = script_.empty() ? Event::kDone : script_.front();
    if (!script_.empty()) script_.pop_front();
    return {e, milliseconds(0), "scripted"};
  }

 private:
  std::vector<StateId>* visits_;
  StateId id_;
  std::deque<Event> script_;
};

TEST(TransitionTable, HasOneRowPerStateAndEventAndReachesEveryState) {
  std::set<std::pair<int, int>> seen;
  std::set<StateId> targets;
  for (const auto& t : TransitionTable()) {
    EXPECT_TRUE(seen.insert({static_cast<int>(t.from), static_cast<int>(t.on)}).second)
        << StateName(t.from) << " has two rows for " << EventName(t.on);
    EXPECT_NE(t.on, Event::kFailed) << "failures stay in place and are not listed";
    targets.insert(t.to);
  }
  for (StateId s : {StateId::kProfile, StateId::kPoll, StateId::kRenew, StateId::kDownload,
                    StateId::kVerify, StateId::kInstall, StateId::kServe, StateId::kEnroll}) {
    EXPECT_TRUE(targets.count(s)) << StateName(s) << " is unreachable";
  }
}

TEST(TransitionTable, LaysOutTheFullLoop) {
  EXPECT_EQ(NextState(StateId::kEnroll, Event::kDone), StateId::kProfile);
  EXPECT_EQ(NextState(StateId::kProfile, Event::kDone), StateId::kPoll);
  EXPECT_EQ(NextState(StateId::kPoll, Event::kUpdateAvailable), StateId::kDownload);
  EXPECT_EQ(NextState(StateId::kDownload, Event::kDone), StateId::kVerify);
  EXPECT_EQ(NextState(StateId::kVerify, Event::kDone), StateId::kInstall);
  EXPECT_EQ(NextState(StateId::kInstall, Event::kDone), StateId::kServe);
  EXPECT_EQ(NextState(StateId::kPoll, Event::kFailed), StateId::kPoll);
  EXPECT_EQ(NextState(StateId::kEnroll, Event::kUpdateAvailable), std::nullopt);
}

// Abandoning a variant (refused for good, no longer offered) is a row of the table from each
// update state back to serve, not a pass-through of the later steps.
TEST(TransitionTable, AbandoningAVariantGoesBackToServeFromEachUpdateState) {
  for (StateId s : {StateId::kDownload, StateId::kVerify, StateId::kInstall}) {
    EXPECT_EQ(NextState(s, Event::kAbandoned), StateId::kServe) << StateName(s);
  }
  EXPECT_EQ(NextState(StateId::kPoll, Event::kAbandoned), std::nullopt);
  EXPECT_STREQ(EventName(Event::kAbandoned), "abandoned");
}

TEST(StateNames, RoundTrip) {
  for (const auto& t : TransitionTable()) {
    EXPECT_EQ(ParseStateName(StateName(t.from)), t.from);
  }
  EXPECT_EQ(ParseStateName("nonsense"), std::nullopt);
}

TEST(Machine, RetriesFailuresInPlaceThenFollowsTheTable) {
  std::vector<StateId> visits;
  std::vector<std::string> transitions;
  auto stop = std::make_shared<StopSignal>();
  // Backoff of 1 ms keeps the test fast; the schedule itself is tested on Backoff.
  Machine m(Backoff(milliseconds(1), milliseconds(1), 7), stop);
  m.Register(StateId::kEnroll, std::make_unique<Scripted>(
                                   &visits, StateId::kEnroll,
                                   std::deque<Event>{Event::kFailed, Event::kFailed, Event::kDone}));
  m.Register(StateId::kProfile, std::make_unique<Scripted>(&visits, StateId::kProfile,
                                                           std::deque<Event>{Event::kDone}));
  m.Register(StateId::kPoll,
             std::make_unique<Scripted>(&visits, StateId::kPoll,
                                        std::deque<Event>{Event::kDone, Event::kReprofile}));
  m.OnTransition([&](StateId from, StateId to, Event) {
    transitions.push_back(std::string(StateName(from)) + ">" + StateName(to));
  });
  StateId end = m.Run(StateId::kEnroll, 7);
  const std::vector<StateId> want = {StateId::kEnroll, StateId::kEnroll, StateId::kEnroll,
                                     StateId::kProfile, StateId::kPoll, StateId::kPoll,
                                     StateId::kProfile};
  EXPECT_EQ(visits, want);
  EXPECT_EQ(end, StateId::kPoll);
  const std::vector<std::string> want_t = {"enroll>profile", "profile>poll", "poll>profile",
                                           "profile>poll"};
  EXPECT_EQ(transitions, want_t);
  EXPECT_EQ(m.backoff().failures(), 0) << "success resets the backoff";
}

TEST(Machine, StaysWhenTheTargetStateIsNotBuiltYet) {
  std::vector<StateId> visits;
  Machine m(Backoff(milliseconds(1), milliseconds(1), 1), std::make_shared<StopSignal>());
  m.Register(StateId::kPoll, std::make_unique<Scripted>(
                                 &visits, StateId::kPoll,
                                 std::deque<Event>{Event::kUpdateAvailable, Event::kDone}));
  EXPECT_EQ(m.Run(StateId::kPoll, 2), StateId::kPoll);
  EXPECT_EQ(visits.size(), 2u);
}

// A download retried in place waits its backoff; the keep-alive (the daemon's heartbeat) runs
// inside those waits on its own period, and not while waiting in a state outside its set.
TEST(Machine, KeepAliveRunsDuringBackoffWaitsOfItsStates) {
  class Always : public StateHandler {
   public:
    Always(Event e, milliseconds wait) : e_(e), wait_(wait) {}
    StepResult Run() override { return {e_, wait_, "scripted"}; }
    Event e_;
    milliseconds wait_;
  };
  auto stop = std::make_shared<StopSignal>();
  Machine m(Backoff(milliseconds(200), milliseconds(200), 3), stop);
  m.Register(StateId::kDownload, std::make_unique<Always>(Event::kFailed, milliseconds(0)));
  m.Register(StateId::kPoll, std::make_unique<Always>(Event::kDone, milliseconds(200)));
  int ticks = 0;
  m.SetKeepAlive({StateId::kDownload}, [&] {
    ++ticks;
    return milliseconds(10);
  });
  EXPECT_EQ(m.Run(StateId::kPoll, 3), StateId::kPoll);
  EXPECT_EQ(ticks, 0) << "poll heartbeats itself";
  EXPECT_EQ(m.Run(StateId::kDownload, 3), StateId::kDownload);
  // Three backoff waits of ~200 ms with a 10 ms period: well above one tick per wait.
  EXPECT_GT(ticks, 3);
  // A stop still ends a wait at once, keep-alive or not.
  stop->Stop();
  EXPECT_EQ(m.Run(StateId::kDownload, 1), StateId::kDownload);
}

TEST(Machine, StopInterruptsAWait) {
  auto stop = std::make_shared<StopSignal>();
  class Stopper : public StateHandler {
   public:
    explicit Stopper(std::shared_ptr<StopSignal> s) : s_(std::move(s)) {}
    StepResult Run() override {
      s_->Stop();
      return {Event::kDone, std::chrono::hours(1), ""};
    }
    std::shared_ptr<StopSignal> s_;
  };
  Machine m(Backoff(milliseconds(1), milliseconds(1), 1), stop);
  m.Register(StateId::kPoll, std::make_unique<Stopper>(stop));
  EXPECT_EQ(m.Run(StateId::kPoll), StateId::kPoll);  // returns at once instead of in an hour
}

TEST(Backoff, GrowsExponentiallyWithJitterUpToTheCap) {
  Backoff b(milliseconds(100), milliseconds(1000), 42);
  const std::int64_t ceilings[] = {100, 200, 400, 800, 1000, 1000, 1000};
  for (std::int64_t ceiling : ceilings) {
    auto d = b.NextFailure().count();
    EXPECT_GE(d, ceiling / 2);
    EXPECT_LE(d, ceiling);
  }
  EXPECT_EQ(b.failures(), 7);
  b.Reset();
  EXPECT_LE(b.NextFailure().count(), 100);
}

TEST(Backoff, JitterSpreadsAnIntervalBothWays) {
  Backoff b(milliseconds(1), milliseconds(1), 3);
  std::int64_t lo = 1 << 30, hi = 0;
  for (int i = 0; i < 200; ++i) {
    auto d = b.Jitter(milliseconds(10000), 0.1).count();
    lo = std::min(lo, d);
    hi = std::max(hi, d);
  }
  EXPECT_GE(lo, 9000);
  EXPECT_LE(hi, 11000);
  EXPECT_LT(lo, 9800);
  EXPECT_GT(hi, 10200);
}

TEST(Renewal, IsDueAtTwoThirdsOfTheCertificateValidity) {
  Identity id;
  id.not_before = 1000;
  id.not_after = 1000 + 30 * 86400;
  EXPECT_FALSE(RenewalDue(id, 1000));
  EXPECT_FALSE(RenewalDue(id, 1000 + 20 * 86400 - 1));
  EXPECT_TRUE(RenewalDue(id, 1000 + 20 * 86400));
  EXPECT_TRUE(RenewalDue(id, 1000 + 31 * 86400));
  id.not_after = id.not_before;  // nonsense validity: never loops on renewal
  EXPECT_FALSE(RenewalDue(id, 5000));
}

}  // namespace
}  // namespace edgeprune::agent
