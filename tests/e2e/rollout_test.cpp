// Rollouts end to end: the real server and two real agents running model A's variant X.
// 1. Model B goes out as a two-phase rollout (one canary first, a long bake): only the canary
//    receives B's variant; the server is SIGKILLed and restarted mid-rollout and resumes in the
//    same phase with the same counts; abort returns the canary to X (asked of its local API).
// 2. On a fleet running a trained LeNet-5 (the suite's fixture master is untrained, at chance),
//    a bad master (trained one step) goes out the same way with a probe-accuracy gate:
//    the canary's first telemetry trips it, the rollout rolls back, the audit names the gate and
//    its values, the canary is back on X and the other device never received the bad variant;
//    the time from the first bad report to the roll-back is printed.
#include <cstdio>

#include "support/build_paths.hpp"
#include "full_loop_fixture.hpp"

namespace edgeprune::e2e {
namespace {

bj::value Rollout(const std::string& id) {
  auto r = suite->Call("GET", "/api/v1/rollouts/" + id);
  EXPECT_EQ(r.status, 200) << r.raw;
  return r.body;
}

std::string DeviceState(const bj::value& rollout, const std::string& device) {
  if (!rollout.is_object() || !rollout.as_object().contains("devices")) return "";
  for (const auto& d : rollout.as_object().at("devices").as_array()) {
    if (Str(d, "device_id") == device) return Str(d, "state");
  }
  return "";
}

TEST_F(FullLoopTest, ACanaryRolloutSurvivesAServerKillAndAbortReturnsTheCanary) {
  const std::string x = ReadyX();
  ASSERT_FALSE(x.empty());
  Agent a, b;
  a.Start();
  b.Start();
  for (Agent* agent : {&a, &b}) {
    suite->Deploy(suite->model_a, agent->device_id());
    ASSERT_TRUE(agent->WaitServing(x, seconds(60))) << agent->Log();
  }
  const std::string model_b = suite->UploadMaster("lenet5-rollout");
  ASSERT_FALSE(model_b.empty());

  auto created = suite->Call(
      "POST", "/api/v1/rollouts",
      "{\"model\": " + Quote(model_b) + ", \"target\": {\"devices\": [" + Quote(a.device_id()) +
          ", " + Quote(b.device_id()) +
          "]}, \"phases\": [{\"count\": 1, \"bake_seconds\": 3600}, {\"percent\": 100}], "
          "\"gates\": [{\"gate\": \"probe_accuracy_drop\", \"threshold\": 1.0, "
          "\"action\": \"pause\"}]}");
  ASSERT_EQ(created.status, 201) << created.raw;
  const std::string id = Str(created.body, "id");
  Agent* canary = DeviceState(created.body, a.device_id()) == "pending" ? &b : &a;
  Agent* other = canary == &a ? &b : &a;
  ASSERT_EQ(DeviceState(created.body, other->device_id()), "pending") << created.raw;

  // The canary gets B's variant (built for it) and verifies it; the other device stays on X.
  std::string y;
  ASSERT_TRUE(WaitUntil(
      [&] {
        auto r = Rollout(id);
        for (const auto& d : r.as_object().at("devices").as_array()) {
          if (Str(d, "device_id") == canary->device_id()) y = Str(d, "variant_id");
        }
        return !y.empty() && DeviceState(r, canary->device_id()) == "verified";
      },
      seconds(240), milliseconds(500)))
      << bj::serialize(Rollout(id)) << canary->Log();
  ASSERT_NE(y, x);
  ASSERT_TRUE(canary->WaitServing(y, seconds(30)));
  EXPECT_EQ(Str(other->Infer(), "variant_id"), x) << "outside the canary nothing changes";
  const bj::value before = Rollout(id);
  EXPECT_EQ(Str(before, "state"), "running");
  EXPECT_EQ(Int(before, "phase"), 0);

  // SIGKILL mid-rollout: the restarted server answers the same phase and counts.
  suite->server->Signal(SIGKILL);
  suite->server->Wait(seconds(20));
  suite->StartServer();
  const bj::value after = Rollout(id);
  EXPECT_EQ(Str(after, "state"), "running");
  EXPECT_EQ(Int(after, "phase"), 0);
  EXPECT_EQ(bj::serialize(after.as_object().at("phase_counts")),
            bj::serialize(before.as_object().at("phase_counts")));

  // Abort: the canary is back on X (a signed roll-back), the other never left it.
  auto aborted = suite->Call("POST", "/api/v1/rollouts/" + id + "/abort");
  ASSERT_EQ(aborted.status, 200) << aborted.raw;
  EXPECT_EQ(Str(aborted.body, "state"), "aborted");
  // (Its log already names X from before the rollout: ask its local API instead.)
  ASSERT_TRUE(WaitUntil([&] { return Str(canary->Infer(), "variant_id") == x; }, seconds(120),
                        milliseconds(250)))
      << canary->Log();
  // X was kept as the previous install: a local swap, no download.
  EXPECT_NE(canary->Log().find("variant " + x + " v"), std::string::npos);
  EXPECT_NE(canary->Log().find("swapped back locally, no download"), std::string::npos)
      << canary->Log();
  EXPECT_EQ(Str(other->Infer(), "variant_id"), x);
  EXPECT_EQ(suite->Call("POST", "/api/v1/rollouts/" + id + "/resume").status, 409);
  EXPECT_EQ(a.Stop(), 0);
  EXPECT_EQ(b.Stop(), 0);
}

// Trains a LeNet-5 master on Fashion-MNIST with the real `train` command and uploads it.
std::string TrainAndUpload(const std::string& name, int steps) {
  const std::string out = suite->dir.File(name + ".pt");
  Process train({.program = edgeprune::testing::ServerBin(),
                 .args = {"train", "--arch", "lenet5", "--epochs", "1", "--max-steps",
                          std::to_string(steps), "--train-limit", "4000", "--test-limit", "100",
                          "--threads", "1", "--latency-runs", "3", "--out", out}});
  EXPECT_EQ(train.Wait(seconds(180)), 0) << train.Stderr();
  const std::string saved = suite->master_path;
  suite->master_path = out;
  const std::string id = suite->UploadMaster(name);
  suite->master_path = saved;
  return id;
}

TEST_F(FullLoopTest, ABadCanaryTripsTheProbeGateAndRollsBack) {
  // The fleet runs a trained master (30 steps: well above chance on the probe set); the new
  // master was trained one step (about chance).
  const std::string good = TrainAndUpload("lenet5-trained", 30);
  const std::string bad = TrainAndUpload("lenet5-one-step", 1);
  ASSERT_FALSE(good.empty());
  ASSERT_FALSE(bad.empty());
  Agent a, b;
  a.Start();
  b.Start();
  std::string x;
  for (Agent* agent : {&a, &b}) {
    auto deployed = suite->Deploy(good, agent->device_id());
    x = suite->TargetOf(good, deployed);
    ASSERT_FALSE(x.empty()) << deployed.raw;
    ASSERT_TRUE(agent->WaitServing(x, seconds(240))) << agent->Log();
  }

  auto created = suite->Call(
      "POST", "/api/v1/rollouts",
      "{\"model\": " + Quote(bad) + ", \"target\": {\"devices\": [" + Quote(a.device_id()) +
          ", " + Quote(b.device_id()) +
          "]}, \"phases\": [{\"count\": 1, \"bake_seconds\": 3600}, {\"percent\": 100}], "
          "\"gates\": [{\"gate\": \"probe_accuracy_drop\", \"threshold\": 0.05, "
          "\"min_samples\": 1, \"action\": \"rollback\"}]}");
  ASSERT_EQ(created.status, 201) << created.raw;
  const std::string id = Str(created.body, "id");
  Agent* canary = DeviceState(created.body, a.device_id()) == "pending" ? &b : &a;
  Agent* other = canary == &a ? &b : &a;

  ASSERT_TRUE(WaitUntil([&] { return Str(Rollout(id), "state") == "rolled_back"; }, seconds(240),
                        milliseconds(500)))
      << bj::serialize(Rollout(id)) << canary->Log();
  const bj::value r = Rollout(id);
  const auto& reason = r.as_object().at("reason");
  EXPECT_EQ(Str(reason, "gate"), "probe_accuracy_drop") << bj::serialize(r);
  EXPECT_GT(reason.as_object().at("value").to_number<double>(), 0.05) << bj::serialize(r);
  EXPECT_EQ(DeviceState(r, canary->device_id()), "rolled_back");
  EXPECT_EQ(DeviceState(r, other->device_id()), "pending");
  // The audit names the gate, its value and threshold.
  auto audit = suite->Call("GET", "/api/v1/audit?action=rollout.rollback&target=" + id);
  ASSERT_EQ(audit.status, 200) << audit.raw;
  ASSERT_EQ(audit.body.as_object().at("items").as_array().size(), 1u) << audit.raw;
  const std::string detail = Str(audit.body.as_object().at("items").as_array().at(0), "detail");
  EXPECT_NE(detail.find("\"gate\":\"probe_accuracy_drop\""), std::string::npos) << detail;
  EXPECT_NE(detail.find("\"threshold\":"), std::string::npos) << detail;
  EXPECT_NE(detail.find("\"value\":"), std::string::npos) << detail;
  // The canary is back on X; the other device never received the bad model's variant.
  ASSERT_TRUE(WaitUntil([&] { return Str(canary->Infer(), "variant_id") == x; }, seconds(120),
                        milliseconds(250)))
      << canary->Log();
  EXPECT_EQ(Str(other->Infer(), "variant_id"), x);
  std::string bad_variant;
  for (const auto& d : r.as_object().at("devices").as_array()) {
    if (Str(d, "device_id") == canary->device_id()) bad_variant = Str(d, "variant_id");
  }
  ASSERT_FALSE(bad_variant.empty()) << bj::serialize(r);
  EXPECT_EQ(other->Log().find(bad_variant), std::string::npos) << other->Log();
  // The target, printed (a test asserts no wall-clock time): from the server's receipt
  // of the canary's first report on the bad variant to the roll-back, against the agents'
  // telemetry interval (1 s here, 60 s by default).
  auto reports = suite->Call("GET", "/api/v1/devices/" + canary->device_id() + "/telemetry?limit=1000");
  ASSERT_EQ(reports.status, 200) << reports.raw;
  std::int64_t first_bad = 0;
  for (const auto& rep : reports.body.as_object().at("items").as_array()) {
    if (Str(rep, "variant_id") == bad_variant) first_bad = Int(rep, "received_at");  // newest first
  }
  const std::int64_t rolled_back_at =
      Int(audit.body.as_object().at("items").as_array().at(0), "at_ms");
  ASSERT_GT(first_bad, 0) << reports.raw;
  std::printf("[ measure  ] bad canary: first report on %s received at %lld ms, rollback audited "
              "at %lld ms: %lld ms (telemetry interval 1000 ms)\n",
              bad_variant.c_str(), static_cast<long long>(first_bad),
              static_cast<long long>(rolled_back_at),
              static_cast<long long>(rolled_back_at - first_bad));
  EXPECT_EQ(a.Stop(), 0);
  EXPECT_EQ(b.Stop(), 0);
}

}  // namespace
}  // namespace edgeprune::e2e
