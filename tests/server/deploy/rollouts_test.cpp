// Rollouts on a real SQLite database with a manual clock: phases, bake, approval, every gate and
// action, rate limit, maintenance window, late devices, abort, and a restart mid-rollout.
#include <gtest/gtest.h>

#include <chrono>

#include "server/support/rollouts_fixture.hpp"

namespace edgeprune::deploy {
namespace {

namespace bj = boost::json;
using namespace std::chrono_literals;
using testing::RolloutsWorld;

// Runs on both store backends (store_backends.hpp).
class RolloutsTest : public ::edgeprune::testing::StoreBackendTest {
 protected:
  // Model A (what the fleet runs) and model B (what is rolled out), each with a ladder.
  void SetUp() override {
    model_a_ = w_.AddModel({{"L0", {10'000'000, 0.90}}});
    model_b_ = w_.AddModel({{"L0", {10'000'000, 0.91}}, {"L2", {5'000'000, 0.88}}});
    a0_ = w_.Variant(model_a_, "L0");
    b0_ = w_.Variant(model_b_, "L0");
    b2_ = w_.Variant(model_b_, "L2");
  }

  // Every device tagged "cam" runs model A's variant and has reported its probe accuracy.
  void FleetOnA(int n, double accuracy = 0.90) {
    w_.AddDevices("dev-", n, R"(["cam"])");
    deploy::Selector all;
    all.tags = {"cam"};
    auto d = w_.deployments().Deploy(model_a_, all, "test");
    ASSERT_TRUE(d.ok()) << d.error().ToString();
    for (int i = 0; i < n; ++i) {
      w_.Heartbeat(Dev(i), a0_);
      w_.Report(Dev(i), a0_, accuracy);
    }
  }
  static std::string Dev(int i) { return "dev-" + std::to_string(i); }

  std::string Create(const std::string& json) {
    auto r = w_.rollouts().Create(w_.Spec(json), "token:op");
    EXPECT_TRUE(r.ok()) << r.error().ToString();
    return r.ok() ? std::string(r->at("id").as_string()) : "";
  }
  // The devices the rollout started, in order.
  std::vector<std::string> Started(const std::string& id) {
    std::vector<std::string> out;
    const bj::object r = w_.Get(id);
    for (const auto& d : r.at("devices").as_array()) {
      if (d.at("state").as_string() != "pending") out.emplace_back(d.at("device_id").as_string());
    }
    return out;
  }

  RolloutsWorld w_{GetParam()};
  std::string model_a_, model_b_, a0_, b0_, b2_;
};

TEST_P(RolloutsTest, AGoodModelRollsThroughThreePhasesToEveryDevice) {
  FleetOnA(10);
  const std::string id = Create(R"({"model": ")" + model_b_ + R"(", "target": {"tags": ["cam"]},
      "phases": [{"count": 1, "bake_seconds": 60}, {"percent": 50, "bake_seconds": 60},
                 {"percent": 100}],
      "gates": [{"gate": "probe_accuracy_drop", "threshold": 0.05, "action": "rollback"}]})");
  ASSERT_FALSE(id.empty());
  auto canary = Started(id);
  ASSERT_EQ(canary.size(), 1u);
  EXPECT_EQ(w_.Desired(canary[0]), b0_);
  EXPECT_EQ(w_.Count(id, 0, "downloading"), 1);
  EXPECT_EQ(w_.Count(id, 1, "pending"), 4);
  EXPECT_EQ(w_.Count(id, 2, "pending"), 5);

