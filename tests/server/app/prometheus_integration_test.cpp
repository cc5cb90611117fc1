// The real Prometheus server scrapes the real edgeprune-server over HTTPS; its HTTP API must show
// the target up and edgeprune_http_requests_total stored.
#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <optional>
#include <sstream>
#include <thread>

#include "edgeprune/common/json.hpp"
#include "server/support/serve_fixture.hpp"

namespace edgeprune::server {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;

std::optional<std::string> FindOnPath(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "/usr/bin:/bin");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    std::string candidate = dir + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return std::nullopt;
}

std::uint16_t FreePort() {
  net::io_context ioc;
  net::ip::tcp::acceptor a(ioc, {net::ip::make_address("127.0.0.1"), 0});
  return a.local_endpoint().port();
}

// Plain-HTTP GET against Prometheus's API; nullopt while it is not answering yet.
std::optional<boost::json::object> PromGet(std::uint16_t port, const std::string& target) {
  try {
    net::io_context ioc;
    beast::tcp_stream stream(ioc);
    stream.expires_after(std::chrono::seconds(5));
    stream.connect({net::ip::make_address("127.0.0.1"), port});
    beast::http::request<beast::http::empty_body> req{beast::http::verb::get, target, 11};
    req.set(beast::http::field::host, "127.0.0.1");
    beast::http::write(stream, req);
    beast::flat_buffer buffer;
    beast::http::response<beast::http::string_body> res;
    beast::http::read(stream, buffer, res);
    if (res.result_int() != 200) return std::nullopt;
    auto o = json::ParseObject(res.body());
    if (!o.ok()) return std::nullopt;
    return *o;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

class PrometheusIntegrationTest : public testing::ServeFixture {
 protected:
  // Runs Prometheus against the started server with extra scrape-config lines until the HTTP
  // request counter is queryable (or a deadline passes).
  void ExpectScraped(const std::string& prometheus, const std::string& extra_scrape_config) {
    const std::string config = dir_.WriteFile("prometheus.yml",
        "global:\n"
        "  scrape_interval: 1s\n"
        "  scrape_timeout: 1s\n"
        "scrape_configs:\n"
        "  - job_name: edgeprune\n"
        "    scheme: https\n"
        "    tls_config:\n"
        "      ca_file: " + pki_.ca_cert() + "\n"
        "      server_name: localhost\n" + extra_scrape_config +
        "    static_configs:\n"
        "      - targets: ['127.0.0.1:" + std::to_string(port_) + "']\n");
    const std::uint16_t prom_port = FreePort();
    edgeprune::testing::Process prom({.program = prometheus,
                                      .args = {"--config.file=" + config,
                                               "--web.listen-address=127.0.0.1:" + std::to_string(prom_port),
                                               "--storage.tsdb.path=" + dir_.Subdir("tsdb"),
                                               "--log.level=warn"},
                                      .env = {}, .working_dir = dir_.path(),
                                      .output_dir = dir_.Subdir("prometheus-logs")});

    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(45);
    std::string health = "never answered";
    std::string last_error;
    bool up = false;
    while (!up && std::chrono::steady_clock::now() < deadline && prom.Running()) {
      if (auto targets = PromGet(prom_port, "/api/v1/targets")) {
        auto& active = (*targets)["data"].as_object()["activeTargets"].as_array();
        if (!active.empty()) {
          auto& t = active[0].as_object();
          health = std::string(t["health"].as_string());
          last_error = std::string(t["lastError"].as_string());
          up = health == "up";
        }
      }
      if (!up) std::this_thread::sleep_for(std::chrono::milliseconds(250));  // polling interval
    }
    ASSERT_TRUE(up) << "target health: " << health << " " << last_error << "\n" << prom.Stderr();

    bool visible = false;
    std::string last;
    while (!visible && std::chrono::steady_clock::now() < deadline) {
      if (auto q = PromGet(prom_port, "/api/v1/query?query=edgeprune_http_requests_total")) {
        last = boost::json::serialize(*q);
        auto& result = (*q)["data"].as_object()["result"].as_array();
        for (auto& series : result) {
          auto& metric = series.as_object()["metric"].as_object();
          if (metric["job"] == "edgeprune" && metric.contains("route")) visible = true;
        }
      }
      if (!visible) std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
    EXPECT_TRUE(visible) << "last query answer: " << last;
  }
};

TEST_F(PrometheusIntegrationTest, ScrapesTheServerOverTls) {
  auto prometheus = FindOnPath("prometheus");
  if (!prometheus) {
    GTEST_SKIP() << "the prometheus binary is not installed (Debian package 'prometheus'; "
                    "deploy/bootstrap.sh installs it)";
  }
  StartServer();
  ASSERT_TRUE(Client()->Get("/healthz").ok());
  ExpectScraped(*prometheus, "");
}

// Issue 13: with metrics.require_token the series (device and model ids) need a viewer token;
// Prometheus sends one from a credentials file, as deploy/prometheus/prometheus.yml shows.
TEST_F(PrometheusIntegrationTest, ScrapesWithAViewerTokenWhenOneIsRequired) {
  auto prometheus = FindOnPath("prometheus");
  if (!prometheus) GTEST_SKIP() << "the prometheus binary is not installed";
  StartServer({"--set", "metrics.require_token=true"});
  const std::string out = server_->Stdout();
  const auto at = out.find("ept_");
  ASSERT_NE(at, std::string::npos) << out;
  const std::string admin = out.substr(at, out.find('\n', at) - at);
  auto client = Client();
  auto anonymous = client->Get("/metrics");
  ASSERT_TRUE(anonymous.ok());
  EXPECT_EQ(anonymous->status, 401);
  auto made = client->Send({"POST", "/api/v1/tokens",
                            {{"Authorization", "Bearer " + admin}, {"Content-Type", "application/json"}},
                            R"({"name":"prometheus","role":"viewer"})"});
  ASSERT_TRUE(made.ok());
  ASSERT_EQ(made->status, 201) << made->body;
  auto token = json::ParseObject(made->body);
  ASSERT_TRUE(token.ok());
  const std::string viewer((*token)["token"].as_string());
  auto with_token = client->Get("/metrics", {{"Authorization", "Bearer " + viewer}});
  ASSERT_TRUE(with_token.ok());
  EXPECT_EQ(with_token->status, 200);
  const std::string file = dir_.WriteFile("prometheus.token", viewer);
  ExpectScraped(*prometheus, "    authorization:\n"
                             "      type: Bearer\n"
                             "      credentials_file: " + file + "\n");
}

}  // namespace
}  // namespace edgeprune::server
