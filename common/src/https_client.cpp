#include "edgeprune/common/https_client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cctype>
#include <optional>

#include "edgeprune/common/tls.hpp"

namespace edgeprune::http {
namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = boost::asio::ip::tcp;
using error_code = boost::system::error_code;

namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool IsIpLiteral(const std::string& host) {
  error_code ec;
  net::ip::make_address(host, ec);
  return !ec;
}

bool HasControlChars(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char c) { return c == '\r' || c == '\n' || c == '\0'; });
}

// Starts an async operation and runs the io_context until it completes. The operation's own
// deadline (tcp_stream::expires_after or a timer) guarantees completion.
template <typename Start>
error_code RunToCompletion(net::io_context& ioc, Start&& start) {
  error_code result = net::error::would_block;
  start([&result](error_code ec, auto&&...) { result = ec; });
  ioc.restart();
  ioc.run();
  return result;
}

bool IsTimeout(const error_code& ec) {
  return ec == beast::error::timeout || ec == net::error::timed_out;
}

}  // namespace

std::string ClientResponse::Header(std::string_view name) const {
  auto it = headers.find(Lower(name));
  return it == headers.end() ? std::string() : it->second;
}

struct HttpsClient::Connection {
  net::io_context ioc;
  beast::ssl_stream<beast::tcp_stream> stream;
  beast::flat_buffer buffer;
  bool used = false;  // at least one exchange completed on it

  explicit Connection(net::ssl::context& ctx) : stream(ioc, ctx) {}
  beast::tcp_stream& tcp() { return beast::get_lowest_layer(stream); }
};

HttpsClient::HttpsClient(ClientOptions options) : options_(std::move(options)) {
  if (options_.sni_host.empty()) options_.sni_host = options_.host;
}

HttpsClient::~HttpsClient() { Close(); }

bool HttpsClient::connected() const { return conn_ != nullptr; }

void HttpsClient::Close() {
  if (!conn_) return;
  // Best effort close_notify; the deadline keeps a silent peer from holding us.
  conn_->tcp().expires_after(std::min(options_.timeout, std::chrono::milliseconds(2000)));
  RunToCompletion(conn_->ioc, [&](auto handler) { conn_->stream.async_shutdown(handler); });
  error_code ignored;
  conn_->tcp().socket().close(ignored);
  conn_.reset();
}

Status HttpsClient::Connect() {
  if (!options_.tls) {
    return MakeError(ErrorKind::kInvalidArgument, "invalid_request",
                     "HTTPS client for " + options_.host + " has no TLS context");
  }
  const std::string where = options_.host + ":" + std::to_string(options_.port);
  auto conn = std::make_unique<Connection>(*options_.tls);

  // Resolve under a timer: the resolver has no deadline of its own.
  tcp::resolver resolver(conn->ioc);
  tcp::resolver::results_type endpoints;
  net::steady_timer timer(conn->ioc, options_.timeout);
  bool timed_out = false;
  error_code ec = RunToCompletion(conn->ioc, [&](auto handler) {
    timer.async_wait([&](error_code tec) {
      if (!tec) {
        timed_out = true;
        resolver.cancel();
      }
    });
    resolver.async_resolve(options_.host, std::to_string(options_.port),
                           [&, handler](error_code rec, tcp::resolver::results_type r) mutable {
                             timer.cancel();
                             endpoints = std::move(r);
                             handler(rec);
                           });
  });
  if (timed_out) {
    return MakeError(ErrorKind::kTimeout, "timeout", "resolving " + options_.host + " timed out");
  }
  if (ec) {
    return MakeError(ErrorKind::kUnavailable, "resolve_failed",
                     "cannot resolve " + options_.host + ": " + ec.message());
  }

  conn->tcp().expires_after(options_.timeout);
  ec = RunToCompletion(conn->ioc,
                       [&](auto handler) { conn->tcp().async_connect(endpoints, handler); });
  if (ec) {
    if (IsTimeout(ec)) {
      return MakeError(ErrorKind::kTimeout, "timeout", "connecting to " + where + " timed out");
    }
    return MakeError(ErrorKind::kUnavailable, "connect_failed",
                     "cannot connect to " + where + ": " + ec.message());
  }
  conn->tcp().socket().set_option(tcp::no_delay(true), ec);

  SSL* ssl = conn->stream.native_handle();
  // Name checks join chain verification, so a mismatch fails the handshake.
  if (IsIpLiteral(options_.host)) {
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), options_.host.c_str());
  } else {
    SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    SSL_set1_host(ssl, options_.host.c_str());
  }
  if (!IsIpLiteral(options_.sni_host)) SSL_set_tlsext_host_name(ssl, options_.sni_host.c_str());

  conn->tcp().expires_after(options_.timeout);
  ec = RunToCompletion(conn->ioc, [&](auto handler) {
    conn->stream.async_handshake(net::ssl::stream_base::client, handler);
  });
  if (ec) {
    if (IsTimeout(ec)) {
      return MakeError(ErrorKind::kTimeout, "timeout", "TLS handshake with " + where + " timed out");
    }
    std::string why = tls::VerifyFailureOf(ssl);
    return MakeError(ErrorKind::kUnavailable, "tls_handshake_failed",
                     "TLS handshake with " + where + " failed: " +
                         (why.empty() ? ec.message() : "certificate verify failed: " + why));
  }
  conn_ = std::move(conn);
  ++connections_opened_;
  return Ok();
}

