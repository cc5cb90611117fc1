#pragma once
// The variants table: one row per (model, ladder bucket), from 'building' to 'ready' (payload
// stored, manifest signed) or 'failed' (with the reason). Versions come from one server-wide
// counter so they only increase.
//
// Thread-safety: thread-safe; the *In(conn, …) forms run inside the caller's transaction.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/json/object.hpp>

#include "edgeprune/common/budget.hpp"
#include "edgeprune/common/result.hpp"
#include "server/store/database.hpp"
#include "server/catalog/model_cost.hpp"

namespace edgeprune::catalog {

struct VariantRecord {
  std::string id;  // "var-<hex>"
  std::string model_id;
  std::string bucket;
  std::int64_t version = 0;
  std::string status;  // "building", "ready", "failed"
  Budget budget;       // what it was built for
  std::string job_id;
  std::string blob_sha256;
  std::int64_t size_bytes = 0;
  ModelCost cost;
  double accuracy = 0.0;
  double accuracy_floor = 0.0;
  std::string manifest;   // the exact signed bytes
  std::string signature;  // raw Ed25519 signature
  std::string key_id;
  std::string probe_sha256;
  std::string error;
  std::int64_t created_at = 0;
  std::int64_t ready_at = 0;
};

// The API view (no manifest bytes).
boost::json::object ToJson(const VariantRecord& v);

// What a finished build hands back to be recorded.
struct ReadyVariant {
  std::string blob_sha256;
  std::int64_t size_bytes = 0;
  ModelCost cost;
  double accuracy = 0.0;
  double accuracy_floor = 0.0;
  std::string manifest;
  std::string signature;
  std::string key_id;
  std::string probe_sha256;
};

class VariantRepository {
 public:
  explicit VariantRepository(std::shared_ptr<store::Database> db) : db_(std::move(db)) {}

  // The variant of (model, bucket): the existing one, or a new 'building' row with the next
  // version. A 'failed' one is restarted as 'building' with a new version only when
  // retry_failed (an operator's deployment), so a failure cannot loop. `created` tells which.
  static Result<VariantRecord> EnsureIn(store::Connection& conn, const std::string& model_id,
                                        const std::string& bucket, const Budget& budget,
                                        bool* created, bool retry_failed = true);
  static Result<std::vector<VariantRecord>> ListIn(store::Connection& conn,
                                                   const std::string& model_id);
  static Result<VariantRecord> GetIn(store::Connection& conn, const std::string& id);

  Result<VariantRecord> Get(const std::string& id) const;
  Result<std::vector<VariantRecord>> ListForModel(const std::string& model_id) const;
  // Variants still building (to resubmit their jobs after a restart).
  Result<std::vector<VariantRecord>> ListBuilding() const;
  // Variants per (model, status), for the fleet gauges.
  struct Count {
    std::string model_id;
    std::string status;
    std::int64_t n = 0;
  };
  Result<std::vector<Count>> CountByStatus() const;
  Status SetJob(const std::string& id, const std::string& job_id);
  Status MarkReady(const std::string& id, const ReadyVariant& ready);
  // `accuracy`: what the build measured when it failed on it (the accuracy floor).
  Status MarkFailed(const std::string& id, const std::string& reason,
                    std::optional<double> accuracy = std::nullopt);
  // Every variant file and labeled probe set blob, for the blob collector (the retention task).
  Result<std::vector<std::string>> ReferencedBlobs() const;

 private:
  std::shared_ptr<store::Database> db_;
};


}  // namespace edgeprune::catalog
