#include "server/catalog/dataset_catalog.hpp"

#include <future>

#include "edgeprune/common/clock.hpp"
#include "edgeprune/common/json.hpp"
#include "edgeprune/common/log.hpp"
#include "server/datasets/probe_sampler.hpp"
#include "server/fleet/audit_log.hpp"
#include "server/store/retention.hpp"

namespace edgeprune::catalog {
namespace bj = boost::json;
namespace {

constexpr const char* kColumns = "id, name, sha256, size_bytes, info, created_at, created_by";

Result<DatasetRecord> Read(store::Statement& s) {
  DatasetRecord d;
  d.id = s.Text(0);
  d.name = s.Text(1);
  d.sha256 = s.Text(2);
  d.size_bytes = s.Int64(3);
  EP_ASSIGN_OR_RETURN(bj::object info, json::ParseObject(s.Text(4)));
  EP_ASSIGN_OR_RETURN(d.info, datasets::DatasetInfoFromJson(info));
  d.created_at = s.Int64(5);
  d.created_by = s.Text(6);
  return d;
}

Result<std::optional<DatasetRecord>> FindBySha(store::Connection& conn, const std::string& sha) {
  EP_ASSIGN_OR_RETURN(auto s, conn.Query("dataset_by_sha",
                                           std::string("SELECT ") + kColumns +
                                               " FROM datasets WHERE sha256 = ?",
                                           sha));
  EP_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return std::optional<DatasetRecord>();
  EP_ASSIGN_OR_RETURN(auto d, Read(s));
  return std::optional<DatasetRecord>(std::move(d));
}

}  // namespace

bj::object ToJson(const DatasetRecord& d) {
  bj::object o = datasets::ToJson(d.info);
  o["id"] = d.id;
  o["name"] = d.name;
  o["sha256"] = d.sha256;
  o["size_bytes"] = d.size_bytes;
  o["created_at"] = d.created_at;
  o["created_by"] = d.created_by;
  return o;
}

bool IsDatasetId(const std::string& id) {
  if (id.size() != 19 || id.rfind("ds-", 0) != 0) return false;
  for (std::size_t i = 3; i < id.size(); ++i) {
    const char c = id[i];
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

Result<DatasetCatalog::Ingested> DatasetCatalog::Ingest(const std::string& path,
                                                        const std::string& name,
                                                        const std::string& actor) {
  // Validation and hashing each read the whole file (1 GiB: about 3.5 s and 3 s on this
  // project's 2-core machine); on two threads they overlap, and the file then moves into the
  // blob store instead of being copied.
  auto hashed = std::async(std::launch::async, [&path] { return store::BlobStore::Hash(path); });
  auto validated = datasets::ValidateDatasetFile(path, limits_);
  auto hash = hashed.get();
  if (!validated.ok()) return validated.error();
  if (!hash.ok()) return hash.error();
  datasets::DatasetInfo info = std::move(*validated);
  EP_ASSIGN_OR_RETURN(store::BlobRef ref, blobs_->Adopt(path, *hash));
  DatasetRecord record;
  record.id = "ds-" + ref.sha256.substr(0, 16);
  record.name = name;
  record.sha256 = ref.sha256;
  record.size_bytes = static_cast<std::int64_t>(ref.size);
  record.info = std::move(info);
  record.created_at = NowMs();
  record.created_by = actor;
  Ingested out;
  auto done = db_->WithTransaction([&](store::Connection& conn) -> Status {
    EP_ASSIGN_OR_RETURN(auto existing, FindBySha(conn, ref.sha256));
    if (existing) {
      out.record = std::move(*existing);
      return Ok();
    }
    auto r = conn.Execute("dataset_insert",
                          "INSERT INTO datasets (id, name, sha256, size_bytes, info, created_at, "
                          "created_by) VALUES (?, ?, ?, ?, ?, ?, ?)",
                          record.id, record.name, record.sha256, record.size_bytes,
                          json::Serialize(datasets::ToJson(record.info)), record.created_at,
                          record.created_by);
    if (!r.ok()) return r.error();
    out.record = record;
    out.created = true;
    return fleet::AuditLog::RecordIn(
        conn, actor, "dataset.upload", record.id,
        json::Serialize(bj::object{{"name", record.name}, {"sha256", record.sha256},
                                   {"bytes", record.size_bytes}}));
  });
  if (!done.ok()) {
    // Nothing may stay behind a refused upload; a blob a committed row names is not ours to drop.
    auto again = Get(record.id);
    if (!again.ok() && again.error().kind == ErrorKind::kNotFound) (void)blobs_->Remove(ref.sha256);
    return done.error();
  }
  return out;
}

Result<wire::ProbeFile> DatasetCatalog::SampleProbe(const DatasetRecord& d,
                                                    std::int64_t samples) const {
  EP_ASSIGN_OR_RETURN(std::string path, PathOf(d));
  return datasets::SampleProbeSet(path, samples, limits_);
}

Result<DatasetRecord> DatasetCatalog::Get(const std::string& id) const {
  EP_ASSIGN_OR_RETURN(auto lease, db_->Acquire());
  return GetIn(*lease, id);
}

Result<DatasetRecord> DatasetCatalog::GetIn(store::Connection& conn, const std::string& id) {
  EP_ASSIGN_OR_RETURN(auto s, conn.Query("dataset_by_id",
                                           std::string("SELECT ") + kColumns +
                                               " FROM datasets WHERE id = ?",
                                           id));
  EP_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return MakeError(ErrorKind::kNotFound, "dataset_not_found", "no data set " + id);
  return Read(s);
}

Result<std::vector<DatasetRecord>> DatasetCatalog::List() const {
  EP_ASSIGN_OR_RETURN(auto lease, db_->Acquire());
  EP_ASSIGN_OR_RETURN(auto s, lease->Query("dataset_list", std::string("SELECT ") + kColumns +
                                                               " FROM datasets ORDER BY created_at, id"));
  std::vector<DatasetRecord> out;
  while (true) {
    EP_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    EP_ASSIGN_OR_RETURN(auto d, Read(s));
    out.push_back(std::move(d));
  }
  return out;
}

Result<DatasetRecord> DatasetCatalog::Remove(const std::string& id, const std::string& actor) {
  DatasetRecord removed;
  auto done = db_->WithTransaction([&](store::Connection& conn) -> Status {
    EP_ASSIGN_OR_RETURN(removed, GetIn(conn, id));
    EP_ASSIGN_OR_RETURN(auto users, conn.Query("dataset_users",
                                                 "SELECT id FROM models WHERE dataset = ? LIMIT 1",
                                                 id));
    EP_ASSIGN_OR_RETURN(bool used, users.Step());
    if (used) {
      return MakeError(ErrorKind::kConflict, "dataset_in_use",
                       "data set " + id + " is used by model " + users.Text(0));
    }
    auto r = conn.Execute("dataset_delete", "DELETE FROM datasets WHERE id = ?", id);
    if (!r.ok()) return r.error();
    return fleet::AuditLog::RecordIn(conn, actor, "dataset.delete", id,
                                     json::Serialize(bj::object{{"sha256", removed.sha256}}));
  });
  if (!done.ok()) return done.error();
  if (auto st = blobs_->Remove(removed.sha256); !st.ok()) {
    log::Get("variants")->warn("removing the file of data set {}: {}", id, st.error().ToString());
  }
  return removed;
}

Result<std::vector<std::string>> DatasetCatalog::ReferencedBlobs() const {
  return store::ReadStrings(*db_, "dataset_blobs", "SELECT sha256 FROM datasets");
}

}  // namespace edgeprune::catalog
