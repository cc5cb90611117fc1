#pragma once
// A migrated database with a model, its ready variants, tagged devices and a RolloutService on a
// manual clock; helpers play the devices' side (heartbeats, install events, telemetry) through
// the fleet's table and the telemetry module, as the real agent's reports would land.
// For tests/server/deploy/ and tests/bench/rollout_gates_bench.

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>

#include "edgeprune/common/json.hpp"
#include "server/catalog/model_registry.hpp"
#include "server/catalog/variant_repository.hpp"
#include "server/deploy/deployments.hpp"
#include "server/deploy/rollout_spec.hpp"
#include "server/deploy/rollouts.hpp"
#include "server/fleet/audit_log.hpp"
#include "server/support/variants_fixture.hpp"
#include "server/telemetry/store.hpp"

namespace edgeprune::testing {

class RolloutsWorld {
 public:
  static constexpr std::int64_t kStart = 1'700'000'000'000;  // a Tuesday, 22:13 UTC

  explicit RolloutsWorld(store::Dialect dialect = store::Dialect::kSqlite)
      : db_(dialect),
        clock_(std::make_shared<ManualClock>(kStart)),
        deployments_(std::make_shared<deploy::DeploymentService>(db_.db(), nullptr)),
        rollouts_(std::make_shared<deploy::RolloutService>(
            db_.db(), [this](const catalog::VariantRecord& v) { requested_.push_back(v.id); },
            clock_)),
        telemetry_(db_.db()) {}

  VariantsDb& db() { return db_; }
  ManualClock& clock() { return *clock_; }
  deploy::RolloutService& rollouts() { return *rollouts_; }
  deploy::DeploymentService& deployments() { return *deployments_; }
  // A second service on the same database: what a restarted server builds.
  std::shared_ptr<deploy::RolloutService> Restarted() {
    return std::make_shared<deploy::RolloutService>(db_.db(), nullptr, clock_);
  }
  const std::vector<std::string>& requested_builds() const { return requested_; }

