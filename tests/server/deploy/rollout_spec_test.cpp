// A rollout's spec at the edge: hostile or nonsensical input is refused with a named code; the
// maintenance window opens and closes on the minute; gates judge only with enough samples.
#include <gtest/gtest.h>

#include "edgeprune/common/json.hpp"
#include "server/deploy/rollout_gates.hpp"
#include "server/deploy/rollout_spec.hpp"

namespace edgeprune::deploy {
namespace {

Result<RolloutSpec> Parse(const std::string& text) {
  auto o = json::ParseObject(text);
  if (!o.ok()) return o.error();
  return RolloutSpecFromJson(*o);
}

std::string With(const std::string& extra) {
  return R"({"model": "mdl-1", "target": {"tags": ["cam"]}, )" + extra + "}";
}

TEST(RolloutSpecTest, AValidSpecRoundTrips) {
  auto spec = Parse(With(R"("phases": [{"count": 1, "bake_seconds": 60}, {"percent": 30,
      "min_devices": 2, "requires_approval": true}, {"percent": 100}],
      "gates": [{"gate": "p95_over_slo", "threshold": 0.1, "min_samples": 3, "action": "step_down"}],
      "rate_per_minute": 10, "order_tags": ["site-a"],
      "maintenance_window": {"cron": "30 1 * * 1-5", "duration_minutes": 90, "utc_offset": "+02:00"})"));
  ASSERT_TRUE(spec.ok()) << spec.error().ToString();
  EXPECT_EQ(spec->phases.size(), 3u);
  EXPECT_EQ(spec->phases[0].bake_ms, 60'000);
  EXPECT_TRUE(spec->phases[1].requires_approval);
  EXPECT_EQ(spec->gates[0].action, GateAction::kStepDown);
  auto again = RolloutSpecFromJson(ToJson(*spec));
  ASSERT_TRUE(again.ok()) << again.error().ToString();
  EXPECT_EQ(json::Serialize(ToJson(*again)), json::Serialize(ToJson(*spec)));
  EXPECT_EQ(PhaseReach(spec->phases[0], 10), 1);
  EXPECT_EQ(PhaseReach(spec->phases[1], 10), 3);
  EXPECT_EQ(PhaseReach(spec->phases[1], 4), 2) << "min_devices";
  EXPECT_EQ(PhaseReach(spec->phases[2], 7), 7);
}

TEST(RolloutSpecTest, BadInputIsRefusedWithANamedCode) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"model": "mdl-1", "phases": [{"percent": 100}]})", "invalid_field"},
      {With(R"("phases": [{"percent": 100}], "surprise": 1)"), "invalid_field"},
      {R"({"model": "mdl-1", "target": {}, "phases": [{"percent": 100}]})", "invalid_field"},
      {R"({"model": "mdl-1", "target": {"tags": []}, "phases": [{"percent": 100}]})", "invalid_field"},
      {R"({"model": "mdl-1", "target": {"devices": ["d"], "dynamic": true}, "phases": [{"percent": 100}]})", "invalid_field"},
      {R"({"model": "mdl-1", "target": {"tags": ["a"], "cap": 0}, "phases": [{"percent": 100}]})", "invalid_field"},
      {With(R"("phases": [])"), "invalid_phases"},
      {With(R"("phases": [{"percent": 50}])"), "invalid_phases"},
      {With(R"("phases": [{"percent": 60}, {"percent": 40}, {"percent": 100}])"), "invalid_phases"},
      {With(R"("phases": [{"count": 5}, {"count": 2}, {"percent": 100}])"), "invalid_phases"},
      {With(R"("phases": [{"percent": 0}, {"percent": 100}])"), "invalid_phases"},
      {With(R"("phases": [{"percent": 101}])"), "invalid_phases"},
      {With(R"("phases": [{"percent": 10, "count": 1}, {"percent": 100}])"), "invalid_phases"},
      {With(R"("phases": [{"percent": 100, "bake_seconds": -1}])"), "invalid_field"},
      {With(R"("phases": [{"percent": 100}], "gates": [{"gate": "vibes", "threshold": 0.1, "action": "pause"}])"), "invalid_gate"},
      {With(R"("phases": [{"percent": 100}], "gates": [{"gate": "install_failure_rate", "threshold": 1.5, "action": "pause"}])"), "invalid_gate"},
      {With(R"("phases": [{"percent": 100}], "gates": [{"gate": "install_failure_rate", "threshold": -0.1, "action": "pause"}])"), "invalid_gate"},
      {With(R"("phases": [{"percent": 100}], "gates": [{"gate": "probe_accuracy_drop", "threshold": 0.1, "action": "step_down"}])"), "invalid_gate"},
      {With(R"("phases": [{"percent": 100}], "gates": [{"gate": "probe_accuracy_drop", "threshold": 0.1, "action": "explode"}])"), "invalid_gate"},
      {With(R"("phases": [{"percent": 100}], "gates": [{"gate": "probe_accuracy_drop", "threshold": 0.1, "min_samples": 0, "action": "pause"}])"), "invalid_field"},
      {With(R"("phases": [{"percent": 100}], "gates": [{"gate": "probe_accuracy_drop", "threshold": 0.1, "action": "pause"}, {"gate": "probe_accuracy_drop", "threshold": 0.2, "action": "pause"}])"), "invalid_gate"},
      {With(R"("phases": [{"percent": 100}], "rate_per_minute": 0)"), "invalid_field"},
      {With(R"("phases": [{"percent": 100}], "maintenance_window": {"cron": "61 * * * *"})"), "invalid_window"},
      {With(R"("phases": [{"percent": 100}], "maintenance_window": {"cron": "* * *"})"), "invalid_window"},
      {With(R"("phases": [{"percent": 100}], "maintenance_window": {"cron": "5-1 * * * *"})"), "invalid_window"},
      {With(R"("phases": [{"percent": 100}], "maintenance_window": {"cron": "1,,2 * * * *"})"), "invalid_window"},
      {With(R"("phases": [{"percent": 100}], "maintenance_window": {"cron": "0 0 * * *", "utc_offset": "Europe/Paris"})"), "invalid_window"},
      {With(R"("phases": [{"percent": 100}], "maintenance_window": {"cron": "0 0 * * *", "utc_offset": "+15:00"})"), "invalid_window"},
  };
  for (const auto& [text, code] : cases) {
    auto r = Parse(text);
    ASSERT_FALSE(r.ok()) << text;
    EXPECT_EQ(r.error().code, code) << text << " → " << r.error().ToString();
    EXPECT_EQ(r.error().kind, ErrorKind::kInvalidArgument) << text;
  }
}

