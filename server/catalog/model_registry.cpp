#include "server/catalog/model_registry.hpp"

#include <chrono>

#include "edgeprune/common/clock.hpp"
#include "edgeprune/common/crypto.hpp"
#include "edgeprune/common/json.hpp"
#include "server/catalog/dataset_catalog.hpp"
#include "server/fleet/audit_log.hpp"
#include "server/store/retention.hpp"

namespace edgeprune::catalog {
namespace bj = boost::json;

std::string NewId(const std::string& prefix) {
  return prefix + crypto::Sha256Hex(crypto::RandomToken(16)).substr(0, 16);
}

std::string ShapeJson(const std::vector<std::int64_t>& shape) {
  bj::array a;
  for (auto d : shape) a.emplace_back(d);
  return json::Serialize(a);
}

Result<std::vector<std::int64_t>> ShapeFromJson(const std::string& text) {
  EP_ASSIGN_OR_RETURN(bj::value v, json::Parse(text));
  std::vector<std::int64_t> shape;
  if (!v.is_array()) {
    return MakeError(ErrorKind::kInternal, "invalid_shape", "stored shape is not an array");
  }
  for (const auto& d : v.as_array()) {
    if (!d.is_int64()) {
      return MakeError(ErrorKind::kInternal, "invalid_shape", "stored shape has a non-integer");
    }
    shape.push_back(d.as_int64());
  }
  return shape;
}

bj::object ToJson(const ModelRecord& m) {
  bj::array shape, classes;
  for (auto d : m.input_shape) shape.emplace_back(d);
  for (const auto& c : m.class_names) classes.emplace_back(c);
  return bj::object{{"id", m.id},
                    {"name", m.name},
                    {"dataset", m.dataset},
                    {"input_shape", shape},
                    {"class_names", classes},
                    {"num_classes", m.num_classes},
                    {"parameters", m.cost.parameters},
                    {"macs", m.cost.macs},
                    {"sha256", m.blob_sha256},
                    {"size_bytes", m.size_bytes},
                    {"created_at", m.created_at},
                    {"created_by", m.created_by}};
}

namespace {

constexpr const char* kColumns =
    "id, name, dataset, input_shape, class_names, num_classes, parameters, blob_sha256, "
    "size_bytes, created_at, created_by, macs, activation_bytes";

Result<ModelRecord> Read(store::Statement& s) {
  ModelRecord m;
  m.id = s.Text(0);
  m.name = s.Text(1);
  m.dataset = s.Text(2);
  EP_ASSIGN_OR_RETURN(m.input_shape, ShapeFromJson(s.Text(3)));
  EP_ASSIGN_OR_RETURN(bj::value classes, json::Parse(s.Text(4)));
  if (!classes.is_array()) {
    return MakeError(ErrorKind::kInternal, "invalid_row", "model " + m.id + ": bad class_names");
  }
  for (const auto& c : classes.as_array()) {
    if (c.is_string()) m.class_names.emplace_back(c.as_string());
  }
  m.num_classes = s.Int64(5);
  m.cost.parameters = s.Int64(6);
  m.blob_sha256 = s.Text(7);
  m.size_bytes = s.Int64(8);
  m.created_at = s.Int64(9);
  m.created_by = s.Text(10);
  m.cost.macs = s.Int64(11);
  m.cost.activation_bytes = s.Int64(12);
  return m;
}

}  // namespace

Result<ModelRecord> ModelRegistry::Register(ModelRecord record) {
  record.id = NewId("mdl-");
  record.created_at = NowMs();
  bj::array classes;
  for (const auto& c : record.class_names) classes.emplace_back(c);
  const std::string class_json = json::Serialize(classes);
  auto done = db_->WithTransaction([&](store::Connection& conn) -> Status {
    // An operator's data set must still be there (a DELETE may have raced the upload); it cannot
    // go away once this row names it.
    if (IsDatasetId(record.dataset)) {
      auto d = DatasetCatalog::GetIn(conn, record.dataset);
      if (!d.ok()) {
        return d.error().kind == ErrorKind::kNotFound
                   ? MakeError(ErrorKind::kInvalidArgument, "invalid_dataset",
                               "there is no data set " + record.dataset)
                   : d.error();
      }
    }
    auto r = conn.Execute(
        "model_insert",
        "INSERT INTO models (id, name, dataset, input_shape, class_names, num_classes, "
        "parameters, blob_sha256, size_bytes, created_at, created_by, macs, activation_bytes) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        record.id, record.name, record.dataset, ShapeJson(record.input_shape), class_json,
        record.num_classes, record.cost.parameters, record.blob_sha256, record.size_bytes,
        record.created_at, record.created_by, record.cost.macs, record.cost.activation_bytes);
    if (!r.ok()) return r.error();
    return fleet::AuditLog::RecordIn(conn, record.created_by, "model.upload", record.id,
                 json::Serialize(bj::object{{"name", record.name}, {"sha256", record.blob_sha256}}));
  });
  if (!done.ok()) return done.error();
  return record;
}

Result<ModelRecord> ModelRegistry::Get(const std::string& id) const {
  EP_ASSIGN_OR_RETURN(auto lease, db_->Acquire());
  return GetIn(*lease, id);
}

Result<ModelRecord> ModelRegistry::GetIn(store::Connection& conn, const std::string& id) {
  EP_ASSIGN_OR_RETURN(auto s, conn.Query("model_by_id",
                                           std::string("SELECT ") + kColumns +
                                               " FROM models WHERE id = ?",
                                           id));
  EP_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return MakeError(ErrorKind::kNotFound, "model_not_found", "no model " + id);
  return Read(s);
}

Result<std::vector<ModelRecord>> ModelRegistry::List() const {
  EP_ASSIGN_OR_RETURN(auto lease, db_->Acquire());
  EP_ASSIGN_OR_RETURN(auto s, lease->Query("model_list", std::string("SELECT ") + kColumns +
                                                             " FROM models ORDER BY created_at"));
  std::vector<ModelRecord> out;
  while (true) {
    EP_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    EP_ASSIGN_OR_RETURN(auto m, Read(s));
    out.push_back(std::move(m));
  }
  return out;
}

Result<std::vector<std::string>> ModelRegistry::ReferencedBlobs() const {
  return store::ReadStrings(*db_, "model_blobs", "SELECT DISTINCT blob_sha256 FROM models");
}

}  // namespace edgeprune::catalog