  // A model with a ready variant per bucket: {"L0": {macs, accuracy}, ...}.
  std::string AddModel(const std::map<std::string, std::pair<std::int64_t, double>>& rungs) {
    const catalog::ModelRecord m = db_.AddModel({100'000, 10'000'000, 0});
    catalog::VariantRepository repo(db_.db());
    for (const auto& [bucket, rung] : rungs) {
      std::string id;
      auto made = db_.db()->WithTransaction([&](store::Connection& conn) -> Status {
        bool created = false;
        EP_ASSIGN_OR_RETURN(auto v, catalog::VariantRepository::EnsureIn(conn, m.id, bucket,
                                                                          Budget{}, &created));
        id = v.id;
        return Ok();
      });
      EXPECT_TRUE(made.ok()) << made.error().ToString();
      MarkReady(repo, id, {rung.first / 100, rung.first, 0}, rung.second);
      variants_[m.id + "/" + bucket] = id;
    }
    return m.id;
  }
  std::string Variant(const std::string& model, const std::string& bucket) {
    return variants_[model + "/" + bucket];
  }

  void AddDevices(const std::string& prefix, int n, const std::string& tags_json,
                  const std::optional<Budget>& budget = Budget{}) {
    for (int i = 0; i < n; ++i) db_.AddDevice(prefix + std::to_string(i), tags_json, budget);
  }

  // The device's heartbeat: it runs `variant` and was seen now.
  void Heartbeat(const std::string& device, const std::optional<std::string>& variant) {
    Sql("UPDATE devices SET installed_variant = ?, last_seen_at = ? WHERE id = ?", variant,
        clock_->NowMs(), device);
  }
  void Event(const std::string& device, const std::string& variant, const std::string& event) {
    auto s = telemetry_.RecordVariantEvent(device, variant, event, event == "installed" ? "" : "probe check failed");
    ASSERT_TRUE(s.ok()) << s.error().ToString();
  }
  // One telemetry report from the device about `variant`.
  void Report(const std::string& device, const std::string& variant, std::optional<double> probe,
              std::optional<double> p95_ms = std::nullopt, std::int64_t labels = 0,
              std::optional<double> feedback = std::nullopt) {
    wire::TelemetryBatch b;
    wire::TelemetryReport r;
    r.seq = ++seq_[device];
    r.timestamp_ms = clock_->NowMs();
    r.variant_id = variant;
    r.probe_accuracy = probe;
    if (p95_ms) r.probe_latency = wire::LatencyQuantiles{*p95_ms / 2, *p95_ms, *p95_ms};
    r.feedback_count = labels;
    r.feedback_accuracy = feedback;
    b.reports.push_back(r);
    auto s = telemetry_.Ingest(device, b);
    ASSERT_TRUE(s.ok()) << s.error().ToString();
  }
  // The device installed what it is assigned and reports it verified with this probe accuracy.
  void Install(const std::string& device, std::optional<double> probe = std::nullopt) {
    auto d = deployments_->Desired(device);
    ASSERT_TRUE(d.ok() && d->variant_id) << device;
    Heartbeat(device, *d->variant_id);
    Event(device, *d->variant_id, "installed");
    if (probe) Report(device, *d->variant_id, probe);
  }

  std::optional<std::string> Desired(const std::string& device) {
    auto d = deployments_->Desired(device);
    EXPECT_TRUE(d.ok());
    return d.ok() ? d->variant_id : std::nullopt;
  }

  deploy::RolloutSpec Spec(const std::string& json_text) {
    auto o = json::ParseObject(json_text);
    EXPECT_TRUE(o.ok()) << json_text;
    auto spec = deploy::RolloutSpecFromJson(*o);
    EXPECT_TRUE(spec.ok()) << spec.error().ToString();
    return *spec;
  }
  boost::json::object Get(const std::string& id) {
    auto r = rollouts_->Get(id);
    EXPECT_TRUE(r.ok()) << r.error().ToString();
    return r.ok() ? *r : boost::json::object{};
  }
  deploy::TickReport Tick() {
    auto r = rollouts_->Tick();
    EXPECT_TRUE(r.ok()) << r.error().ToString();
    return r.ok() ? *r : deploy::TickReport{};
  }
  // A device's rollout state from GET.
  std::string StateOf(const std::string& rollout, const std::string& device) {
    const boost::json::object r = Get(rollout);
    for (const auto& d : r.at("devices").as_array()) {
      if (d.at("device_id").as_string() == device) return std::string(d.at("state").as_string());
    }
    return "";
  }
  std::int64_t Count(const std::string& rollout, int phase, const std::string& state) {
    const boost::json::object r = Get(rollout);
    const auto& phases = r.at("phase_counts").as_array();
    return phases.at(static_cast<std::size_t>(phase)).at("counts").at(state).as_int64();
  }
  std::vector<fleet::AuditEntry> Audit(const std::string& action) {
    fleet::AuditLog log(db_.db(), clock_);
    fleet::AuditQuery q;
    q.action = action;
    auto r = log.List(q);
    EXPECT_TRUE(r.ok());
    return r.ok() ? *r : std::vector<fleet::AuditEntry>{};
  }

  template <typename... Args>
  void Sql(const std::string& sql, const Args&... args) {
    auto lease = db_.db()->Acquire();
    ASSERT_TRUE(lease.ok());
    auto r = (*lease)->Execute("test_sql", sql, args...);
    ASSERT_TRUE(r.ok()) << r.error().ToString();
  }

 private:
  VariantsDb db_;
  std::shared_ptr<ManualClock> clock_;
  std::shared_ptr<deploy::DeploymentService> deployments_;
  std::vector<std::string> requested_;
  std::shared_ptr<deploy::RolloutService> rollouts_;
  telemetry::TelemetryStore telemetry_;
  std::map<std::string, std::string> variants_;
  std::map<std::string, std::int64_t> seq_;
};

}  // namespace edgeprune::testing
