#pragma once
// A tiny HTTPS/1.1 server for testing the TLS contexts and HttpsClient: 127.0.0.1, port 0, one
// background thread, a handler per request. Replies can hang (never answered until Stop) or
// close the connection after being sent.
//
// Thread-safety: counters and last_peer() may be read from any thread.

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "edgeprune/common/tls.hpp"

namespace edgeprune::testing {

struct TestRequest {
  std::string method{};
  std::string target{};
  std::map<std::string, std::string> headers{};  // lower-case names
  std::string body{};
};

struct TestReply {
  int status = 200;
  std::string body{};
  std::vector<std::pair<std::string, std::string>> headers{};
  bool keep_alive = true;    // false: "Connection: close" and a TLS shutdown after the reply
  bool close_after = false;  // drop the TCP connection right after the reply, without notice
  bool hang = false;         // never reply; the connection stays open until Stop()
};

class TestHttpsServer {
 public:
  using Handler =
      std::function<TestReply(const TestRequest&, const std::optional<tls::PeerCertificate>&)>;

  TestHttpsServer(std::shared_ptr<boost::asio::ssl::context> tls, Handler handler);
  ~TestHttpsServer();
  TestHttpsServer(const TestHttpsServer&) = delete;
  TestHttpsServer& operator=(const TestHttpsServer&) = delete;

  std::uint16_t port() const { return port_; }
  std::size_t connections_accepted() const { return accepted_; }
  std::size_t handshakes_ok() const { return handshakes_ok_; }
  std::size_t handshakes_failed() const { return handshakes_failed_; }
  std::size_t requests_served() const { return requests_; }
  // Peer certificate seen on the most recent successful handshake (nullopt: none presented).
  std::optional<tls::PeerCertificate> last_peer() const;
  // Drops every open connection without TLS notice; returns once they are closed.
  void CloseAllConnections();
  void Stop();

 private:
  struct Conn;
  void Accept();
  void RunSession(std::shared_ptr<Conn> conn);

  std::shared_ptr<boost::asio::ssl::context> tls_;
  Handler handler_;
  boost::asio::io_context ioc_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::uint16_t port_ = 0;
  std::vector<std::weak_ptr<Conn>> conns_;  // io thread only
  std::atomic<std::size_t> accepted_{0}, handshakes_ok_{0}, handshakes_failed_{0}, requests_{0};
  mutable std::mutex mu_;
  std::optional<tls::PeerCertificate> last_peer_;
  std::thread thread_;
};

}  // namespace edgeprune::testing
