#pragma once
// A plaintext HTTP/1.1 listener for the agent's local API on loopback. It parses requests into
// http::RequestContext and hands them to the shared http::Router, so routing, the JSON error body
// and the status mapping are the server's; only the socket loop is here (the HTTPS server is
// TLS-only). Keep-alive, a deadline before every read and write, header and body limits (413 with
// the standard error body), X-Request-Id on every response.
//
// Threading: one io_context per I/O thread, each run by that thread alone, plus one thread that
// only accepts. Accepted connections are dealt out to the I/O threads in turn and a connection
// stays on its thread, where the handler (and so the inference) runs inline: a request never
// changes threads between its read, its inference and its write. With one io_context shared by
// several threads, every completion woke the other thread out of epoll and both then contended
// for the scheduler's lock, which on a loaded 2-core gateway cost tens of microseconds per
// request. The price is no work stealing: two busy connections that land on the same thread share
// it while another thread may idle.
//
// Thread-safety: Start()/Stop()/Wait() from the owning thread (Stop() also from any thread);
// the router and metrics must be thread-safe.

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "edgeprune/common/result.hpp"
#include "common/http/metrics.hpp"
#include "common/http/router.hpp"

namespace edgeprune::http {

struct ListenerShared;  // what every connection shares; defined in plain_listener.cpp

struct ListenerOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;  // 0: any free port
  int threads = 2;  // I/O threads, each with its own io_context; handlers run on them
  std::chrono::milliseconds idle_timeout{30'000};
  std::chrono::milliseconds io_timeout{10'000};  // reading a request, writing a response
  std::size_t header_limit = 16 * 1024;
  std::uint64_t body_limit = 8 * 1024 * 1024;
};

class PlainHttpListener {
 public:
  // metrics may be null.
  PlainHttpListener(ListenerOptions options, std::shared_ptr<const http::Router> router,
                    std::shared_ptr<http::HttpMetrics> metrics);
  ~PlainHttpListener();
  PlainHttpListener(const PlainHttpListener&) = delete;
  PlainHttpListener& operator=(const PlainHttpListener&) = delete;

  // Binds and starts serving; "listen_failed" (kIo) naming the address and reason.
  Result<std::uint16_t> Start();
  // Stops accepting and closes every connection; requests in flight are cut.
  void Stop();
  void Wait();
  std::uint16_t port() const { return port_; }

 private:
  using WorkGuard = boost::asio::executor_work_guard<boost::asio::io_context::executor_type>;

  void DoAccept();

  ListenerOptions options_;
  std::shared_ptr<const http::Router> router_;
  std::shared_ptr<http::HttpMetrics> metrics_;
  // contexts_[0] runs the acceptor, contexts_[1..threads] the connections, each on its own
  // thread. The guards keep an idle context's run() from returning before it gets a connection.
  std::vector<std::unique_ptr<boost::asio::io_context>> contexts_;
  std::vector<WorkGuard> guards_;
  std::size_t next_context_ = 0;  // among the I/O contexts; only the accept thread touches it
  boost::asio::ip::tcp::acceptor acceptor_;
  std::vector<std::thread> threads_;
  std::atomic<std::uint64_t> next_request_{0};
  std::shared_ptr<const ListenerShared> shared_;
  std::uint16_t port_ = 0;
};

}  // namespace edgeprune::http
