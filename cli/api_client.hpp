#pragma once
// The CLI's calls to the server, over the common HttpsClient: the bearer token on every request,
// the server's JSON checked before anyone reads it, and every failure turned into one Error whose
// message is one clear line (what failed, where, and what to check). The server's own errors keep
// their code and message. Nothing this class returns or prints contains the token: -v shows
// requests with the Authorization header redacted, and text that came from the server passes
// through Redact() in case a broken or hostile server echoes it.
//
// Thread-safety: not thread-safe; one ApiClient per thread (the CLI has one).

#include <boost/json.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "cli/contexts.hpp"
#include "edgeprune/common/https_client.hpp"
#include "edgeprune/common/result.hpp"

namespace edgeprune::ctl {

struct Reply {
  int status = 0;
  std::string raw{};        // the body exactly as the server sent it (for -o json)
  boost::json::value json;  // parsed
};

struct ApiOptions {
  bool verbose = false;                     // one line per request and per response on stderr
  int timeout_s = 30;                       // per network step (connect, send, each read)
  std::size_t max_response_bytes = 32u << 20;  // a bigger answer is an error, not a crash
};

class ApiClient {
 public:
  // Builds the TLS context from target.ca ("ca_unreadable" when the file is bad).
  static Result<std::unique_ptr<ApiClient>> Open(Target target, ApiOptions options);

  // 2xx with a JSON body → the Reply; anything else → an Error (see above).
  Result<Reply> Call(const std::string& method, const std::string& path,
                     const std::string& body = "");
  Result<Reply> Get(const std::string& path) { return Call("GET", path); }
  // Streams a file as the body (application/octet-stream); progress as HttpsClient::SendFile.
  Result<Reply> Upload(const std::string& path, const std::string& file,
                       std::function<void(std::uint64_t, std::uint64_t)> on_progress);

  // The text with every occurrence of the token replaced by "<token>".
  std::string Redact(std::string text) const;
  const Target& target() const { return target_; }

 private:
  ApiClient(Target target, ApiOptions options, http::ClientOptions client);
  Result<Reply> Finish(const std::string& what, Result<http::ClientResponse> response,
                       std::int64_t started_ms);
  Error TransportError(const Error& e) const;
  http::ClientRequest Request(const std::string& method, const std::string& path) const;

  Target target_;
  ApiOptions options_;
  http::HttpsClient client_;
};

// Percent-encodes a path segment or query value.
std::string UrlEncode(const std::string& text);

}  // namespace edgeprune::ctl