namespace {

// The request line and headers every request carries; caller headers last, so they may
// override the defaults (e.g. "Connection: close").
template <typename Body>
void SetHeaders(bhttp::request<Body>& req, const ClientOptions& options,
                const ClientRequest& request) {
  std::string host_header =
      options.host.find(':') != std::string::npos ? "[" + options.host + "]" : options.host;
  if (options.port != 443) host_header += ":" + std::to_string(options.port);
  req.set(bhttp::field::host, host_header);
  req.set(bhttp::field::user_agent, options.user_agent);
  req.keep_alive(true);
  for (const auto& [name, value] : request.headers) req.set(name, value);
}

}  // namespace

Result<ClientResponse> HttpsClient::SendOnce(const ClientRequest& request, const FileBody* file,
                                             bool& retryable) {
  retryable = false;
  const std::string what = request.method + " " + request.target + " on " + options_.host + ":" +
                           std::to_string(options_.port);
  const auto verb = bhttp::string_to_verb(request.method);

  // The file is opened before connecting: a missing file is the caller's problem, not the link's.
  bhttp::request<bhttp::file_body> file_req{verb, request.target, 11};
  if (file) {
    error_code fec;
    file_req.body().open(file->path.c_str(), beast::file_mode::scan, fec);
    if (fec) {
      return MakeError(ErrorKind::kIo, "file_unreadable",
                       "cannot read '" + file->path + "': " + fec.message(), Retry::kPermanent);
    }
    SetHeaders(file_req, options_, request);
    file_req.set(bhttp::field::content_type, file->content_type);
    file_req.prepare_payload();
  }

  const bool reused = conn_ != nullptr && conn_->used;
  if (!conn_) EP_RETURN_IF_ERROR(Connect());
  Connection& c = *conn_;

  error_code ec;
  if (file) {
    // Header first, then the body piece by piece, so each piece's size is the body bytes sent.
    bhttp::request_serializer<bhttp::file_body> sr{file_req};
    sr.split(true);
    c.tcp().expires_after(options_.timeout);
    ec = RunToCompletion(c.ioc, [&](auto handler) { bhttp::async_write_header(c.stream, sr, handler); });
    const std::uint64_t total = file_req.body().size();
    std::uint64_t sent = 0;
    while (!ec && !sr.is_done()) {
      std::size_t n = 0;
      c.tcp().expires_after(options_.timeout);
      ec = RunToCompletion(c.ioc, [&](auto handler) {
        bhttp::async_write_some(c.stream, sr, [&n, handler](error_code e, std::size_t k) mutable {
          n = k;
          handler(e);
        });
      });
      sent += n;
      if (!ec && file->on_progress) file->on_progress(std::min(sent, total), total);
    }
  } else {
    bhttp::request<bhttp::string_body> req{verb, request.target, 11};
    SetHeaders(req, options_, request);
    req.body() = request.body;
    req.prepare_payload();
    c.tcp().expires_after(options_.timeout);
    ec = RunToCompletion(c.ioc, [&](auto handler) { bhttp::async_write(c.stream, req, handler); });
  }
  if (ec && file && !IsTimeout(ec)) {
    // A server refuses an upload from its headers (401, 413) and closes the connection while
    // the body is still on its way: its answer, when it arrived, says more than "broken pipe".
    bool ignored = false;
    auto early = ReadResponse(false, what, true, ignored);
    if (early.ok()) return early;
  }
  if (ec) {
    conn_.reset();
    if (IsTimeout(ec)) {
      return MakeError(ErrorKind::kTimeout, "timeout", "sending " + what + " timed out");
    }
    retryable = reused;
    return MakeError(ErrorKind::kIo, "send_failed", "sending " + what + ": " + ec.message());
  }
  return ReadResponse(verb == bhttp::verb::head, what, reused, retryable);
}

