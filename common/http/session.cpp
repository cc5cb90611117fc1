#include "common/http/session.hpp"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>

#include <fcntl.h>
#include <openssl/rand.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string>

#include "edgeprune/common/crypto.hpp"
#include "edgeprune/common/fs.hpp"
#include "edgeprune/common/log.hpp"

namespace edgeprune::http {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;

bool ServerCore::AcquireConnection(const std::string& address) {
  std::lock_guard lock(connections_mu_);
  if (options.max_connections > 0 && connections_ >= options.max_connections) return false;
  std::size_t& mine = per_client_[address];
  if (options.max_connections_per_client > 0 && mine >= options.max_connections_per_client) {
    if (mine == 0) per_client_.erase(address);
    return false;
  }
  ++mine;
  ++connections_;
  return true;
}

void ServerCore::ReleaseConnection(const std::string& address) {
  std::lock_guard lock(connections_mu_);
  --connections_;
  auto it = per_client_.find(address);
  if (it != per_client_.end() && --it->second == 0) per_client_.erase(it);
}

bool ServerCore::Register(Session* s, std::weak_ptr<Session> w) {
  std::lock_guard lock(mutex_);
  if (draining_) return false;
  sessions_.emplace(s, std::move(w));
  return true;
}

void ServerCore::Unregister(Session* s) {
  bool drained = false;
  {
    std::lock_guard lock(mutex_);
    if (sessions_.erase(s) == 0) return;
    drained = draining_ && sessions_.empty();
  }
  if (drained && on_drained) on_drained();
}

std::size_t ServerCore::BeginDrain() {
  std::vector<std::shared_ptr<Session>> live;
  {
    std::lock_guard lock(mutex_);
    draining_ = true;
    draining_flag_.store(true, std::memory_order_release);
    for (auto& [ptr, weak] : sessions_) {
      if (auto s = weak.lock()) live.push_back(std::move(s));
    }
  }
  for (auto& s : live) s->Drain();
  return live.size();
}

namespace {

bool IsHttpParseError(const beast::error_code& ec) {
  return ec.category() == bhttp::make_error_code(bhttp::error::bad_target).category();
}

bool ValidRequestId(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  for (unsigned char c : id) {
    if (!std::isalnum(c) && c != '-' && c != '_' && c != '.') return false;
  }
  return true;
}

const std::string kSessionRoute = "unmatched";

// A request refused from its header has its body read and dropped (so the connection can serve
// the next request) only when it is this small; a bigger one closes the connection instead.
constexpr std::uint64_t kRefusedDiscardLimit = 64 * 1024;

}  // namespace

Session::Session(Socket&& socket, std::shared_ptr<ServerCore> core,
                 std::string remote_address)
    : stream_(std::move(socket), *core->tls),
      core_(std::move(core)),
      remote_address_(std::move(remote_address)) {}

Session::~Session() {
  if (registered_) core_->Unregister(this);
  core_->ReleaseConnection(remote_address_);
}

void Session::Run() {
  registered_ = core_->Register(this, weak_from_this());
  if (!registered_) return;  // draining: the socket closes as we go out of scope
  net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->OnRun(); });
}

void Session::Drain() {
  net::post(stream_.get_executor(), [self = shared_from_this()] {
    self->draining_ = true;
    if (!self->busy_) self->stream_.cancel();
  });
}

void Session::OnRun() {
  stream_.expires_after(core_->options.handshake_timeout);
  stream_.async_handshake([self = shared_from_this()](beast::error_code ec) { self->OnHandshake(ec); });
}

void Session::OnHandshake(beast::error_code ec) {
  if (ec) {
    log::Get("http")->debug("TLS handshake failed: {}", ec.message());
    return;
  }
  // Only a chain the TLS layer verified against the client CA identifies anyone.
  if (auto peer = tls::PeerCertificateOf(stream_.native_handle()); peer && peer->verified) {
    peer_ = std::move(peer);
  }
  DoReadHeader();
}

