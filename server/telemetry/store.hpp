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

  // Retention (the retention task, docs/operations.md). Deletes reports received before
  // `before_ms` (0: none by age) and, with keep_per_device > 0, every report but each device's
  // newest keep_per_device; returns how many. The per-(device, variant) sums the rollout gates
  // read (telemetry_variant_stats) stay: they already counted the deleted reports. A report
  // resent after its row was deleted would be counted again, so keep_per_device must exceed
  // what an agent can resend (the last unacknowledged batch).
  Result<std::int64_t> PruneReports(std::int64_t before_ms, std::int64_t keep_per_device);
  // Deletes variant events (installed/refused/check_failed) older than `before_ms`. A rollout
  // reads the events since its current phase started, so keep them longer than a phase lasts.
  Result<std::int64_t> PruneVariantEvents(std::int64_t before_ms);

 private:
  std::shared_ptr<store::Database> db_;
};

}  // namespace edgeprune::telemetry
