// The HTTP layer against untrusted clients (issue 13): unpredictable request ids, routing and
// authentication decided from the header before any body byte is read, per-route body limits,
// connection caps. Real TLS on 127.0.0.1:0, real sockets.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <sys/resource.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <set>
#include <sstream>
#include <thread>
#include <vector>

#include "edgeprune/common/json.hpp"
#include "common/http/map_authenticator.hpp"
#include "common/http/raw_tls_client.hpp"
#include "common/http/server_fixture.hpp"
#include "support/capture_stderr.hpp"

namespace edgeprune::http {
namespace {

using testing::MapAuthenticator;
using testing::RawTlsClient;

class UntrustedTest : public testing::ServerFixture {
 protected:
  void SetUp() override {
    auth_ = std::make_shared<MapAuthenticator>();
    auth_->tokens = {{"op-token", Role::kOperator}};
    router_ = std::make_shared<Router>(auth_);
    Add({Verb::get, "/hello", [](const RequestContext&) -> Result<Response> {
           return JsonResponse(boost::json::object{{"hello", "world"}});
         }, Auth::kPublic, ""});
    Route upload{Verb::post, "/upload", [this](const RequestContext& ctx) -> Result<Response> {
                   ++handled_;
                   return JsonResponse(boost::json::object{{"bytes", ctx.body.size()}});
                 }, Auth::kOperator, ""};
    upload.max_body_bytes = 4 * 1024 * 1024;  // the one big-body route
    Add(std::move(upload));
    Add({Verb::post, "/small", [this](const RequestContext& ctx) -> Result<Response> {
           ++handled_;
           return JsonResponse(boost::json::object{{"bytes", ctx.body.size()}});
         }, Auth::kOperator, ""});
  }

  std::unique_ptr<RawTlsClient> Raw() {
    auto tls = tls::MakeClientContext({pki_.ca_cert(), "", ""});
    EXPECT_TRUE(tls.ok());
    return std::make_unique<RawTlsClient>(*tls, port_);
  }
  using RawResponse = boost::beast::http::response<boost::beast::http::string_body>;
  void Add(Route r) { ASSERT_TRUE(router_->Add(std::move(r)).ok()); }