TEST(RolloutSpecTest, TheMaintenanceWindowOpensOnItsMinutesInItsZone) {
  auto o = json::ParseObject(R"({"cron": "30 1 * * 1-5", "duration_minutes": 90, "utc_offset": "+02:00"})");
  ASSERT_TRUE(o.ok());
  auto w = WindowFromJson(*o);
  ASSERT_TRUE(w.ok()) << w.error().ToString();
  // 2023-11-14 is a Tuesday. 01:30 at +02:00 is 23:30 UTC the day before.
  constexpr std::int64_t kMonday2330Utc = 1'699'918'200'000;  // 2023-11-13T23:30:00Z
  EXPECT_TRUE(w->OpenAt(kMonday2330Utc));
  EXPECT_FALSE(w->OpenAt(kMonday2330Utc - 60'000));
  EXPECT_TRUE(w->OpenAt(kMonday2330Utc + 89 * 60'000));
  EXPECT_FALSE(w->OpenAt(kMonday2330Utc + 90 * 60'000));
  // Five days on it is Sunday 01:30 local: weekday 0 is outside 1-5.
  EXPECT_FALSE(w->OpenAt(kMonday2330Utc + 5LL * 86'400'000));
}

TEST(RolloutGatesTest, GatesJudgeOnlyWithEnoughSamplesAndTripAboveTheirThreshold) {
  std::vector<DeviceObservation> devices(4);
  for (int i = 0; i < 4; ++i) {
    devices[i].device_id = "d" + std::to_string(i);
    devices[i].state = "verified";
    devices[i].baseline_probe = 0.9;
    devices[i].slo_ms = 10.0;
    telemetry::VariantFieldStats s;
    s.reports = 1;
    s.probe_accuracy = i < 2 ? 0.9 : 0.7;
    s.p95_ms = i == 0 ? 12.0 : 5.0;
    devices[i].now = s;
  }
  devices[3].state = "failed";
  devices[3].now.reset();
  std::vector<GateSpec> gates = {
      {GateKind::kInstallFailureRate, 0.2, 4, GateAction::kPause},
      {GateKind::kProbeAccuracyDrop, 0.05, 3, GateAction::kRollback},
      {GateKind::kP95OverSlo, 0.5, 1, GateAction::kStepDown},
      {GateKind::kOfflineAfterUpdate, 0.0, 1, GateAction::kPause},
  };
  const auto v = EvaluateGates(gates, devices);
  EXPECT_DOUBLE_EQ(v[0].value, 0.25);
  EXPECT_TRUE(v[0].tripped);
  EXPECT_NEAR(v[1].value, 0.2 / 3, 1e-12);
  EXPECT_EQ(v[1].samples, 3);
  EXPECT_TRUE(v[1].tripped);
  EXPECT_NEAR(v[2].value, 1.0 / 3, 1e-12);
  EXPECT_FALSE(v[2].tripped);
  EXPECT_EQ(v[2].breaching, std::vector<std::string>{"d0"});
  EXPECT_EQ(v[3].value, 0.0);
  EXPECT_FALSE(v[3].tripped);
  gates[0].min_samples = 5;
  EXPECT_FALSE(EvaluateGates(gates, devices)[0].judged);
}

}  // namespace
}  // namespace edgeprune::deploy
