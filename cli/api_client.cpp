#include "cli/api_client.hpp"

#include <cctype>
#include <chrono>
#include <cstdio>

#include "edgeprune/common/json.hpp"
#include "edgeprune/common/log_safety.hpp"
#include "edgeprune/common/tls.hpp"

namespace edgeprune::ctl {
namespace {

std::int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// At most n characters of text that came from outside, escaped onto one line.
std::string Excerpt(const std::string& text, std::size_t n = 60) {
  std::string cut = text.substr(0, n);
  std::string out = log::Escape(cut);
  if (text.size() > n) out += "...";
  return out;
}

ErrorKind KindForStatus(int status) {
  switch (status) {
    case 400: return ErrorKind::kInvalidArgument;
    case 401: return ErrorKind::kUnauthenticated;
    case 403: return ErrorKind::kPermissionDenied;
    case 404: return ErrorKind::kNotFound;
    case 409: return ErrorKind::kConflict;
    case 413: return ErrorKind::kPayloadTooLarge;
    case 422: return ErrorKind::kFailedPrecondition;
    case 429: return ErrorKind::kResourceExhausted;
    case 503: return ErrorKind::kUnavailable;
    case 504: return ErrorKind::kTimeout;
    default: return ErrorKind::kInternal;
  }
}

}  // namespace

std::string UrlEncode(const std::string& text) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

Result<std::unique_ptr<ApiClient>> ApiClient::Open(Target target, ApiOptions options) {
  auto tls = tls::MakeClientContext({target.ca, "", ""});
  if (!tls.ok()) {
    return MakeError(ErrorKind::kInvalidArgument, "usage",
                     "the CA file is not usable: " + tls.error().message + " (--ca or the context's ca)");
  }
  http::ClientOptions client;
  client.host = target.host;
  client.port = target.port;
  client.tls = *tls;
  client.timeout = std::chrono::seconds(options.timeout_s);
  client.body_limit = options.max_response_bytes;
  client.user_agent = "edgeprune-cli";
  return std::unique_ptr<ApiClient>(new ApiClient(std::move(target), options, std::move(client)));
}

ApiClient::ApiClient(Target target, ApiOptions options, http::ClientOptions client)
    : target_(std::move(target)), options_(options), client_(std::move(client)) {}

std::string ApiClient::Redact(std::string text) const {
  if (target_.token.empty()) return text;
  for (auto at = text.find(target_.token); at != std::string::npos;
       at = text.find(target_.token, at)) {
    text.replace(at, target_.token.size(), "<token>");
  }
  return text;
}

http::ClientRequest ApiClient::Request(const std::string& method, const std::string& path) const {
  http::ClientRequest req;
  req.method = method;
  req.target = path;
  req.headers = {{"Accept", "application/json"}};
  if (!target_.token.empty()) req.headers.emplace_back("Authorization", "Bearer " + target_.token);
  if (options_.verbose) {
    std::fprintf(stderr, "> %s %s%s%s\n", method.c_str(), target_.url.c_str(), path.c_str(),
                 target_.token.empty() ? "" : " (Authorization: Bearer <token>)");
  }
  return req;
}

Result<Reply> ApiClient::Call(const std::string& method, const std::string& path,
                              const std::string& body) {
  auto req = Request(method, path);
  if (!body.empty()) {
    req.headers.emplace_back("Content-Type", "application/json");
    req.body = body;
  }
  const auto started = NowMs();
  return Finish(method + " " + path, client_.Send(req), started);
}

Result<Reply> ApiClient::Upload(const std::string& path, const std::string& file,
                                std::function<void(std::uint64_t, std::uint64_t)> on_progress) {
  auto req = Request("POST", path);
  const auto started = NowMs();
  http::FileBody body{file, "application/octet-stream", std::move(on_progress)};
  return Finish("POST " + path, client_.SendFile(req, body), started);
}

Error ApiClient::TransportError(const Error& e) const {
  const std::string where = target_.url;
  std::string line;
  if (e.code == "connect_failed" || e.code == "resolve_failed") {
    line = "cannot reach the server at " + where + ": " + e.message +
           " (is it running? check --server or the context)";
  } else if (e.code == "tls_handshake_failed") {
    const auto colon = e.message.find("failed: ");
    line = "TLS with " + where + " failed: " +
           (colon == std::string::npos ? e.message : e.message.substr(colon + 8)) +
           (target_.ca.empty() ? " (no CA file given: --ca)"
                               : " (is " + target_.ca + " the CA that signed the server's certificate?)");
  } else if (e.code == "timeout") {
    line = "the server at " + where + " did not answer in time: " + e.message + " (--timeout)";
  } else if (e.code == "response_too_large") {
    line = "the server at " + where + " sent an answer larger than " +
           std::to_string(options_.max_response_bytes) + " bytes; refused";
  } else if (e.code == "invalid_response" || e.code == "receive_failed" || e.code == "send_failed") {
    line = "the server at " + where + " broke the exchange: " + e.message;
  } else {
    line = e.message;
  }
  return MakeError(e.kind == ErrorKind::kInvalidArgument ? ErrorKind::kIo : e.kind, e.code,
                   Redact(line));
}

Result<Reply> ApiClient::Finish(const std::string& what, Result<http::ClientResponse> response,
                                std::int64_t started_ms) {
  if (!response.ok()) {
    client_.Close();
    if (options_.verbose) {
      std::fprintf(stderr, "< %s failed after %lld ms\n", what.c_str(),
                   static_cast<long long>(NowMs() - started_ms));
    }
    return TransportError(response.error());
  }
  Reply r;
  r.status = response->status;
  r.raw = std::move(response->body);
  if (options_.verbose) {
    std::fprintf(stderr, "< %d %s, %zu bytes in %lld ms, request id %s\n", r.status,
                 Redact(log::Escape(response->Header("content-type"))).c_str(), r.raw.size(),
                 static_cast<long long>(NowMs() - started_ms),
                 Redact(log::Escape(response->Header("x-request-id"))).c_str());
  }
  auto parsed = json::Parse(r.raw);
  const bool ok_status = r.status >= 200 && r.status < 300;
  if (!ok_status) {
    // The server's own error body: its code and message, as they are.
    if (parsed.ok() && parsed->is_object()) {
      const auto* err = json::FindField(parsed->as_object(), "error");
      if (err && err->is_object()) {
        auto code = json::GetString(err->as_object(), "code");
        auto message = json::GetString(err->as_object(), "message");
        if (code.ok() && message.ok()) {
          std::string hint = " (HTTP " + std::to_string(r.status) + ")";
          if (r.status == 401) hint += "; log in again: edgeprune login";
          return MakeError(KindForStatus(r.status), Redact(log::Escape(*code)),
                           Redact(log::Escape(*message)) + hint);
        }
      }
    }
    return MakeError(KindForStatus(r.status), "unexpected_response",
                     Redact("the server at " + target_.url + " answered " + what + " with HTTP " +
                            std::to_string(r.status) + " and a body that is not an edgeprune error: '" +
                            Excerpt(r.raw) + "'"));
  }
  if (!parsed.ok()) {
    return MakeError(ErrorKind::kIo, "invalid_response",
                     Redact("the server at " + target_.url + " answered " + what +
                            " with something that is not JSON (" + std::to_string(r.raw.size()) +
                            " bytes: '" + Excerpt(r.raw) + "'); is this an edgeprune server?"));
  }
  r.json = std::move(parsed).value();
  return r;
}

}  // namespace edgeprune::ctl
