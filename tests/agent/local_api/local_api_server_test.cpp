// The local inference API over real loopback HTTP with a real TorchScript model.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "support/build_paths.hpp"
#include "agent/local_api/local_api_server.hpp"
#include "edgeprune/common/json.hpp"
#include "local_api_client.hpp"
#include "runtime_fixture_models.hpp"
#include "support/temp_dir.hpp"

namespace edgeprune::agent {
namespace {

using edgeprune::testing::PlainClient;
using edgeprune::testing::SyntheticTask;

std::string JsonBody(const std::vector<std::int64_t>& shape, const std::vector<float>& data) {
  boost::json::array s, d;
  for (auto x : shape) s.emplace_back(x);
  for (auto x : data) d.emplace_back(static_cast<double>(x));
  return json::Serialize(boost::json::object{{"shape", s}, {"data", d}});
}

std::string Raw(const std::vector<float>& data) {
  std::string bytes(data.size() * sizeof(float), '\0');
  std::memcpy(bytes.data(), data.data(), bytes.size());
  return bytes;
}

boost::json::object Parse(const std::string& body) {
  auto o = json::ParseObject(body);
  EXPECT_TRUE(o.ok()) << body;
  return o.ok() ? *o : boost::json::object{};
}

std::string ErrorCode(const edgeprune::testing::PlainResponse& r) {
  auto o = Parse(r.body);
  if (!o.contains("error")) return "<no error body: " + r.body + ">";
  return std::string(o["error"].as_object()["code"].as_string());
}

class LocalApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto path = dir_.File("model.pt");
    edgeprune::testing::WriteTemplateModel(path, task_);
    spec_ = edgeprune::testing::SpecFor("fmnist-v1", path, task_);
    LocalApiOptions options;
    options.max_infer_body_bytes = 64 * 1024;
    auto server = LocalApiServer::Start(options, runtime_, collector_, nullptr);
    ASSERT_TRUE(server.ok()) << server.error().ToString();
    server_ = std::move(server).value();
    client_ = std::make_unique<PlainClient>(server_->port());
  }

  edgeprune::testing::PlainResponse Infer(const std::string& body, const std::string& type,
                                          std::map<std::string, std::string> headers = {}) {
    headers["Content-Type"] = type;
    return client_->Send("POST", "/v1/infer", body, headers);
  }

  SyntheticTask task_{1, 28, 28, 10};
  edgeprune::testing::TempDir dir_{"local-api-test"};
  VariantSpec spec_;
  ModelRuntime runtime_{RuntimeOptions{1, 1, edgeprune::testing::AgentTorchModule()}};
  TelemetryCollector collector_;
  std::unique_ptr<LocalApiServer> server_;
  std::unique_ptr<PlainClient> client_;
};

TEST_F(LocalApiTest, WithoutAModelInferIsUnavailable) {
  auto r = Infer(JsonBody(task_.input_shape(), edgeprune::testing::MakeSample(task_, 0)),
                 "application/json");
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(ErrorCode(r), "no_active_model");
}

TEST_F(LocalApiTest, JsonAndRawBodiesClassify) {
  ASSERT_TRUE(runtime_.Install(spec_, nullptr).ok());
  auto json_r = Infer(JsonBody(task_.input_shape(), edgeprune::testing::MakeSample(task_, 7)),
                      "application/json");
  ASSERT_EQ(json_r.status, 200) << json_r.body;
  auto o = Parse(json_r.body);
  EXPECT_EQ(o["class"].as_int64(), 7);
  EXPECT_EQ(o["scores"].as_array().size(), 10u);
  EXPECT_EQ(o["variant_id"].as_string(), "fmnist-v1");
  EXPECT_GE(o["latency_ms"].to_number<double>(), 0.0);
  const std::string request_id(o["request_id"].as_string());
  EXPECT_FALSE(request_id.empty());
  EXPECT_EQ(json_r.headers["x-request-id"], request_id);

  auto raw_r = Infer(Raw(edgeprune::testing::MakeSample(task_, 4)), "application/octet-stream",
                     {{"X-Shape", "1,1,28,28"}});
  ASSERT_EQ(raw_r.status, 200) << raw_r.body;
  auto raw = Parse(raw_r.body);
  EXPECT_EQ(raw["class"].as_int64(), 4);
  EXPECT_NE(std::string(raw["request_id"].as_string()), request_id);
}

