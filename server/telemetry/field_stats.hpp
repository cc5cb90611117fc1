#pragma once
// What the field says about variants, read for deploy/ (the rollout gates) inside the caller's
// transaction, without SQL on the telemetry module's tables outside it: per (device, variant),
// the telemetry aggregate and the variant events the device reported.
//
// Thread-safety: static functions over the caller's connection; safe from any thread.

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "edgeprune/common/result.hpp"
#include "server/store/database.hpp"

namespace edgeprune::telemetry {

struct VariantFieldStats {
  std::int64_t reports = 0;
  std::optional<double> probe_accuracy;     // mean over the reports that carry one
  std::optional<double> p95_ms;             // the newest report's p95 (live, else probe)
  std::int64_t labels = 0;                  // feedback labels over all reports
  std::optional<double> feedback_accuracy;  // label-weighted mean
};

struct VariantOutcome {
  bool installed = false;
  bool failed = false;   // "refused" or "check_failed"
  std::string reason;    // of the newest failure
};

// Key of a (device, variant) pair in the maps below.
inline std::string FieldKey(const std::string& device_id, const std::string& variant_id) {
  return device_id + '\n' + variant_id;
}

class FieldStats {
 public:
  using Pairs = std::vector<std::pair<std::string, std::string>>;  // (device, variant)

  // Telemetry aggregates of each pair that has reports (and of the same devices' other variants:
  // filtering them out costs more than the few rows they add).
  static Result<std::unordered_map<std::string, VariantFieldStats>> StatsIn(
      store::Connection& conn, const Pairs& pairs);
  // Install outcomes each device reported for the variant at or after `since_ms`.
  static Result<std::unordered_map<std::string, VariantOutcome>> OutcomesIn(
      store::Connection& conn, const Pairs& pairs, std::int64_t since_ms);
};

}  // namespace edgeprune::telemetry
