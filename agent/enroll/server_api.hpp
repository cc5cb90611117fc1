#pragma once
// The agent's side of the agent API (/agent/v1): enroll over server-authenticated TLS, then
// renew, profile and heartbeat over mTLS with the device certificate. Non-2xx answers become
// Errors carrying the server's error code and message, with a kind from the status (401 →
// kUnauthenticated, 403 → kPermissionDenied, other 4xx → kInvalidArgument, 5xx → kUnavailable)
// and a Retry: permanent for a 4xx other than 401, 403 and 429 (the same request is refused
// again), transient for the rest and for transport failures.
//
// Thread-safety: not thread-safe (one keep-alive connection); one per agent loop.

#include <chrono>
#include <memory>
#include <string>

#include "edgeprune/common/budget.hpp"
#include "edgeprune/common/https_client.hpp"
#include "edgeprune/common/result.hpp"
#include "edgeprune/common/wire/enroll.hpp"
#include "edgeprune/common/wire/heartbeat.hpp"
#include "edgeprune/common/wire/profile.hpp"

namespace edgeprune::agent {

struct ServerUrl {
  std::string host;
  std::uint16_t port = 443;
};

// "https://host[:port]" with an optional trailing '/'; anything else is "invalid_server_url".
Result<ServerUrl> ParseServerUrl(const std::string& url);

struct ServerApiOptions {
  std::string server_url;
  std::string server_ca_file;  // trusted CA for the server certificate
  std::string cert_file;       // device certificate; empty for enrollment
  std::string key_file;
  std::chrono::milliseconds timeout{10000};
};

class ServerApi {
 public:
  static Result<std::unique_ptr<ServerApi>> Connect(const ServerApiOptions& options);

  Result<wire::CertificateGrant> Enroll(const wire::EnrollRequest& request);
  Result<wire::CertificateGrant> Renew(const std::string& csr_pem);
  Result<Budget> PutProfile(const wire::DeviceProfile& profile);
  Result<wire::HeartbeatResponse> Heartbeat(const wire::Heartbeat& heartbeat);
  // POST /agent/v1/variants/{id}/events: event is installed, refused or check_failed.
  Status PostVariantEvent(const std::string& variant_id, const std::string& event,
                          const std::string& reason);

  // The underlying keep-alive connection, for the variant download and telemetry calls.
  http::HttpsClient* client() { return client_.get(); }

 private:
  explicit ServerApi(std::unique_ptr<http::HttpsClient> client) : client_(std::move(client)) {}
  Result<boost::json::object> Call(const std::string& method, const std::string& target,
                                   const boost::json::object& body);
  std::unique_ptr<http::HttpsClient> client_;
};

}  // namespace edgeprune::agent