TEST_F(LocalApiTest, BadInputIs400WithTheStandardErrorBody) {
  ASSERT_TRUE(runtime_.Install(spec_, nullptr).ok());
  auto sample = edgeprune::testing::MakeSample(task_, 1);

  auto shape = Infer(JsonBody({1, 1, 14, 56}, sample), "application/json");
  EXPECT_EQ(shape.status, 400);
  EXPECT_EQ(ErrorCode(shape), "invalid_shape");

  auto count = Infer(JsonBody(task_.input_shape(), {1.0f, 2.0f}), "application/json");
  EXPECT_EQ(count.status, 400);
  EXPECT_EQ(ErrorCode(count), "invalid_element_count");

  auto nan = sample;
  nan[5] = std::nanf("");
  auto raw_nan = Infer(Raw(nan), "application/octet-stream", {{"X-Shape", "1,1,28,28"}});
  EXPECT_EQ(raw_nan.status, 400);
  EXPECT_EQ(ErrorCode(raw_nan), "invalid_input");

  auto raw_count = Infer(Raw(sample).substr(4), "application/octet-stream",
                         {{"X-Shape", "1,1,28,28"}});
  EXPECT_EQ(raw_count.status, 400);
  EXPECT_EQ(ErrorCode(raw_count), "invalid_element_count");

  auto no_shape = Infer(Raw(sample), "application/octet-stream");
  EXPECT_EQ(no_shape.status, 400);
  EXPECT_EQ(ErrorCode(no_shape), "missing_shape");

  auto bad_header = Infer(Raw(sample), "application/octet-stream", {{"X-Shape", "1,x,28"}});
  EXPECT_EQ(bad_header.status, 400);
  EXPECT_EQ(ErrorCode(bad_header), "invalid_shape");

  auto malformed = Infer("{\"shape\": [1, 1", "application/json");
  EXPECT_EQ(malformed.status, 400);
  EXPECT_EQ(ErrorCode(malformed), "invalid_json");

  auto text = Infer("hello", "text/plain");
  EXPECT_EQ(text.status, 400);
  EXPECT_EQ(ErrorCode(text), "unsupported_content_type");

  // Over the handler's limit (64 KiB here): 400 naming the limit; far over the listener's: 413.
  auto large = Infer(std::string(100 * 1024, '1'), "application/json");
  EXPECT_EQ(large.status, 400);
  EXPECT_EQ(ErrorCode(large), "body_too_large");
  auto huge = client_->SendHeadOnly("POST", "/v1/infer", 9 * 1024 * 1024);
  EXPECT_EQ(huge.status, 413);
  EXPECT_EQ(ErrorCode(huge), "body_too_large");

  // The server is still serving after all that.
  auto fine = Infer(Raw(sample), "application/octet-stream", {{"X-Shape", "1,1,28,28"}});
  EXPECT_EQ(fine.status, 200);
}