Result<ClientResponse> HttpsClient::ReadResponse(bool head, const std::string& what, bool reused,
                                                 bool& retryable) {
  if (!conn_) {
    return MakeError(ErrorKind::kIo, "receive_failed", "no connection for the response to " + what);
  }
  Connection& c = *conn_;
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(options_.body_limit);
  // A response to HEAD announces a body it does not carry.
  if (head) parser.skip(true);
  c.tcp().expires_after(options_.timeout);
  error_code ec = RunToCompletion(
      c.ioc, [&](auto handler) { bhttp::async_read(c.stream, c.buffer, parser, handler); });
  if (ec) {
    const bool nothing_received = !parser.got_some() && c.buffer.size() == 0;
    conn_.reset();
    if (IsTimeout(ec)) {
      return MakeError(ErrorKind::kTimeout, "timeout", "waiting for the response to " + what +
                                                           " timed out");
    }
    if (ec == bhttp::error::body_limit) {
      return MakeError(ErrorKind::kPayloadTooLarge, "response_too_large",
                       "response to " + what + " is larger than " +
                           std::to_string(options_.body_limit) + " bytes");
    }
    retryable = reused && nothing_received;
    // In TLS 1.3 the server checks our client certificate after our side of the handshake has
    // finished: its refusal arrives as an alert on the first read of a fresh connection.
    if (!reused && ec.category() == net::error::get_ssl_category()) {
      return MakeError(ErrorKind::kUnavailable, "tls_handshake_failed",
                       "TLS with " + options_.host + ":" + std::to_string(options_.port) +
                           " failed: " + ec.message());
    }
    // Parser errors (bad status line, bad chunk ...) mean the peer is not speaking HTTP/1.1.
    if (ec.category() == bhttp::make_error_code(bhttp::error::bad_version).category() &&
        ec != bhttp::error::end_of_stream && ec != bhttp::error::partial_message) {
      return MakeError(ErrorKind::kIo, "invalid_response",
                       "malformed response to " + what + ": " + ec.message());
    }
    return MakeError(ErrorKind::kIo, "receive_failed",
                     "reading the response to " + what + ": " + ec.message());
  }

  auto res = parser.release();
  ClientResponse out;
  out.status = static_cast<int>(res.result_int());
  for (const auto& field : res) {
    std::string name = Lower(field.name_string());
    auto [it, inserted] = out.headers.emplace(name, std::string(field.value()));
    if (!inserted) it->second += ", " + std::string(field.value());
  }
  out.body = std::move(res.body());
  c.used = true;
  if (!res.keep_alive()) {
    error_code ignored;
    c.tcp().socket().close(ignored);
    conn_.reset();
  }
  return out;
}

Status HttpsClient::Validate(const ClientRequest& request) const {
  if (bhttp::string_to_verb(request.method) == bhttp::verb::unknown) {
    return MakeError(ErrorKind::kInvalidArgument, "invalid_request",
                     "unknown HTTP method '" + request.method + "'");
  }
  if (request.target.empty() || request.target[0] != '/' ||
      request.target.find_first_of(" \r\n\t") != std::string::npos) {
    return MakeError(ErrorKind::kInvalidArgument, "invalid_request",
                     "request target '" + request.target + "' must start with '/' and hold no spaces");
  }
  for (const auto& [name, value] : request.headers) {
    if (name.empty() || HasControlChars(name) || HasControlChars(value) ||
        name.find_first_of(" :") != std::string::npos) {
      return MakeError(ErrorKind::kInvalidArgument, "invalid_request",
                       "header '" + name + "' has an invalid name or value");
    }
  }
  return Ok();
}

Result<ClientResponse> HttpsClient::Send(const ClientRequest& request) {
  EP_RETURN_IF_ERROR(Validate(request));
  bool retryable = false;
  auto result = SendOnce(request, nullptr, retryable);
  if (!result.ok() && retryable) {
    // The server closed the idle keep-alive connection before reading this request.
    result = SendOnce(request, nullptr, retryable);
  }
  return result;
}

Result<ClientResponse> HttpsClient::SendFile(const ClientRequest& request, const FileBody& file) {
  EP_RETURN_IF_ERROR(Validate(request));
  bool retryable = false;
  auto result = SendOnce(request, &file, retryable);
  if (!result.ok() && retryable) result = SendOnce(request, &file, retryable);
  return result;
}

Result<ClientResponse> HttpsClient::Get(const std::string& target, const HeaderList& headers) {
  return Send(ClientRequest{"GET", target, headers, {}});
}

Result<ClientResponse> HttpsClient::Post(const std::string& target, std::string body,
                                         const std::string& content_type,
                                         const HeaderList& headers) {
  ClientRequest request{"POST", target, headers, std::move(body)};
  request.headers.emplace_back("Content-Type", content_type);
  return Send(request);
}

}  // namespace edgeprune::http