  w_.Install(canary[0], 0.91);
  w_.Tick();
  EXPECT_EQ(w_.StateOf(id, canary[0]), "verified");
  EXPECT_EQ(Started(id).size(), 1u) << "the canary bakes before phase 1 starts";
  w_.clock().Advance(61s);
  w_.Tick();
  auto bj_phase = w_.Get(id);
  EXPECT_EQ(bj_phase.at("phase").as_int64(), 1);
  auto started = Started(id);
  ASSERT_EQ(started.size(), 5u);
  for (const auto& d : started) w_.Install(d, 0.90);
  w_.Tick();
  w_.clock().Advance(61s);
  w_.Tick();
  EXPECT_EQ(w_.Get(id).at("phase").as_int64(), 2);
  for (const auto& d : Started(id)) {
    if (w_.StateOf(id, d) == "downloading") w_.Install(d, 0.90);
  }
  w_.Tick();
  const auto done = w_.Get(id);
  EXPECT_EQ(done.at("state").as_string(), "completed") << json::Serialize(done);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(w_.Desired(Dev(i)), b0_) << Dev(i);
  EXPECT_EQ(w_.Audit("rollout.phase").size(), 2u);
  EXPECT_EQ(w_.Audit("rollout.complete").size(), 1u);
}

TEST_P(RolloutsTest, ABadCanaryTripsTheProbeGateRollsBackAndNoOtherDeviceReceivesIt) {
  FleetOnA(6);
  const std::string id = Create(R"({"model": ")" + model_b_ + R"(", "target": {"tags": ["cam"]},
      "phases": [{"count": 1, "bake_seconds": 600}, {"percent": 100}],
      "gates": [{"gate": "probe_accuracy_drop", "threshold": 0.05, "min_samples": 1,
                 "action": "rollback"}]})");
  const auto canary = Started(id);
  ASSERT_EQ(canary.size(), 1u);
  w_.Install(canary[0], 0.31);  // trained one step
  w_.Tick();
  const auto r = w_.Get(id);
  EXPECT_EQ(r.at("state").as_string(), "rolled_back") << json::Serialize(r);
  EXPECT_EQ(w_.StateOf(id, canary[0]), "rolled_back");
  // Back on A's variant, signed as a roll-back only when it is a lower version (A's is older).
  EXPECT_EQ(w_.Desired(canary[0]), a0_);
  auto desired = w_.deployments().Desired(canary[0]);
  ASSERT_TRUE(desired.ok());
  EXPECT_TRUE(desired->rollback);
  for (int i = 0; i < 6; ++i) {
    if (Dev(i) == canary[0]) continue;
    EXPECT_EQ(w_.Desired(Dev(i)), a0_) << Dev(i) << " outside the canary never receives B";
    EXPECT_EQ(w_.StateOf(id, Dev(i)), "pending");
  }
  const auto audit = w_.Audit("rollout.rollback");
  ASSERT_EQ(audit.size(), 1u);
  auto detail = json::ParseObject(audit[0].detail);
  ASSERT_TRUE(detail.ok()) << audit[0].detail;
  EXPECT_EQ(detail->at("gate").as_string(), "probe_accuracy_drop");
  EXPECT_NEAR(detail->at("value").as_double(), 0.90 - 0.31, 1e-9);
  EXPECT_DOUBLE_EQ(detail->at("threshold").as_double(), 0.05);
  EXPECT_EQ(w_.Audit("device.rollback").size(), 1u);
  // Finished: every action is refused, nothing changes.
  for (auto a : {deploy::RolloutAction::kResume, deploy::RolloutAction::kAbort,
                 deploy::RolloutAction::kPromote, deploy::RolloutAction::kPause,
                 deploy::RolloutAction::kApprove}) {
    auto refused = w_.rollouts().Act(id, a, "token:op");
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.error().code, "rollout_state_conflict");
  }
  EXPECT_EQ(w_.Get(id).at("state").as_string(), "rolled_back");
}

