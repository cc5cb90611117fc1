#include "download_test_server.hpp"

#include <gtest/gtest.h>

#include <charconv>
#include <cstdlib>
#include <iostream>

#include "edgeprune/common/crypto.hpp"
#include "edgeprune/common/json.hpp"
#include "edgeprune/common/tls.hpp"

namespace edgeprune::testing {
namespace {

[[noreturn]] void Die(const std::string& what) {
  std::cerr << "agent test server: " << what << "\n";
  std::abort();
}

}  // namespace

AgentTestServer::AgentTestServer(const std::string& dir) : pki_(MakeTestPki(dir)) {
  auto router = std::make_shared<http::Router>();
  auto add = [&](http::Verb verb, const char* pattern,
                 Result<http::Response> (AgentTestServer::*fn)(const http::RequestContext&)) {
    auto st = router->Add({verb, pattern,
                           [this, fn](const http::RequestContext& c) { return (this->*fn)(c); },
                           http::Auth::kPublic, pattern});
    if (!st.ok()) Die(st.error().ToString());
  };
  add(http::Verb::get, "/agent/v1/variants/{id}/manifest", &AgentTestServer::Manifest);
  add(http::Verb::get, "/agent/v1/variants/{id}/payload", &AgentTestServer::Payload);
  add(http::Verb::get, "/agent/v1/variants/{id}/probe", &AgentTestServer::Probe);
  add(http::Verb::post, "/agent/v1/telemetry", &AgentTestServer::Telemetry);
  auto tls = tls::MakeServerContext({pki_.server_cert(), pki_.server_key(), "",
                                     tls::ClientCertMode::kNone});
  if (!tls.ok()) Die(tls.error().ToString());
  http::ServerOptions options;
  options.threads = 1;
  options.body_limit = 8 * 1024 * 1024;
  server_ = std::make_unique<http::HttpsServer>(options, *tls, router, nullptr);
  auto port = server_->Start();
  if (!port.ok()) Die(port.error().ToString());
  port_ = *port;
}

AgentTestServer::~AgentTestServer() {
  server_->Stop();
  server_->Wait();
}

void AgentTestServer::AddVariant(const std::string& id, TestVariant v) {
  std::lock_guard lock(mu_);
  variants_[id] = std::move(v);
}

TestVariant AgentTestServer::Variant(const std::string& id) const {
  std::lock_guard lock(mu_);
  return variants_.at(id);
}

std::unique_ptr<http::HttpsClient> AgentTestServer::MakeClient() const {
  auto tls = tls::MakeClientContext({pki_.ca_cert()});
  if (!tls.ok()) Die(tls.error().ToString());
  http::ClientOptions o;
  o.host = "127.0.0.1";
  o.port = port_;
  o.tls = *tls;
  return std::make_unique<http::HttpsClient>(o);
}

std::vector<std::string> AgentTestServer::ranges() const {
  std::lock_guard lock(mu_);
  return ranges_;
}

std::map<std::int64_t, wire::TelemetryReport> AgentTestServer::stored() const {
  std::lock_guard lock(mu_);
  return stored_;
}

Result<http::Response> AgentTestServer::Manifest(const http::RequestContext& ctx) {
  std::lock_guard lock(mu_);
  auto it = variants_.find(std::string(ctx.PathParam("id").value_or("")));
  if (it == variants_.end()) return MakeError(ErrorKind::kNotFound, "no_variant", "no such variant");
  auto r = http::TextResponse(it->second.manifest, "application/json");
  if (!it->second.signature.empty()) {
    r.WithHeader("X-Signature", crypto::Base64Encode(it->second.signature));
  }
  return r;
}

Result<http::Response> AgentTestServer::Payload(const http::RequestContext& ctx) {
  const int n = payload_requests.fetch_add(1);
  const std::string range(ctx.Header("range").value_or(""));
  std::string payload;
  {
    std::lock_guard lock(mu_);
    ranges_.push_back(range);
    auto it = variants_.find(std::string(ctx.PathParam("id").value_or("")));
    if (it == variants_.end()) return MakeError(ErrorKind::kNotFound, "no_variant", "no such variant");
    payload = it->second.payload;
  }
  if (fail_payload_after >= 0 && n >= fail_payload_after) {
    return MakeError(ErrorKind::kUnavailable, "overloaded", "try again later");
  }
  if (!honour_range || range.rfind("bytes=", 0) != 0) {
    return http::TextResponse(payload, "application/octet-stream");
  }
  std::string_view spec(range);
  spec.remove_prefix(6);
  const auto dash = spec.find('-');
  std::size_t first = 0;
  std::size_t last = payload.size() - 1;
  std::from_chars(spec.data(), spec.data() + dash, first);
  if (dash + 1 < spec.size()) std::from_chars(spec.data() + dash + 1, spec.data() + spec.size(), last);
  if (first >= payload.size()) {
    return http::ErrorResponse(http::HttpStatus::range_not_satisfiable, "range_not_satisfiable",
                               "range starts beyond the payload");
  }
  last = std::min(last, payload.size() - 1);
  auto r = http::TextResponse(payload.substr(first, last - first + 1), "application/octet-stream",
                              http::HttpStatus::partial_content);
  r.WithHeader("Content-Range", "bytes " + std::to_string(first) + "-" + std::to_string(last) + "/" +
                                    std::to_string(payload.size()));
  return r;
}

Result<http::Response> AgentTestServer::Probe(const http::RequestContext& ctx) {
  probe_requests.fetch_add(1);
  std::lock_guard lock(mu_);
  auto it = variants_.find(std::string(ctx.PathParam("id").value_or("")));
  if (it == variants_.end() || it->second.probe.empty()) {
    return MakeError(ErrorKind::kNotFound, "probe_not_found", "no probe set");
  }
  return http::TextResponse(it->second.probe, "application/octet-stream");
}

Result<http::Response> AgentTestServer::Telemetry(const http::RequestContext& ctx) {
  telemetry_posts.fetch_add(1);
  if (telemetry_status != 200) {
    return http::ErrorResponse(static_cast<http::HttpStatus>(telemetry_status.load()),
                               "unavailable", "telemetry store is down");
  }
  EP_ASSIGN_OR_RETURN(auto batch, wire::ParseTelemetryBatch(ctx.body));
  std::lock_guard lock(mu_);
  std::int64_t acked = stored_.empty() ? 0 : stored_.rbegin()->first;
  for (auto& r : batch.reports) {
    if (ack_cap >= 0 && r.seq > ack_cap) break;
    acked = std::max(acked, r.seq);
    stored_.emplace(r.seq, std::move(r));  // a duplicate seq keeps the first copy
  }
  return http::JsonResponse(wire::ToJson(wire::TelemetryAck{acked}));
}

}  // namespace edgeprune::testing
