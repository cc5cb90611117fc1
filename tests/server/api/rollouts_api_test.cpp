// The rollout routes through the real Router and the variants module: validation with named
// codes and nothing changed, the list envelope, the lifecycle actions and their refusals, the
// audit of refused changes, and the gauges the periodic task sets.
#include <gtest/gtest.h>

#include <prometheus/text_serializer.h>

#include "server/support/variants_api_fixture.hpp"
#include "support/wait_until.hpp"

namespace edgeprune::api {
namespace {

class RolloutsApiTest : public VariantsApiTest {
 protected:
  std::vector<std::string> Settings() const override {
    auto s = VariantsApiTest::Settings();
    s.push_back("rollouts.tick_seconds=1");
    return s;
  }

  // A model with one ready variant and three unbounded devices tagged "cam".
  void SetUp() override {
    VariantsApiTest::SetUp();
    model_ = t_.AddModel().id;
    catalog::VariantRepository repo(t_.db());
    auto made = t_.db()->WithTransaction([&](store::Connection& conn) -> Status {
      bool created = false;
      EP_ASSIGN_OR_RETURN(auto v, catalog::VariantRepository::EnsureIn(conn, model_, "L0",
                                                                        Budget{}, &created));
      variant_ = v.id;
      return Ok();
    });
    ASSERT_TRUE(made.ok()) << made.error().ToString();
    testing::MarkReady(repo, variant_, {100'000, 10'000'000, 0}, 0.9);
    for (const char* d : {"dev-a", "dev-b", "dev-c"}) t_.AddDevice(d, R"(["cam"])", Budget{});
  }

  std::string Spec(const std::string& extra = "") {
    return R"({"model": ")" + model_ + R"(", "target": {"tags": ["cam"]},
        "phases": [{"count": 1, "bake_seconds": 600}, {"percent": 100}],
        "gates": [{"gate": "probe_accuracy_drop", "threshold": 0.05, "action": "rollback"}])" +
           extra + "}";
  }
  std::int64_t Rollouts() { return t_.Count("SELECT COUNT(*) FROM rollouts"); }

  std::string model_, variant_;
};

TEST_F(RolloutsApiTest, BadInputIsA400Or404WithANamedCodeAndChangesNothing) {
  const std::vector<std::tuple<std::string, http::HttpStatus, std::string>> cases = {
      {"not json", http::HttpStatus::bad_request, "invalid_json"},
      {"[]", http::HttpStatus::bad_request, "invalid_json"},
      {R"({"model": "mdl-none", "target": {"tags": ["cam"]}, "phases": [{"percent": 100}]})",
       http::HttpStatus::not_found, "model_not_found"},
      {R"({"model": ")" + model_ + R"(", "target": {"tags": ["nobody"]}, "phases": [{"percent": 100}]})",
       http::HttpStatus::bad_request, "no_devices_selected"},
      {R"({"model": ")" + model_ + R"(", "target": {"tags": ["cam"]}, "phases": [{"percent": 50}]})",
       http::HttpStatus::bad_request, "invalid_phases"},
      {R"({"model": ")" + model_ + R"(", "target": {"tags": ["cam"]}, "phases": [{"percent": 100}],
          "gates": [{"gate": "install_failure_rate", "threshold": 2, "action": "pause"}]})",
       http::HttpStatus::bad_request, "invalid_gate"},
      // An empty target, in each of its shapes.
      {R"({"model": ")" + model_ + R"(", "target": {}, "phases": [{"percent": 100}]})",
       http::HttpStatus::bad_request, "invalid_field"},
      {R"({"model": ")" + model_ + R"(", "target": {"devices": []}, "phases": [{"percent": 100}]})",
       http::HttpStatus::bad_request, "invalid_field"},
      // Phases that do not grow to the whole target.
      {R"({"model": ")" + model_ + R"(", "target": {"tags": ["cam"]}, "phases": []})",
       http::HttpStatus::bad_request, "invalid_phases"},
      {R"({"model": ")" + model_ + R"(", "target": {"tags": ["cam"]},
          "phases": [{"percent": 60}, {"percent": 40}, {"percent": 100}]})",
       http::HttpStatus::bad_request, "invalid_phases"},
      {R"({"model": ")" + model_ + R"(", "target": {"tags": ["cam"]}, "phases": [{"percent": 120}]})",
       http::HttpStatus::bad_request, "invalid_phases"},
      // Thresholds and sample counts out of range.
      {R"({"model": ")" + model_ + R"(", "target": {"tags": ["cam"]}, "phases": [{"percent": 100}],
          "gates": [{"gate": "p95_over_slo", "threshold": -0.5, "action": "step_down"}]})",
       http::HttpStatus::bad_request, "invalid_gate"},
      {R"({"model": ")" + model_ + R"(", "target": {"tags": ["cam"]}, "phases": [{"percent": 100}],
          "gates": [{"gate": "probe_accuracy_drop", "threshold": 0.1, "min_samples": -3,
                     "action": "pause"}]})",
       http::HttpStatus::bad_request, "invalid_field"},
  };
  for (const auto& [body, status, code] : cases) {
    auto r = Call(Verb::post, "/api/v1/rollouts", body);
    EXPECT_EQ(r.status, status) << body << " → " << r.body;
    EXPECT_EQ(Body(r).at("error").at("code").as_string(), code) << body;
  }
  EXPECT_EQ(Rollouts(), 0);
  EXPECT_EQ(t_.Count("SELECT COUNT(*) FROM device_assignments"), 0);
  EXPECT_GE(t_.Count("SELECT COUNT(*) FROM audit_log WHERE action = 'rollout.create' AND "
                     "outcome = 'failed'"),
            static_cast<std::int64_t>(cases.size()));
  auto viewer = Call(Verb::post, "/api/v1/rollouts", Spec(), "viewer");
  EXPECT_EQ(viewer.status, http::HttpStatus::forbidden);
  EXPECT_EQ(Rollouts(), 0);
}

