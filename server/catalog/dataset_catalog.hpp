#pragma once
// Operators' data sets: the uploaded file in the blob store (content-addressed: the same bytes
// are one data set, id "ds-" + 16 hex chars of their SHA-256), the validator's summary in SQLite
// (table `datasets`). Nothing is stored for a file the validator refuses. A data set a model
// names (models.dataset) cannot be removed (dataset_in_use, 409).
//
// Thread-safety: thread-safe (each call borrows its own pooled connection).

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <boost/json/object.hpp>

#include "edgeprune/common/result.hpp"
#include "edgeprune/common/wire/probe_file.hpp"
#include "server/datasets/dataset_info.hpp"
#include "server/datasets/validator.hpp"
#include "server/store/blob_store.hpp"
#include "server/store/database.hpp"

namespace edgeprune::catalog {

struct DatasetRecord {
  std::string id;  // "ds-<16 hex>"
  std::string name;
  std::string sha256;  // of the uploaded file
  std::int64_t size_bytes = 0;
  datasets::DatasetInfo info;
  std::int64_t created_at = 0;  // epoch ms
  std::string created_by;
};

boost::json::object ToJson(const DatasetRecord& d);

// True for ids of this catalog ("ds-" + 16 lower-case hex); built-ins (fashion-mnist,
// synthetic:…) are not.
bool IsDatasetId(const std::string& id);

class DatasetCatalog {
 public:
  DatasetCatalog(std::shared_ptr<store::Database> db, std::shared_ptr<store::BlobStore> blobs,
                 datasets::ValidationLimits limits)
      : db_(std::move(db)), blobs_(std::move(blobs)), limits_(limits) {}

  struct Ingested {
    DatasetRecord record;
    bool created = false;  // false: these bytes were already a data set
  };
  // Validates the file (the validator's codes), stores it and registers it with an audit entry
  // (dataset.upload) in one transaction. The file is the caller's upload spool: on success it has
  // usually been moved into the blob store (BlobStore::Adopt), so the caller must not use it
  // again; removing whatever is left at path stays the caller's job.
  Result<Ingested> Ingest(const std::string& path, const std::string& name,
                          const std::string& actor);
  // "dataset_not_found" (kNotFound).
  Result<DatasetRecord> Get(const std::string& id) const;
  static Result<DatasetRecord> GetIn(store::Connection& conn, const std::string& id);
  Result<std::vector<DatasetRecord>> List() const;
  // A probe set of `samples` test samples drawn from the stored file (datasets/probe_sampler.hpp),
  // read under this catalog's validation limits.
  Result<wire::ProbeFile> SampleProbe(const DatasetRecord& d, std::int64_t samples) const;
  // Removes the row (audited: dataset.delete) and then the file. "dataset_in_use" (kConflict)
  // while a model names it.
  Result<DatasetRecord> Remove(const std::string& id, const std::string& actor);
  // Where the uploaded file lives (for a model worker to read).
  Result<std::string> PathOf(const DatasetRecord& d) const { return blobs_->PathOf(d.sha256); }
  // Every data set's file, for the blob collector (the retention task).
  Result<std::vector<std::string>> ReferencedBlobs() const;

 private:
  std::shared_ptr<store::Database> db_;
  std::shared_ptr<store::BlobStore> blobs_;
  datasets::ValidationLimits limits_;
};

}  // namespace edgeprune::catalog
