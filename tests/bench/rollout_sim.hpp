#pragma once
// The simulated devices of the rollout load tool (tests/bench/rollout_load.cpp): the heartbeat
// load tool's simulated agent taken through the whole agent protocol, without LibTorch. A
// SimDevice enrolls through the real API with its own EC P-256 key (bench/heartbeat_server's
// KeyAndCsr), sends a hardware profile, heartbeats on its own keep-alive mTLS connection, and
// when the server's desired state names a new variant: fetches the signed manifest, verifies its
// Ed25519 signature over the exact bytes with the server's public key (common/crypto), fetches
// the payload (the real bytes over TLS) and checks its size and SHA-256 against the manifest,
// reports `installed`, and from then on sends telemetry on its interval: probe accuracy, probe
// latency quantiles and feedback, so the server's rollout gates judge real reports. What a real
// agent measures (the probe on the model) is simulated: the probe accuracy is the variant's own
// test accuracy from the signed manifest, the latency a fixed few milliseconds (below the default
// SLO), so a healthy rollout is what is measured.
//
// Thread-safety: a SimDevice belongs to one thread at a time (its HttpsClient is not
// thread-safe). SimCounters is shared: atomics, and a mutex for the first error.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "edgeprune/common/https_client.hpp"
#include "edgeprune/common/result.hpp"

namespace edgeprune::bench {

using SimClock = std::chrono::steady_clock;

struct SimSettings {
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;
  std::string ca_file;          // the server's CA
  std::string signing_pub_pem;  // the server's manifest-signing public key (data_dir/signing.pub)
  std::string key_dir;          // where device certificates and keys are written
  std::chrono::seconds telemetry_interval{10};
  double probe_p95_ms = 5.0;    // the simulated probe's p95 (the default SLO is 100 ms)
};

struct SimCounters {
  std::atomic<long> heartbeats{0}, manifests{0}, installs{0}, reports{0}, errors{0};
  std::atomic<long> payload_bytes{0};
  std::atomic<long> refused{0};  // a manifest or payload that failed verification
  std::mutex mu;
  std::string first_error;

  void Fail(const std::string& what) {
    ++errors;
    std::lock_guard<std::mutex> lock(mu);
    if (first_error.empty()) first_error = what;
  }
};

class SimDevice {
 public:
  // Enrolls (server-authenticated TLS with `enroll_client`, token) as device number `index`,
  // writes its certificate and key under settings.key_dir, opens its mTLS client and sends its
  // profile.
  static Result<std::unique_ptr<SimDevice>> Enroll(const SimSettings& settings,
                                                   http::HttpsClient& enroll_client,
                                                   const std::string& token, int index);

  // Whatever is due at `now`: a heartbeat (and the install it asks for), a telemetry report.
  // Failures are counted and retried at the next due time. Returns when to call it next.
  SimClock::time_point Step(SimClock::time_point now, SimCounters& counters);

  const std::string& id() const { return id_; }
  const std::optional<std::string>& installed() const { return installed_; }

 private:
  SimDevice(const SimSettings& settings, std::string id, std::unique_ptr<http::HttpsClient> c)
      : settings_(settings), id_(std::move(id)), client_(std::move(c)) {}

  Status Heartbeat(SimClock::time_point now, SimCounters& counters);
  Status Install(const std::string& variant_id, SimCounters& counters);
  Status Report(SimCounters& counters);
  Result<http::ClientResponse> Call(const std::string& method, const std::string& target,
                                    std::string body = "");

  const SimSettings& settings_;
  std::string id_;
  std::unique_ptr<http::HttpsClient> client_;
  std::optional<std::string> installed_;
  double accuracy_ = 0.0;  // the installed variant's test accuracy (signed manifest)
  std::int64_t seq_ = 0;
  SimClock::time_point started_ = SimClock::now();
  SimClock::duration heartbeat_every_ = std::chrono::seconds(10);
  SimClock::time_point next_heartbeat_{};
  std::optional<SimClock::time_point> next_report_;
};

}  // namespace edgeprune::bench
