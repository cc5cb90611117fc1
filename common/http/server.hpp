#pragma once
// The asynchronous HTTPS server: Boost.Beast over Boost.Asio, an io_context run by a pool of
// threads, one strand per connection, keep-alive, a timeout before every handshake/read/write,
// header and body size limits, connection caps (global and per client address), an accept loop
// that backs off when descriptors run out instead of spinning, and a graceful drain: Stop() (or SIGINT/SIGTERM when
// handle_signals is set) stops accepting, lets in-flight requests finish, closes idle
// connections, and after drain_timeout closes whatever is left.
//
// Thread-safety: Start() and Wait() from one owning thread; Stop() from any thread, any number of
// times. The router and metrics are shared with every connection and must be thread-safe.

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

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
  int threads = 2;
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

  std::shared_ptr<ServerCore> core_;
  boost::asio::io_context ioc_;
  boost::asio::strand<boost::asio::io_context::executor_type> strand_;
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
