#include "common/http/server.hpp"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>

#include <algorithm>
#include <csignal>

#include "edgeprune/common/log.hpp"
#include "common/http/session.hpp"

namespace edgeprune::http {

namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

// One context per I/O thread plus the acceptor's. Each is run by one thread, which the
// concurrency hint tells Asio (it then skips waking other threads for its completions).
std::vector<std::unique_ptr<net::io_context>> MakeContexts(int io_threads) {
  std::vector<std::unique_ptr<net::io_context>> contexts;
  for (int i = 0; i <= std::max(1, io_threads); ++i) contexts.push_back(std::make_unique<net::io_context>(1));
  return contexts;
}

}  // namespace

HttpsServer::HttpsServer(ServerOptions options, std::shared_ptr<net::ssl::context> tls,
                         std::shared_ptr<const Router> router, std::shared_ptr<HttpMetrics> metrics)
    : core_(std::make_shared<ServerCore>()),
      contexts_(MakeContexts(options.threads)),
      acceptor_(*contexts_[0]),
      signals_(*contexts_[0]),
      drain_timer_(*contexts_[0]),
      accept_backoff_(*contexts_[0]) {
  core_->options = std::move(options);
  core_->tls = std::move(tls);
  core_->router = std::move(router);
  core_->metrics = std::move(metrics);
  core_->blocking_pool = std::make_shared<net::thread_pool>(
      static_cast<std::size_t>(std::max(1, core_->options.blocking_threads)));
  core_->on_drained = [this] {
    net::post(*contexts_[0], [this] { drain_timer_.cancel(); });
  };
  for (std::size_t i = 1; i < contexts_.size(); ++i) guards_.emplace_back(contexts_[i]->get_executor());
}

HttpsServer::~HttpsServer() {
  Stop();
  Wait();
  // Sessions a timed-out drain left behind die with their contexts; they must not post to the
  // acceptor's context then.
  core_->on_drained = nullptr;
}

Result<std::uint16_t> HttpsServer::Start() {
  const auto& opts = core_->options;
  const std::string where = opts.host + ":" + std::to_string(opts.port);
  boost::system::error_code ec;
  tcp::resolver resolver(*contexts_[0]);
  auto endpoints = resolver.resolve(opts.host, std::to_string(opts.port),
                                    tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  if (ec || endpoints.empty()) {
    return MakeError(ErrorKind::kInvalidArgument, "bind_failed",
                     "cannot resolve listen address " + where + ": " + ec.message());
  }
  tcp::endpoint endpoint = endpoints.begin()->endpoint();
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    return MakeError(ErrorKind::kUnavailable, "bind_failed",
                     "cannot listen on " + where + ": " + ec.message());
  }
  port_ = acceptor_.local_endpoint().port();
  if (opts.handle_signals) {
    signals_.add(SIGINT);
    signals_.add(SIGTERM);
    signals_.async_wait([this](const boost::system::error_code& e, int signal) {
      if (e) return;
      log::Get("http")->info("signal {}: draining connections", signal);
      Stop();
    });
  }
  net::dispatch(*contexts_[0], [this] { DoAccept(); });
  started_ = true;
  threads_.reserve(contexts_.size());
  for (auto& context : contexts_) {
    threads_.emplace_back([this, ctx = context.get()] {
      for (;;) {
        try {
          ctx->run();
          return;
        } catch (const std::exception& e) {
          log::Get("http")->error("server thread caught an exception: {}", e.what());
        }
      }
    });
  }
  const int n = static_cast<int>(contexts_.size()) - 1;
  log::Get("http")->info("listening on https://{}:{} with {} threads", opts.host, port_, n);
  return port_;
}

void HttpsServer::DoAccept() {
  // Each connection goes to the next I/O context in turn and stays there.
  next_context_ = next_context_ % (contexts_.size() - 1) + 1;
  acceptor_.async_accept(contexts_[next_context_]->get_executor(), [this](boost::system::error_code ec,
                                                                         Session::Socket socket) {
    if (ec == net::error::operation_aborted || !acceptor_.is_open()) return;
    if (ec) return OnAcceptError(ec);
    backoff_ = std::chrono::milliseconds(0);
    boost::system::error_code endpoint_ec;
    auto endpoint = socket.remote_endpoint(endpoint_ec);
    const std::string address = endpoint_ec ? std::string() : endpoint.address().to_string();
    if (!core_->AcquireConnection(address)) {
      // Over a connection cap: closed before the handshake; the client may retry later.
      std::uint64_t suppressed = 0;
      if (accept_log_.Allow(&suppressed)) {
        log::Get("http")->warn("refused a connection from {}: connection cap reached ({} more not logged)",
                               address, suppressed);
      }
      boost::system::error_code ignored;
      socket.close(ignored);
      return DoAccept();
    }
    boost::system::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    std::make_shared<Session>(std::move(socket), core_, address)->Run();
    DoAccept();
  });
}

void HttpsServer::OnAcceptError(const boost::system::error_code& ec) {
  // EMFILE, ENFILE, ENOBUFS, ENOMEM: the pending connection stays in the backlog and accept
  // fails again at once, so retrying immediately spins a core and floods the log (810,000
  // lines in 6 s). Wait, doubling from 10 ms to 1 s, while connections close and free
  // descriptors; established connections are served meanwhile by the other handlers.
  backoff_ = std::clamp(backoff_ * 2, std::chrono::milliseconds(10), std::chrono::milliseconds(1000));
  std::uint64_t suppressed = 0;
  if (accept_log_.Allow(&suppressed)) {
    log::Get("http")->warn("accept failed: {}; retrying in {} ms ({} more failures not logged)",
                           ec.message(), backoff_.count(), suppressed);
  }
  accept_backoff_.expires_after(backoff_);
  accept_backoff_.async_wait([this](const boost::system::error_code& wait_ec) {
    if (wait_ec || !acceptor_.is_open()) return;
    DoAccept();
  });
}

void HttpsServer::Stop() {
  if (!started_ || stopping_.exchange(true)) return;
  net::post(*contexts_[0], [this] { DoStop(); });
}

void HttpsServer::DoStop() {
  boost::system::error_code ignored;
  acceptor_.close(ignored);
  accept_backoff_.cancel();
  signals_.cancel(ignored);
  // Armed before the drain starts so the last session's on_drained always finds it.
  drain_timer_.expires_after(core_->options.drain_timeout);
  std::size_t live = core_->BeginDrain();
  // An I/O context's run() now returns once its last connection is gone.
  guards_.clear();
  log::Get("http")->info("stopped accepting; draining {} connection(s)", live);
  if (live == 0) {
    drain_timer_.cancel();
    return;
  }
  drain_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;  // cancelled: every connection finished in time
    log::Get("http")->warn("drain deadline of {} ms passed; closing the remaining connections",
                           core_->options.drain_timeout.count());
    for (auto& context : contexts_) context->stop();
  });
}

void HttpsServer::Wait() {
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
  // Blocking handlers still running finish; their answers have no connection left to go to.
  if (core_->blocking_pool) core_->blocking_pool->join();
}

}  // namespace edgeprune::http