void Session::DoReadHeader() {
  busy_ = false;
  if (draining_) return DoClose();
  parser_.reset();
  file_parser_.reset();
  spooled_.reset();
  discard_parser_.reset();
  response_.reset();
  // Between requests a connection holds no request: the last one's body, context and read buffer
  // are released (an idle fleet is thousands of these; a header needs 512 bytes to start).
  ctx_ = RequestContext{};
  scratch_.reset();
  if (buffer_.size() == 0) buffer_.shrink_to_fit();
  header_parser_.emplace();
  header_parser_->header_limit(static_cast<std::uint32_t>(core_->options.header_limit));
  header_parser_->body_limit(boost::none);  // judged by us once the header is in
  stream_.expires_after(core_->options.idle_timeout);
  bhttp::async_read_header(stream_, buffer_, *header_parser_,
                           [self = shared_from_this()](beast::error_code ec, std::size_t) {
                             self->OnHeader(ec);
                           });
}

void Session::OnHeader(beast::error_code ec) {
  if (ec == bhttp::error::end_of_stream) return DoClose();
  started_ = std::chrono::steady_clock::now();
  method_ = Verb::unknown;
  if (ec == bhttp::error::header_limit) {
    return SendError(HttpStatus::request_header_fields_too_large, "headers_too_large",
                     "the request header exceeds " + std::to_string(core_->options.header_limit) +
                         " bytes",
                     false);
  }
  if (ec && IsHttpParseError(ec)) {
    return SendError(HttpStatus::bad_request, "malformed_request",
                     "the request is not valid HTTP/1.1: " + ec.message(), false);
  }
  if (ec) {
    // Timeouts, resets, drain cancellation, a peer that closed without close_notify
    // (stream_truncated): nothing to answer; the connection just ends.
    if (ec != net::ssl::error::stream_truncated && ec != net::error::operation_aborted &&
        ec != beast::error::timeout) {
      log::Get("http")->debug("reading a request failed: {}", ec.message());
    }
    return;
  }
  busy_ = true;
  const auto& header = header_parser_->get();
  method_ = header.method();
  version_ = header.version();
  request_id_ = NextRequestId();
  if (auto it = header.find("x-request-id"); it != header.end() && ValidRequestId(it->value())) {
    request_id_ = std::string(it->value());
  }
  // Route and credentials from the header alone: no body byte is read for a request that is
  // refused anyway (an anonymous 60 MiB POST used to be buffered whole before its 401).
  ctx_ = RequestContext{};
  ctx_.method = header.method();
  ctx_.target = std::string(header.target());
  for (const auto& field : header) {
    std::string name(field.name_string());
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    auto [it, inserted] = ctx_.headers.emplace(std::move(name), std::string(field.value()));
    if (!inserted) it->second += ", " + std::string(field.value());
  }
  ctx_.peer_certificate = peer_;
  ctx_.request_id = request_id_;
  ctx_.remote_address = remote_address_;
  admission_ = core_->router->Admit(ctx_);
  if (admission_.refused) return Refuse(std::move(*admission_.refused));

  const std::uint64_t limit =
      admission_.route->max_body_bytes ? admission_.route->max_body_bytes : core_->options.body_limit;
  body_limit_ = limit;
  if (auto length = header_parser_->content_length(); length && *length > limit) {
    const bool expect_continue = beast::iequals(header[bhttp::field::expect], "100-continue");
    if (*length <= core_->options.discard_limit && !expect_continue) {
      discard_parser_.emplace(std::move(*header_parser_));
      stream_.expires_after(core_->options.read_timeout);
      return ReadDiscard();
    }
    return SendError(HttpStatus::payload_too_large, "payload_too_large",
                     "the request body of " + std::to_string(*length) + " bytes exceeds the limit of " +
                         std::to_string(limit) + " bytes",
                     false);
  }
  const bool expect_continue = beast::iequals(header[bhttp::field::expect], "100-continue");
  if (!admission_.route->spool_dir.empty()) {
    // A big upload: streamed to a private file, never held in memory (a 1 GiB model upload used
    // to be one 1 GiB string).
    if (auto spool = OpenSpool(admission_.route->spool_dir); !spool.ok()) {
      log::Get("http")->error("{} [{}]: cannot open a file for the request body: {}", ctx_.path,
                              request_id_, spool.error().ToString());
      return SendError(HttpStatus::service_unavailable, "upload_unavailable",
                       "the server cannot store the request body now; try again later", false);
    }
    file_parser_->body_limit(limit);
  } else {
    parser_.emplace(std::move(*header_parser_));
    parser_->body_limit(limit);
    // No body (most GETs): served at once. Reading an empty body still cost a trip through the
    // io_context and a deadline armed and cancelled.
    if (parser_->is_done()) return OnRequest({});
  }
  if (expect_continue) {
    // The client waits for this before sending its body (curl does for bodies over 1 MiB).
    static const std::string kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
    stream_.expires_after(core_->options.write_timeout);
    return net::async_write(stream_, net::buffer(kContinue),
                            [self = shared_from_this()](beast::error_code ec, std::size_t) {
                              if (!ec) self->ReadBody();
                            });
  }
  ReadBody();
}

