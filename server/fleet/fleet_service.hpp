#pragma once
// Everything the fleet needs, built once in order from the config (fleet.* keys), plus the
// background loop that flushes heartbeats to the database and refreshes the fleet gauges:
//   edgeprune_devices{status="online|offline|never_seen|revoked"}
//   edgeprune_heartbeats_total, edgeprune_enrollments_total{outcome="ok|denied"}
//
// Thread-safety: the services are thread-safe; Start()/Stop() from the owning thread.

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <chrono>
#include <memory>
#include <thread>

#include "edgeprune/common/config.hpp"
#include "server/fleet/api_tokens.hpp"
#include "server/fleet/audit_log.hpp"
#include "edgeprune/common/clock.hpp"
#include "server/fleet/device_ca.hpp"
#include "server/fleet/device_registry.hpp"
#include "server/fleet/enrollment_tokens.hpp"
#include "server/fleet/heartbeat_tracker.hpp"
#include "edgeprune/common/rate_limiter.hpp"
#include "server/store/database.hpp"

namespace edgeprune::fleet {

// Adds fleet.device_ca_cert, fleet.device_ca_key, fleet.certificate_validity_s,
// fleet.renew_min_interval_s, fleet.renew_overlap_s, fleet.enroll_per_minute, fleet.enroll_burst,
// fleet.heartbeat_interval_s, fleet.offline_after_missed, fleet.flush_interval_ms and the
// budget.* policy keys.
void AddFleetConfig(ConfigSchema& schema);

struct FleetMetrics {
  explicit FleetMetrics(prometheus::Registry& registry);
  prometheus::Gauge* online;
  prometheus::Gauge* offline;
  prometheus::Gauge* never_seen;
  prometheus::Gauge* revoked;
  prometheus::Counter* heartbeats;
  prometheus::Counter* enrollments_ok;
  prometheus::Counter* enrollments_denied;
};

class FleetService {
 public:
  // clock may be null (system clock); registry may be null (no metrics).
  static Result<std::unique_ptr<FleetService>> Build(const Config& config,
                                                     std::shared_ptr<store::Database> db,
                                                     std::shared_ptr<prometheus::Registry> registry,
                                                     std::shared_ptr<const Clock> clock = nullptr);
  ~FleetService();

  void Start();  // the flush/gauge loop
  void Stop();   // joins the loop and flushes once more
  // One round of the loop: flush heartbeats, refresh gauges.
  Status Tick();

  std::shared_ptr<store::Database> db;
  std::shared_ptr<const Clock> clock;
  std::shared_ptr<AuditLog> audit;
  std::shared_ptr<ApiTokens> api_tokens;
  std::shared_ptr<EnrollmentTokens> enrollment_tokens;
  std::shared_ptr<DeviceCa> ca;
  std::shared_ptr<DeviceRegistry> registry;
  std::shared_ptr<HeartbeatTracker> heartbeats;
  std::unique_ptr<FleetMetrics> metrics;  // null without a registry
  // Enrollment attempts per client address and per presented token (fleet.enroll_per_minute).
  std::shared_ptr<RateLimiter> enroll_limiter;

 private:
  FleetService() = default;
  std::chrono::milliseconds flush_interval_{2000};
  std::jthread loop_;
};

}  // namespace edgeprune::fleet