TEST_P(RolloutsTest, APauseGateHoldsTheRolloutAndResumeWaivesItForThePhase) {
  FleetOnA(4);
  const std::string id = Create(R"({"model": ")" + model_b_ + R"(", "target": {"tags": ["cam"]},
      "phases": [{"count": 2}, {"percent": 100}],
      "gates": [{"gate": "probe_accuracy_drop", "threshold": 0.05, "min_samples": 2,
                 "action": "pause"}]})");
  const auto started = Started(id);
  ASSERT_EQ(started.size(), 2u);
  w_.Install(started[0], 0.50);
  w_.Tick();
  EXPECT_EQ(w_.Get(id).at("state").as_string(), "running") << "one sample is below min_samples";
  w_.Install(started[1], 0.52);
  w_.Tick();
  auto paused = w_.Get(id);
  EXPECT_EQ(paused.at("state").as_string(), "paused");
  EXPECT_EQ(paused.at("reason").at("gate").as_string(), "probe_accuracy_drop");
  EXPECT_EQ(w_.Desired(started[0]), b0_) << "pause keeps what is installed";
  EXPECT_EQ(Started(id).size(), 2u);
  w_.Tick();
  EXPECT_EQ(Started(id).size(), 2u) << "a paused rollout starts nobody";
  auto resumed = w_.rollouts().Act(id, deploy::RolloutAction::kResume, "token:op");
  ASSERT_TRUE(resumed.ok()) << resumed.error().ToString();
  // The operator looked: the tripped gate is waived for the rest of the phase, which (settled,
  // no bake) advances at once.
  const auto resume = w_.Audit("rollout.resume");
  ASSERT_EQ(resume.size(), 1u);
  EXPECT_NE(resume[0].detail.find(R"("waived":["probe_accuracy_drop"])"), std::string::npos)
      << resume[0].detail;
  EXPECT_EQ(resumed->at("phase").as_int64(), 1);
  EXPECT_EQ(resumed->at("waived").as_array().size(), 0u) << "a new phase judges every gate";
  EXPECT_EQ(Started(id).size(), 4u);
}

TEST_P(RolloutsTest, InstallFailuresAndSilentDevicesTripTheirGates) {
  FleetOnA(4);
  const std::string fail = Create(R"({"model": ")" + model_b_ + R"(",
      "target": {"devices": ["dev-0", "dev-1"]}, "phases": [{"percent": 100, "bake_seconds": 60}],
      "gates": [{"gate": "install_failure_rate", "threshold": 0.4, "min_samples": 2,
                 "action": "pause"}]})");
  w_.Event("dev-0", b0_, "check_failed");
  w_.Install("dev-1");
  w_.Tick();
  EXPECT_EQ(w_.StateOf(fail, "dev-0"), "failed");
  auto r = w_.Get(fail);
  EXPECT_EQ(r.at("state").as_string(), "paused") << json::Serialize(r);
  EXPECT_DOUBLE_EQ(r.at("reason").at("value").as_double(), 0.5);

  const std::string silent = Create(R"({"model": ")" + model_b_ + R"(",
      "target": {"devices": ["dev-2", "dev-3"]}, "phases": [{"percent": 100, "bake_seconds": 3600}],
      "offline_after_seconds": 120,
      "gates": [{"gate": "offline_after_update", "threshold": 0.0, "action": "rollback"}]})");
  w_.Install("dev-2");
  w_.Install("dev-3");
  w_.Tick();
  EXPECT_EQ(w_.Get(silent).at("state").as_string(), "running");
  w_.clock().Advance(100s);
  w_.Heartbeat("dev-3", b0_);
  w_.clock().Advance(100s);  // dev-2 silent for 200 s, dev-3 for 100 s
  w_.Tick();
  r = w_.Get(silent);
  EXPECT_EQ(r.at("state").as_string(), "rolled_back") << json::Serialize(r);
  EXPECT_DOUBLE_EQ(r.at("reason").at("value").as_double(), 0.5);
  EXPECT_EQ(w_.Desired("dev-2"), a0_);
  EXPECT_EQ(w_.Desired("dev-3"), a0_);
}