void Session::Refuse(Router::Outcome outcome) {
  const auto& header = header_parser_->get();
  const auto length = header_parser_->content_length();
  const bool no_body = header_parser_->is_done() || (length && *length == 0);
  if (no_body) return Send(std::move(outcome.response), outcome.route_name, header.keep_alive());
  const bool expect_continue = beast::iequals(header[bhttp::field::expect], "100-continue");
  if (length && *length <= kRefusedDiscardLimit && !expect_continue) {
    after_discard_ = std::move(outcome);
    discard_parser_.emplace(std::move(*header_parser_));
    stream_.expires_after(core_->options.read_timeout);
    return ReadDiscard();
  }
  // Big, chunked or not yet sent (100-continue): answer and close rather than read it.
  Send(std::move(outcome.response), outcome.route_name, false);
}

Status Session::OpenSpool(const std::string& dir) {
  EP_RETURN_IF_ERROR(fs::EnsureDir(dir, 0700));
  auto spooled = std::make_shared<SpooledBody>();
  const std::string path = dir + "/body-" + crypto::RandomToken(12) + ".part";
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    return MakeError(ErrorKind::kIo, "io_error", "creating " + path + ": " + std::strerror(errno));
  }
  spooled->path = path;  // from here on, the file goes with the last reference
  SpoolFile file;
  file.native_handle(fd);
  file_parser_.emplace(std::move(*header_parser_));
  beast::error_code ec;
  file_parser_->get().body().reset(std::move(file), ec);
  if (ec) return MakeError(ErrorKind::kIo, "io_error", "opening " + path + ": " + ec.message());
  spooled_ = std::move(spooled);
  return Ok();
}

void Session::ReadBody() {
  stream_.expires_after(core_->options.read_timeout);
  if (file_parser_) return ReadSpooledPiece();
  // An in-memory body is small (the route's limit), so one deadline covers all of it.
  bhttp::async_read(stream_, buffer_, *parser_,
                    [self = shared_from_this()](beast::error_code ec, std::size_t) {
                      self->OnRequest(ec);
                    });
}

// A spooled upload may rightly take minutes (1 GiB at 10 MB/s): read_timeout bounds a stall, not
// the whole body. Each piece that arrives re-arms the deadline; a client that stops sending for
// read_timeout is cut off. The connection caps bound how many such slow uploads can be open.
void Session::ReadSpooledPiece() {
  bhttp::async_read_some(stream_, buffer_, *file_parser_,
                         [self = shared_from_this()](beast::error_code ec, std::size_t) {
                           if (ec || self->file_parser_->is_done()) return self->OnRequest(ec);
                           self->stream_.expires_after(self->core_->options.read_timeout);
                           self->ReadSpooledPiece();
                         });
}