TEST_F(LocalApiTest, FeedbackFeedsTheCollector) {
  ASSERT_TRUE(runtime_.Install(spec_, nullptr).ok());
  std::vector<std::string> ids;
  for (int k : {2, 3}) {
    auto r = Infer(JsonBody(task_.input_shape(), edgeprune::testing::MakeSample(task_, k)),
                   "application/json");
    ASSERT_EQ(r.status, 200);
    ids.emplace_back(Parse(r.body)["request_id"].as_string());
  }
  auto fb = [&](const std::string& id, std::int64_t label) {
    return client_->Send("POST", "/v1/feedback",
                         json::Serialize(boost::json::object{{"request_id", id}, {"label", label}}),
                         {{"Content-Type", "application/json"}});
  };
  auto right = fb(ids[0], 2);
  ASSERT_EQ(right.status, 200) << right.body;
  EXPECT_TRUE(Parse(right.body)["correct"].as_bool());
  auto wrong = fb(ids[1], 9);
  ASSERT_EQ(wrong.status, 200);
  EXPECT_FALSE(Parse(wrong.body)["correct"].as_bool());
  EXPECT_EQ(fb(ids[1], 3).status, 409);
  EXPECT_EQ(fb("never-seen", 1).status, 404);
  auto out_of_range = fb(ids[0], 10);
  EXPECT_EQ(out_of_range.status, 400);
  EXPECT_EQ(ErrorCode(out_of_range), "invalid_field");

  auto report = collector_.TakeReport("fmnist-v1", 1);
  EXPECT_EQ(report.inference_count, 2);
  EXPECT_EQ(report.feedback_count, 2);
  EXPECT_DOUBLE_EQ(*report.feedback_accuracy, 0.5);
}

TEST_F(LocalApiTest, MetricsAreServedInPrometheusText) {
  ASSERT_TRUE(runtime_.Install(spec_, nullptr).ok());
  ASSERT_EQ(Infer(JsonBody(task_.input_shape(), edgeprune::testing::MakeSample(task_, 0)),
                  "application/json")
                .status,
            200);
  Infer(JsonBody({1}, {1.0f}), "application/json");
  auto m = client_->Send("GET", "/metrics", "");
  ASSERT_EQ(m.status, 200);
  EXPECT_NE(m.body.find("edgeprune_agent_inferences_total{variant=\"fmnist-v1\"} 1"),
            std::string::npos)
      << m.body;
  EXPECT_NE(m.body.find("edgeprune_agent_inference_errors_total{code=\"invalid_shape\"} 1"),
            std::string::npos);
  EXPECT_NE(m.body.find("edgeprune_agent_active_variant{variant=\"fmnist-v1\"} 1"),
            std::string::npos);
  EXPECT_NE(m.body.find("edgeprune_agent_inference_seconds_count 1"), std::string::npos);
  // Nothing is running between requests; the process series follow the registry's.
  EXPECT_NE(m.body.find("edgeprune_agent_inferences_in_flight 0"), std::string::npos);
  EXPECT_NE(m.body.find("\nprocess_resident_memory_bytes "), std::string::npos);
  EXPECT_EQ(client_->Send("GET", "/nope", "").status, 404);
}

TEST(AgentMetricsTest, ProbeGaugesFollowTheProbedVariant) {
  auto registry = std::make_shared<prometheus::Registry>();
  AgentMetrics metrics(registry);
  metrics.Probe("v1", 0.91, 1.5, 2.5, 4.0);
  metrics.Probe("v2", 0.88, 1.0, 2.0, 3.0);
  double accuracy_v1 = -1, accuracy_v2 = -1, p95 = -1;
  for (const auto& family : registry->Collect()) {
    for (const auto& m : family.metric) {
      if (family.name == "edgeprune_agent_probe_accuracy") {
        (m.label.at(0).value == "v1" ? accuracy_v1 : accuracy_v2) = m.gauge.value;
      }
      if (family.name == "edgeprune_agent_probe_latency_seconds" && m.label.at(0).value == "0.95") {
        p95 = m.gauge.value;
      }
    }
  }
  // The swapped-out variant's accuracy is gone, not left standing as if still measured.
  EXPECT_EQ(accuracy_v1, -1);
  EXPECT_DOUBLE_EQ(accuracy_v2, 0.88);
  EXPECT_DOUBLE_EQ(p95, 0.002);
}

}  // namespace
}  // namespace edgeprune::agent
