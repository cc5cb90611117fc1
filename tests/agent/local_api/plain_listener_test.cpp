// The local API's plaintext listener on its own, over real loopback HTTP: how connections are
// spread over its I/O threads, that a handler blocking one thread leaves the others serving, and
// that bodies far larger than one read arrive whole.
#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <future>
#include <set>
#include <sstream>
#include <thread>

#include "common/http/plain_listener.hpp"
#include "local_api_client.hpp"
#include "support/wait_until.hpp"

namespace edgeprune::agent {
namespace {

using edgeprune::testing::PlainClient;

std::string ThisThread() {
  std::ostringstream out;
  out << std::this_thread::get_id();
  return out.str();
}

class ListenerTest : public ::testing::Test {
 protected:
  void Start(int threads) {
    http::ListenerOptions options;
    options.threads = threads;
    listener_ = std::make_unique<http::PlainHttpListener>(options, router_, nullptr);
    auto port = listener_->Start();
    ASSERT_TRUE(port.ok()) << port.error().ToString();
    port_ = *port;
  }

  void TearDown() override {
    try {
      release_.set_value();  // a test that failed mid-way must not leave a handler blocked
    } catch (const std::future_error&) {
      // already released
    }
    if (listener_) {
      listener_->Stop();
      listener_->Wait();
    }
  }

  void SetUp() override {
    router_ = std::make_shared<http::Router>();
    ASSERT_TRUE(router_->Add({http::Verb::get, "/thread",
                              [](const http::RequestContext&) -> Result<http::Response> {
                                return http::TextResponse(ThisThread(), "text/plain");
                              },
                              http::Auth::kPublic, "/thread"})
                    .ok());
    ASSERT_TRUE(router_->Add({http::Verb::get, "/block",
                              [this](const http::RequestContext&) -> Result<http::Response> {
                                blocked_ = true;
                                released_.wait_for(std::chrono::seconds(30));
                                blocked_ = false;
                                return http::TextResponse("released", "text/plain");
                              },
                              http::Auth::kPublic, "/block"})
                    .ok());
    ASSERT_TRUE(router_->Add({http::Verb::post, "/size",
                              [](const http::RequestContext& ctx) -> Result<http::Response> {
                                std::size_t sum = 0;
                                for (unsigned char c : ctx.body) sum += c;
                                return http::TextResponse(std::to_string(ctx.body.size()) + " " +
                                                              std::to_string(sum),
                                                          "text/plain");
                              },
                              http::Auth::kPublic, "/size"})
                    .ok());
  }

  std::shared_ptr<http::Router> router_;
  std::unique_ptr<http::PlainHttpListener> listener_;
  std::uint16_t port_ = 0;
  std::promise<void> release_;
  std::shared_future<void> released_ = release_.get_future().share();
  std::atomic<bool> blocked_{false};
};

TEST_F(ListenerTest, ConnectionsAreDealtToThreadsInTurnAndStayOnTheirs) {
  Start(3);
  std::vector<std::unique_ptr<PlainClient>> clients;
  std::vector<std::string> thread_of;
  for (int i = 0; i < 4; ++i) {
    clients.push_back(std::make_unique<PlainClient>(port_));
    auto r = clients.back()->Send("GET", "/thread", "");
    ASSERT_EQ(r.status, 200);
    thread_of.push_back(r.body);
  }
  // Three threads, three connections: one each; the fourth goes back to the first thread.
  EXPECT_EQ(std::set<std::string>(thread_of.begin(), thread_of.begin() + 3).size(), 3u);
  EXPECT_EQ(thread_of[3], thread_of[0]);
  // Every later request of a connection runs on the same thread as its first.
  for (int round = 0; round < 5; ++round) {
    for (std::size_t i = 0; i < clients.size(); ++i) {
      auto r = clients[i]->Send("GET", "/thread", "");
      ASSERT_EQ(r.status, 200);
      EXPECT_EQ(r.body, thread_of[i]) << "connection " << i << " changed threads";
    }
  }
}

TEST_F(ListenerTest, AHandlerBlockingOneThreadLeavesTheOtherServing) {
  Start(2);
  PlainClient slow(port_), fast(port_);
  auto slow_status =
      std::async(std::launch::async, [&] { return slow.Send("GET", "/block", "").status; });
  ASSERT_TRUE(edgeprune::testing::WaitUntil([&] { return blocked_.load(); }));
  // slow's connection is on the first thread, fast's on the second, which still answers.
  for (int i = 0; i < 3; ++i) EXPECT_EQ(fast.Send("GET", "/thread", "").status, 200);
  EXPECT_TRUE(blocked_.load());
  release_.set_value();
  EXPECT_EQ(slow_status.get(), 200);
}

TEST_F(ListenerTest, ABodyOfManyReadsArrivesWholeAndTheConnectionStaysUsable) {
  Start(1);
  PlainClient client(port_);
  std::string body(3 * 1024 * 1024 + 17, '\0');
  std::size_t sum = 0;
  for (std::size_t i = 0; i < body.size(); ++i) {
    body[i] = static_cast<char>((i * 131) % 251);
    sum += static_cast<unsigned char>(body[i]);
  }
  for (int i = 0; i < 2; ++i) {
    auto r = client.Send("POST", "/size", body, {{"Content-Type", "application/octet-stream"}});
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.body, std::to_string(body.size()) + " " + std::to_string(sum));
  }
  auto small = client.Send("POST", "/size", "abc", {{"Content-Type", "text/plain"}});
  ASSERT_EQ(small.status, 200);
  EXPECT_EQ(small.body, "3 294");
}

}  // namespace
}  // namespace edgeprune::agent