void Session::ReadDiscard() {
  constexpr std::size_t kScratch = 16 * 1024;
  if (!scratch_) scratch_ = std::make_unique<char[]>(kScratch);
  discard_parser_->get().body().data = scratch_.get();
  discard_parser_->get().body().size = kScratch;
  bhttp::async_read(stream_, buffer_, *discard_parser_,
                    [self = shared_from_this()](beast::error_code ec, std::size_t) {
                      self->OnDiscard(ec);
                    });
}

void Session::OnDiscard(beast::error_code ec) {
  if (ec == bhttp::error::need_buffer) ec = {};
  if (ec) return;
  if (!discard_parser_->is_done()) return ReadDiscard();
  const bool keep_alive = discard_parser_->get().keep_alive();
  if (after_discard_) {
    Router::Outcome refused = std::move(*after_discard_);
    after_discard_.reset();
    return Send(std::move(refused.response), refused.route_name, keep_alive);
  }
  SendError(HttpStatus::payload_too_large, "payload_too_large",
            "the request body exceeds the limit of " + std::to_string(body_limit_) + " bytes",
            keep_alive);
}

void Session::OnRequest(beast::error_code ec) {
  if (ec == bhttp::error::body_limit) {
    return SendError(HttpStatus::payload_too_large, "payload_too_large",
                     "the request body exceeds the limit of " +
                         std::to_string(body_limit_) + " bytes",
                     false);
  }
  if (ec && IsHttpParseError(ec)) {
    return SendError(HttpStatus::bad_request, "malformed_request",
                     "the request body is not valid HTTP/1.1 framing: " + ec.message(), false);
  }
  if (ec) return;

  bool keep_alive = false;
  if (file_parser_) {
    auto& req = file_parser_->get();
    keep_alive = req.keep_alive();
    beast::error_code closed;
    req.body().file().close(closed);  // writes what is gathered; a failure is a failed write
    std::error_code size_ec;
    spooled_->size = std::filesystem::file_size(spooled_->path, size_ec);
    if (closed || size_ec) {
      log::Get("http")->error("{} [{}]: finishing the spooled request body failed: {}", ctx_.path,
                              request_id_, closed ? closed.message() : size_ec.message());
      return SendError(HttpStatus::service_unavailable, "upload_unavailable",
                       "the server cannot store the request body now; try again later", false);
    }
    ctx_.spooled_body = std::move(spooled_);
  } else {
    auto& req = parser_->get();
    ctx_.body = std::move(req.body());
    keep_alive = req.keep_alive();
  }
  if (core_->blocking_pool && admission_.route->blocking) {
    // Off the I/O threads; the answer is written back on this connection's io_context.
    net::post(*core_->blocking_pool, [self = shared_from_this(), ctx = std::move(ctx_),
                                      admission = admission_, keep_alive]() mutable {
      auto outcome = self->core_->router->Run(admission, ctx);
      net::post(self->stream_.get_executor(),
                [self, outcome = std::move(outcome), keep_alive]() mutable {
                  self->Send(std::move(outcome.response), outcome.route_name, keep_alive);
                });
    });
    return;
  }
  auto outcome = core_->router->Run(admission_, ctx_);
  ctx_.spooled_body.reset();  // the handler is done with it: the file goes now
  Send(std::move(outcome.response), outcome.route_name, keep_alive);
}

void Session::SendError(HttpStatus status, const std::string& code, const std::string& message,
                        bool keep_alive) {
  busy_ = true;
  if (request_id_.empty()) request_id_ = NextRequestId();
  Send(ErrorResponse(status, code, message), &kSessionRoute, keep_alive);
}

