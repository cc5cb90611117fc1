#include "server/variants/routes.hpp"

#include <charconv>
#include <filesystem>
#include <regex>
#include <set>
#include <sstream>

#include "edgeprune/common/crypto.hpp"
#include "edgeprune/common/fs.hpp"
#include "edgeprune/common/json.hpp"
#include "edgeprune/common/log.hpp"
#include "edgeprune/common/wire/manifest.hpp"
#include "edgeprune/common/wire/telemetry.hpp"
#include "common/http/file_response.hpp"
#include "common/http/pagination.hpp"
#include "server/jobs/job.hpp"
#include "server/variants/build_job.hpp"

namespace edgeprune::variants {
namespace bj = boost::json;
using http::RequestContext;
using http::Response;
using http::Route;
using http::Verb;

namespace {

using ServicesPtr = std::shared_ptr<VariantServices>;

constexpr std::size_t kMaxNameLength = 128;
constexpr std::size_t kMaxClasses = 10000;

std::string Actor(const RequestContext& ctx) {
  switch (ctx.principal.kind) {
    case http::Principal::Kind::kUser: return "token:" + ctx.principal.id;
    case http::Principal::Kind::kDevice: return "device:" + ctx.principal.id;
    default: return "anonymous";
  }
}

Error BadRequest(const std::string& code, const std::string& message) {
  return MakeError(ErrorKind::kInvalidArgument, code, message);
}

std::vector<std::string> SplitList(std::string_view text) {
  std::vector<std::string> out;
  std::string item;
  std::istringstream in{std::string(text)};
  while (std::getline(in, item, ',')) out.push_back(item);
  return out;
}

// "1,28,28", "1x28x28" or with the batch: "1,1,28,28". Returns the shape with batch 1.
Result<std::vector<std::int64_t>> ParseInputShape(std::string_view text) {
  std::string t(text);
  for (char& c : t) {
    if (c == 'x' || c == 'X') c = ',';
  }
  std::vector<std::int64_t> shape;
  // getline drops a trailing empty item: "1,28,28," would pass as 1,28,28.
  if (t.empty() || t.back() == ',') {
    return BadRequest("invalid_input_shape", "input_shape '" + std::string(text) +
                                                 "' is not a comma-separated list of sizes");
  }
  for (const auto& part : SplitList(t)) {
    // Digits only: std::stoll would also take " 5", "+5" or "5e3"'s leading "5".
    std::int64_t v = 0;
    auto [end, ec] = std::from_chars(part.data(), part.data() + part.size(), v);
    if (part.empty() || ec != std::errc() || end != part.data() + part.size()) {
      return BadRequest("invalid_input_shape", "input_shape '" + std::string(text) +
                                                   "' is not a comma-separated list of sizes");
    }
    if (v < 1 || v > 65536) {
      return BadRequest("invalid_input_shape",
                        "input_shape '" + std::string(text) + "' has a size out of 1..65536");
    }
    shape.push_back(v);
  }
  if (shape.size() == 3) shape.insert(shape.begin(), 1);
  if (shape.size() != 4 || shape[0] != 1) {
    return BadRequest("invalid_input_shape", "input_shape '" + std::string(text) +
                                                 "' must be C,H,W (or 1,C,H,W)");
  }
  if (wire::ElementCount(shape) > wire::kMaxInputElements) {
    return BadRequest("invalid_input_shape", "input_shape '" + std::string(text) + "' is too large");
  }
  return shape;
}

// The data sets a variant build can fine-tune and evaluate on (models::LoadDataset):
// "fashion-mnist" or "synthetic:CxHxW:K" within that loader's digit limits. Anything else would be
// stored and only fail in a build; a path-like value must never reach the loader at all.
Status ValidateDataset(const std::string& dataset) {
  static const std::regex kSynthetic(R"(synthetic:[1-9]\d{0,3}x[1-9]\d{0,4}x[1-9]\d{0,4}:[1-9]\d{0,3})");
  if (dataset == "fashion-mnist" || std::regex_match(dataset, kSynthetic)) return Ok();
  return BadRequest("invalid_dataset",
                    "query parameter 'dataset' must be fashion-mnist or synthetic:CxHxW:K");
}

Result<std::string> RequiredQuery(const RequestContext& ctx, const char* key) {
  auto v = ctx.QueryParam(key);
  if (!v || v->empty()) {
    return BadRequest("missing_parameter", std::string("query parameter '") + key + "' is required");
  }
  if (v->size() > kMaxNameLength) {
    return BadRequest("invalid_parameter", std::string("query parameter '") + key +
                                               "' is longer than " +
                                               std::to_string(kMaxNameLength) + " characters");
  }
  return std::string(*v);
}

Result<Response> StoreUpload(const ServicesPtr& s, const RequestContext& ctx) {
  EP_ASSIGN_OR_RETURN(std::string name, RequiredQuery(ctx, "name"));
  EP_ASSIGN_OR_RETURN(std::string dataset, RequiredQuery(ctx, "dataset"));
  EP_RETURN_IF_ERROR(ValidateDataset(dataset));
  auto shape_text = ctx.QueryParam("input_shape");
  if (!shape_text) return BadRequest("missing_parameter", "query parameter 'input_shape' is required");
  EP_ASSIGN_OR_RETURN(auto shape, ParseInputShape(*shape_text));
  std::vector<std::string> classes;
  if (auto c = ctx.QueryParam("class_names"); c && !c->empty()) {
    classes = SplitList(*c);
    if (classes.size() > kMaxClasses) {
      return BadRequest("invalid_parameter", "class_names has more than 10000 entries");
    }
    for (const auto& n : classes) {
      if (n.empty() || n.size() > kMaxNameLength) {
        return BadRequest("invalid_parameter", "class_names holds an empty or over-long name");
      }
    }
  }
  if (ctx.body.empty()) return BadRequest("empty_body", "the request body must be the TorchScript file");
  if (static_cast<std::int64_t>(ctx.body.size()) > s->max_model_bytes) {
    return MakeError(ErrorKind::kPayloadTooLarge, "model_too_large",
                     "the model is " + std::to_string(ctx.body.size()) + " bytes; the limit is " +
                         std::to_string(s->max_model_bytes));
  }

  // Validate from a private temp file; only a model that loads and runs reaches the blob store.
  EP_RETURN_IF_ERROR(fs::EnsureDir(s->upload_dir, 0700));
  const std::string temp = s->upload_dir + "/upload-" + crypto::RandomToken(12) + ".pt";
  struct Remove {
    std::string path;
    ~Remove() {
      std::error_code ec;
      std::filesystem::remove(path, ec);
    }
  } remove{temp};
  EP_RETURN_IF_ERROR(fs::WriteFileAtomic(temp, ctx.body, 0600));
  // In a sandboxed model worker; its errors name what is wrong with the model (forbidden_operator,
  // invalid_model, model_timeout, model_resource_limit, model_crashed) without LibTorch's text.
  EP_ASSIGN_OR_RETURN(MasterFacts facts,
                      s->validate_master(temp, shape, static_cast<std::int64_t>(classes.size())));
  if (classes.empty()) {
    for (std::int64_t i = 0; i < facts.num_classes; ++i) classes.push_back(std::to_string(i));
  }
  EP_ASSIGN_OR_RETURN(store::BlobRef ref, s->blobs->PutFile(temp));

  ModelRecord record;
  record.name = name;
  record.dataset = dataset;
  record.input_shape = shape;
  record.class_names = classes;
  record.num_classes = facts.num_classes;
  record.cost = ModelCost{facts.parameters, facts.macs, facts.activation_bytes};
  record.blob_sha256 = ref.sha256;
  record.size_bytes = static_cast<std::int64_t>(ref.size);
  record.created_by = Actor(ctx);
  EP_ASSIGN_OR_RETURN(ModelRecord stored, s->models->Register(record));
  log::Get("variants")->info("model {} '{}' uploaded: {} parameters, {} MACs", stored.id,
                             stored.name, stored.cost.parameters, stored.cost.macs);
  return http::JsonResponse(ToJson(stored), http::HttpStatus::created);
}

// Every attempt is audited: an accepted upload in the transaction that stores it (model.upload,
// ok), a refused one here with the code and sentence the client got.
Result<Response> UploadModel(const ServicesPtr& s, const RequestContext& ctx) {
  auto stored = StoreUpload(s, ctx);
  if (!stored.ok() && s->audit) {
    const auto name = ctx.QueryParam("name");
    const auto& e = stored.error();
    bj::object detail{{"code", e.code}, {"reason", e.message}, {"bytes", ctx.body.size()},
                      {"request_id", ctx.request_id}};
    if (name) detail["name"] = std::string(name->substr(0, kMaxNameLength));
    if (auto st = s->audit->Record(Actor(ctx), "model.upload", "", fleet::Outcome::kFailed,
                                   json::Serialize(detail));
        !st.ok()) {
      log::Get("variants")->error("auditing a refused upload: {}", st.error().ToString());
    }
  }
  return stored;
}

Result<Response> ListModels(const ServicesPtr& s) {
  EP_ASSIGN_OR_RETURN(auto models, s->models->List());
  bj::array out;
  for (const auto& m : models) out.push_back(ToJson(m));
  return http::JsonResponse(bj::object{{"models", out}});
}

Result<Response> GetModel(const ServicesPtr& s, const RequestContext& ctx) {
  EP_ASSIGN_OR_RETURN(auto m, s->models->Get(std::string(*ctx.PathParam("id"))));
  return http::JsonResponse(ToJson(m));
}

Result<Response> ListVariants(const ServicesPtr& s, const RequestContext& ctx) {
  const std::string id(*ctx.PathParam("id"));
  EP_ASSIGN_OR_RETURN(auto m, s->models->Get(id));
  EP_ASSIGN_OR_RETURN(auto variants, s->variants->ListForModel(m.id));
  bj::array out;
  for (const auto& v : variants) out.push_back(ToJson(v));
  return http::JsonResponse(bj::object{{"model_id", m.id}, {"variants", out}});
}

Result<Response> CreateDeployment(const ServicesPtr& s, const RequestContext& ctx) {
  EP_ASSIGN_OR_RETURN(bj::object body, json::ParseObject(ctx.body));
  for (const auto& kv : body) {
    if (kv.key() != "model" && kv.key() != "selector") {
      return BadRequest("invalid_field", "unknown key '" + std::string(kv.key()) + "'");
    }
  }
  EP_ASSIGN_OR_RETURN(std::string model, json::GetString(body, "model"));
  EP_ASSIGN_OR_RETURN(bj::object selector_json, json::GetObject(body, "selector"));
  EP_ASSIGN_OR_RETURN(Selector selector, SelectorFromJson(selector_json));
  EP_ASSIGN_OR_RETURN(auto result, s->deployments->Deploy(model, selector, Actor(ctx)));
  if (s->metrics) (void)s->metrics->Refresh(*s->db);
  return http::JsonResponse(ToJson(result), http::HttpStatus::created);
}

Result<Response> ListJobs(const ServicesPtr& s, const RequestContext& ctx) {
  jobs::JobFilter filter;
  if (auto state = ctx.QueryParam("state")) {
    EP_ASSIGN_OR_RETURN(auto st, jobs::ParseJobState(*state));
    filter.state = st;
  }
  if (auto kind = ctx.QueryParam("kind")) filter.kind = std::string(*kind);
  EP_ASSIGN_OR_RETURN(auto list, s->queue->List(filter));
  bj::array out;
  for (const auto& j : list) out.push_back(jobs::JobToJson(j));
  return http::JsonResponse(bj::object{{"jobs", out}});
}

Result<Response> GetJob(const ServicesPtr& s, const RequestContext& ctx) {
  EP_ASSIGN_OR_RETURN(auto job, s->queue->Get(*ctx.PathParam("id")));
  return http::JsonResponse(jobs::JobToJson(job));
}

Result<Response> CancelJob(const ServicesPtr& s, const RequestContext& ctx) {
  const std::string id(*ctx.PathParam("id"));
  // Audited like every operator change: a cancel with its row in the cancel's transaction, a
  // refused one (unknown, already finished) on its own.
  auto cancelled = s->queue->Cancel(id, [&](store::Connection& conn, const jobs::Job& j) {
    return Audit(conn, Actor(ctx), "job.cancel", id,
                 std::string("state=") + jobs::JobStateName(j.state));
  });
  if (!cancelled.ok()) {
    (void)s->db->WithTransaction([&](store::Connection& conn) -> Status {
      auto r = conn.Execute("audit_insert_failed",
                            "INSERT INTO audit_log (at, actor, action, target, outcome, detail) "
                            "VALUES (?, ?, 'job.cancel', ?, 'failed', ?)",
                            NowMs(), Actor(ctx), id, cancelled.error().ToString());
      if (!r.ok()) return r.error();
      return Ok();
    });
    return cancelled.error();
  }
  jobs::Job job = std::move(cancelled).value();
  // A queued build cancelled before it ran never reaches its handler: fail its variant here.
  if (job.kind == std::string(kBuildVariantJob) && job.state == jobs::JobState::kCancelled) {
    if (auto id = json::GetString(job.payload, "variant_id"); id.ok()) {
      (void)s->variants->MarkFailed(*id, "cancelled by an operator");
    }
  }
  return http::JsonResponse(jobs::JobToJson(job));
}

Result<Response> DeviceTelemetry(const ServicesPtr& s, const RequestContext& ctx) {
  const std::string id(*ctx.PathParam("id"));
  // The shared strict parser: "1e3" or "10abc" is invalid_parameter, not 1 or 10.
  EP_ASSIGN_OR_RETURN(http::PageRequest page, http::PageParams(ctx, 100, 1000));
  EP_ASSIGN_OR_RETURN(auto reports, s->telemetry->Recent(id, page.limit));
  EP_ASSIGN_OR_RETURN(auto count, s->telemetry->Count(id));
  EP_ASSIGN_OR_RETURN(auto desired, s->deployments->Desired(id));
  return http::JsonResponse(bj::object{
      {"device_id", id},
      {"total_reports", count},
      {"assigned_variant", desired.variant_id ? bj::value(*desired.variant_id) : bj::value(nullptr)},
      {"reports", reports}});
}

// The variant a device may fetch: ready, and of the model it is assigned.
Result<VariantRecord> DeliverableVariant(const ServicesPtr& s, const RequestContext& ctx,
                                         DesiredVariant* desired) {
  const std::string id(*ctx.PathParam("id"));
  auto v = s->variants->Get(id);
  if (!v.ok() || v->status != "ready") {
    return MakeError(ErrorKind::kNotFound, "variant_not_found", "no ready variant " + id);
  }
  EP_ASSIGN_OR_RETURN(*desired, s->deployments->Desired(ctx.principal.id));
  if (desired->variant_id != id) {
    // Devices may only fetch variants of the model they are assigned.
    EP_ASSIGN_OR_RETURN(auto lease, s->db->Acquire());
    EP_ASSIGN_OR_RETURN(auto q, lease->Query("assignment_model",
                                             "SELECT model_id FROM device_assignments "
                                             "WHERE device_id = ?",
                                             ctx.principal.id));
    EP_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row || q.Text(0) != v->model_id) {
      return MakeError(ErrorKind::kPermissionDenied, "variant_not_assigned",
                       "variant " + id + " is not of a model assigned to this device");
    }
  }
  return v;
}

Result<signing::SignedManifest> ManifestFor(const ServicesPtr& s, const VariantRecord& v,
                                            const DesiredVariant& desired) {
  if (desired.rollback && desired.variant_id == v.id) {
    // The device moves to a lower version: the server's signed permission to roll back.
    EP_ASSIGN_OR_RETURN(wire::VariantManifest m, wire::ParseManifest(v.manifest));
    m.rollback = true;
    return s->keyring->Sign(m);
  }
  signing::SignedManifest out;
  out.manifest_json = v.manifest;
  out.signature = v.signature;
  out.signature_base64 = crypto::Base64Encode(v.signature);
  out.key_id = v.key_id;
  return out;
}

Result<Response> GetManifest(const ServicesPtr& s, const RequestContext& ctx) {
  DesiredVariant desired;
  EP_ASSIGN_OR_RETURN(auto v, DeliverableVariant(s, ctx, &desired));
  EP_ASSIGN_OR_RETURN(auto m, ManifestFor(s, v, desired));
  Response r = http::TextResponse(m.manifest_json, "application/json");
  r.WithHeader("X-Signature", m.signature_base64);
  r.WithHeader("X-Edgeprune-Key-Id", m.key_id);
  return r;
}

Result<Response> GetSignature(const ServicesPtr& s, const RequestContext& ctx) {
  DesiredVariant desired;
  EP_ASSIGN_OR_RETURN(auto v, DeliverableVariant(s, ctx, &desired));
  EP_ASSIGN_OR_RETURN(auto m, ManifestFor(s, v, desired));
  return http::TextResponse(m.signature, "application/octet-stream");
}

Result<Response> GetPayload(const ServicesPtr& s, const RequestContext& ctx) {
  DesiredVariant desired;
  EP_ASSIGN_OR_RETURN(auto v, DeliverableVariant(s, ctx, &desired));
  EP_ASSIGN_OR_RETURN(std::string path, s->blobs->PathOf(v.blob_sha256));
  // The blob's digest is a strong validator: a resumed download (If-Range) of a variant whose
  // payload changed restarts instead of splicing two files together.
  return http::FileResponse(ctx, path, "application/octet-stream", "\"" + v.blob_sha256 + "\"");
}

Result<Response> PostEvent(const ServicesPtr& s, const RequestContext& ctx) {
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
  auto done = s->db->WithTransaction([&](store::Connection& conn) -> Status {
    EP_RETURN_IF_ERROR(conn.Execute("variant_event_insert",
                                    "INSERT INTO variant_events (device_id, variant_id, at, "
                                    "event, reason) VALUES (?, ?, ?, ?, ?)",
                                    ctx.principal.id, variant_id, NowMs(), event, why));
    return Audit(conn, Actor(ctx), "variant." + event, variant_id, why);
  });
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
Result<std::set<std::string>> AssignedVariants(const ServicesPtr& s, const std::string& device_id,
                                               const std::vector<wire::TelemetryReport>& reports) {
  std::set<std::string> reported;
  for (const auto& r : reports) reported.insert(r.variant_id);
  std::set<std::string> known;
  EP_ASSIGN_OR_RETURN(auto lease, s->db->Acquire());
  for (const auto& id : reported) {
    EP_ASSIGN_OR_RETURN(auto q, lease->Query("telemetry_variant_assigned",
                                             "SELECT 1 FROM variants v JOIN device_assignments a "
                                             "ON a.model_id = v.model_id "
                                             "WHERE a.device_id = ? AND v.id = ?",
                                             device_id, id));
    EP_ASSIGN_OR_RETURN(bool row, q.Step());
    if (row) known.insert(id);
  }
  return known;
}

Result<Response> PostTelemetry(const ServicesPtr& s, const RequestContext& ctx) {
  EP_ASSIGN_OR_RETURN(wire::TelemetryBatch batch, wire::ParseTelemetryBatch(ctx.body));
  EP_ASSIGN_OR_RETURN(IngestResult result, s->telemetry->Ingest(ctx.principal.id, batch));
  if (!result.stored.empty()) {
    if (s->metrics) {
      // The reports are committed: a failed lookup costs their series, never the ack.
      auto known = AssignedVariants(s, ctx.principal.id, result.stored);
      s->metrics->Observe(ctx.principal.id, result.stored, known.ok() ? *known : std::set<std::string>{});
    }
    if (s->loop) {
      // The reports are committed whatever the loop decides: its failure must not lose the ack.
      auto moved = s->loop->OnReports(ctx.principal.id, result.stored);
      if (!moved.ok()) {
        log::Get("variants")->error("closed loop for {}: {}", ctx.principal.id,
                                    moved.error().ToString());
      }
    }
  }
  return http::JsonResponse(wire::ToJson(wire::TelemetryAck{result.acked_seq}));
}

Route Make(Verb verb, std::string pattern, http::Auth auth, const ServicesPtr& s,
           Result<Response> (*fn)(const ServicesPtr&, const RequestContext&)) {
  Route r;
  r.method = verb;
  r.pattern = std::move(pattern);
  r.auth = auth;
  r.handler = [s, fn](const RequestContext& ctx) { return fn(s, ctx); };
  return r;
}

}  // namespace

std::vector<Route> VariantRoutes(ServicesPtr s) {
  using http::Auth;
  std::vector<Route> routes;
  Route upload = Make(Verb::post, "/api/v1/models", Auth::kOperator, s, UploadModel);
  upload.blocking = true;  // waits for a model worker
  // The one route whose bodies are big: a master is uploaded in one request. Every other route
  // keeps the server's small default (limits.body_bytes).
  upload.max_body_bytes = static_cast<std::uint64_t>(s->max_model_bytes);
  routes.push_back(std::move(upload));
  routes.push_back(Make(Verb::get, "/api/v1/models", Auth::kViewer, s,
                        [](const ServicesPtr& p, const RequestContext&) { return ListModels(p); }));
  routes.push_back(Make(Verb::get, "/api/v1/models/{id}", Auth::kViewer, s, GetModel));
  routes.push_back(Make(Verb::get, "/api/v1/models/{id}/variants", Auth::kViewer, s, ListVariants));
  routes.push_back(Make(Verb::post, "/api/v1/deployments", Auth::kOperator, s, CreateDeployment));
  routes.push_back(Make(Verb::get, "/api/v1/deployments", Auth::kViewer, s,
                        [](const ServicesPtr& p, const RequestContext&) -> Result<Response> {
                          EP_ASSIGN_OR_RETURN(auto list, p->deployments->List());
                          return http::JsonResponse(bj::object{{"deployments", list}});
                        }));
  routes.push_back(Make(Verb::get, "/api/v1/deployments/{id}", Auth::kViewer, s,
                        [](const ServicesPtr& p, const RequestContext& ctx) -> Result<Response> {
                          EP_ASSIGN_OR_RETURN(auto d,
                                              p->deployments->Get(std::string(*ctx.PathParam("id"))));
                          return http::JsonResponse(d);
                        }));
  routes.push_back(Make(Verb::get, "/api/v1/jobs", Auth::kViewer, s, ListJobs));
  routes.push_back(Make(Verb::get, "/api/v1/jobs/{id}", Auth::kViewer, s, GetJob));
  routes.push_back(Make(Verb::delete_, "/api/v1/jobs/{id}", Auth::kOperator, s, CancelJob));
  routes.push_back(
      Make(Verb::get, "/api/v1/devices/{id}/telemetry", Auth::kViewer, s, DeviceTelemetry));
  routes.push_back(
      Make(Verb::get, "/agent/v1/variants/{id}/manifest", Auth::kDevice, s, GetManifest));
  routes.push_back(
      Make(Verb::get, "/agent/v1/variants/{id}/signature", Auth::kDevice, s, GetSignature));
  routes.push_back(Make(Verb::get, "/agent/v1/variants/{id}/payload", Auth::kDevice, s, GetPayload));
  routes.push_back(Make(Verb::post, "/agent/v1/variants/{id}/events", Auth::kDevice, s, PostEvent));
  routes.push_back(Make(Verb::post, "/agent/v1/telemetry", Auth::kDevice, s, PostTelemetry));
  return routes;
}

}  // namespace edgeprune::variants
