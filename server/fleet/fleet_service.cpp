#include "server/fleet/fleet_service.hpp"

#include "edgeprune/common/log.hpp"

namespace edgeprune::fleet {

void AddFleetConfig(ConfigSchema& s) {
  s.String("fleet.device_ca_cert", "",
           "PEM certificate of the device CA that signs agent client certificates");
  s.String("fleet.device_ca_key", "", "PEM private key of the device CA (keep it 0600)");
  s.Int("fleet.certificate_validity_s", 30 * 24 * 3600, 300, 400 * 24 * 3600,
        "validity of issued device certificates; agents renew at two thirds");
  s.Int("fleet.renew_min_interval_s", 3600, 0, 30 * 24 * 3600,
        "a device gets at most one certificate per this many seconds (enrollment counts); "
        "a renewal sooner answers 429 with Retry-After");
  s.Int("fleet.renew_overlap_s", 600, 0, 7 * 24 * 3600,
        "after a renewal the device's previous certificates stay valid this long, then are refused");
  s.Int("fleet.enroll_per_minute", 30, 0, 1'000'000,
        "enrollment attempts per minute per client address and per enrollment token, after a "
        "burst of fleet.enroll_burst; beyond, 429 with Retry-After (0: no limit)");
  s.Int("fleet.enroll_burst", 30, 1, 1'000'000, "enrollment attempts allowed at once");
  s.Int("fleet.heartbeat_interval_s", 10, 1, 3600, "heartbeat interval told to agents");
  s.Int("fleet.offline_after_missed", 3, 1, 100,
        "a device is offline after this many missed heartbeat intervals");
  s.Int("fleet.auth_cache_ms", 500, 0, 60'000,
        "how long an accepted device certificate is trusted from memory; a device revoked "
        "through another server process on the same database is refused here within it");
  s.Int("fleet.flush_interval_ms", 2000, 50, 600'000,
        "how often heartbeats are written to the database and gauges refreshed");
  s.Double("budget.ram_reserve_fraction", 0.25, 0.01, 1.0,
           "share of available RAM reserved for the model when no cap is declared");
  s.Double("budget.param_share", 0.5, 0.01, 1.0, "share of the reserve for parameters");
  s.Double("budget.activation_share", 0.25, 0.01, 1.0, "share of the reserve for activations");
  s.Double("budget.disk_fraction", 0.1, 0.001, 1.0, "share of free disk one variant may take");
  s.Double("budget.default_latency_slo_ms", 100.0, 0.1, 3.6e6,
           "latency SLO when neither agent nor operator declares one");
  s.Double("budget.safety_factor", 0.7, 0.01, 1.0, "derating of measured throughput");
}

FleetMetrics::FleetMetrics(prometheus::Registry& registry) {
  auto& devices = prometheus::BuildGauge()
                      .Name("edgeprune_devices")
                      .Help("Enrolled devices by liveness (revoked devices counted apart)")
                      .Register(registry);
  online = &devices.Add({{"status", "online"}});
  offline = &devices.Add({{"status", "offline"}});
  never_seen = &devices.Add({{"status", "never_seen"}});
  revoked = &devices.Add({{"status", "revoked"}});
  heartbeats = &prometheus::BuildCounter()
                    .Name("edgeprune_heartbeats_total")
                    .Help("Heartbeats accepted from devices")
                    .Register(registry)
                    .Add({});
  auto& enroll = prometheus::BuildCounter()
                     .Name("edgeprune_enrollments_total")
                     .Help("Enrollment attempts by outcome")
                     .Register(registry);
  enrollments_ok = &enroll.Add({{"outcome", "ok"}});
  enrollments_denied = &enroll.Add({{"outcome", "denied"}});
}

Result<std::unique_ptr<FleetService>> FleetService::Build(
    const Config& c, std::shared_ptr<store::Database> db,
    std::shared_ptr<prometheus::Registry> registry, std::shared_ptr<const Clock> clock) {
  std::unique_ptr<FleetService> f(new FleetService());
  f->db = std::move(db);
  // Clock: injectable so tests move time instead of sleeping.
  f->clock = clock ? std::move(clock) : std::make_shared<SystemClock>();
  // Audit trail first: every other service records into it.
  f->audit = std::make_shared<AuditLog>(f->db, f->clock);
  f->api_tokens = std::make_shared<ApiTokens>(f->db, f->clock, f->audit);
  f->enrollment_tokens = std::make_shared<EnrollmentTokens>(f->db, f->clock, f->audit);
  // Device CA: without one the server still serves, but enrollment and renewal answer 503.
  const std::string ca_cert = c.GetString("fleet.device_ca_cert");
  const std::string ca_key = c.GetString("fleet.device_ca_key");
  if (ca_cert.empty() != ca_key.empty()) {
    return MakeError(ErrorKind::kInvalidArgument, "device_ca_incomplete",
                     "fleet.device_ca_cert and fleet.device_ca_key must be set together");
  }
  if (!ca_cert.empty()) {
    EP_ASSIGN_OR_RETURN(DeviceCa loaded_ca, DeviceCa::Load(ca_cert, ca_key));
    f->ca = std::make_shared<DeviceCa>(std::move(loaded_ca));
  } else {
    log::Get("fleet")->warn("no device CA configured (fleet.device_ca_cert): enrollment is off");
  }
  f->enroll_limiter = std::make_shared<RateLimiter>(
      static_cast<int>(c.GetInt("fleet.enroll_per_minute")),
      static_cast<int>(c.GetInt("fleet.enroll_burst")));
  RegistryOptions ro;
  ro.certificate_validity = std::chrono::seconds(c.GetInt("fleet.certificate_validity_s"));
  ro.renew_min_interval = std::chrono::seconds(c.GetInt("fleet.renew_min_interval_s"));
  ro.renew_overlap = std::chrono::seconds(c.GetInt("fleet.renew_overlap_s"));
  ro.cache_ttl = std::chrono::milliseconds(c.GetInt("fleet.auth_cache_ms"));
  ro.budget_policy.ram_reserve_fraction = c.GetDouble("budget.ram_reserve_fraction");
  ro.budget_policy.param_share = c.GetDouble("budget.param_share");
  ro.budget_policy.activation_share = c.GetDouble("budget.activation_share");
  ro.budget_policy.disk_fraction = c.GetDouble("budget.disk_fraction");
  ro.budget_policy.default_latency_slo_ms = c.GetDouble("budget.default_latency_slo_ms");
  ro.budget_policy.safety_factor = c.GetDouble("budget.safety_factor");
  EP_RETURN_IF_ERROR(ro.budget_policy.Validate());
  f->registry = std::make_shared<DeviceRegistry>(f->db, f->clock, f->audit, f->ca,
                                                 f->enrollment_tokens, ro);
  // Liveness: in memory, seeded from the last flushed heartbeats.
  f->heartbeats = std::make_shared<HeartbeatTracker>(
      f->clock, std::chrono::seconds(c.GetInt("fleet.heartbeat_interval_s")),
      static_cast<int>(c.GetInt("fleet.offline_after_missed")));
  EP_RETURN_IF_ERROR(f->heartbeats->LoadFrom(*f->db));
  if (registry) f->metrics = std::make_unique<FleetMetrics>(*registry);
  f->flush_interval_ = std::chrono::milliseconds(c.GetInt("fleet.flush_interval_ms"));
  return f;
}

FleetService::~FleetService() { Stop(); }

Status FleetService::Tick() {
  EP_ASSIGN_OR_RETURN(auto flushed, heartbeats->Flush(*db));
  (void)flushed;
  if (metrics) {
    EP_ASSIGN_OR_RETURN(auto by_status, registry->CountByStatus());
    // From the shared table, so every server process on the database reports the same fleet.
    EP_ASSIGN_OR_RETURN(const LivenessCounts live, heartbeats->CountsFrom(*db));
    metrics->online->Set(static_cast<double>(live.online));
    metrics->offline->Set(static_cast<double>(live.offline));
    metrics->never_seen->Set(
        static_cast<double>(std::max<std::int64_t>(0, by_status["active"] - live.online - live.offline)));
    metrics->revoked->Set(static_cast<double>(by_status["revoked"]));
  }
  return Ok();
}

void FleetService::Start() {
  if (loop_.joinable()) return;
  (void)Tick();
  loop_ = std::jthread([this](std::stop_token stop) {
    std::mutex mu;
    std::condition_variable_any cv;
    while (!stop.stop_requested()) {
      {
        std::unique_lock lock(mu);
        cv.wait_for(lock, stop, flush_interval_, [] { return false; });
      }
      if (auto s = Tick(); !s.ok()) log::Get("fleet")->warn("fleet tick: {}", s.error().ToString());
    }
  });
}

void FleetService::Stop() {
  if (loop_.joinable()) {
    loop_.request_stop();
    loop_.join();
  }
  if (heartbeats && db) (void)heartbeats->Flush(*db);
}

}  // namespace edgeprune::fleet