TEST_P(RolloutsTest, TheFeedbackGateWaitsForEnoughLabels) {
  FleetOnA(2);
  for (int i = 0; i < 2; ++i) w_.Report(Dev(i), a0_, 0.9, std::nullopt, 100, 0.80);
  const std::string id = Create(R"({"model": ")" + model_b_ + R"(", "target": {"tags": ["cam"]},
      "phases": [{"percent": 100, "bake_seconds": 3600}],
      "gates": [{"gate": "feedback_accuracy_drop", "threshold": 0.1, "min_samples": 50,
                 "action": "pause"}]})");
  w_.Install("dev-0");
  w_.Install("dev-1");
  w_.Report("dev-0", b0_, 0.9, std::nullopt, 20, 0.40);
  w_.Tick();
  auto r = w_.Get(id);
  EXPECT_EQ(r.at("state").as_string(), "running");
  EXPECT_EQ(r.at("gates").at(0).at("samples").as_int64(), 20);
  EXPECT_FALSE(r.at("gates").at(0).at("judged").as_bool());
  w_.Report("dev-1", b0_, 0.9, std::nullopt, 40, 0.55);
  w_.Tick();
  r = w_.Get(id);
  EXPECT_EQ(r.at("state").as_string(), "paused") << json::Serialize(r);
  // Label-weighted: (20 × 0.40 + 40 × 0.55) / 60 = 0.50 against the previous variant's 0.80.
  EXPECT_NEAR(r.at("reason").at("value").as_double(), 0.30, 1e-9);
  EXPECT_EQ(r.at("reason").at("samples").as_int64(), 60);
}

TEST_P(RolloutsTest, ALatencyBreachStepsTheDeviceDownAndTheRolloutContinues) {
  Budget slow;
  slow.max_latency_ms = 10.0;
  slow.latency_model = LatencyModel{2'000'000.0, 0.0};  // B's L0 predicts 5 ms: it fits
  w_.AddDevices("dev-", 2, R"(["cam"])", slow);
  const std::string id = Create(R"({"model": ")" + model_b_ + R"(", "target": {"tags": ["cam"]},
      "phases": [{"count": 1}, {"percent": 100}],
      "gates": [{"gate": "p95_over_slo", "threshold": 0.0, "action": "step_down"}]})");
  const auto canary = Started(id);
  ASSERT_EQ(canary.size(), 1u);
  EXPECT_EQ(w_.Desired(canary[0]), b0_);
  w_.Install(canary[0]);
  w_.Report(canary[0], b0_, 0.91, 14.0);  // measured p95 14 ms > 10 ms SLO
  w_.Tick();
  EXPECT_EQ(w_.StateOf(id, canary[0]), "stepped_down");
  EXPECT_EQ(w_.Desired(canary[0]), b2_) << "the next smaller variant on the ladder";
  const auto audit = w_.Audit("device.step_down");
  ASSERT_EQ(audit.size(), 1u);
  auto detail = json::ParseObject(audit[0].detail);
  ASSERT_TRUE(detail.ok()) << audit[0].detail;
  EXPECT_DOUBLE_EQ(detail->at("p95_ms").as_double(), 14.0);
  EXPECT_DOUBLE_EQ(detail->at("slo_ms").as_double(), 10.0);
  EXPECT_EQ(detail->at("to").as_string(), b2_);
  // The stepped-down canary settled its phase: the next one started.
  auto r = w_.Get(id);
  EXPECT_EQ(r.at("state").as_string(), "running") << json::Serialize(r);
  EXPECT_EQ(r.at("phase").as_int64(), 1);
  ASSERT_EQ(Started(id).size(), 2u);
  const std::string other = canary[0] == "dev-0" ? "dev-1" : "dev-0";
  w_.Install(other);
  w_.Report(other, b0_, 0.91, 6.0);
  w_.Tick();
  r = w_.Get(id);
  EXPECT_EQ(r.at("state").as_string(), "completed") << json::Serialize(r);
  EXPECT_EQ(w_.Desired(other), b0_);
}

