#include "common/http/plain_listener.hpp"

#include <boost/asio/post.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <cctype>
#include <optional>

#include "edgeprune/common/crypto.hpp"
#include "edgeprune/common/log.hpp"
#include "common/http/response.hpp"

namespace edgeprune::http {

struct ListenerShared {
  ListenerOptions options;
  std::shared_ptr<const http::Router> router;
  std::shared_ptr<http::HttpMetrics> metrics;
  std::atomic<std::uint64_t>* counter;
  std::string prefix;  // random per process, so request ids do not repeat across restarts
};

namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;

// Beast reads into the connection's buffer as much as the buffer has room for, at least 512
// bytes. The parser consumes what it reads, so a buffer that was never grown stays at 512 bytes
// and a 3 KiB request took seven reads, each a trip through the reactor. Reading in chunks of
// Beast's own maximum (64 KiB) takes a small request in one read.
constexpr std::size_t kReadChunkBytes = 64 * 1024;

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(tcp::socket&& socket, std::shared_ptr<const ListenerShared> shared)
      : stream_(std::move(socket)), shared_(std::move(shared)) {
    buffer_.reserve(kReadChunkBytes);
  }

  void Read() {
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(shared_->options.header_limit));
    parser_->body_limit(shared_->options.body_limit);
    stream_.expires_after(shared_->options.idle_timeout);
    bhttp::async_read(stream_, buffer_, *parser_,
                      beast::bind_front_handler(&Connection::OnRead, shared_from_this()));
  }

 private:
  void OnRead(beast::error_code ec, std::size_t) {
    if (ec == bhttp::error::end_of_stream || ec == net::error::operation_aborted ||
        ec == beast::error::timeout || ec == net::error::connection_reset) {
      return Close();
    }
    if (ec == bhttp::error::body_limit) {
      return Write(http::ErrorResponse(http::HttpStatus::payload_too_large, "body_too_large",
                                       "request body exceeds " +
                                           std::to_string(shared_->options.body_limit) + " bytes"),
                   "unmatched", false);
    }
    if (ec == bhttp::error::header_limit) {
      return Write(http::ErrorResponse(http::HttpStatus::request_header_fields_too_large,
                                       "headers_too_large", "request headers are too large"),
                   "unmatched", false);
    }
    if (ec) {
      return Write(http::ErrorResponse(http::HttpStatus::bad_request, "bad_request",
                                       "malformed HTTP request: " + ec.message()),
                   "unmatched", false);
    }
    auto req = parser_->release();
    started_ = std::chrono::steady_clock::now();
    http::RequestContext ctx;
    ctx.method = req.method();
    ctx.target = std::string(req.target());
    for (const auto& field : req) {
      std::string name(field.name_string());
      for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      ctx.headers[name] = std::string(field.value());
    }
    ctx.body = std::move(req.body());
    ctx.request_id = shared_->prefix + std::to_string(shared_->counter->fetch_add(1) + 1);
    request_id_ = ctx.request_id;
    method_ = ctx.method;
    auto outcome = shared_->router->Handle(ctx);
    Write(std::move(outcome.response), *outcome.route_name, req.keep_alive());
  }

  void Write(http::Response r, const std::string& route, bool keep_alive) {
    auto res = std::make_shared<bhttp::response<bhttp::string_body>>(r.status, 11);
    res->set(bhttp::field::content_type, r.content_type);
    res->set("X-Request-Id", request_id_);
    for (const auto& [name, value] : r.headers) res->set(name, value);
    res->body() = std::move(r.body);
    res->keep_alive(keep_alive);
    res->prepare_payload();
    const unsigned status = res->result_int();
    if (shared_->metrics) {
      shared_->metrics->Observe(
          route, method_, status,
          std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count());
    }
    stream_.expires_after(shared_->options.io_timeout);
    bhttp::async_write(stream_, *res,
                       [self = shared_from_this(), res, keep_alive](beast::error_code ec, std::size_t) {
                         if (ec || !keep_alive) return self->Close();
                         self->Read();
                       });
  }

  void Close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.close();
  }

  beast::tcp_stream stream_;
  std::shared_ptr<const ListenerShared> shared_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  std::string request_id_;
  http::Verb method_ = http::Verb::unknown;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
};

}  // namespace

namespace {

// The acceptor's context first, then one per I/O thread.
std::vector<std::unique_ptr<net::io_context>> MakeContexts(int threads) {
  std::vector<std::unique_ptr<net::io_context>> contexts;
  for (int i = 0; i < 1 + std::max(1, threads); ++i) {
    // Concurrency hint 1: the context is run by one thread, so its scheduler never wakes another.
    contexts.push_back(std::make_unique<net::io_context>(1));
  }
  return contexts;
}

}  // namespace

PlainHttpListener::PlainHttpListener(ListenerOptions options,
                                     std::shared_ptr<const http::Router> router,
                                     std::shared_ptr<http::HttpMetrics> metrics)
    : options_(std::move(options)),
      router_(std::move(router)),
      metrics_(std::move(metrics)),
      contexts_(MakeContexts(options_.threads)),
      acceptor_(*contexts_.front()),
      shared_(std::make_shared<const ListenerShared>(ListenerShared{
          options_, router_, metrics_, &next_request_, crypto::RandomToken(6) + "-"})) {}

PlainHttpListener::~PlainHttpListener() {
  Stop();
  Wait();
}

Result<std::uint16_t> PlainHttpListener::Start() {
  beast::error_code ec;
  auto address = net::ip::make_address(options_.host, ec);
  auto fail = [&](const std::string& what) {
    return MakeError(ErrorKind::kIo, "listen_failed",
                     "local API " + options_.host + ":" + std::to_string(options_.port) + ": " +
                         what + ": " + ec.message());
  };
  if (ec) return fail("bad address");
  tcp::endpoint ep(address, options_.port);
  acceptor_.open(ep.protocol(), ec);
  if (ec) return fail("open");
  acceptor_.set_option(net::socket_base::reuse_address(true), ec);
  acceptor_.bind(ep, ec);
  if (ec) return fail("bind");
  acceptor_.listen(net::socket_base::max_listen_connections, ec);
  if (ec) return fail("listen");
  port_ = acceptor_.local_endpoint().port();
  DoAccept();
  for (auto& context : contexts_) {
    guards_.push_back(net::make_work_guard(*context));
    threads_.emplace_back([ioc = context.get()] { ioc->run(); });
  }
  log::Get("local_api")->info("local API listening on {}:{}", options_.host, port_);
  return port_;
}

void PlainHttpListener::DoAccept() {
  // The connection's socket belongs to the next I/O context in turn; its first read is started on
  // that context's thread, like everything after it. Accepting has a thread of its own so that a
  // long inference on any I/O thread never holds up new connections.
  auto& target = *contexts_[1 + next_context_];
  next_context_ = (next_context_ + 1) % (contexts_.size() - 1);
  acceptor_.async_accept(target, [this, &target](beast::error_code ec, tcp::socket socket) {
    if (ec == net::error::operation_aborted || !acceptor_.is_open()) return;
    if (!ec) {
      net::post(target, [conn = std::make_shared<Connection>(std::move(socket), shared_)] {
        conn->Read();
      });
    }
    DoAccept();
  });
}

void PlainHttpListener::Stop() {
  for (auto& context : contexts_) context->stop();
}

void PlainHttpListener::Wait() {
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

}  // namespace edgeprune::http
