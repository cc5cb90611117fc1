#include "server/variants/closed_loop.hpp"

#include <algorithm>

#include "edgeprune/common/json.hpp"
#include "edgeprune/common/log.hpp"
#include "edgeprune/common/wire/budget.hpp"
#include "server/variants/model_registry.hpp"

namespace edgeprune::variants {
namespace bj = boost::json;
namespace {

std::optional<double> MeasuredP95(const wire::TelemetryReport& r) {
  if (r.live_latency && r.live_latency->count > 0) return r.live_latency->p95_ms;
  if (r.probe_latency) return r.probe_latency->p95_ms;
  return std::nullopt;
}

}  // namespace

Result<std::optional<Assignment>> ClosedLoop::OnReports(
    const std::string& device_id, const std::vector<wire::TelemetryReport>& reports) {
  bool recalibrated = false;
  std::string why;
  auto done = db_->WithTransaction([&](store::Connection& conn) -> Status {
    EP_ASSIGN_OR_RETURN(auto s, conn.Query("loop_state",
                                           "SELECT a.variant_id, a.throughput_scale, "
                                           "a.slo_breaches, d.budget, v.macs FROM "
                                           "device_assignments a JOIN devices d ON d.id = "
                                           "a.device_id LEFT JOIN variants v ON v.id = "
                                           "a.variant_id WHERE a.device_id = ?",
                                           device_id));
    EP_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row || s.IsNull(0) || s.IsNull(3) || s.IsNull(4)) return Ok();  // nothing to judge
    const std::string variant_id = s.Text(0);
    const double scale = s.Double(1);
    std::int64_t breaches = s.Int64(2);
    EP_ASSIGN_OR_RETURN(bj::object budget_json, json::ParseObject(s.Text(3)));
    EP_ASSIGN_OR_RETURN(Budget budget, wire::BudgetFromJson(budget_json));
    const double macs = static_cast<double>(s.Int64(4));
    if (!budget.max_latency_ms || !budget.latency_model) return Ok();
    const double slo = *budget.max_latency_ms;
    double worst = 0.0;
    for (const auto& r : reports) {
      if (r.variant_id != variant_id) continue;
      auto p95 = MeasuredP95(r);
      if (!p95) continue;
      if (*p95 > slo) {
        ++breaches;
        worst = std::max(worst, *p95);
      } else {
        breaches = 0;
      }
    }
    if (breaches >= options_.breach_reports && budget.latency_model->macs_per_ms > 0.0) {
      const double usable = std::max(worst - budget.latency_model->overhead_ms, 1e-3);
      const double measured_macs_per_ms = macs / usable;
      const double new_scale =
          std::min(scale * 0.9, measured_macs_per_ms / budget.latency_model->macs_per_ms);
      EP_RETURN_IF_ERROR(conn.Execute("loop_recalibrate",
                                      "UPDATE device_assignments SET throughput_scale = ?, "
                                      "slo_breaches = 0 WHERE device_id = ?",
                                      new_scale, device_id));
      why = "p95 " + std::to_string(worst) + " ms above the " + std::to_string(slo) +
            " ms SLO for " + std::to_string(breaches) + " reports";
      EP_RETURN_IF_ERROR(Audit(conn, "system", "device.recalibrate", device_id,
                               json::Serialize(bj::object{{"variant", variant_id},
                                                          {"p95_ms", worst},
                                                          {"slo_ms", slo},
                                                          {"throughput_scale_from", scale},
                                                          {"throughput_scale_to", new_scale}})));
      recalibrated = true;
    } else {
      EP_RETURN_IF_ERROR(conn.Execute("loop_breaches",
                                      "UPDATE device_assignments SET slo_breaches = ? "
                                      "WHERE device_id = ?",
                                      breaches, device_id));
    }
    return Ok();
  });
  if (!done.ok()) return done.error();
  if (!recalibrated) return std::optional<Assignment>();
  log::Get("variants")->info("device {}: {}; reassigning", device_id, why);
  EP_ASSIGN_OR_RETURN(Assignment a, deployments_->Reassign(device_id, "system", why));
  return std::optional<Assignment>(std::move(a));
}

}  // namespace edgeprune::variants
