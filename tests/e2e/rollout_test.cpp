// Rollouts end to end: the real server and two real agents running model A's variant X. Model B
// goes out as a two-phase rollout (one canary first, a long bake): only the canary receives B's
// variant; the server is SIGKILLed and restarted mid-rollout and resumes in the same phase with
// the same counts; abort returns the canary to X, checked on the agent's local API.
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
  EXPECT_EQ(Str(other->Infer(), "variant_id"), x);
  EXPECT_EQ(suite->Call("POST", "/api/v1/rollouts/" + id + "/resume").status, 409);
  EXPECT_EQ(a.Stop(), 0);
  EXPECT_EQ(b.Stop(), 0);
}

}  // namespace
}  // namespace edgeprune::e2e
