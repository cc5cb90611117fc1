#include "server/api/loop_routes.hpp"

#include <filesystem>

#include "common/http/pagination.hpp"
#include "edgeprune/common/crypto.hpp"
#include "edgeprune/common/fs.hpp"
#include "edgeprune/common/json.hpp"
#include "edgeprune/common/log.hpp"
#include "server/api/route_table.hpp"

namespace edgeprune::api {
namespace {

namespace bj = boost::json;

constexpr std::size_t kMaxNameLength = 128;

Result<Response> StoreDataset(const DatasetRouteServices& s, const RequestContext& ctx) {
  auto name = ctx.QueryParam("name");
  if (!name || name->empty()) return BadRequest("missing_parameter", "query parameter 'name' is required");
  if (name->size() > kMaxNameLength) {
    return BadRequest("invalid_parameter", "query parameter 'name' is longer than 128 characters");
  }
  if (ctx.BodySize() == 0) {
    return BadRequest("empty_body", "the request body must be the data set file (.npz, zip or tar)");
  }
  if (ctx.BodySize() > static_cast<std::uint64_t>(s.max_dataset_bytes)) {
    return MakeError(ErrorKind::kPayloadTooLarge, "dataset_too_large",
                     "the data set is " + std::to_string(ctx.BodySize()) + " bytes; the limit is " +
                         std::to_string(s.max_dataset_bytes));
  }
  EP_RETURN_IF_ERROR(fs::EnsureDir(s.upload_dir, 0700));
  const std::string temp = s.upload_dir + "/dataset-" + crypto::RandomToken(12);
  struct Remove {
    std::string path;
    ~Remove() {
      std::error_code ec;
      std::filesystem::remove(path, ec);
    }
  } remove{temp};
  // The session streamed the body to a private file (the route's spool_dir); a body in memory
  // (a router called directly) is written out first.
  if (!ctx.spooled_body) EP_RETURN_IF_ERROR(fs::WriteFileAtomic(temp, ctx.body, 0600));
  const std::string& path = ctx.spooled_body ? ctx.spooled_body->path : temp;
  EP_ASSIGN_OR_RETURN(auto ingested, s.datasets->Ingest(path, std::string(*name), Actor(ctx)));
  const auto& d = ingested.record;
  if (ingested.created) {
    log::Get("variants")->info("data set {} '{}' uploaded: {} train / {} test samples, {} classes",
                               d.id, d.name, d.info.train.count, d.info.test.count,
                               d.info.num_classes());
  }
  return http::JsonResponse(catalog::ToJson(d), ingested.created ? http::HttpStatus::created
                                                                 : http::HttpStatus::ok);
}

// Every attempt is audited: an accepted upload in the transaction that stores it
// (dataset.upload, ok), a refused one by AuditRefusedUpload.
Result<Response> UploadDataset(const DatasetRouteServices& s, const RequestContext& ctx) {
  return AuditRefusedUpload(s.audit.get(), ctx, "dataset.upload", StoreDataset(s, ctx));
}

Result<Response> ListDatasets(const DatasetRouteServices& s, const RequestContext&) {
  EP_ASSIGN_OR_RETURN(auto all, s.datasets->List());
  bj::array out;
  for (const auto& d : all) out.push_back(catalog::ToJson(d));
  return http::ListResponse(std::move(out));
}

Result<Response> GetDataset(const DatasetRouteServices& s, const RequestContext& ctx) {
  EP_ASSIGN_OR_RETURN(auto d, s.datasets->Get(std::string(*ctx.PathParam("id"))));
  return http::JsonResponse(catalog::ToJson(d));
}

Result<Response> DeleteDataset(const DatasetRouteServices& s, const RequestContext& ctx) {
  EP_ASSIGN_OR_RETURN(auto d, s.datasets->Remove(std::string(*ctx.PathParam("id")), Actor(ctx)));
  log::Get("variants")->info("data set {} '{}' removed by {}", d.id, d.name, Actor(ctx));
  return http::JsonResponse(bj::object{{"id", d.id}, {"deleted", true}});
}

}  // namespace

std::vector<http::Route> DatasetRoutes(const DatasetRouteServices& s) {
  // clang-format off
  std::vector<http::Route> routes{
      {Verb::post,   "/api/v1/datasets",      Bind<UploadDataset>(s), Auth::kOperator, "datasets_upload"},
      {Verb::get,    "/api/v1/datasets",      Bind<ListDatasets>(s),  Auth::kViewer,   "datasets_list"},
      {Verb::get,    "/api/v1/datasets/{id}", Bind<GetDataset>(s),    Auth::kViewer,   "datasets_get"},
      {Verb::delete_, "/api/v1/datasets/{id}", Bind<DeleteDataset>(s), Auth::kOperator, "datasets_delete"},
  };
  // clang-format on
  // The upload reads and validates the whole file (seconds for a large one): the blocking pool.
  // Its body streams to a file in upload_dir and is refused at datasets.max_upload_bytes, from
  // the Content-Length before a byte of it is read.
  routes[0].blocking = true;
  routes[0].max_body_bytes = static_cast<std::uint64_t>(s.max_dataset_bytes);
  routes[0].spool_dir = s.upload_dir;
  return routes;
}

}  // namespace edgeprune::api