// Model A has no rung below L0: the step down asks for a smaller variant to be built. When that
// build fails the device must not stay on the variant that broke its SLO.
TEST_P(RolloutsTest, AStepDownWhoseBuildFailsRollsTheDeviceBack) {
  Budget slow;
  slow.max_latency_ms = 10.0;
  slow.latency_model = LatencyModel{2'000'000.0, 0.0};  // A's L0 predicts 5 ms: it fits
  w_.AddDevices("dev-", 2, R"(["cam"])", slow);
  const std::string a0 = w_.Variant(model_a_, "L0");
  const std::string id = Create(R"({"model": ")" + model_a_ + R"(", "target": {"tags": ["cam"]},
      "phases": [{"count": 1}, {"percent": 100}],
      "gates": [{"gate": "p95_over_slo", "threshold": 0.0, "action": "step_down"}]})");
  const auto canary = Started(id);
  ASSERT_EQ(canary.size(), 1u);
  EXPECT_EQ(w_.Desired(canary[0]), a0);
  w_.Install(canary[0]);
  w_.Report(canary[0], a0, 0.9, 14.0);  // measured p95 14 ms > 10 ms SLO
  w_.Tick();
  EXPECT_EQ(w_.StateOf(id, canary[0]), "stepped_down");
  ASSERT_EQ(w_.requested_builds().size(), 1u) << "a smaller level is built";
  const auto step = w_.Audit("device.step_down");
  ASSERT_EQ(step.size(), 1u);
  auto detail = json::ParseObject(step[0].detail);
  ASSERT_TRUE(detail.ok());
  EXPECT_TRUE(detail->at("building").as_bool());
  EXPECT_TRUE(detail->at("to").is_null()) << "not the variant that breached: " << step[0].detail;
  EXPECT_EQ(detail->at("bucket").as_string(), "L1");

  catalog::VariantRepository repo(w_.db().db());
  ASSERT_TRUE(repo.MarkFailed(w_.requested_builds()[0], "budget_unreachable").ok());
  ASSERT_TRUE(w_.deployments().Reevaluate(model_a_).ok());
  w_.Tick();
  EXPECT_EQ(w_.StateOf(id, canary[0]), "rolled_back");
  EXPECT_EQ(w_.Desired(canary[0]), std::nullopt) << "it had no assignment before";
  const auto back = w_.Audit("device.rollback");
  ASSERT_EQ(back.size(), 1u);
  EXPECT_NE(back[0].detail.find("p95 above the SLO and the build of variant"), std::string::npos)
      << back[0].detail;
  auto r = w_.Get(id);
  EXPECT_EQ(r.at("phase").as_int64(), 1) << "the rollout goes on: " << json::Serialize(r);
}

// A device whose variant has to be built waits in `downloading`; if the build fails, the device
// cannot take the model: it leaves the phase as no_fit, back on what it ran, and the rollout
// goes on instead of waiting for it forever.
TEST_P(RolloutsTest, AFailedBuildSettlesItsDeviceAsNoFitAndTheRolloutGoesOn) {
  FleetOnA(2);
  Budget small;
  small.max_macs = 3'000'000;  // below B's smallest ready rung: its bucket must be built
  w_.AddDevices("small-", 1, R"(["cam"])", small);
  w_.Heartbeat("small-0", std::nullopt);
  const std::string id = Create(R"({"model": ")" + model_b_ + R"(", "target": {"tags": ["cam"]},
      "phases": [{"percent": 100}]})");
  ASSERT_EQ(w_.requested_builds().size(), 1u);
  EXPECT_EQ(w_.StateOf(id, "small-0"), "downloading");
  catalog::VariantRepository repo(w_.db().db());
  ASSERT_TRUE(repo.MarkFailed(w_.requested_builds()[0], "below the accuracy floor").ok());
  ASSERT_TRUE(w_.deployments().Reevaluate(model_b_).ok());
  for (int i = 0; i < 2; ++i) w_.Install(Dev(i), 0.9);
  w_.Tick();
  EXPECT_EQ(w_.StateOf(id, "small-0"), "no_fit");
  auto r = w_.Get(id);
  EXPECT_EQ(r.at("state").as_string(), "completed") << json::Serialize(r);
  EXPECT_EQ(w_.Desired("small-0"), std::nullopt) << "it had no assignment before";
}

