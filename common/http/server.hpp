#pragma once
// The asynchronous HTTPS server: Boost.Beast over Boost.Asio, keep-alive, a timeout before every handshake/read/write,
// header and body size limits, connection caps (global and per client address), an accept loop
// that backs off when descriptors run out instead of spinning, and a graceful drain: Stop() (or SIGINT/SIGTERM when
// handle_signals is set) stops accepting, lets in-flight requests finish, closes idle
// connections, and after drain_timeout closes whatever is left.
//
// Threading, as in the agent's PlainHttpListener: one io_context per I/O thread, each run by that
// thread alone, plus one context and thread for the acceptor, signals and the drain. Accepted
// connections are dealt out to the I/O contexts in turn and stay there, so a connection needs no
// strand and its handlers never change threads. With one io_context shared by the pool (and a
// strand per connection), every completion could wake another thread out of epoll, both then
// contended for the scheduler's lock, and each handler paid for the strand and for a
// type-erased executor: 19 % of the server's profile under wrk on /healthz (2.8 % after). The
// price is no work stealing: routes that may take long are marked `blocking` and run on the
// blocking pool, so a slow handler does not hold up the other connections of its thread.
//
// Thread-safety: Start() and Wait() from one owning thread; Stop() from any thread, any number of
// times. The router and metrics are shared with every connection and must be thread-safe.

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "edgeprune/common/log_safety.hpp"
#include "edgeprune/common/result.hpp"
#include "common/http/metrics.hpp"
#include "common/http/router.hpp"

namespace edgeprune::http {

struct ServerOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;  // 0: any free port; see HttpsServer::port()
  int threads = 2;  // I/O threads, each with its own io_context; the acceptor has one more
  int blocking_threads = 4;  // run handlers of routes marked `blocking`
  std::chrono::milliseconds handshake_timeout{10'000};
  std::chrono::milliseconds idle_timeout{60'000};   // keep-alive wait for the next request
  // Reading one request body; for a spooled upload, the longest stall between two pieces.
  std::chrono::milliseconds read_timeout{30'000};
  std::chrono::milliseconds write_timeout{60'000};  // writing one response
  std::chrono::milliseconds drain_timeout{10'000};  // graceful stop: longest wait for in-flight work
  std::size_t header_limit = 16 * 1024;
  std::uint64_t body_limit = 1024 * 1024;
  // A request whose declared body exceeds body_limit but not this is read and dropped after the
  // 413 so the connection stays usable; a bigger one is answered 413 and the connection closed.
  std::uint64_t discard_limit = 16 * 1024 * 1024;
  bool handle_signals = false;  // SIGINT/SIGTERM start a graceful drain
  // Open connections at most, in all and from one client address; a connection over a cap is
  // closed right after accept, before its TLS handshake costs anything. 0: no cap.
  std::size_t max_connections = 0;
  std::size_t max_connections_per_client = 0;
};

struct ServerCore;  // shared with connections; defined in session.hpp

class HttpsServer {
 public:
  // metrics may be null (no request metrics recorded).
  HttpsServer(ServerOptions options, std::shared_ptr<boost::asio::ssl::context> tls,
              std::shared_ptr<const Router> router, std::shared_ptr<HttpMetrics> metrics);
  ~HttpsServer();  // Stop() and Wait()
  HttpsServer(const HttpsServer&) = delete;
  HttpsServer& operator=(const HttpsServer&) = delete;

  // Binds host:port, starts accepting and the thread pool. Fails naming the address and reason.
  Result<std::uint16_t> Start();
  // Begins the graceful drain; returns at once.
  void Stop();
  // Blocks until the drain has finished and every thread has returned.
  void Wait();

  std::uint16_t port() const { return port_; }

 private:
  void DoAccept();
  void OnAcceptError(const boost::system::error_code& ec);
  void DoStop();

  using WorkGuard = boost::asio::executor_work_guard<boost::asio::io_context::executor_type>;

  std::shared_ptr<ServerCore> core_;
  // contexts_[0] runs the acceptor, the signals and the drain; contexts_[1..threads] the
  // connections. The guards keep an idle I/O context's run() from returning before it gets a
  // connection; the drain releases them.
  std::vector<std::unique_ptr<boost::asio::io_context>> contexts_;
  std::vector<WorkGuard> guards_;
  std::size_t next_context_ = 0;  // among the I/O contexts; only the accept handler touches it
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::signal_set signals_;
  boost::asio::steady_timer drain_timer_;
  boost::asio::steady_timer accept_backoff_;  // waits out EMFILE and friends before the next accept
  std::chrono::milliseconds backoff_{0};
  log::Throttle accept_log_;  // accept errors and refused connections: ≤ 1 log line a second
  std::vector<std::thread> threads_;
  std::uint16_t port_ = 0;
  std::atomic<bool> started_{false};
  std::atomic<bool> stopping_{false};
};

}  // namespace edgeprune::http
