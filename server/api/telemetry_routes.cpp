#include "server/api/loop_routes.hpp"

#include <charconv>
#include <optional>
#include <set>

#include "common/http/pagination.hpp"
#include "edgeprune/common/json.hpp"
#include "edgeprune/common/log.hpp"
#include "edgeprune/common/wire/telemetry.hpp"
#include "server/api/route_table.hpp"

namespace edgeprune::api {
namespace {

namespace bj = boost::json;

constexpr std::size_t kMaxNameLength = 128;

Result<Response> DeviceTelemetry(const TelemetryRouteServices& s, const RequestContext& ctx) {
  const std::string id(*ctx.PathParam("id"));
  // The shared strict parser: "1e3" or "10abc" is invalid_parameter, not 1 or 10.
  EP_ASSIGN_OR_RETURN(http::PageRequest page, http::PageParams(ctx, 100, 1000));
  // The cursor is the seq of the oldest report of the previous page.
  std::optional<std::int64_t> before;
  if (page.cursor) {
    std::int64_t seq = 0;
    const auto& c = *page.cursor;
    auto [end, ec] = std::from_chars(c.data(), c.data() + c.size(), seq);
    if (ec != std::errc() || end != c.data() + c.size() || seq < 1) {
      return BadRequest("invalid_parameter", "cursor must be a cursor this endpoint returned");
    }
    before = seq;
  }
  EP_ASSIGN_OR_RETURN(auto reports, s.telemetry->Recent(id, page.limit, before));
  EP_ASSIGN_OR_RETURN(auto count, s.telemetry->Count(id));
  EP_ASSIGN_OR_RETURN(auto desired, s.deployments->Desired(id));
  std::optional<std::string> next;
  if (static_cast<int>(reports.size()) == page.limit && !reports.empty()) {
    const std::int64_t oldest = reports.back().as_object().at("seq").as_int64();
    if (oldest > 1) next = std::to_string(oldest);
  }
  // The one list envelope (items, next_cursor), plus what the device's list is about.
  return http::ListResponse(
      std::move(reports), std::move(next),
      bj::object{{"device_id", id},
                 {"total_reports", count},
                 {"assigned_variant",
                  desired.variant_id ? bj::value(*desired.variant_id) : bj::value(nullptr)}});
}

Result<Response> PostEvent(const TelemetryRouteServices& s, const RequestContext& ctx) {
  const std::string variant_id(*ctx.PathParam("id"));
  if (ctx.body.size() > 16 * 1024) {
    return MakeError(ErrorKind::kPayloadTooLarge, "body_too_large", "an event is at most 16 KiB");
  }
  EP_ASSIGN_OR_RETURN(bj::object body, json::ParseObject(ctx.body));
  EP_ASSIGN_OR_RETURN(std::string event, json::GetString(body, "event"));
  EP_ASSIGN_OR_RETURN(auto reason, json::GetOptString(body, "reason"));
  if (event != "installed" && event != "refused" && event != "check_failed") {
    return BadRequest("invalid_field", "event must be installed, refused or check_failed");
  }
  if (variant_id.size() > kMaxNameLength) return BadRequest("invalid_parameter", "variant id too long");
  const std::string why = reason.value_or("").substr(0, 1024);
  auto done = s.telemetry->RecordVariantEvent(ctx.principal.id, variant_id, event, why);
  if (!done.ok()) return done.error();
  if (event == "installed") {
    log::Get("variants")->info("device {} installed {}", ctx.principal.id, variant_id);
  } else {
    log::Get("variants")->warn("device {} {} variant {}: {}", ctx.principal.id, event, variant_id,
                               why);
  }
  return http::JsonResponse(bj::object{{"recorded", true}});
}

// The reported variant ids that are variants of the model this device is assigned: only those
// get metric series. The decoder cannot know them, and a device may report any string.
Result<std::set<std::string>> AssignedVariants(const TelemetryRouteServices& s, const std::string& device_id,
                                               const std::vector<wire::TelemetryReport>& reports) {
  std::set<std::string> reported;
  for (const auto& r : reports) reported.insert(r.variant_id);
  std::set<std::string> known;
  EP_ASSIGN_OR_RETURN(auto model, s.deployments->AssignedModel(device_id));
  if (!model) return known;
  EP_ASSIGN_OR_RETURN(auto variants, s.variants->ListForModel(*model));
  for (const auto& v : variants) {
    if (reported.count(v.id)) known.insert(v.id);
  }
  return known;
}

Result<Response> PostTelemetry(const TelemetryRouteServices& s, const RequestContext& ctx) {
  EP_ASSIGN_OR_RETURN(wire::TelemetryBatch batch, wire::ParseTelemetryBatch(ctx.body));
  EP_ASSIGN_OR_RETURN(telemetry::IngestResult result, s.telemetry->Ingest(ctx.principal.id, batch));
  if (!result.stored.empty()) {
    if (s.metrics) {
      // The reports are committed: a failed lookup costs their series, never the ack.
      auto known = AssignedVariants(s, ctx.principal.id, result.stored);
      s.metrics->Observe(ctx.principal.id, result.stored, known.ok() ? *known : std::set<std::string>{});
    }
    if (s.loop) {
      // The reports are committed whatever the loop decides: its failure must not lose the ack.
      auto moved = s.loop->OnReports(ctx.principal.id, result.stored);
      if (!moved.ok()) {
        log::Get("variants")->error("closed loop for {}: {}", ctx.principal.id,
                                    moved.error().ToString());
      }
    }
  }
  return http::JsonResponse(wire::ToJson(wire::TelemetryAck{result.acked_seq}));
}

}  // namespace

std::vector<http::Route> TelemetryRoutes(const TelemetryRouteServices& s) {
  // clang-format off
  return {
      {Verb::post, "/agent/v1/telemetry",              Bind<PostTelemetry>(s),   Auth::kDevice, "agent_telemetry"},
      {Verb::post, "/agent/v1/variants/{id}/events",   Bind<PostEvent>(s),       Auth::kDevice, "agent_variant_events"},
      {Verb::get,  "/api/v1/devices/{id}/telemetry",   Bind<DeviceTelemetry>(s), Auth::kViewer, "devices_telemetry"},
  };
  // clang-format on
}

}  // namespace edgeprune::api