  std::shared_ptr<MapAuthenticator> auth_;
  std::atomic<int> handled_{0};
};

TEST_F(UntrustedTest, RequestIdsAreRandomNotACounter) {
  StartServer();
  auto client = Client();
  std::set<std::string> seen;
  for (int i = 0; i < 50; ++i) {
    auto r = client->Get("/hello");
    ASSERT_TRUE(r.ok()) << r.error().ToString();
    const std::string id = r->Header("x-request-id");
    ASSERT_EQ(id.size(), 16u) << id;  // 96 random bits, URL-safe base64
    for (char c : id) EXPECT_TRUE(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_') << id;
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), 50u);
  // A counter shares a long prefix between neighbours; 96 random bits share 8 chars by chance
  // with probability 2^-48.
  std::size_t longest_common = 0;
  for (auto it = seen.begin(), next = std::next(it); next != seen.end(); ++it, ++next) {
    std::size_t n = 0;
    while (n < it->size() && (*it)[n] == (*next)[n]) ++n;
    longest_common = std::max(longest_common, n);
  }
  EXPECT_LT(longest_common, 8u);
}

// Issue 13 item 1: an anonymous 60 MB POST is answered 401 from its header; the body is never
// read (the client has not even sent it) and the connection closes.
TEST_F(UntrustedTest, UnauthenticatedRequestsAreRefusedBeforeTheirBodyIsRead) {
  options_.discard_limit = 1 << 30;  // would have read and dropped it all before
  StartServer();
  auto raw = Raw();
  raw->Write("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 60000000\r\n\r\n");
  RawResponse res;
  ASSERT_FALSE(raw->Read(res));
  EXPECT_EQ(res.result_int(), 401u);
  EXPECT_FALSE(res.keep_alive()) << "a big refused body is not read: the connection closes";
  EXPECT_NE(res.body().find("missing_credentials"), std::string::npos);

  // A wrong token and an unknown route: the same, also for a chunked body.
  for (const char* head : {"POST /upload HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer nope\r\n"
                           "Content-Length: 60000000\r\n\r\n",
                           "POST /nowhere HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"}) {
    auto c = Raw();
    c->Write(head);
    RawResponse r;
    ASSERT_FALSE(c->Read(r)) << head;
    EXPECT_TRUE(r.result_int() == 401u || r.result_int() == 404u) << head;
    EXPECT_FALSE(r.keep_alive()) << head;
  }

  // A small refused body is dropped and the connection serves the next request.
  auto small = Raw();
  small->Write("POST /small HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
               "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
  RawResponse first, second;
  ASSERT_FALSE(small->Read(first));
  EXPECT_EQ(first.result_int(), 401u);
  EXPECT_TRUE(first.keep_alive());
  ASSERT_FALSE(small->Read(second));
  EXPECT_EQ(second.result_int(), 200u);
  EXPECT_EQ(handled_.load(), 0) << "no handler ran for a refused request";
}

// Per-route body limits: only the route that declares a big limit gets big bodies.
TEST_F(UntrustedTest, BodyLimitsArePerRoute) {
  options_.discard_limit = 8 * 1024 * 1024;  // over-limit bodies are read and answered 413
  StartServer();
  auto client = Client();
  const HeaderList auth = {{"Authorization", "Bearer op-token"}};
  const std::string two_mib(2 * 1024 * 1024, 'x');
  auto big = client->Send({"POST", "/upload", auth, two_mib});
  ASSERT_TRUE(big.ok()) << big.error().ToString();
  EXPECT_EQ(big->status, 200) << big->body;
  EXPECT_NE(big->body.find(std::to_string(two_mib.size())), std::string::npos);
  auto refused = Client()->Send({"POST", "/small", auth, two_mib});
  ASSERT_TRUE(refused.ok()) << refused.error().ToString();
  EXPECT_EQ(refused->status, 413);
  EXPECT_NE(refused->body.find(std::to_string(options_.body_limit)), std::string::npos)
      << "names the route's limit: " << refused->body;
  auto over = Client()->Send({"POST", "/upload", auth, std::string(4 * 1024 * 1024 + 1, 'y')});
  ASSERT_TRUE(over.ok());
  EXPECT_EQ(over->status, 413);
  EXPECT_EQ(handled_.load(), 1);
}

// Connection caps: over the per-address cap a connection is closed before its handshake; a
// freed slot is usable again.
TEST_F(UntrustedTest, ConnectionsPerClientAreCapped) {
  options_.max_connections_per_client = 2;
  StartServer();
  auto a = Raw();
  auto b = Raw();
  EXPECT_THROW(Raw(), std::exception) << "the third connection from 127.0.0.1 is refused";
  a.reset();
  // The server notices the close asynchronously: retry for a bounded time.
  bool reconnected = false;
  for (int i = 0; i < 100 && !reconnected; ++i) {
    try {
      auto c = Raw();
      c->Write("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
      RawResponse r;
      reconnected = !c->Read(r) && r.result_int() == 200u;
    } catch (const std::exception&) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  EXPECT_TRUE(reconnected);
}

// Issue 13 item 3: out of descriptors, the accept loop backs off instead of spinning, logs at
// most about a line a second, and an existing connection keeps being served.
TEST_F(UntrustedTest, OutOfDescriptorsTheAcceptLoopBacksOff) {
  StartServer();
  auto existing = Client();
  ASSERT_TRUE(existing->Get("/hello").ok());
  // A connection the kernel completes into the backlog while accept() cannot take it.
  const int pending = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(pending, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port_);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

  rlimit saved{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &saved), 0);
  std::vector<int> filler;
  edgeprune::testing::CaptureStderr capture(dir_.File("stderr.txt"));
  {
    rlimit low = saved;
    low.rlim_cur = std::min<rlim_t>(saved.rlim_cur, 4096);
    ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &low), 0);
    while (true) {
      const int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
      if (fd < 0) break;
      filler.push_back(fd);
    }
    ASSERT_EQ(::connect(pending, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // let accept fail for a while
    const auto asked = std::chrono::steady_clock::now();
    auto during = existing->Get("/hello");
    // Issue 13's target is <= 100 ms; printed, not asserted (a test never asserts a time).
    std::printf("[ measure  ] a request on an open connection while accept() fails: %.1f ms\n",
                std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - asked)
                    .count());
    EXPECT_TRUE(during.ok()) << during.error().ToString();
    if (during.ok()) {
      EXPECT_EQ(during->status, 200);
    }
  }
  for (int fd : filler) ::close(fd);
  ::setrlimit(RLIMIT_NOFILE, &saved);
  const std::string text = capture.Stop();
  ::close(pending);
  std::istringstream lines(text);
  std::string line;
  int accept_lines = 0;
  while (std::getline(lines, line)) accept_lines += line.find("accept failed") != std::string::npos;
  EXPECT_GE(accept_lines, 1) << text;
  EXPECT_LE(accept_lines, 3) << "a busy loop wrote hundreds of thousands of lines:\n" << text;
  // Descriptors back: new connections are accepted again.
  bool served = false;
  for (int i = 0; i < 100 && !served; ++i) {
    auto r = Client()->Get("/hello");
    served = r.ok() && r->status == 200;
    if (!served) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(served);
}

}  // namespace
}  // namespace edgeprune::http