TEST_F(RolloutsApiTest, ARolloutIsCreatedListedShownAndDrivenThroughItsLifecycle) {
  auto created = Call(Verb::post, "/api/v1/rollouts", Spec());
  ASSERT_EQ(created.status, http::HttpStatus::created) << created.body;
  const bj::object r = Body(created);
  const std::string id(r.at("id").as_string());
  EXPECT_EQ(r.at("state").as_string(), "running");
  EXPECT_EQ(r.at("phase_counts").at(0).at("counts").at("downloading").as_int64(), 1);
  EXPECT_EQ(r.at("phase_counts").at(1).at("counts").at("pending").as_int64(), 2);

  auto list = Body(Call(Verb::get, "/api/v1/rollouts?limit=1", "", "viewer"));
  ASSERT_EQ(list.at("items").as_array().size(), 1u);
  EXPECT_TRUE(list.at("next_cursor").is_null());
  auto bad_limit = Call(Verb::get, "/api/v1/rollouts?limit=1e3", "", "viewer");
  EXPECT_EQ(bad_limit.status, http::HttpStatus::bad_request);
  auto shown = Body(Call(Verb::get, "/api/v1/rollouts/" + id, "", "viewer"));
  EXPECT_EQ(shown.at("devices").as_array().size(), 3u);
  EXPECT_EQ(Call(Verb::get, "/api/v1/rollouts/rol-nope", "", "viewer").status,
            http::HttpStatus::not_found);

  auto act = [&](const std::string& action, const std::string& body = "") {
    return Call(Verb::post, "/api/v1/rollouts/" + id + "/" + action, body);
  };
  auto paused = act("pause");
  ASSERT_EQ(paused.status, http::HttpStatus::ok) << paused.body;
  EXPECT_EQ(Body(paused).at("state").as_string(), "paused");
  auto twice = act("pause");
  EXPECT_EQ(twice.status, http::HttpStatus::conflict);
  EXPECT_EQ(Body(twice).at("error").at("code").as_string(), "rollout_state_conflict");
  EXPECT_EQ(act("approve").status, http::HttpStatus::conflict);
  EXPECT_EQ(act("resume", R"({"force": true})").status, http::HttpStatus::bad_request);
  EXPECT_EQ(Body(act("resume")).at("state").as_string(), "running");
  auto promoted = Body(act("promote"));
  EXPECT_EQ(promoted.at("phase").as_int64(), 1);
  auto aborted = act("abort");
  ASSERT_EQ(aborted.status, http::HttpStatus::ok) << aborted.body;
  EXPECT_EQ(Body(aborted).at("state").as_string(), "aborted");
  EXPECT_EQ(t_.Count("SELECT COUNT(*) FROM device_assignments"), 0)
      << "devices that had no assignment before have none again";
  // A finished rollout refuses every action with a named code and is left exactly as it was.
  const std::string finished = Call(Verb::get, "/api/v1/rollouts/" + id, "", "viewer").body;
  auto changes = [&] { return t_.Count("SELECT COUNT(*) FROM audit_log WHERE outcome = 'ok'"); };
  const std::int64_t changes_before = changes();
  for (const char* a : {"pause", "resume", "promote", "abort", "approve"}) {
    auto refused = act(a);
    EXPECT_EQ(refused.status, http::HttpStatus::conflict) << a;
    EXPECT_EQ(Body(refused).at("error").at("code").as_string(), "rollout_state_conflict") << a;
  }
  EXPECT_EQ(Call(Verb::get, "/api/v1/rollouts/" + id, "", "viewer").body, finished);
  EXPECT_EQ(t_.Count("SELECT COUNT(*) FROM device_assignments"), 0);
  EXPECT_EQ(changes(), changes_before)
      << "refused actions are audited as failed, never as changes";
  EXPECT_EQ(t_.Count("SELECT COUNT(*) FROM audit_log WHERE target = '" + id +
                     "' AND action LIKE 'rollout.%' AND outcome = 'ok'"),
            5);  // create, pause, resume, promote, abort
}

