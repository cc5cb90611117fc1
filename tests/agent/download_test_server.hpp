#pragma once
// A real HTTPS server on 127.0.0.1:0 (edgeprune::http, test PKI) with the agent-facing routes the
// agent's download and telemetry code talks to, and knobs to make it misbehave:
//   GET  /agent/v1/variants/{id}/manifest  manifest bytes + X-Signature (base64), 404 if unknown
//   GET  /agent/v1/variants/{id}/payload   honours Range unless told not to; can fail from the
//                                          n-th payload request on (an interrupted download)
//   GET  /agent/v1/variants/{id}/probe     the variant's probe bytes, 404 when it has none
//   POST /agent/v1/telemetry               stores reports by seq (dropping duplicates), acks the
//                                          highest stored seq; can fail or ack less
//
// Thread-safety: knobs are atomics; recorded requests are guarded by a mutex.

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "edgeprune/common/https_client.hpp"
#include "edgeprune/common/wire/telemetry.hpp"
#include "common/http/server.hpp"
#include "support/test_pki.hpp"

namespace edgeprune::testing {

struct TestVariant {
  std::string manifest;
  std::string signature;  // raw; empty: no X-Signature header
  std::string payload;
  std::string probe;  // empty: the variant has no probe set (404)
};

class AgentTestServer {
 public:
  // dir must outlive the server (PKI files live there).
  explicit AgentTestServer(const std::string& dir);
  ~AgentTestServer();

  // Adds or replaces a variant.
  void AddVariant(const std::string& id, TestVariant v);
  TestVariant Variant(const std::string& id) const;
  std::unique_ptr<http::HttpsClient> MakeClient() const;
  std::uint16_t port() const { return port_; }

  // Payload knobs and records.
  std::atomic<bool> honour_range{true};
  std::atomic<int> fail_payload_after{-1};  // 503 from this payload request on; -1: never
  std::atomic<int> payload_requests{0};
  std::atomic<int> probe_requests{0};
  std::vector<std::string> ranges() const;

  // Telemetry knobs and records.
  std::atomic<int> telemetry_status{200};     // answer this status instead of storing when != 200
  std::atomic<std::int64_t> ack_cap{-1};      // ack at most this seq; -1: no cap
  std::atomic<int> telemetry_posts{0};
  std::map<std::int64_t, wire::TelemetryReport> stored() const;

 private:
  Result<http::Response> Manifest(const http::RequestContext& ctx);
  Result<http::Response> Payload(const http::RequestContext& ctx);
  Result<http::Response> Probe(const http::RequestContext& ctx);
  Result<http::Response> Telemetry(const http::RequestContext& ctx);

  TestPki pki_;
  mutable std::mutex mu_;
  std::map<std::string, TestVariant> variants_;
  std::vector<std::string> ranges_;
  std::map<std::int64_t, wire::TelemetryReport> stored_;
  std::unique_ptr<http::HttpsServer> server_;
  std::uint16_t port_ = 0;
};

}  // namespace edgeprune::testing
