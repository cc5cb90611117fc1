#include "server/api/loop_routes.hpp"

#include "common/http/file_response.hpp"
#include "edgeprune/common/clock.hpp"
#include "edgeprune/common/crypto.hpp"
#include "edgeprune/common/wire/manifest.hpp"
#include "server/api/route_table.hpp"

namespace edgeprune::api {
namespace {


// The variant a device may fetch: ready, and of the model it is assigned.
Result<catalog::VariantRecord> DeliverableVariant(const DeliveryRouteServices& s, const RequestContext& ctx,
                                         deploy::DesiredVariant* desired) {
  const std::string id(*ctx.PathParam("id"));
  auto v = s.variants->Get(id);
  if (!v.ok() || v->status != "ready") {
    return MakeError(ErrorKind::kNotFound, "variant_not_found", "no ready variant " + id);
  }
  EP_ASSIGN_OR_RETURN(*desired, s.deployments->Desired(ctx.principal.id));
  if (desired->variant_id != id) {
    // Devices may only fetch variants of the model they are assigned.
    EP_ASSIGN_OR_RETURN(auto model, s.deployments->AssignedModel(ctx.principal.id));
    if (!model || *model != v->model_id) {
      return MakeError(ErrorKind::kPermissionDenied, "variant_not_assigned",
                       "variant " + id + " is not of a model assigned to this device");
    }
  }
  return v;
}

// How long a signed rollback permission stays usable. The agent checks it before fetching the
// payload, right after this answer, so an hour covers slow links and modest clock skew while a
// captured copy soon becomes useless.
constexpr std::int64_t kRollbackTtlS = 3600;

Result<catalog::SignedManifest> ManifestFor(const DeliveryRouteServices& s, const RequestContext& ctx,
                                            const catalog::VariantRecord& v,
                                            const deploy::DesiredVariant& desired) {
  if (desired.rollback && desired.variant_id == v.id) {
    // The device moves to a lower version: the server's signed permission to roll back, for
    // this device only and for a short while (signed afresh on every request).
    EP_ASSIGN_OR_RETURN(wire::VariantManifest m, wire::ParseManifest(v.manifest));
    m.rollback = true;
    m.device_id = ctx.principal.id;
    m.expires_at = NowMs() / 1000 + kRollbackTtlS;
    return s.keyring->Sign(m);
  }
  catalog::SignedManifest out;
  out.manifest_json = v.manifest;
  out.signature = v.signature;
  out.signature_base64 = crypto::Base64Encode(v.signature);
  out.key_id = v.key_id;
  return out;
}

Result<Response> GetManifest(const DeliveryRouteServices& s, const RequestContext& ctx) {
  deploy::DesiredVariant desired;
  EP_ASSIGN_OR_RETURN(auto v, DeliverableVariant(s, ctx, &desired));
  EP_ASSIGN_OR_RETURN(auto m, ManifestFor(s, ctx, v, desired));
  Response r = http::TextResponse(m.manifest_json, "application/json");
  r.WithHeader("X-Signature", m.signature_base64);
  r.WithHeader("X-Edgeprune-Key-Id", m.key_id);
  return r;
}

Result<Response> GetPayload(const DeliveryRouteServices& s, const RequestContext& ctx) {
  deploy::DesiredVariant desired;
  EP_ASSIGN_OR_RETURN(auto v, DeliverableVariant(s, ctx, &desired));
  EP_ASSIGN_OR_RETURN(std::string path, s.blobs->PathOf(v.blob_sha256));
  // The blob's digest is a strong validator: a resumed download (If-Range) of a variant whose
  // payload changed restarts instead of splicing two files together.
  return http::FileResponse(ctx, path, "application/octet-stream", "\"" + v.blob_sha256 + "\"");
}

Result<Response> GetProbe(const DeliveryRouteServices& s, const RequestContext& ctx) {
  deploy::DesiredVariant desired;
  EP_ASSIGN_OR_RETURN(auto v, DeliverableVariant(s, ctx, &desired));
  if (v.probe_sha256.empty()) {
    return MakeError(ErrorKind::kNotFound, "probe_not_found",
                     "variant " + v.id + " ships no probe set");
  }
  EP_ASSIGN_OR_RETURN(std::string path, s.blobs->PathOf(v.probe_sha256));
  return http::FileResponse(ctx, path, "application/octet-stream", "\"" + v.probe_sha256 + "\"");
}

}  // namespace

std::vector<http::Route> DeliveryRoutes(const DeliveryRouteServices& s) {
  // clang-format off
  return {
      {Verb::get, "/agent/v1/variants/{id}/manifest", Bind<GetManifest>(s), Auth::kDevice, "agent_manifest"},
      {Verb::get, "/agent/v1/variants/{id}/payload",  Bind<GetPayload>(s),  Auth::kDevice, "agent_payload"},
      {Verb::get, "/agent/v1/variants/{id}/probe",    Bind<GetProbe>(s),    Auth::kDevice, "agent_probe"},
  };
  // clang-format on
}

}  // namespace edgeprune::api