TEST_P(RolloutsTest, AbortReturnsEveryStartedDeviceAndLeavesPendingOnesAlone) {
  FleetOnA(6);
  const std::string id = Create(R"({"model": ")" + model_b_ + R"(", "target": {"tags": ["cam"]},
      "phases": [{"count": 3}, {"percent": 100}]})");
  const auto started = Started(id);
  ASSERT_EQ(started.size(), 3u);
  w_.Install(started[0], 0.9);  // one installed, two still downloading
  auto aborted = w_.rollouts().Act(id, deploy::RolloutAction::kAbort, "token:op");
  ASSERT_TRUE(aborted.ok()) << aborted.error().ToString();
  EXPECT_EQ(aborted->at("state").as_string(), "aborted");
  EXPECT_EQ(aborted->at("reason").at("devices_rolled_back").as_int64(), 3);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(w_.Desired(Dev(i)), a0_) << Dev(i);
  EXPECT_EQ(w_.Count(id, 0, "rolled_back"), 3);
  EXPECT_EQ(w_.Count(id, 1, "pending"), 3);
  auto again = w_.rollouts().Act(id, deploy::RolloutAction::kAbort, "token:op");
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, "rollout_state_conflict");
  EXPECT_EQ(again.error().kind, ErrorKind::kConflict);
}

TEST_P(RolloutsTest, ARestartedServerResumesInTheSamePhaseWithTheSameCounts) {
  FleetOnA(8);
  const std::string id = Create(R"({"model": ")" + model_b_ + R"(", "target": {"tags": ["cam"]},
      "phases": [{"count": 2, "bake_seconds": 30}, {"percent": 100}], "rate_per_minute": 100})");
  for (const auto& d : Started(id)) w_.Install(d, 0.9);
  w_.Tick();
  const auto before = w_.Get(id);
  auto restarted = w_.Restarted();
  auto after = restarted->Get(id);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->at("phase"), before.at("phase"));
  EXPECT_EQ(after->at("state"), before.at("state"));
  EXPECT_EQ(after->at("phase_counts"), before.at("phase_counts"));
  EXPECT_EQ(after->at("phase_settled_at"), before.at("phase_settled_at"));
  w_.clock().Advance(31s);
  ASSERT_TRUE(restarted->Tick().ok());
  EXPECT_EQ(w_.Get(id).at("phase").as_int64(), 1);
  EXPECT_EQ(Started(id).size(), 8u);
}

TEST_P(RolloutsTest, TheRateLimitAndTheMaintenanceWindowHoldStarts) {
  FleetOnA(5);
  // kStart is 22:13 UTC: a 23:00 window is closed; rate 2 a minute.
  const std::string id = Create(R"({"model": ")" + model_b_ + R"(", "target": {"tags": ["cam"]},
      "phases": [{"percent": 100}], "rate_per_minute": 2,
      "maintenance_window": {"cron": "0 23 * * *", "duration_minutes": 60}})");
  EXPECT_EQ(Started(id).size(), 0u);
  w_.clock().Advance(47min);  // 23:00
  w_.Tick();
  EXPECT_EQ(Started(id).size(), 2u);
  w_.Tick();
  EXPECT_EQ(Started(id).size(), 2u) << "two a minute";
  w_.clock().Advance(61s);
  w_.Tick();
  EXPECT_EQ(Started(id).size(), 4u);
  w_.clock().Advance(60min);  // 00:02: closed again
  w_.Tick();
  EXPECT_EQ(Started(id).size(), 4u);
}

TEST_P(RolloutsTest, ADynamicTargetAdmitsALateDeviceWithTheTag) {
  FleetOnA(2);
  const std::string id = Create(R"({"model": ")" + model_b_ + R"(",
      "target": {"tags": ["cam"], "dynamic": true}, "phases": [{"percent": 100}]})");
  for (const auto& d : Started(id)) w_.Install(d, 0.9);
  w_.Tick();
  EXPECT_EQ(w_.Get(id).at("state").as_string(), "completed");
  w_.db().AddDevice("dev-late", R"(["cam"])", Budget{});
  w_.db().AddDevice("dev-other", R"(["door"])", Budget{});
  w_.Tick();
  EXPECT_EQ(w_.Desired("dev-late"), b0_);
  EXPECT_EQ(w_.Desired("dev-other"), std::nullopt);
  EXPECT_EQ(w_.Get(id).at("devices").as_array().size(), 3u);
}

