#include "server/catalog/variant_repository.hpp"

#include "edgeprune/common/clock.hpp"
#include "edgeprune/common/json.hpp"
#include "edgeprune/common/wire/budget.hpp"
#include "server/catalog/model_registry.hpp"
#include "server/fleet/audit_log.hpp"
#include "server/store/retention.hpp"

namespace edgeprune::catalog {
namespace bj = boost::json;
namespace {

constexpr const char* kSelect =
    "SELECT id, model_id, bucket, version, status, budget, job_id, blob_sha256, size_bytes, "
    "parameters, macs, activation_bytes, accuracy, accuracy_floor, manifest, signature, key_id, "
    "probe_sha256, error, created_at, ready_at FROM variants ";

Result<VariantRecord> Read(store::Statement& s) {
  VariantRecord v;
  v.id = s.Text(0);
  v.model_id = s.Text(1);
  v.bucket = s.Text(2);
  v.version = s.Int64(3);
  v.status = s.Text(4);
  EP_ASSIGN_OR_RETURN(bj::object budget, json::ParseObject(s.Text(5)));
  EP_ASSIGN_OR_RETURN(v.budget, wire::BudgetFromJson(budget));
  v.job_id = s.Text(6);
  v.blob_sha256 = s.Text(7);
  v.size_bytes = s.Int64(8);
  v.cost.parameters = s.Int64(9);
  v.cost.macs = s.Int64(10);
  v.cost.activation_bytes = s.Int64(11);
  v.accuracy = s.Double(12);
  v.accuracy_floor = s.Double(13);
  v.manifest = s.BlobBytes(14);
  v.signature = s.BlobBytes(15);
  v.key_id = s.Text(16);
  v.probe_sha256 = s.Text(17);
  v.error = s.Text(18);
  v.created_at = s.Int64(19);
  v.ready_at = s.Int64(20);
  return v;
}

Result<std::vector<VariantRecord>> ReadAll(store::Statement& s) {
  std::vector<VariantRecord> out;
  while (true) {
    EP_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    EP_ASSIGN_OR_RETURN(auto v, Read(s));
    out.push_back(std::move(v));
  }
  return out;
}

Result<std::int64_t> NextVersion(store::Connection& conn) {
  EP_ASSIGN_OR_RETURN(auto s, conn.Query("variant_next_version",
                                         "SELECT COALESCE(MAX(version), 0) + 1 FROM variants"));
  EP_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return MakeError(ErrorKind::kInternal, "no_row", "variant_next_version: no row");
  return s.Int64(0);
}

}  // namespace

bj::object ToJson(const VariantRecord& v) {
  bj::object o{{"id", v.id},
               {"model_id", v.model_id},
               {"bucket", v.bucket},
               {"version", v.version},
               {"status", v.status},
               {"budget", wire::ToJson(v.budget)},
               {"job_id", v.job_id},
               {"created_at", v.created_at}};
  if (v.status == "ready") {
    o["sha256"] = v.blob_sha256;
    o["size_bytes"] = v.size_bytes;
    o["parameters"] = v.cost.parameters;
    o["macs"] = v.cost.macs;
    o["activation_bytes"] = v.cost.activation_bytes;
    o["accuracy"] = v.accuracy;
    o["accuracy_floor"] = v.accuracy_floor;
    o["key_id"] = v.key_id;
    o["ready_at"] = v.ready_at;
  }
  if (!v.error.empty()) o["error"] = v.error;
  // A build refused by the accuracy floor says what it measured.
  if (v.status == "failed" && v.accuracy > 0.0) o["accuracy"] = v.accuracy;
  return o;
}

Result<VariantRecord> VariantRepository::EnsureIn(store::Connection& conn,
                                                  const std::string& model_id,
                                                  const std::string& bucket, const Budget& budget,
                                                  bool* created, bool retry_failed) {
  *created = false;
  {
    EP_ASSIGN_OR_RETURN(auto s, conn.Query("variant_by_bucket",
                                           std::string(kSelect) +
                                               "WHERE model_id = ? AND bucket = ?",
                                           model_id, bucket));
    EP_ASSIGN_OR_RETURN(bool row, s.Step());
    if (row) {
      EP_ASSIGN_OR_RETURN(auto v, Read(s));
      if (v.status != "failed" || !retry_failed) return v;
    }
  }
  EP_ASSIGN_OR_RETURN(std::int64_t version, NextVersion(conn));
  const std::string budget_json = json::Serialize(wire::ToJson(budget));
  const std::int64_t now = NowMs();
  EP_ASSIGN_OR_RETURN(std::int64_t restarted,
                      conn.Execute("variant_restart",
                                   "UPDATE variants SET status = 'building', version = ?, "
                                   "budget = ?, job_id = '', error = '', created_at = ? "
                                   "WHERE model_id = ? AND bucket = ? AND status = 'failed'",
                                   version, budget_json, now, model_id, bucket));
  if (restarted == 0) {
    EP_RETURN_IF_ERROR(conn.Execute("variant_insert",
                                    "INSERT INTO variants (id, model_id, bucket, version, status, "
                                    "budget, created_at) VALUES (?, ?, ?, ?, 'building', ?, ?)",
                                    NewId("var-"), model_id, bucket, version, budget_json, now));
  }
  *created = true;
  EP_ASSIGN_OR_RETURN(auto s, conn.Query("variant_by_bucket",
                                         std::string(kSelect) + "WHERE model_id = ? AND bucket = ?",
                                         model_id, bucket));
  EP_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return MakeError(ErrorKind::kInternal, "no_row", "variant just written is missing");
  return Read(s);
}

Result<std::vector<VariantRecord>> VariantRepository::ListIn(store::Connection& conn,
                                                             const std::string& model_id) {
  EP_ASSIGN_OR_RETURN(auto s, conn.Query("variants_by_model",
                                         std::string(kSelect) +
                                             "WHERE model_id = ? ORDER BY version",
                                         model_id));
  return ReadAll(s);
}

Result<VariantRecord> VariantRepository::GetIn(store::Connection& conn, const std::string& id) {
  EP_ASSIGN_OR_RETURN(auto s,
                      conn.Query("variant_by_id", std::string(kSelect) + "WHERE id = ?", id));
  EP_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return MakeError(ErrorKind::kNotFound, "variant_not_found", "no variant " + id);
  return Read(s);
}

Result<VariantRecord> VariantRepository::Get(const std::string& id) const {
  EP_ASSIGN_OR_RETURN(auto lease, db_->Acquire());
  return GetIn(*lease, id);
}

Result<std::vector<VariantRecord>> VariantRepository::ListForModel(
    const std::string& model_id) const {
  EP_ASSIGN_OR_RETURN(auto lease, db_->Acquire());
  return ListIn(*lease, model_id);
}

Result<std::vector<VariantRecord>> VariantRepository::ListBuilding() const {
  EP_ASSIGN_OR_RETURN(auto lease, db_->Acquire());
  EP_ASSIGN_OR_RETURN(auto s, lease->Query("variants_building", std::string(kSelect) +
                                                                    "WHERE status = 'building' "
                                                                    "ORDER BY version"));
  return ReadAll(s);
}

Status VariantRepository::SetJob(const std::string& id, const std::string& job_id) {
  return db_->WithTransaction([&](store::Connection& conn) -> Status {
    EP_RETURN_IF_ERROR(
        conn.Execute("variant_set_job", "UPDATE variants SET job_id = ? WHERE id = ?", job_id, id));
    return Ok();
  });
}

Status VariantRepository::MarkReady(const std::string& id, const ReadyVariant& r) {
  return db_->WithTransaction([&](store::Connection& conn) -> Status {
    EP_ASSIGN_OR_RETURN(
        std::int64_t n,
        conn.Execute("variant_ready",
                     "UPDATE variants SET status = 'ready', blob_sha256 = ?, size_bytes = ?, "
                     "parameters = ?, macs = ?, activation_bytes = ?, accuracy = ?, "
                     "accuracy_floor = ?, manifest = ?, signature = ?, key_id = ?, "
                     "probe_sha256 = ?, error = '', ready_at = ? "
                     "WHERE id = ? AND status = 'building'",
                     r.blob_sha256, r.size_bytes, r.cost.parameters, r.cost.macs,
                     r.cost.activation_bytes, r.accuracy, r.accuracy_floor,
                     store::Blob{r.manifest}, store::Blob{r.signature}, r.key_id,
                     r.probe_sha256, NowMs(), id));
    if (n == 0) {
      return MakeError(ErrorKind::kConflict, "variant_not_building",
                       "variant " + id + " is not building");
    }
    return fleet::AuditLog::RecordIn(conn, "system", "variant.ready", id, "");
  });
}

Status VariantRepository::MarkFailed(const std::string& id, const std::string& reason,
                                     std::optional<double> accuracy) {
  return db_->WithTransaction([&](store::Connection& conn) -> Status {
    EP_RETURN_IF_ERROR(conn.Execute("variant_failed",
                                    "UPDATE variants SET status = 'failed', error = ?, "
                                    "accuracy = ? WHERE id = ? AND status = 'building'",
                                    reason, accuracy, id));
    return fleet::AuditLog::RecordIn(conn, "system", "variant.failed", id, reason);
  });
}

Result<std::vector<VariantRepository::Count>> VariantRepository::CountByStatus() const {
  EP_ASSIGN_OR_RETURN(auto lease, db_->Acquire());
  EP_ASSIGN_OR_RETURN(auto s, lease->Query("variant_counts",
                                           "SELECT model_id, status, COUNT(*) FROM variants "
                                           "GROUP BY model_id, status"));
  std::vector<Count> out;
  while (true) {
    EP_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    out.push_back({s.Text(0), s.Text(1), s.Int64(2)});
  }
  return out;
}

Result<std::vector<std::string>> VariantRepository::ReferencedBlobs() const {
  return store::ReadStrings(*db_, "variant_blobs",
                            "SELECT blob_sha256 FROM variants WHERE blob_sha256 IS NOT NULL "
                            "UNION SELECT probe_sha256 FROM variants "
                            "WHERE probe_sha256 IS NOT NULL");
}

}  // namespace edgeprune::catalog
