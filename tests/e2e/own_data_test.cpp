// A non-image data set through the real loop (issue 14): one `edgeprune-server serve` and one
// `edgeprune-agent run` over loopback. The operator uploads a generated data set of 3-channel
// signals of length 128 (.npz, written by test code), trains a 1-D convolutional master on it
// with `edgeprune-server train --arch cnn1d`, uploads it, and deploys it. The server builds a
// variant and signs it with a probe set drawn from the data set's test split; the agent fetches
// and checks both, serves /v1/infer with the data set's shape (JSON and raw float32) and reports
// probe accuracy measured on those samples.
//
// Its own server (its own suite), registered as its own CTest (`e2e.own_data`), well under two
// minutes: 160 training samples, 10 fine-tuning steps.
#include <cstdio>
#include <cstring>

#include "edgeprune/common/wire/manifest.hpp"
#include "edgeprune/common/wire/probe_file.hpp"
#include "full_loop_fixture.hpp"
#include "server/datasets/dataset_files.hpp"

namespace edgeprune::e2e {
namespace {

class OwnDataTest : public FullLoopTest {};

// The agent's answer to one sample: JSON or raw float32 with X-Shape.
std::int64_t InferClass(Agent& agent, const std::vector<float>& sample, bool raw,
                        const std::string& variant) {
  edgeprune::testing::PlainResponse r;
  if (raw) {
    std::string body(reinterpret_cast<const char*>(sample.data()), sample.size() * sizeof(float));
    edgeprune::testing::PlainClient c(agent.local_port());
    r = c.Send("POST", "/v1/infer", body,
               {{"Content-Type", "application/octet-stream"}, {"X-Shape", "1,3,128"}});
  } else {
    std::string body = "{\"shape\": [1, 3, 128], \"data\": [";
    char number[32];
    for (std::size_t i = 0; i < sample.size(); ++i) {
      // %.9g: every float32 survives the round trip through text exactly.
      std::snprintf(number, sizeof number, "%s%.9g", i ? "," : "", static_cast<double>(sample[i]));
      body += number;
    }
    body += "]}";
    r = agent.Local("POST", "/v1/infer", body);
  }
  EXPECT_EQ(r.status, 200) << r.body;
  boost::system::error_code ec;
  auto v = bj::parse(r.body, ec);
  if (ec || !v.is_object()) return -1;
  EXPECT_EQ(Str(v, "variant_id"), variant);
  const auto* scores = v.as_object().if_contains("scores");
  EXPECT_TRUE(scores && scores->is_array() && scores->as_array().size() == 4u) << r.body;
  return Int(v, "class");
}

TEST_F(OwnDataTest, SignalDataSetFromUploadToProbeAccuracyInTelemetry) {
  auto& s = *suite;
  // 4 classes of [3, 128] float32 signals: 40 training and 10 test samples each.
  edgeprune::testing::GeneratedSpec spec;
  spec.sample_shape = {3, 128};
  spec.classes = 4;
  spec.train_per_class = 40;
  spec.test_per_class = 10;
  spec.dtype = "<f4";
  spec.class_names = {"idle", "normal", "worn", "broken"};
  const auto npz = s.dir.WriteFile("signals.npz", edgeprune::testing::Npz(spec));

  auto uploaded = s.Call("POST", "/api/v1/datasets?name=signals", fs::ReadFile(npz).value(),
                         "application/octet-stream");
  ASSERT_EQ(uploaded.status, 201) << uploaded.raw;
  const std::string dataset = Str(uploaded.body, "id");

  // The master: a 1-D convolutional net trained by the CLI on the same file.
  const auto master = s.dir.File("signals-master.pt");
  Process train({.program = edgeprune::testing::ServerBin(),
                 .args = {"train", "--dataset", npz, "--arch", "cnn1d", "--out", master, "--epochs",
                          "20", "--batch-size", "16", "--threads", "1", "--latency-runs", "1"}});
  ASSERT_EQ(train.Wait(seconds(90)), 0) << train.Stdout() << train.Stderr();
  auto model = s.Call("POST", "/api/v1/models?name=signals-cnn&dataset=" + dataset,
                      fs::ReadFile(master).value(), "application/octet-stream");
  ASSERT_EQ(model.status, 201) << model.raw;
  const std::string model_id = Str(model.body, "id");

  Agent agent;
  agent.Start();
  std::string variant;
  {
    auto deployed = s.Deploy(model_id, agent.device_id());
    variant = s.TargetOf(model_id, deployed);
    ASSERT_FALSE(variant.empty()) << deployed.raw;
  }
  ASSERT_TRUE(agent.WaitServing(variant, seconds(90))) << agent.Log() << "\nserver:\n"
                                                       << s.server->Stderr();

  // What the agent installed: the signed manifest names the probe set it keeps, byte for byte.
  const auto record = bj::parse(fs::ReadFile(agent.state_dir() + "/installed.json").value());
  const auto& current = record.as_object().at("current");
  const std::string payload_path = Str(current, "payload_path");
  const auto manifest = wire::ParseManifest(fs::ReadFile(Str(current, "manifest_path")).value());
  ASSERT_TRUE(manifest.ok()) << manifest.error().ToString();
  EXPECT_EQ(manifest->input_shape, (std::vector<std::int64_t>{1, 3, 128}));
  ASSERT_TRUE(manifest->probe.has_value()) << "the variant ships no probe set";
  EXPECT_EQ(manifest->probe->samples, 40);  // the whole test split (fewer than 200 samples)
  const auto probe_bytes =
      fs::ReadFile(payload_path.substr(0, payload_path.size() - 3) + ".probe").value();
  EXPECT_EQ(crypto::Sha256Hex(probe_bytes), manifest->probe->sha256);
  const auto probe = wire::ParseProbeFile(probe_bytes);
  ASSERT_TRUE(probe.ok()) << probe.error().ToString();
  EXPECT_EQ(probe->sample_shape, (std::vector<std::int64_t>{3, 128}));
  // Exactly the data set's test split, in its raw values.
  const auto arrays = edgeprune::testing::Generate(spec);
  ASSERT_EQ(arrays.x_test.size(), probe->data.size() * sizeof(float));
  EXPECT_EQ(std::memcmp(arrays.x_test.data(), probe->data.data(), arrays.x_test.size()), 0);

  // /v1/infer with the data set's shape: every probe sample, alternately JSON and raw float32.
  // The share answered right is the accuracy the probe check and telemetry must report.
  int correct = 0;
  for (std::size_t i = 0; i < probe->labels.size(); ++i) {
    std::vector<float> sample(probe->data.begin() + i * 384, probe->data.begin() + (i + 1) * 384);
    if (InferClass(agent, sample, i % 2 == 1, variant) == probe->labels[i]) ++correct;
  }
  const double served_accuracy = correct / 40.0;
  EXPECT_GE(served_accuracy, 0.9) << "the master learns these signals easily";
  // An image where the variant takes signals is refused, naming the shape.
  auto wrong = agent.Infer();  // [1, 1, 28, 28]
  EXPECT_TRUE(wrong.is_null());

  // Telemetry reaches the server with the probe accuracy measured on those samples.
  double reported = -1;
  ASSERT_TRUE(WaitUntil(
      [&] {
        auto r = s.Call("GET", "/api/v1/devices/" + agent.device_id() + "/telemetry?limit=20");
        if (r.status != 200) return false;
        for (const auto& item : r.body.as_object()["items"].as_array()) {
          const auto* acc = item.as_object().if_contains("probe_accuracy");
          if (Str(item, "variant_id") == variant && acc && acc->is_number()) {
            reported = acc->to_number<double>();
            return true;
          }
        }
        return false;
      },
      seconds(30), milliseconds(200)))
      << agent.Log();
  EXPECT_DOUBLE_EQ(reported, served_accuracy);
  // The server measured the variant on the same test split (test_limit 50 ≥ 40 samples).
  EXPECT_NEAR(reported, manifest->metrics.accuracy, 1.0 / 40 + 1e-9);
  EXPECT_GE(reported, manifest->metrics.accuracy_floor);
  agent.Stop();
}

}  // namespace
}  // namespace edgeprune::e2e
