#include "server/api/loop_routes.hpp"

#include <charconv>
#include <filesystem>
#include <regex>
#include <sstream>

#include "common/http/pagination.hpp"
#include "edgeprune/common/crypto.hpp"
#include "edgeprune/common/fs.hpp"
#include "edgeprune/common/json.hpp"
#include "edgeprune/common/log.hpp"
#include "edgeprune/common/shape.hpp"
#include "edgeprune/common/wire/fields.hpp"
#include "edgeprune/common/wire/manifest.hpp"
#include "server/api/route_table.hpp"

namespace edgeprune::api {
namespace {

namespace bj = boost::json;

constexpr std::size_t kMaxNameLength = 128;
constexpr std::size_t kMaxClasses = 10000;

std::vector<std::string> SplitList(std::string_view text) {
  std::vector<std::string> out;
  std::string item;
  std::istringstream in{std::string(text)};
  while (std::getline(in, item, ',')) out.push_back(item);
  return out;
}

// "1,28,28", "1x28x28" or with the batch: "1,1,28,28" (the one shape parser,
// edgeprune::ParseShape). Returns the shape with batch 1; the API's code is invalid_input_shape.
Result<std::vector<std::int64_t>> ParseInputShape(std::string_view text) {
  auto parsed = ParseShape(text);
  if (!parsed.ok()) return BadRequest("invalid_input_shape", "input_" + parsed.error().message);
  std::vector<std::int64_t> shape = std::move(parsed).value();
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
                    "query parameter 'dataset' must be a data set id (ds-…), fashion-mnist or "
                    "synthetic:CxHxW:K");
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

// The shape and class names of a model trained on an operator's data set come from the data set;
// query parameters may repeat them but not contradict them.
Status TakeFromDataset(const catalog::DatasetRecord& d, const RequestContext& ctx,
                       std::vector<std::int64_t>& shape, std::vector<std::string>& classes) {
  shape = {1};
  shape.insert(shape.end(), d.info.sample_shape.begin(), d.info.sample_shape.end());
  if (auto text = ctx.QueryParam("input_shape"); text && !text->empty()) {
    auto parsed = ParseShape(*text);
    if (!parsed.ok()) return BadRequest("invalid_input_shape", "input_" + parsed.error().message);
    std::vector<std::int64_t> given = std::move(parsed).value();
    if (given.size() == shape.size() - 1) given.insert(given.begin(), 1);
    if (given != shape) {
      return BadRequest("invalid_input_shape", "input_shape '" + std::string(*text) +
                                                   "' is not the shape of data set " + d.id +
                                                   "'s samples");
    }
  }
  classes = d.info.class_names;
  if (auto c = ctx.QueryParam("class_names"); c && !c->empty() && SplitList(*c) != classes) {
    return BadRequest("invalid_parameter", "class_names differ from data set " + d.id + "'s");
  }
  return Ok();
}

Result<Response> StoreUpload(const ModelRouteServices& s, const RequestContext& ctx) {
  EP_ASSIGN_OR_RETURN(std::string name, RequiredQuery(ctx, "name"));
  EP_ASSIGN_OR_RETURN(std::string dataset, RequiredQuery(ctx, "dataset"));
  std::vector<std::int64_t> shape;
  std::vector<std::string> classes;
  if (catalog::IsDatasetId(dataset)) {
    auto d = s.datasets->Get(dataset);
    if (!d.ok() && d.error().kind == ErrorKind::kNotFound) {
      return BadRequest("invalid_dataset", "there is no data set " + dataset);
    }
    if (!d.ok()) return d.error();
    EP_RETURN_IF_ERROR(TakeFromDataset(*d, ctx, shape, classes));
  } else {
    EP_RETURN_IF_ERROR(ValidateDataset(dataset));
    auto shape_text = ctx.QueryParam("input_shape");
    if (!shape_text) return BadRequest("missing_parameter", "query parameter 'input_shape' is required");
    EP_ASSIGN_OR_RETURN(shape, ParseInputShape(*shape_text));
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
  }
  if (ctx.BodySize() == 0) return BadRequest("empty_body", "the request body must be the TorchScript file");
  if (ctx.BodySize() > static_cast<std::uint64_t>(s.max_model_bytes)) {
    return MakeError(ErrorKind::kPayloadTooLarge, "model_too_large",
                     "the model is " + std::to_string(ctx.BodySize()) + " bytes; the limit is " +
                         std::to_string(s.max_model_bytes));
  }

  // Validate from a private temp file; only a model that loads and runs reaches the blob store.
  EP_RETURN_IF_ERROR(fs::EnsureDir(s.upload_dir, 0700));
  const std::string temp = s.upload_dir + "/upload-" + crypto::RandomToken(12) + ".pt";
  struct Remove {
    std::string path;
    ~Remove() {
      std::error_code ec;
      std::filesystem::remove(path, ec);
    }
  } remove{temp};
  // The session streamed the body to a private file in upload_dir (the route's spool_dir);
  // a body in memory (a router called directly) is written out first.
  if (!ctx.spooled_body) EP_RETURN_IF_ERROR(fs::WriteFileAtomic(temp, ctx.body, 0600));
  const std::string& model_path = ctx.spooled_body ? ctx.spooled_body->path : temp;
  // In a sandboxed model worker; its errors name what is wrong with the model (forbidden_operator,
  // invalid_model, model_timeout, model_resource_limit, model_crashed) without LibTorch's text.
  EP_ASSIGN_OR_RETURN(catalog::MasterFacts facts,
                      s.validate_master(model_path, shape, static_cast<std::int64_t>(classes.size())));
  if (classes.empty()) {
    for (std::int64_t i = 0; i < facts.num_classes; ++i) classes.push_back(std::to_string(i));
  }
  EP_ASSIGN_OR_RETURN(store::BlobRef ref, s.blobs->PutFile(model_path));

  catalog::ModelRecord record;
  record.name = name;
  record.dataset = dataset;
  record.input_shape = shape;
  record.class_names = classes;
  record.num_classes = facts.num_classes;
  record.cost = catalog::ModelCost{facts.parameters, facts.macs, facts.activation_bytes};
  record.blob_sha256 = ref.sha256;
  record.size_bytes = static_cast<std::int64_t>(ref.size);
  record.created_by = Actor(ctx);
  EP_ASSIGN_OR_RETURN(catalog::ModelRecord stored, s.models->Register(record));
  log::Get("variants")->info("model {} '{}' uploaded: {} parameters, {} MACs", stored.id,
                             stored.name, stored.cost.parameters, stored.cost.macs);
  return http::JsonResponse(ToJson(stored), http::HttpStatus::created);
}

// Every attempt is audited: an accepted upload in the transaction that stores it (model.upload,
// ok), a refused one by AuditRefusedUpload.
Result<Response> UploadModel(const ModelRouteServices& s, const RequestContext& ctx) {
  return AuditRefusedUpload(s.audit.get(), ctx, "model.upload", StoreUpload(s, ctx));
}

Result<Response> ListModels(const ModelRouteServices& s, const RequestContext&) {
  EP_ASSIGN_OR_RETURN(auto models, s.models->List());
  bj::array out;
  for (const auto& m : models) out.push_back(ToJson(m));
  return http::ListResponse(std::move(out));
}

Result<Response> GetModel(const ModelRouteServices& s, const RequestContext& ctx) {
  EP_ASSIGN_OR_RETURN(auto m, s.models->Get(std::string(*ctx.PathParam("id"))));
  return http::JsonResponse(ToJson(m));
}

Result<Response> ListVariants(const ModelRouteServices& s, const RequestContext& ctx) {
  const std::string id(*ctx.PathParam("id"));
  EP_ASSIGN_OR_RETURN(auto m, s.models->Get(id));
  EP_ASSIGN_OR_RETURN(auto variants, s.variants->ListForModel(m.id));
  bj::array out;
  for (const auto& v : variants) out.push_back(ToJson(v));
  return http::ListResponse(std::move(out));
}

}  // namespace

Result<http::Response> AuditRefusedUpload(const fleet::AuditLog* audit,
                                          const http::RequestContext& ctx, const char* action,
                                          Result<http::Response> outcome) {
  if (outcome.ok() || !audit) return outcome;
  const auto name = ctx.QueryParam("name");
  const auto& e = outcome.error();
  bj::object detail{{"code", e.code}, {"reason", e.message}, {"bytes", ctx.BodySize()},
                    {"request_id", ctx.request_id}};
  if (name) detail["name"] = std::string(name->substr(0, kMaxNameLength));
  if (auto st = audit->Record(Actor(ctx), action, "", fleet::Outcome::kFailed,
                                json::Serialize(detail));
      !st.ok()) {
    log::Get("variants")->error("auditing a refused {}: {}", action, st.error().ToString());
  }
  return outcome;
}

std::vector<http::Route> ModelRoutes(const ModelRouteServices& s) {
  // clang-format off
  std::vector<http::Route> routes{
      {Verb::post, "/api/v1/models",                Bind<UploadModel>(s),  Auth::kOperator, "models_upload"},
      {Verb::get,  "/api/v1/models",                Bind<ListModels>(s),   Auth::kViewer,   "models_list"},
      {Verb::get,  "/api/v1/models/{id}",           Bind<GetModel>(s),     Auth::kViewer,   "models_get"},
      {Verb::get,  "/api/v1/models/{id}/variants",  Bind<ListVariants>(s), Auth::kViewer,   "models_variants"},
  };
  // clang-format on
  // The upload waits for a model worker, so it runs on the blocking pool, and it is the one route
  // whose bodies are big (a master in one request); every other route keeps the server's small
  // default (limits.body_bytes).
  routes[0].blocking = true;
  routes[0].max_body_bytes = static_cast<std::uint64_t>(s.max_model_bytes);
  routes[0].spool_dir = s.upload_dir;  // streamed to a temp file there, never held in memory
  return routes;
}

}  // namespace edgeprune::api
