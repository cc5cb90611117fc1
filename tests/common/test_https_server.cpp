#include "test_https_server.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <cctype>
#include <future>

namespace edgeprune::testing {
namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;

struct TestHttpsServer::Conn {
  beast::ssl_stream<tcp::socket> stream;
  net::steady_timer hang_timer;
  Conn(tcp::socket s, net::ssl::context& ctx)
      : stream(std::move(s), ctx), hang_timer(stream.get_executor()) {}
};

TestHttpsServer::TestHttpsServer(std::shared_ptr<net::ssl::context> tls, Handler handler)
    : tls_(std::move(tls)), handler_(std::move(handler)), acceptor_(ioc_) {
  tcp::endpoint ep(net::ip::make_address("127.0.0.1"), 0);
  acceptor_.open(ep.protocol());
  acceptor_.set_option(net::socket_base::reuse_address(true));
  acceptor_.bind(ep);
  acceptor_.listen();
  port_ = acceptor_.local_endpoint().port();
  Accept();
  thread_ = std::thread([this] { ioc_.run(); });
}

TestHttpsServer::~TestHttpsServer() { Stop(); }

void TestHttpsServer::Stop() {
  if (!thread_.joinable()) return;
  ioc_.stop();
  thread_.join();
}

std::optional<tls::PeerCertificate> TestHttpsServer::last_peer() const {
  std::lock_guard lock(mu_);
  return last_peer_;
}

void TestHttpsServer::CloseAllConnections() {
  std::promise<void> done;
  net::post(ioc_, [&] {
    for (auto& weak : conns_) {
      if (auto c = weak.lock()) {
        boost::system::error_code ignored;
        c->stream.next_layer().shutdown(tcp::socket::shutdown_both, ignored);
        c->stream.next_layer().close(ignored);
        c->hang_timer.cancel();
      }
    }
    conns_.clear();
    done.set_value();
  });
  done.get_future().wait();
}

void TestHttpsServer::Accept() {
  acceptor_.async_accept([this](boost::system::error_code ec, tcp::socket socket) {
    if (ec) return;
    ++accepted_;
    auto conn = std::make_shared<Conn>(std::move(socket), *tls_);
    conns_.push_back(conn);
    RunSession(conn);
    Accept();
  });
}

void TestHttpsServer::RunSession(std::shared_ptr<Conn> conn) {
  net::co_spawn(
      ioc_,
      [this, conn]() -> net::awaitable<void> {
        boost::system::error_code ec;
        auto token = net::redirect_error(net::use_awaitable, ec);
        co_await conn->stream.async_handshake(net::ssl::stream_base::server, token);
        if (ec) {
          ++handshakes_failed_;
          co_return;
        }
        ++handshakes_ok_;
        auto peer = tls::PeerCertificateOf(conn->stream.native_handle());
        {
          std::lock_guard lock(mu_);
          last_peer_ = peer;
        }
        beast::flat_buffer buffer;
        for (;;) {
          bhttp::request<bhttp::string_body> req;
          co_await bhttp::async_read(conn->stream, buffer, req, token);
          if (ec) co_return;
          TestRequest in{std::string(req.method_string()), std::string(req.target()), {},
                         req.body()};
          for (const auto& f : req) {
            std::string name(f.name_string());
            for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
            in.headers[name] = std::string(f.value());
          }
          TestReply reply = handler_(in, peer);
          ++requests_;
          if (reply.hang) {
            conn->hang_timer.expires_at(net::steady_timer::time_point::max());
            co_await conn->hang_timer.async_wait(token);
            co_return;
          }
          bhttp::response<bhttp::string_body> res{static_cast<bhttp::status>(reply.status), 11};
          for (const auto& [k, v] : reply.headers) res.insert(k, v);
          res.body() = reply.body;
          res.keep_alive(req.keep_alive() && reply.keep_alive);
          res.prepare_payload();
          if (req.method() == bhttp::verb::head) res.body().clear();  // length stays announced
          co_await bhttp::async_write(conn->stream, res, token);
          if (ec) co_return;
          if (!res.keep_alive()) {
            co_await conn->stream.async_shutdown(token);
            co_return;
          }
          if (reply.close_after) {
            conn->stream.next_layer().close(ec);
            co_return;
          }
        }
      },
      net::detached);
}

}  // namespace edgeprune::testing