void Session::Send(Response response, const std::string* route, bool keep_alive) {
  // The drain may have begun while a handler ran: its response closes.
  keep_alive = keep_alive && !draining_ && !core_->draining();
  const unsigned status = static_cast<unsigned>(response.status);
  auto fill = [&](auto& res) {
    res.version(version_);
    res.result(response.status);
    res.set(bhttp::field::server, "edgeprune");
    res.set(bhttp::field::content_type, response.content_type);
    res.set("X-Request-Id", request_id_);
    for (auto& [name, value] : response.headers) res.set(name, value);
    res.keep_alive(keep_alive);
    res.prepare_payload();
  };
  auto on_write = [self = shared_from_this(), keep_alive, route, status](beast::error_code ec,
                                                                          std::size_t) {
    self->OnWrite(ec, keep_alive, route, status);
  };
  stream_.expires_after(core_->options.write_timeout);
  if (response.file) {
    using FileResponse = bhttp::response<bhttp::basic_file_body<RangeFile>>;
    auto res = std::make_shared<FileResponse>();
    beast::error_code ec;
    res->body().reset(std::move(*response.file), ec);
    fill(*res);
    response_ = res;
    bhttp::async_write(stream_, *res, std::move(on_write));
  } else {
    auto res = std::make_shared<bhttp::response<bhttp::string_body>>();
    res->body() = std::move(response.body);
    fill(*res);
    response_ = res;
    bhttp::async_write(stream_, *res, std::move(on_write));
  }
}

void Session::OnWrite(beast::error_code ec, bool keep_alive, const std::string* route, unsigned status) {
  if (core_->metrics) {
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
    core_->metrics->Observe(*route, method_, status, seconds);
  }
  request_id_.clear();
  if (ec) {
    log::Get("http")->debug("writing a response failed: {}", ec.message());
    return;
  }
  if (!keep_alive) return DoClose();
  DoReadHeader();
}

void Session::DoClose() {
  busy_ = false;
  if (draining_ || core_->draining()) {
    // Stopping: the last response is complete (framed by its length), so closing TCP is enough.
    // A TLS shutdown waits for the client's close_notify, and a client that keeps its idle
    // connection open never sends one: a drain whose request finished just as it began held the
    // stop for handshake_timeout (seen as 10 s teardowns in the range tests).
    beast::error_code ignored;
    stream_.socket().shutdown(net::ip::tcp::socket::shutdown_both, ignored);
    stream_.close();
    return;
  }
  stream_.expires_after(core_->options.handshake_timeout);
  stream_.async_shutdown([self = shared_from_this()](beast::error_code) {
    beast::error_code ignored;
    self->stream_.socket().shutdown(net::ip::tcp::socket::shutdown_both, ignored);
  });
}

std::string Session::NextRequestId() {
  // Random, not a counter: sequential ids told every client how many requests the server had
  // served and let one guess the ids of other clients' requests in shared logs. Drawn from a
  // per-thread pool of random bytes: OpenSSL's RAND_bytes calls getpid() on every call (its fork
  // check), which was one of the three system calls a small request cost (strace under wrk).
  // Ids are not secrets; tokens and keys still call RandomToken each time.
  constexpr std::size_t kIdBytes = 12;
  thread_local std::string pool;
  thread_local std::size_t used = 0;
  if (used + kIdBytes > pool.size()) {
    pool.resize(kIdBytes * 256);
    if (RAND_bytes(reinterpret_cast<unsigned char*>(pool.data()), static_cast<int>(pool.size())) != 1) {
      throw std::runtime_error("RAND_bytes failed");  // as crypto::RandomToken: never a guessable id
    }
    used = 0;
  }
  std::string id = crypto::Base64UrlEncode(std::string_view(pool).substr(used, kIdBytes));
  used += kIdBytes;
  return id;
}

}  // namespace edgeprune::http