TEST_P(RolloutsTest, APhaseThatRequiresApprovalWaitsForIt) {
  FleetOnA(3);
  w_.db().AddDevice("dev-x", R"(["door"])", Budget{});
  const std::string id = Create(R"({"model": ")" + model_b_ + R"(", "target": {"tags": ["cam"]},
      "phases": [{"count": 1}, {"percent": 100, "requires_approval": true}]})");
  w_.Install(Started(id)[0], 0.9);
  w_.Tick();
  EXPECT_EQ(w_.Get(id).at("state").as_string(), "awaiting_approval");
  EXPECT_EQ(Started(id).size(), 1u);
  // Promoting a phase that awaits approval starts that phase; it does not skip it.
  const std::string other = Create(R"({"model": ")" + model_a_ + R"(", "target": {"devices": ["dev-x"]},
      "phases": [{"count": 1, "requires_approval": true}, {"percent": 100}]})");
  EXPECT_EQ(w_.Get(other).at("state").as_string(), "awaiting_approval");
  auto promoted = w_.rollouts().Act(other, deploy::RolloutAction::kPromote, "token:op");
  ASSERT_TRUE(promoted.ok()) << promoted.error().ToString();
  EXPECT_EQ(promoted->at("phase").as_int64(), 0);
  EXPECT_EQ(Started(other).size(), 1u);
  auto approved = w_.rollouts().Act(id, deploy::RolloutAction::kApprove, "token:op");
  ASSERT_TRUE(approved.ok()) << approved.error().ToString();
  EXPECT_EQ(Started(id).size(), 3u);
  EXPECT_EQ(w_.Audit("rollout.approve").size(), 1u);
}

TEST_P(RolloutsTest, BadRequestsChangeNothing) {
  FleetOnA(2);
  auto count = [&] { return w_.db().Count("SELECT COUNT(*) FROM rollouts"); };
  auto unknown = w_.rollouts().Create(
      w_.Spec(R"({"model": "mdl-nope", "target": {"tags": ["cam"]}, "phases": [{"percent": 100}]})"),
      "token:op");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().code, "model_not_found");
  auto empty = w_.rollouts().Create(
      w_.Spec(R"({"model": ")" + model_b_ + R"(", "target": {"tags": ["none"]}, "phases": [{"percent": 100}]})"),
      "token:op");
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.error().code, "no_devices_selected");
  auto missing = w_.rollouts().Create(
      w_.Spec(R"({"model": ")" + model_b_ + R"(", "target": {"devices": ["dev-0", "dev-x"]}, "phases": [{"percent": 100}]})"),
      "token:op");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, "device_not_found");
  EXPECT_EQ(count(), 0);
  const std::string first = Create(R"({"model": ")" + model_b_ + R"(", "target": {"devices": ["dev-0"]}, "phases": [{"percent": 100, "bake_seconds": 60}]})");
  auto busy = w_.rollouts().Create(
      w_.Spec(R"({"model": ")" + model_b_ + R"(", "target": {"tags": ["cam"]}, "phases": [{"percent": 100}]})"),
      "token:op");
  ASSERT_FALSE(busy.ok());
  EXPECT_EQ(busy.error().code, "device_in_active_rollout");
  EXPECT_EQ(busy.error().kind, ErrorKind::kConflict);
  EXPECT_EQ(count(), 1);
  EXPECT_EQ(w_.Desired("dev-1"), a0_);
  auto no_such = w_.rollouts().Act("rol-nope", deploy::RolloutAction::kPause, "token:op");
  ASSERT_FALSE(no_such.ok());
  EXPECT_EQ(no_such.error().code, "rollout_not_found");
  auto resume = w_.rollouts().Act(first, deploy::RolloutAction::kResume, "token:op");
  ASSERT_FALSE(resume.ok());
  EXPECT_EQ(resume.error().code, "rollout_state_conflict") << "resume needs a paused rollout";
}

EDGEPRUNE_STORE_BACKENDS(RolloutsTest);

}  // namespace
}  // namespace edgeprune::deploy
