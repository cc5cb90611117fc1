#include "bench/rollout_sim.hpp"

#include <openssl/bio.h>
#include <openssl/pem.h>

#include <boost/json.hpp>

#include <algorithm>
#include <ctime>

#include "bench/heartbeat_server.hpp"
#include "edgeprune/common/crypto.hpp"
#include "edgeprune/common/fs.hpp"
#include "edgeprune/common/json.hpp"
#include "edgeprune/common/tls.hpp"
#include "edgeprune/common/wire/enroll.hpp"
#include "edgeprune/common/wire/heartbeat.hpp"
#include "edgeprune/common/wire/manifest.hpp"
#include "edgeprune/common/wire/profile.hpp"
#include "edgeprune/common/wire/telemetry.hpp"

namespace edgeprune::bench {
namespace bj = boost::json;
namespace {

Error Failed(const std::string& what, const Result<http::ClientResponse>& r) {
  if (!r.ok()) return r.error().WithContext(what);
  return MakeError(ErrorKind::kUnavailable, "http_" + std::to_string(r->status),
                   what + " answered HTTP " + std::to_string(r->status) + ": " +
                       r->body.substr(0, 200));
}

std::string PrivateKeyPem(EVP_PKEY* key) {
  BIO* b = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(b, key, nullptr, nullptr, 0, nullptr, nullptr);
  char* d = nullptr;
  const long n = BIO_get_mem_data(b, &d);
  std::string pem(d, static_cast<std::size_t>(n));
  BIO_free(b);
  return pem;
}

// A small gateway, the same for every simulated device: they share one budget, so one bucket of
// the model's ladder serves them all (one build, as for a homogeneous fleet).
wire::DeviceProfile Profile() {
  wire::DeviceProfile p;
  p.arch = "x86_64";
  p.cpu_model = "simulated gateway";
  p.cores = 4;
  p.simd_flags = {"sse4_2", "avx2"};
  p.ram_total_bytes = std::int64_t{4} << 30;
  p.ram_available_bytes = std::int64_t{2} << 30;
  p.disk_free_bytes = std::int64_t{16} << 30;
  p.os = "Linux (simulated)";
  p.torch_version = "1.13.1";
  p.agent_version = "rollout-load";
  p.bench.matmul_gflops = 20.0;
  p.bench.conv_gmacs_per_s = 5.0;
  p.bench.conv_overhead_ms = 0.5;
  p.bench.mem_bandwidth_gbps = 5.0;
  p.bench.threads = 1;
  p.measured_at = static_cast<std::int64_t>(std::time(nullptr));
  return p;
}

}  // namespace

Result<std::unique_ptr<SimDevice>> SimDevice::Enroll(const SimSettings& s,
                                                     http::HttpsClient& enroll_client,
                                                     const std::string& token, int index) {
  auto [key, csr] = KeyAndCsr();
  wire::EnrollRequest req{token, csr, "sim-" + std::to_string(index)};
  auto r = enroll_client.Post("/agent/v1/enroll", json::Serialize(wire::ToJson(req)));
  if (!r.ok() || r->status / 100 != 2) return Failed("enroll", r);
  EP_ASSIGN_OR_RETURN(bj::object o, json::ParseObject(r->body));
  EP_ASSIGN_OR_RETURN(wire::CertificateGrant grant, wire::CertificateGrantFromJson(o));
  const std::string base = s.key_dir + "/" + grant.device_id;
  EP_RETURN_IF_ERROR(fs::WriteFileAtomic(base + ".crt", grant.certificate_pem));
  EP_RETURN_IF_ERROR(fs::WriteFileAtomic(base + ".key", PrivateKeyPem(key.get()), 0600));
  EP_ASSIGN_OR_RETURN(auto ctx, tls::MakeClientContext({s.ca_file, base + ".crt", base + ".key"}));
  http::ClientOptions co;
  co.host = s.host;
  co.port = s.port;
  co.tls = ctx;
  co.timeout = std::chrono::seconds(60);
  std::unique_ptr<SimDevice> d(
      new SimDevice(s, grant.device_id, std::make_unique<http::HttpsClient>(co)));
  auto put = d->Call("PUT", "/agent/v1/profile", json::Serialize(wire::ToJson(Profile())));
  if (!put.ok() || put->status != 200) return Failed("PUT profile", put);
  return d;
}

Result<http::ClientResponse> SimDevice::Call(const std::string& method, const std::string& target,
                                             std::string body) {
  http::ClientRequest req;
  req.method = method;
  req.target = target;
  if (!body.empty()) {
    req.headers = {{"Content-Type", "application/json"}};
    req.body = std::move(body);
  }
  auto r = client_->Send(req);
  if (!r.ok()) client_->Close();  // the next call reconnects, as an agent would
  return r;
}

SimClock::time_point SimDevice::Step(SimClock::time_point now, SimCounters& counters) {
  if (now >= next_heartbeat_) {
    Status hb = Heartbeat(now, counters);
    if (!hb.ok()) counters.Fail(id_ + ": " + hb.error().ToString());
    next_heartbeat_ = now + heartbeat_every_;
  }
  if (next_report_ && now >= *next_report_) {
    Status rep = Report(counters);
    if (!rep.ok()) counters.Fail(id_ + ": " + rep.error().ToString());
    next_report_ = now + settings_.telemetry_interval;
  }
  return next_report_ ? std::min(next_heartbeat_, *next_report_) : next_heartbeat_;
}

Status SimDevice::Heartbeat(SimClock::time_point now, SimCounters& counters) {
  wire::Heartbeat hb;
  hb.agent_state = installed_ ? "serve" : "poll";
  hb.installed_variant_id = installed_;
  hb.uptime_s = std::chrono::duration_cast<std::chrono::seconds>(now - started_).count();
  hb.rss_bytes = 48 << 20;
  auto r = Call("POST", "/agent/v1/heartbeat", json::Serialize(wire::ToJson(hb)));
  if (!r.ok() || r->status != 200) return Failed("heartbeat", r);
  ++counters.heartbeats;
  EP_ASSIGN_OR_RETURN(bj::object o, json::ParseObject(r->body));
  EP_ASSIGN_OR_RETURN(wire::HeartbeatResponse resp, wire::HeartbeatResponseFromJson(o));
  heartbeat_every_ = std::chrono::seconds(std::max<std::int64_t>(1, resp.heartbeat_interval_s));
  const auto& want = resp.desired_state.variant_id;
  if (!want || want == installed_) return Ok();
  return Install(*want, counters);
}

Status SimDevice::Install(const std::string& variant_id, SimCounters& counters) {
  const std::string base = "/agent/v1/variants/" + variant_id;
  auto m = Call("GET", base + "/manifest");
  if (!m.ok() || m->status != 200) return Failed("GET manifest", m);
  ++counters.manifests;
  // The signature over the exact bytes received, before anything in them is believed.
  EP_ASSIGN_OR_RETURN(std::string sig, crypto::Base64Decode(m->Header("x-signature")));
  Status signed_ok = crypto::Ed25519Verify(settings_.signing_pub_pem, m->body, sig);
  if (!signed_ok.ok()) {
    ++counters.refused;
    return signed_ok.error().WithContext("manifest of " + variant_id);
  }
  EP_ASSIGN_OR_RETURN(wire::VariantManifest manifest, wire::ParseManifest(m->body));
  if (manifest.variant_id != variant_id) {
    ++counters.refused;
    return MakeError(ErrorKind::kPermissionDenied, "manifest_mismatch",
                     "asked for " + variant_id + ", signed for " + manifest.variant_id);
  }
  auto p = Call("GET", base + "/payload");
  if (!p.ok() || p->status != 200) return Failed("GET payload", p);
  counters.payload_bytes += static_cast<long>(p->body.size());
  if (static_cast<std::int64_t>(p->body.size()) != manifest.payload.size_bytes ||
      crypto::Sha256Hex(p->body) != manifest.payload.sha256) {
    ++counters.refused;
    return MakeError(ErrorKind::kPermissionDenied, "payload_digest_mismatch",
                     "payload of " + variant_id + " does not match its signed manifest");
  }
  auto e = Call("POST", base + "/events", R"({"event": "installed"})");
  if (!e.ok() || e->status != 200) return Failed("POST installed event", e);
  ++counters.installs;
  installed_ = variant_id;
  accuracy_ = manifest.metrics.accuracy;
  // The reporter runs on its interval from the install on (a real agent's first report of the
  // new variant carries the probe it ran when the variant was loaded).
  next_report_ = SimClock::now() + settings_.telemetry_interval;
  return Ok();
}

Status SimDevice::Report(SimCounters& counters) {
  if (!installed_) return Ok();
  wire::TelemetryReport r;
  r.seq = ++seq_;
  r.timestamp_ms = static_cast<std::int64_t>(std::time(nullptr)) * 1000;
  r.variant_id = *installed_;
  r.probe_accuracy = accuracy_;
  r.probe_latency = wire::LatencyQuantiles{settings_.probe_p95_ms * 0.6, settings_.probe_p95_ms,
                                           settings_.probe_p95_ms * 1.2, 50};
  r.feedback_accuracy = accuracy_;
  r.feedback_count = 10;
  wire::TelemetryBatch batch;
  batch.reports.push_back(r);
  auto t = Call("POST", "/agent/v1/telemetry", json::Serialize(wire::ToJson(batch)));
  if (!t.ok() || t->status != 200) {
    --seq_;  // not stored: the same seq goes again next time
    return Failed("POST telemetry", t);
  }
  ++counters.reports;
  return Ok();
}

}  // namespace edgeprune::bench
