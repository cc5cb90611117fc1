#pragma once
// A small synchronous HTTPS client on Boost.Beast for the agent and for tests.
//
// One keep-alive connection per client, opened on first use. A request sent on a reused
// connection that fails before any response byte arrived (the server had closed it) is retried
// once on a fresh connection; nothing else is retried. Every step (resolve, connect, handshake,
// write, read) runs under its own deadline of `timeout`. The server certificate must chain to
// the context's CA and match `host` (a DNS name, or an IP literal matched against IP SANs); SNI
// carries `sni_host` (defaults to host; never sent for IP literals).
//
// SendFile streams a request body from a file in pieces (uploads of any size in bounded memory)
// and reports the bytes sent after each piece.
//
// Errors: "invalid_request" (kInvalidArgument), "resolve_failed", "connect_failed",
// "tls_handshake_failed" (kUnavailable; the message says why, e.g. "hostname mismatch"; also
// when the server refuses our client certificate, which TLS 1.3 reports on the first read),
// "timeout" (kTimeout), "send_failed", "receive_failed", "invalid_response" (kIo),
// "response_too_large" (kPayloadTooLarge); SendFile also "file_unreadable" (kIo).
//
// Thread-safety: not thread-safe; use one client per thread.

#include <boost/asio/ssl/context.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "edgeprune/common/result.hpp"

namespace edgeprune::http {

struct ClientOptions {
  std::string host{};
  std::uint16_t port = 443;
  std::shared_ptr<boost::asio::ssl::context> tls{};  // from tls::MakeClientContext
  std::chrono::milliseconds timeout{10000};
  std::string sni_host{};                              // defaults to host
  std::size_t body_limit = 64 * 1024 * 1024;         // largest response body accepted
  std::string user_agent = "edgeprune";
};

using HeaderList = std::vector<std::pair<std::string, std::string>>;

struct ClientRequest {
  std::string method = "GET";
  std::string target = "/";
  HeaderList headers{};
  std::string body{};
};

struct ClientResponse {
  int status = 0;
  std::map<std::string, std::string> headers{};  // lower-case names; repeated headers joined ", "
  std::string body{};
  // Case-insensitive lookup; "" when absent.
  std::string Header(std::string_view name) const;
};

// The body of a SendFile request. on_progress (optional) runs on the calling thread after each
// piece written, with the body bytes sent so far and the file's size.
struct FileBody {
  std::string path{};
  std::string content_type = "application/octet-stream";
  std::function<void(std::uint64_t sent, std::uint64_t total)> on_progress{};
};

class HttpsClient {
 public:
  explicit HttpsClient(ClientOptions options);
  ~HttpsClient();
  HttpsClient(const HttpsClient&) = delete;
  HttpsClient& operator=(const HttpsClient&) = delete;

  Result<ClientResponse> Send(const ClientRequest& request);
  Result<ClientResponse> Get(const std::string& target, const HeaderList& headers = {});
  Result<ClientResponse> Post(const std::string& target, std::string body,
                              const std::string& content_type = "application/json",
                              const HeaderList& headers = {});
  // request.body is ignored; the body is the file, read piece by piece while it is sent.
  Result<ClientResponse> SendFile(const ClientRequest& request, const FileBody& file);
  // Closes the connection (TLS close_notify under a short deadline); the next request reconnects.
  void Close();

  // Connections opened so far (for tests and diagnostics of keep-alive).
  std::size_t connections_opened() const { return connections_opened_; }
  bool connected() const;

 private:
  struct Connection;
  Status Connect();
  Status Validate(const ClientRequest& request) const;
  Result<ClientResponse> SendOnce(const ClientRequest& request, const FileBody* file,
                                  bool& retryable);
  Result<ClientResponse> ReadResponse(bool head, const std::string& what, bool reused,
                                      bool& retryable);

  ClientOptions options_;
  std::unique_ptr<Connection> conn_;
  std::size_t connections_opened_ = 0;
};

}  // namespace edgeprune::http
