#pragma once
// Telemetry ingest: a batch from one device is committed in one transaction, one row per
// (device, seq), so a resent report (after a lost ack, an agent restart or a server outage) is a
// no-op; the ack is given only after the commit. At-least-once delivery, exactly-once effect.
//
// Thread-safety: thread-safe.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/json/array.hpp>

#include "edgeprune/common/result.hpp"
#include "edgeprune/common/wire/telemetry.hpp"
#include "server/store/database.hpp"

namespace edgeprune::telemetry {

struct IngestResult {
  std::int64_t acked_seq = 0;
  std::vector<wire::TelemetryReport> stored;  // the reports that were new
  std::int64_t duplicates = 0;
};

class TelemetryStore {
 public:
  explicit TelemetryStore(std::shared_ptr<store::Database> db) : db_(std::move(db)) {}

  // The batch must already be validated (wire::TelemetryBatchFromJson).
  Result<IngestResult> Ingest(const std::string& device_id, const wire::TelemetryBatch& batch);
  // Newest first, at most `limit` (1..1000); with `before_seq`, only reports older than it (the
  // next page after a page whose oldest report had that seq).
  Result<boost::json::array> Recent(const std::string& device_id, int limit,
                                    std::optional<std::int64_t> before_seq = std::nullopt) const;
  Result<std::int64_t> Count(const std::string& device_id) const;
  // A device's report about a variant ("installed", "refused", "check_failed" with its reason),
  // stored with its audit entry in one transaction. The caller validated event and lengths.
  Status RecordVariantEvent(const std::string& device_id, const std::string& variant_id,
                            const std::string& event, const std::string& reason);

 private:
  std::shared_ptr<store::Database> db_;
};

}  // namespace edgeprune::telemetry
