#include "server/telemetry/store.hpp"

#include <algorithm>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "edgeprune/common/clock.hpp"
#include "server/fleet/audit_log.hpp"
#include "server/store/retention.hpp"

namespace edgeprune::telemetry {
namespace bj = boost::json;
namespace {

template <typename T>
bj::value OptValue(const std::optional<T>& v) {
  return v ? bj::value(*v) : bj::value(nullptr);
}

std::optional<double> OptDouble(store::Statement& s, int column) {
  if (s.IsNull(column)) return std::nullopt;
  return s.Double(column);
}

// What one batch adds to a (device, variant) row of telemetry_variant_stats.
struct VariantSums {
  std::int64_t reports = 0, probe_reports = 0, labels = 0, last_seq = 0;
  double probe_sum = 0.0;
  std::optional<double> correct;  // none while no report carried a feedback accuracy
  std::optional<double> last_p95_ms;

  void Add(const wire::TelemetryReport& r, std::optional<double> p95_ms) {
    ++reports;
    if (r.probe_accuracy) {
      ++probe_reports;
      probe_sum += *r.probe_accuracy;
    }
    labels += r.feedback_count;
    if (r.feedback_accuracy) {
      correct = correct.value_or(0.0) + *r.feedback_accuracy * static_cast<double>(r.feedback_count);
    }
    if (r.seq > last_seq) {
      last_seq = r.seq;
      last_p95_ms = p95_ms;
    }
  }
};

}  // namespace

Result<IngestResult> TelemetryStore::Ingest(const std::string& device_id,
                                            const wire::TelemetryBatch& batch) {
  IngestResult result;
  const std::int64_t now = NowMs();
  auto done = db_->WithTransaction([&](store::Connection& conn) -> Status {
    EP_ASSIGN_OR_RETURN(auto insert,
                        conn.Prepare("telemetry_insert",
                                     "INSERT INTO telemetry (device_id, seq, "
                                     "received_at, taken_at, variant_id, probe_accuracy, "
                                     "probe_p50_ms, probe_p95_ms, probe_p99_ms, live_p50_ms, "
                                     "live_p95_ms, live_p99_ms, live_count, feedback_accuracy, "
                                     "feedback_count, inference_count) VALUES "
                                     "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                                     "ON CONFLICT (device_id, seq) DO NOTHING"));
    // The (device, variant) aggregate the rollout gates read (field_stats.hpp), added to once
    // per variant of the batch (a batch is mostly one variant): a write per report halved the
    // batched ingest rate. Every SET expression sees the row as it was, so last_p95_ms and
    // last_seq move together.
    EP_ASSIGN_OR_RETURN(
        auto aggregate,
        conn.Prepare("telemetry_variant_stats_add",
                     "INSERT INTO telemetry_variant_stats AS t (device_id, variant_id, reports, "
                     "probe_reports, probe_sum, labels, correct, last_seq, last_p95_ms) VALUES "
                     "(?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (device_id, variant_id) DO UPDATE "
                     "SET reports = t.reports + excluded.reports, "
                     "probe_reports = t.probe_reports + excluded.probe_reports, "
                     "probe_sum = t.probe_sum + excluded.probe_sum, "
                     "labels = t.labels + excluded.labels, "
                     "correct = CASE WHEN excluded.correct IS NULL THEN t.correct "
                     "WHEN t.correct IS NULL THEN excluded.correct "
                     "ELSE t.correct + excluded.correct END, "
                     "last_p95_ms = CASE WHEN excluded.last_seq > t.last_seq "
                     "THEN excluded.last_p95_ms ELSE t.last_p95_ms END, "
                     "last_seq = CASE WHEN excluded.last_seq > t.last_seq "
                     "THEN excluded.last_seq ELSE t.last_seq END"));
    std::map<std::string, VariantSums> sums;
    for (const auto& r : batch.reports) {
      std::optional<double> pp50, pp95, pp99, lp50, lp95, lp99;
      if (r.probe_latency) {
        pp50 = r.probe_latency->p50_ms;
        pp95 = r.probe_latency->p95_ms;
        pp99 = r.probe_latency->p99_ms;
      }
      std::int64_t live_count = 0;
      if (r.live_latency) {
        lp50 = r.live_latency->p50_ms;
        lp95 = r.live_latency->p95_ms;
        lp99 = r.live_latency->p99_ms;
        live_count = r.live_latency->count;
      }
      EP_RETURN_IF_ERROR(insert.Reset());
      EP_RETURN_IF_ERROR(insert.BindAll(device_id, r.seq, now, r.timestamp_ms, r.variant_id,
                                        r.probe_accuracy, pp50, pp95, pp99, lp50, lp95, lp99,
                                        live_count, r.feedback_accuracy, r.feedback_count,
                                        r.inference_count));
      EP_ASSIGN_OR_RETURN(std::int64_t changed, insert.Run());
      if (changed == 1) {
        const bool live = r.live_latency && r.live_latency->count > 0;
        sums[r.variant_id].Add(r, live ? lp95 : pp95);
        result.stored.push_back(r);
      } else {
        ++result.duplicates;
      }
    }
    for (const auto& [variant, v] : sums) {
      EP_RETURN_IF_ERROR(aggregate.Reset());
      EP_RETURN_IF_ERROR(aggregate.BindAll(device_id, variant, v.reports, v.probe_reports,
                                           v.probe_sum, v.labels, v.correct, v.last_seq,
                                           v.last_p95_ms));
      EP_ASSIGN_OR_RETURN(std::int64_t added, aggregate.Run());
      (void)added;
    }
    return Ok();
  });
  if (!done.ok()) return done.error();
  result.acked_seq = batch.reports.empty() ? 0 : batch.reports.back().seq;
  return result;
}

Result<bj::array> TelemetryStore::Recent(const std::string& device_id, int limit,
                                         std::optional<std::int64_t> before_seq) const {
  limit = std::clamp(limit, 1, 1000);
  // Sequence numbers start at 1, so "before the largest int64" is every report.
  const std::int64_t before = before_seq.value_or(std::numeric_limits<std::int64_t>::max());
  EP_ASSIGN_OR_RETURN(auto lease, db_->Acquire());
  EP_ASSIGN_OR_RETURN(auto s, lease->Query("telemetry_recent",
                                           "SELECT seq, received_at, taken_at, variant_id, "
                                           "probe_accuracy, probe_p50_ms, probe_p95_ms, "
                                           "probe_p99_ms, live_p50_ms, live_p95_ms, live_p99_ms, "
                                           "live_count, feedback_accuracy, feedback_count, "
                                           "inference_count FROM telemetry WHERE device_id = ? "
                                           "AND seq < ? ORDER BY seq DESC LIMIT ?",
                                           device_id, before, static_cast<std::int64_t>(limit)));
  bj::array out;
  while (true) {
    EP_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    bj::object o{{"seq", s.Int64(0)},
                 {"received_at", s.Int64(1)},
                 {"timestamp_ms", s.Int64(2)},
                 {"variant_id", s.Text(3)},
                 {"probe_accuracy", OptValue(OptDouble(s, 4))},
                 {"feedback_accuracy", OptValue(OptDouble(s, 12))},
                 {"feedback_count", s.Int64(13)},
                 {"inference_count", s.Int64(14)}};
    if (!s.IsNull(5)) {
      o["probe_latency"] = bj::object{
          {"p50_ms", s.Double(5)}, {"p95_ms", s.Double(6)}, {"p99_ms", s.Double(7)}};
    }
    if (!s.IsNull(8)) {
      o["live_latency"] = bj::object{{"p50_ms", s.Double(8)},
                                     {"p95_ms", s.Double(9)},
                                     {"p99_ms", s.Double(10)},
                                     {"count", s.Int64(11)}};
    }
    out.push_back(std::move(o));
  }
  return out;
}

Result<std::int64_t> TelemetryStore::Count(const std::string& device_id) const {
  EP_ASSIGN_OR_RETURN(auto lease, db_->Acquire());
  EP_ASSIGN_OR_RETURN(auto s, lease->Query("telemetry_count",
                                           "SELECT COUNT(*) FROM telemetry WHERE device_id = ?",
                                           device_id));
  EP_ASSIGN_OR_RETURN(bool row, s.Step());
  return row ? s.Int64(0) : 0;
}

Status TelemetryStore::RecordVariantEvent(const std::string& device_id,
                                          const std::string& variant_id, const std::string& event,
                                          const std::string& reason) {
  return db_->WithTransaction([&](store::Connection& conn) -> Status {
    EP_RETURN_IF_ERROR(conn.Execute("variant_event_insert",
                                    "INSERT INTO variant_events (device_id, variant_id, at, "
                                    "event, reason) VALUES (?, ?, ?, ?, ?)",
                                    device_id, variant_id, NowMs(), event, reason));
    return fleet::AuditLog::RecordIn(conn, "device:" + device_id, "variant." + event, variant_id,
                                     reason);
  });
}

Result<std::int64_t> TelemetryStore::PruneReports(std::int64_t before_ms,
                                                  std::int64_t keep_per_device) {
  if (before_ms < 0 || keep_per_device < 0) {
    return MakeError(ErrorKind::kInvalidArgument, "invalid_retention",
                     "telemetry retention: negative age or count");
  }
  std::int64_t total = 0;
  if (before_ms > 0) {
    // By age: the received_at index (migration 0010) finds each batch.
    EP_ASSIGN_OR_RETURN(total, store::DeleteInBatches(
                                   *db_, "telemetry_prune_age",
                                   "DELETE FROM telemetry WHERE (device_id, seq) IN (SELECT "
                                   "device_id, seq FROM telemetry WHERE received_at < ?1 LIMIT ?2)",
                                   before_ms));
  }
  if (keep_per_device == 0) return total;
  // By count, device by device over the (device_id, seq) key: one pass finds the devices over
  // the cap, then each one's oldest kept seq bounds its deletion. (A rank over the whole table
  // per batch would read every report once per 5,000 deleted.)
  std::vector<std::string> over;
  {
    EP_ASSIGN_OR_RETURN(auto lease, db_->Acquire());
    EP_ASSIGN_OR_RETURN(auto s, lease->Query("telemetry_devices_over_cap",
                                             "SELECT device_id FROM telemetry GROUP BY device_id "
                                             "HAVING COUNT(*) > ?",
                                             keep_per_device));
    while (true) {
      EP_ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      over.push_back(s.Text(0));
    }
  }
  for (const auto& device : over) {
    std::optional<std::int64_t> oldest_dropped;
    {
      EP_ASSIGN_OR_RETURN(auto lease, db_->Acquire());
      EP_ASSIGN_OR_RETURN(auto s, lease->Query("telemetry_cap_seq",
                                               "SELECT seq FROM telemetry WHERE device_id = ? "
                                               "ORDER BY seq DESC LIMIT 1 OFFSET ?",
                                               device, keep_per_device));
      EP_ASSIGN_OR_RETURN(bool row, s.Step());
      if (row) oldest_dropped = s.Int64(0);
    }
    if (!oldest_dropped) continue;  // pruned meanwhile
    EP_ASSIGN_OR_RETURN(std::int64_t deleted,
                        store::DeleteInBatches(
                            *db_, "telemetry_prune_cap",
                            "DELETE FROM telemetry WHERE (device_id, seq) IN (SELECT device_id, "
                            "seq FROM telemetry WHERE device_id = ?1 AND seq <= ?2 LIMIT ?3)",
                            device, *oldest_dropped));
    total += deleted;
  }
  return total;
}

Result<std::int64_t> TelemetryStore::PruneVariantEvents(std::int64_t before_ms) {
  if (before_ms < 0) {
    return MakeError(ErrorKind::kInvalidArgument, "invalid_retention",
                     "variant event retention: negative age");
  }
  if (before_ms == 0) return std::int64_t{0};
  return store::DeleteInBatches(*db_, "variant_events_prune",
                                "DELETE FROM variant_events WHERE id IN (SELECT id FROM "
                                "variant_events WHERE at < ?1 LIMIT ?2)",
                                before_ms);
}

}  // namespace edgeprune::telemetry
