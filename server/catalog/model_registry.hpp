#pragma once
// Master models: the metadata row in SQLite (table `models`) and the TorchScript file in the blob
// store. Register() is called only after the file was validated (validate_master.hpp).
//
// Thread-safety: thread-safe (each call borrows its own pooled connection).

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <boost/json/object.hpp>

#include "edgeprune/common/result.hpp"
#include "server/store/database.hpp"
#include "server/catalog/model_cost.hpp"

namespace edgeprune::catalog {

struct ModelRecord {
  std::string id;  // "mdl-<hex>"
  std::string name;
  std::string dataset;  // "fashion-mnist", "synthetic:CxHxW:K" or an operator's data set id (ds-…)
  std::vector<std::int64_t> input_shape;  // with batch 1: [1, C, H, W], or [1] + a data set's sample shape
  std::vector<std::string> class_names;
  std::int64_t num_classes = 0;
  ModelCost cost;  // the master's
  std::string blob_sha256;
  std::int64_t size_bytes = 0;
  std::int64_t created_at = 0;  // epoch ms
  std::string created_by;
};

boost::json::object ToJson(const ModelRecord& m);

class ModelRegistry {
 public:
  explicit ModelRegistry(std::shared_ptr<store::Database> db) : db_(std::move(db)) {}

  // Assigns id and created_at, inserts the row and an audit entry in one transaction.
  Result<ModelRecord> Register(ModelRecord record);
  // "model_not_found" (kNotFound).
  Result<ModelRecord> Get(const std::string& id) const;
  // The same inside the caller's transaction (deploy/ reads a model's cost with its writes).
  static Result<ModelRecord> GetIn(store::Connection& conn, const std::string& id);
  Result<std::vector<ModelRecord>> List() const;
  // The blobs the masters live in, for the blob collector (the retention task).
  Result<std::vector<std::string>> ReferencedBlobs() const;

 private:
  std::shared_ptr<store::Database> db_;
};

// Helpers shared by the catalog.
std::string NewId(const std::string& prefix);  // prefix + 16 hex chars
std::string ShapeJson(const std::vector<std::int64_t>& shape);
Result<std::vector<std::int64_t>> ShapeFromJson(const std::string& text);

}  // namespace edgeprune::catalog
