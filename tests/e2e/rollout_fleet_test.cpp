// Rollouts end to end, the fleet side: the real server process and real agents.
// 1. A good model rolls through three phases to every device of a dynamic target, and a device
//    that gains the target's tag after the rollout started is admitted and receives it too.
// 2. Bad input to POST /api/v1/rollouts and to the lifecycle actions: each answered 400, 404 or
//    409 with a named code, and nothing changes (no rollout, no assignment moved).
#include <algorithm>
#include <map>

#include "full_loop_fixture.hpp"

namespace edgeprune::e2e {
namespace {

bj::value GetRollout(const std::string& id) {
  auto r = suite->Call("GET", "/api/v1/rollouts/" + id);
  EXPECT_EQ(r.status, 200) << r.raw;
  return r.body;
}

// device id → (state, variant) as the rollout shows them.
std::map<std::string, std::pair<std::string, std::string>> Devices(const bj::value& rollout) {
  std::map<std::string, std::pair<std::string, std::string>> out;
  if (!rollout.is_object() || !rollout.as_object().contains("devices")) return out;
  for (const auto& d : rollout.as_object().at("devices").as_array()) {
    out[Str(d, "device_id")] = {Str(d, "state"), Str(d, "variant_id")};
  }
  return out;
}

void Tag(const std::string& device, const std::string& tags_json) {
  auto r = suite->Call("PATCH", "/api/v1/devices/" + device, "{\"tags\": " + tags_json + "}");
  ASSERT_EQ(r.status, 200) << r.raw;
}

TEST_F(FullLoopTest, AGoodModelRollsThroughThreePhasesAndALateTaggedDeviceIsIncluded) {
  const std::string x = ReadyX();
  ASSERT_FALSE(x.empty());
  Agent a, b, late;
  for (Agent* agent : {&a, &b, &late}) {
    agent->Start();
    suite->Deploy(suite->model_a, agent->device_id());
    ASSERT_TRUE(agent->WaitServing(x, seconds(60))) << agent->Log();
  }
  Tag(a.device_id(), R"(["e2e-dynamic"])");
  Tag(b.device_id(), R"(["e2e-dynamic"])");
  const std::string model = suite->UploadMaster("lenet5-three-phases");
  ASSERT_FALSE(model.empty());

  auto created = suite->Call(
      "POST", "/api/v1/rollouts",
      "{\"model\": " + Quote(model) +
          ", \"target\": {\"tags\": [\"e2e-dynamic\"], \"dynamic\": true}, \"phases\": ["
          "{\"count\": 1, \"bake_seconds\": 1}, {\"count\": 2, \"bake_seconds\": 1}, "
          "{\"percent\": 100, \"bake_seconds\": 1}], \"gates\": ["
          "{\"gate\": \"install_failure_rate\", \"threshold\": 0.5, \"action\": \"pause\"}, "
          "{\"gate\": \"probe_accuracy_drop\", \"threshold\": 1.0, \"action\": \"pause\"}]}");
  ASSERT_EQ(created.status, 201) << created.raw;
  const std::string id = Str(created.body, "id");
  EXPECT_EQ(Devices(created.body).size(), 2u) << created.raw;
  EXPECT_EQ(Devices(created.body).count(late.device_id()), 0u);

  // The third device gains the tag after the rollout started: the next step admits it.
  Tag(late.device_id(), R"(["e2e-dynamic"])");
  ASSERT_TRUE(WaitUntil([&] { return Devices(GetRollout(id)).count(late.device_id()) == 1; },
                        seconds(30), milliseconds(250)))
      << bj::serialize(GetRollout(id));

  // Every phase bakes and advances; every device ends verified on the new model's variant.
  ASSERT_TRUE(WaitUntil(
      [&] {
        const bj::value r = GetRollout(id);
        if (Str(r, "state") != "completed") return false;
        const auto devices = Devices(r);
        return devices.size() == 3 &&
               std::all_of(devices.begin(), devices.end(),
                           [](const auto& d) { return d.second.first == "verified"; });
      },
      seconds(300), milliseconds(500)))
      << bj::serialize(GetRollout(id)) << late.Log();
  const bj::value done = GetRollout(id);
  EXPECT_EQ(Int(done, "phase"), 2) << bj::serialize(done);
  const auto devices = Devices(done);
  for (Agent* agent : {&a, &b, &late}) {
    const std::string y = devices.at(agent->device_id()).second;
    EXPECT_NE(y, x);
    EXPECT_TRUE(WaitUntil([&] { return Str(agent->Infer(), "variant_id") == y; }, seconds(60),
                          milliseconds(250)))
        << agent->Log();
  }
  // Two phase transitions, one completion, one admission, each audited with its reason.
  auto audit = [&](const std::string& action) {
    auto r = suite->Call("GET", "/api/v1/audit?action=" + action + "&target=" + id);
    EXPECT_EQ(r.status, 200) << r.raw;
    return r.status == 200 ? r.body.as_object().at("items").as_array().size() : 0u;
  };
  EXPECT_EQ(audit("rollout.phase"), 2u);
  EXPECT_EQ(audit("rollout.complete"), 1u);
  EXPECT_EQ(audit("rollout.admit"), 1u);
  for (Agent* agent : {&a, &b, &late}) {
    Tag(agent->device_id(), "[]");  // out of later tests' way
    EXPECT_EQ(agent->Stop(), 0);
  }
}

TEST_F(FullLoopTest, BadRolloutRequestsAreRefusedWithANamedCodeAndChangeNothing) {
  const std::string x = ReadyX();
  ASSERT_FALSE(x.empty());
  Agent a;
  a.Start();
  suite->Deploy(suite->model_a, a.device_id());
  ASSERT_TRUE(a.WaitServing(x, seconds(60))) << a.Log();
  Tag(a.device_id(), R"(["e2e-bad-input"])");
  const std::string model = Quote(suite->model_a);
  auto rollouts = [] {
    auto r = suite->Call("GET", "/api/v1/rollouts?limit=500");
    EXPECT_EQ(r.status, 200) << r.raw;
    return r.status == 200 ? r.body.as_object().at("items").as_array().size() : 0u;
  };
  auto assigned = [&] {
    auto r = suite->Call("GET", "/api/v1/devices/" + a.device_id() + "/telemetry?limit=1");
    return Str(r.body, "assigned_variant");
  };
  const std::size_t before = rollouts();
  const std::string assigned_before = assigned();
  const std::string target = R"("target": {"tags": ["e2e-bad-input"]})";
  const std::vector<std::tuple<std::string, int, std::string>> cases = {
      {"{\"model\": \"mdl-unknown\", " + target + ", \"phases\": [{\"percent\": 100}]}", 404,
       "model_not_found"},
      {"{\"model\": " + model + ", \"target\": {}, \"phases\": [{\"percent\": 100}]}", 400,
       "invalid_field"},
      {"{\"model\": " + model + ", \"target\": {\"tags\": [\"nobody-has-this\"]}, "
       "\"phases\": [{\"percent\": 100}]}",
       400, "no_devices_selected"},
      {"{\"model\": " + model + ", " + target + ", \"phases\": [{\"percent\": 50}]}", 400,
       "invalid_phases"},
      {"{\"model\": " + model + ", " + target +
           ", \"phases\": [{\"count\": 3}, {\"count\": 1}, {\"percent\": 100}]}",
       400, "invalid_phases"},
      {"{\"model\": " + model + ", " + target + ", \"phases\": [{\"percent\": 100}], "
       "\"gates\": [{\"gate\": \"probe_accuracy_drop\", \"threshold\": 1.5, "
       "\"action\": \"rollback\"}]}",
       400, "invalid_gate"},
      {"{\"model\": " + model + ", " + target + ", \"phases\": [{\"percent\": 100}], "
       "\"gates\": [{\"gate\": \"install_failure_rate\", \"threshold\": -0.1, "
       "\"action\": \"pause\"}]}",
       400, "invalid_gate"},
      {"not json", 400, "invalid_json"},
  };
  for (const auto& [body, status, code] : cases) {
    auto r = suite->Call("POST", "/api/v1/rollouts", body);
    EXPECT_EQ(r.status, status) << body << " → " << r.raw;
    EXPECT_EQ(Str(r.body.as_object().at("error"), "code"), code) << body << " → " << r.raw;
  }
  EXPECT_EQ(rollouts(), before);
  EXPECT_EQ(assigned(), assigned_before);

  // Actions on a finished rollout: 409 with a named code, the rollout as it was.
  auto created = suite->Call("POST", "/api/v1/rollouts",
                             "{\"model\": " + model + ", " + target +
                                 ", \"phases\": [{\"percent\": 100, \"bake_seconds\": 3600}]}");
  ASSERT_EQ(created.status, 201) << created.raw;
  const std::string id = Str(created.body, "id");
  ASSERT_EQ(suite->Call("POST", "/api/v1/rollouts/" + id + "/abort").status, 200);
  const std::string finished = bj::serialize(GetRollout(id));
  for (const char* action : {"pause", "resume", "promote", "abort", "approve"}) {
    auto r = suite->Call("POST", "/api/v1/rollouts/" + id + "/" + action);
    EXPECT_EQ(r.status, 409) << action << " → " << r.raw;
    EXPECT_EQ(Str(r.body.as_object().at("error"), "code"), "rollout_state_conflict") << r.raw;
  }
  auto unknown = suite->Call("POST", "/api/v1/rollouts/rol-0000/pause");
  EXPECT_EQ(unknown.status, 404) << unknown.raw;
  EXPECT_EQ(Str(unknown.body.as_object().at("error"), "code"), "rollout_not_found");
  EXPECT_EQ(bj::serialize(GetRollout(id)), finished);
  EXPECT_EQ(Str(a.Infer(), "variant_id"), x);
  Tag(a.device_id(), "[]");
  EXPECT_EQ(a.Stop(), 0);
}

}  // namespace
}  // namespace edgeprune::e2e
