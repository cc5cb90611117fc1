// The HTTPS server's own TLS stream (common/http/tls_stream.hpp), through the real server on
// 127.0.0.1:0: deadlines (a silent client is cut at handshake_timeout, an idle keep-alive at
// idle_timeout, and a deadline moved later by every request does not fire early), big responses
// over many records and short writes, pipelined requests read ahead in one go, and a peer gone
// without close_notify.
#include <gtest/gtest.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/json.hpp>

#include <chrono>
#include <string>
#include <thread>

#include "common/http/raw_tls_client.hpp"
#include "common/http/server_fixture.hpp"

namespace edgeprune::http {
namespace {

namespace net = boost::asio;
namespace bhttp = boost::beast::http;
using Clock = std::chrono::steady_clock;
using RawResponse = bhttp::response<bhttp::string_body>;

class TlsStreamTest : public testing::ServerFixture {
 protected:
  void SetUp() override {
    router_ = std::make_shared<Router>(nullptr);
    ASSERT_TRUE(router_->Add({Verb::get, "/hello", [](const RequestContext&) -> Result<Response> {
                                return JsonResponse(boost::json::object{{"hello", "world"}});
                              }, Auth::kPublic, ""}).ok());
    ASSERT_TRUE(router_->Add({Verb::get, "/big", [this](const RequestContext&) -> Result<Response> {
                                Response r;
                                r.content_type = "application/octet-stream";
                                r.body = big_;
                                return r;
                              }, Auth::kPublic, ""}).ok());
    big_.resize(3 * 1024 * 1024);
    for (std::size_t i = 0; i < big_.size(); ++i) big_[i] = static_cast<char>((i * 131) % 251);
  }
  std::unique_ptr<testing::RawTlsClient> Raw() {
    auto tls = tls::MakeClientContext({pki_.ca_cert(), "", ""});
    EXPECT_TRUE(tls.ok());
    return std::make_unique<testing::RawTlsClient>(*tls, port_);
  }
  std::string big_;
};

// Reads from a plain TCP socket until the server closes it; returns how long that took.
std::chrono::milliseconds TimeUntilClosed(net::ip::tcp::socket& s) {
  const auto start = Clock::now();
  char byte;
  boost::system::error_code ec;
  while (!ec) s.read_some(net::buffer(&byte, 1), ec);
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
}

TEST_F(TlsStreamTest, AClientThatNeverHandshakesIsCutAtTheHandshakeTimeout) {
  options_.handshake_timeout = std::chrono::milliseconds(300);
  StartServer();
  net::io_context ioc;
  net::ip::tcp::socket s(ioc);
  s.connect({net::ip::make_address("127.0.0.1"), port_});
  const auto waited = TimeUntilClosed(s);
  EXPECT_GE(waited.count(), 250);
  EXPECT_LT(waited.count(), 5000);
}

TEST_F(TlsStreamTest, AnIdleKeepAliveIsClosedAtTheIdleTimeoutAndNotBefore) {
  options_.idle_timeout = std::chrono::milliseconds(400);
  StartServer();
  auto raw = Raw();
  // Requests every 150 ms for well over the idle timeout: each one moves the deadline later, so
  // the connection must live on (the timer, armed for the first deadline, re-arms when it fires).
  const auto start = Clock::now();
  while (Clock::now() - start < std::chrono::milliseconds(1200)) {
    raw->Write("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    RawResponse res;
    ASSERT_FALSE(raw->Read(res)) << "the connection was cut while in use";
    EXPECT_EQ(res.result_int(), 200);
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
  }
  // Then silence: closed after about the idle timeout.
  const auto idle_start = Clock::now();
  RawResponse res;
  EXPECT_TRUE(raw->Read(res));
  const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - idle_start);
  EXPECT_GE(waited.count(), 200);
  EXPECT_LT(waited.count(), 5000);
}

TEST_F(TlsStreamTest, ABigResponseArrivesWholeOverManyRecords) {
  StartServer();
  auto raw = Raw();
  for (int i = 0; i < 2; ++i) {  // twice on one connection: the stream is reusable after it
    raw->Write("GET /big HTTP/1.1\r\nHost: x\r\n\r\n");
    RawResponse res;
    ASSERT_FALSE(raw->Read(res));
    EXPECT_EQ(res.result_int(), 200);
    ASSERT_EQ(res.body().size(), big_.size());
    EXPECT_TRUE(res.body() == big_);
  }
}

TEST_F(TlsStreamTest, PipelinedRequestsInOneWriteAreAllAnswered) {
  StartServer();
  auto raw = Raw();
  std::string three;
  for (int i = 0; i < 3; ++i) three += "GET /hello HTTP/1.1\r\nHost: x\r\nX-Request-Id: r" + std::to_string(i) + "\r\n\r\n";
  raw->Write(three);
  for (int i = 0; i < 3; ++i) {
    RawResponse res;
    ASSERT_FALSE(raw->Read(res)) << i;
    EXPECT_EQ(res.result_int(), 200);
    EXPECT_EQ(res["X-Request-Id"], "r" + std::to_string(i));
  }
}

TEST_F(TlsStreamTest, APeerGoneWithoutCloseNotifyLeavesTheServerServing) {
  StartServer();
  {
    auto raw = Raw();
    raw->Write("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    RawResponse res;
    ASSERT_FALSE(raw->Read(res));
  }  // the TCP connection closes without a TLS close_notify
  {
    net::io_context ioc;  // and one that sends half a TLS record, then leaves
    net::ip::tcp::socket s(ioc);
    s.connect({net::ip::make_address("127.0.0.1"), port_});
    const unsigned char partial[] = {0x16, 0x03, 0x01, 0x02, 0x00, 0x01};
    net::write(s, net::buffer(partial));
  }
  auto raw = Raw();
  raw->Write("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
  RawResponse res;
  ASSERT_FALSE(raw->Read(res));
  EXPECT_EQ(res.result_int(), 200);
}

}  // namespace
}  // namespace edgeprune::http
