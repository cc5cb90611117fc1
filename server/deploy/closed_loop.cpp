#include "server/deploy/closed_loop.hpp"

#include <algorithm>

#include "edgeprune/common/json.hpp"
#include "edgeprune/common/log.hpp"
#include "edgeprune/common/wire/budget.hpp"
#include "server/catalog/model_registry.hpp"
#include "server/catalog/variant_repository.hpp"
#include "server/fleet/device_directory.hpp"
#include "server/fleet/audit_log.hpp"

namespace edgeprune::deploy {
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
                                           "SELECT variant_id, throughput_scale, slo_breaches "
                                           "FROM device_assignments WHERE device_id = ?",
                                           device_id));
    EP_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row || s.IsNull(0)) return Ok();  // nothing to judge
    const std::string variant_id = s.Text(0);
    const double scale = s.Double(1);
    std::int64_t breaches = s.Int64(2);
    EP_RETURN_IF_ERROR(s.Reset());
    // The device's budget from the fleet, the variant's cost from the catalog, both read in this
    // transaction through their modules.
    EP_ASSIGN_OR_RETURN(auto device, fleet::DeviceDirectory::FindActiveIn(conn, device_id));
    if (!device || !device->budget) return Ok();
    auto variant = catalog::VariantRepository::GetIn(conn, variant_id);
    if (!variant.ok()) {
      if (variant.error().kind == ErrorKind::kNotFound) return Ok();
      return variant.error();
    }
    const Budget budget = *device->budget;
    const double macs = static_cast<double>(variant->cost.macs);
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
      EP_RETURN_IF_ERROR(fleet::AuditLog::RecordIn(conn, "system", "device.recalibrate", device_id,
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

}  // namespace edgeprune::deploy