TEST_F(RolloutsApiTest, ThePeriodicTaskSetsTheRolloutGauges) {
  auto created = Call(Verb::post, "/api/v1/rollouts", Spec());
  ASSERT_EQ(created.status, http::HttpStatus::created) << created.body;
  const std::string id(Body(created).at("id").as_string());
  auto scrape = [&] { return prometheus::TextSerializer().Serialize(registry_->Collect()); };
  ASSERT_TRUE(edgeprune::testing::WaitUntil([&] {
    return scrape().find("edgeprune_rollout_state{rollout=\"" + id + "\"} 0") != std::string::npos;
  })) << scrape();
  const std::string text = scrape();
  EXPECT_NE(text.find("edgeprune_rollout_devices{phase=\"0\",rollout=\"" + id +
                      "\",state=\"downloading\"} 1"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("edgeprune_rollout_gate_threshold{gate=\"probe_accuracy_drop\",rollout=\"" +
                      id + "\"} 0.05"),
            std::string::npos)
      << text;
  // Every step is counted with its CPU time (a step of one rollout costs more than nothing).
  auto value = [&](const std::string& name) {
    const std::string all = scrape();
    const auto at = all.find("\n" + name + " ");
    return at == std::string::npos ? -1.0 : std::stod(all.substr(at + name.size() + 2));
  };
  EXPECT_GE(value("edgeprune_rollout_ticks_total"), 1.0) << scrape();
  EXPECT_GT(value("edgeprune_rollout_tick_cpu_seconds_total"), 0.0) << scrape();
}

}  // namespace
}  // namespace edgeprune::api
