#pragma once
// The simulated agents of the heartbeat load tool (tests/bench/heartbeat_load.cpp). A Lane is one
// client thread's io_context and the figures it gathers; a SimAgent holds one persistent mTLS
// stream to the server and heartbeats on it every interval (reconnecting after a failure, as a
// real agent would); a FreshProber is the baseline, a heartbeat on a brand-new connection at a
// fixed rate, using the identities of the simulated agents in turn. Everything is asynchronous
// Beast/Asio, so there is no thread per agent.
//
// Thread-safety: a Lane, and every SimAgent and FreshProber built on it, belong to the one thread
// running that lane's io_context: start them by posting to it, and read the lane's vectors and
// counters only after its io_context has stopped. Shared is read by every lane; only its atomic
// counters change while the lanes run.

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bench/heartbeat_server.hpp"

namespace edgeprune::bench {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;
using SslStream = beast::ssl_stream<beast::tcp_stream>;

// One client thread and everything it drives. Only that thread touches the vectors and counters
// while it runs; the main thread reads them after the lane's work has finished.
struct Lane {
  net::io_context ioc{1};
  std::vector<double> connect_ms, keepalive_ms, slip_ms, fresh_ms;
  long sent = 0, errors = 0, reconnects = 0, fresh_errors = 0;
  std::string first_error;
  std::deque<int> to_connect;  // connect phase work list

  void Fail(const std::string& what) {
    ++errors;
    if (first_error.empty()) first_error = what;
  }
};

struct Shared {
  std::shared_ptr<net::ssl::context> tls;
  tcp::endpoint server;
  Clock::duration interval{};
  Clock::time_point end{};
  std::atomic<int> connect_pending{0};  // agents whose connect phase has not finished
  std::atomic<int> running{0};          // agents still inside the measured window
};

// The heartbeat every simulated agent sends: POST /agent/v1/heartbeat, keep-alive.
bhttp::request<bhttp::string_body> HeartbeatRequest();

// A simulated agent: one persistent mTLS stream, a timer, a heartbeat every interval.
class SimAgent {
 public:
  SimAgent(Lane& lane, Shared& sh, Identity id)
      : lane_(lane), sh_(sh), id_(std::move(id)), timer_(lane.ioc), req_(HeartbeatRequest()) {}

  const Identity& identity() const { return id_; }

  // Connect phase: TCP + mTLS handshake + the first heartbeat; then calls next().
  void Connect(std::function<void()> next);

  // Measured phase: heartbeat at first_due, then every interval until Shared::end.
  void Start(Clock::time_point first_due);

 private:
  void Wait();
  void Beat();
  void Send(Clock::time_point sent);
  void Next();

  Lane& lane_;
  Shared& sh_;
  Identity id_;
  net::steady_timer timer_;
  std::optional<SslStream> stream_;
  beast::flat_buffer buf_;
  bhttp::request<bhttp::string_body> req_;
  bhttp::response<bhttp::string_body> res_;
  Clock::time_point due_{};
  bool broken_ = false;  // the stream failed; reopen before the next heartbeat
};

// The baseline, run in the same window on the same lanes: at a fixed rate, a heartbeat on a
// brand-new connection (TCP + full mTLS handshake + request + response, then close), using the
// identity of one of the simulated agents in turn.
class FreshProber {
 public:
  FreshProber(Lane& lane, Shared& sh, const std::vector<std::unique_ptr<SimAgent>>& agents,
              Clock::duration period, std::size_t first)
      : lane_(lane), sh_(sh), agents_(agents), period_(period), next_id_(first), timer_(lane.ioc),
        req_(HeartbeatRequest()) {}

  // Probes at first_due, then every period until Shared::end; then decrements `running`.
  void Start(Clock::time_point first_due, std::atomic<int>& running);

 private:
  void Wait();
  void Probe();
  void Done(bool ok);

  Lane& lane_;
  Shared& sh_;
  const std::vector<std::unique_ptr<SimAgent>>& agents_;
  Clock::duration period_;
  std::size_t next_id_;
  net::steady_timer timer_;
  std::optional<SslStream> stream_;
  beast::flat_buffer buf_;
  bhttp::request<bhttp::string_body> req_;
  bhttp::response<bhttp::string_body> res_;
  Clock::time_point due_{};
  std::atomic<int>* running_ = nullptr;
};

// Connect phase on one lane: connects the next agent of lane.to_connect and, when it is done
// (either way), decrements sh.connect_pending and goes on with the next. Call it on the lane's
// thread, once per connection to keep in flight.
void ConnectNext(Lane& lane, Shared& sh, std::vector<std::unique_ptr<SimAgent>>& agents);

}  // namespace edgeprune::bench
