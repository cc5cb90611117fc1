// ModelRuntime against real TorchScript models: the check refuses bad variants without touching
// the active one, inference validates its input, and hot swap under load fails no request.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <set>
#include <thread>

#include "support/build_paths.hpp"
#include "agent/runtime/latency_stats.hpp"
#include "agent/runtime/runtime.hpp"
#include "runtime_fixture_models.hpp"
#include "support/temp_dir.hpp"

namespace edgeprune::agent {
namespace {

using testing::SyntheticTask;

class RuntimeTest : public ::testing::Test {
 protected:
  SyntheticTask task_{1, 8, 8, 4};
  edgeprune::testing::TempDir dir_{"runtime-test"};
  std::shared_ptr<const ProbeSet> probe_ =
      std::make_shared<const ProbeSet>(edgeprune::testing::MakeProbeSet(task_, 5));
  ModelRuntime runtime_{RuntimeOptions{1, 2, edgeprune::testing::AgentTorchModule()}};

  std::string Model(const std::string& name, std::int64_t shift = 0) {
    auto path = dir_.File(name + ".pt");
    edgeprune::testing::WriteTemplateModel(path, task_, shift);
    return path;
  }
};

TEST_F(RuntimeTest, InstallsCheckedModelAndClassifies) {
  auto spec = edgeprune::testing::SpecFor("v1", Model("v1"), task_, 0.9);
  auto report = runtime_.Install(spec, probe_);
  ASSERT_TRUE(report.ok()) << report.error().ToString();
  ASSERT_TRUE(report->probe.has_value());
  EXPECT_DOUBLE_EQ(report->probe->accuracy, 1.0);
  EXPECT_EQ(report->probe->latency.count, static_cast<std::int64_t>(probe_->size()));
  EXPECT_LE(report->probe->latency.p50_ms, report->probe->latency.p99_ms);

  for (std::int64_t k = 0; k < task_.classes; ++k) {
    auto r = runtime_.Infer(edgeprune::testing::MakeSample(task_, k), task_.input_shape());
    ASSERT_TRUE(r.ok()) << r.error().ToString();
    EXPECT_EQ(r->class_index, k);
    EXPECT_EQ(r->scores.size(), static_cast<std::size_t>(task_.classes));
    EXPECT_EQ(r->variant_id, "v1");
    EXPECT_GE(r->latency_us, 0);
  }
  ASSERT_TRUE(runtime_.active_spec().has_value());
  EXPECT_EQ(runtime_.active_spec()->variant_id, "v1");
}

TEST_F(RuntimeTest, OpensTheRuntimeModuleOnlyWhenAVariantIsLoaded) {
  EXPECT_FALSE(runtime_.backend_loaded());
  auto none = runtime_.Infer(edgeprune::testing::MakeSample(task_, 0), task_.input_shape());
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().code, "no_active_model");
  EXPECT_FALSE(runtime_.backend_loaded()) << "inference without a model opens nothing";
  ASSERT_TRUE(
      runtime_.Install(edgeprune::testing::SpecFor("v1", Model("v1"), task_, 0.0), probe_).ok());
  EXPECT_TRUE(runtime_.backend_loaded());
}

TEST_F(RuntimeTest, MissingRuntimeModuleRefusesTheVariantNamingThePath) {
  ASSERT_TRUE(
      runtime_.Install(edgeprune::testing::SpecFor("v1", Model("v1"), task_, 0.0), probe_).ok());
  for (const std::string& module : {dir_.File("missing.so"), dir_.WriteFile("junk.so", "not ELF")}) {
    ModelRuntime broken(RuntimeOptions{1, 1, module});
    auto r = broken.Install(edgeprune::testing::SpecFor("v2", Model("v2"), task_, 0.0), probe_);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, "runtime_unavailable");
    EXPECT_EQ(r.error().kind, ErrorKind::kUnavailable);
    EXPECT_NE(r.error().message.find(module), std::string::npos) << r.error().message;
    EXPECT_NE(r.error().message.find("variant v2"), std::string::npos) << r.error().message;
    EXPECT_FALSE(broken.active_spec().has_value());
    EXPECT_FALSE(broken.backend_loaded());
  }
  // The working runtime in the same process is untouched.
  auto still = runtime_.Infer(edgeprune::testing::MakeSample(task_, 1), task_.input_shape());
  ASSERT_TRUE(still.ok()) << still.error().ToString();
  EXPECT_EQ(still->variant_id, "v1");
}

TEST_F(RuntimeTest, NormalizationFromTheSpecIsAppliedToProbeAndInferenceInputs) {
  auto spec = edgeprune::testing::SpecFor("v1", Model("v1"), task_, 1.0);
  spec.normalize_mean = {0.5};
  spec.normalize_std = {0.25};
  auto report = runtime_.Install(spec, probe_);
  ASSERT_TRUE(report.ok()) << report.error().ToString();
  EXPECT_DOUBLE_EQ(report->probe->accuracy, 1.0);

  // Inference inputs get the same normalization: raw samples give the probe's answers, and the
  // scores differ from those of the same model installed without normalization.
  const auto sample = edgeprune::testing::MakeSample(task_, 3);
  auto normalized = runtime_.Infer(sample, task_.input_shape());
  ASSERT_TRUE(normalized.ok()) << normalized.error().ToString();
  EXPECT_EQ(normalized->class_index, 3);
  ASSERT_TRUE(runtime_.Install(edgeprune::testing::SpecFor("raw", Model("v1"), task_, 1.0),
                               nullptr).ok());
  auto raw = runtime_.Infer(sample, task_.input_shape());
  ASSERT_TRUE(raw.ok());
  EXPECT_NE(raw->scores, normalized->scores);
}

TEST_F(RuntimeTest, VariantBelowAccuracyFloorIsNeverSwappedIn) {
  ASSERT_TRUE(
      runtime_.Install(edgeprune::testing::SpecFor("good", Model("good"), task_, 0.9), probe_)
          .ok());
  auto bad =
      runtime_.Install(edgeprune::testing::SpecFor("bad", Model("bad", 1), task_, 0.5), probe_);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, "probe_accuracy_below_floor");
  EXPECT_NE(bad.error().message.find("bad"), std::string::npos);
  EXPECT_EQ(runtime_.active_spec()->variant_id, "good");
  auto r = runtime_.Infer(edgeprune::testing::MakeSample(task_, 2), task_.input_shape());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->class_index, 2);
}

TEST_F(RuntimeTest, UnloadableFilesAreRefusedNamingThePath) {
  auto garbage = dir_.WriteFile("garbage.pt", "this is not a zip archive");
  auto r = runtime_.Install(edgeprune::testing::SpecFor("g", garbage, task_), probe_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "model_load_failed");
  EXPECT_NE(r.error().message.find(garbage), std::string::npos);

  auto missing = runtime_.Install(edgeprune::testing::SpecFor("m", dir_.File("nope.pt"), task_),
                                  nullptr);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, "model_load_failed");
  EXPECT_FALSE(runtime_.active_spec().has_value());
}

TEST_F(RuntimeTest, WrongOutputShapeAndNanScoresAreRefused) {
  auto wrong = dir_.File("wrong.pt");
  edgeprune::testing::WriteWrongOutputModel(wrong, task_, task_.classes + 1);
  auto r = runtime_.Install(edgeprune::testing::SpecFor("wrong", wrong, task_), nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "model_output_invalid");

  auto nan = dir_.File("nan.pt");
  edgeprune::testing::WriteNanModel(nan, task_);
  auto n = runtime_.Install(edgeprune::testing::SpecFor("nan", nan, task_), nullptr);
  ASSERT_FALSE(n.ok());
  EXPECT_EQ(n.error().code, "model_output_invalid");

  // Declaring an input shape the model cannot take fails the warm-up forward.
  auto spec = edgeprune::testing::SpecFor("shape", Model("shape"), task_);
  spec.input_shape = {1, 1, 5, 5};
  auto s = runtime_.Install(spec, nullptr);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, "inference_failed");
  EXPECT_FALSE(runtime_.active_spec().has_value());
}

TEST_F(RuntimeTest, ProbeWithOtherSampleShapeIsRefused) {
  SyntheticTask other{1, 4, 4, 4};
  auto other_probe = std::make_shared<const ProbeSet>(edgeprune::testing::MakeProbeSet(other, 2));
  auto r = runtime_.Install(edgeprune::testing::SpecFor("v1", Model("v1"), task_), other_probe);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "probe_shape_mismatch");
}

TEST_F(RuntimeTest, InferValidatesItsInput) {
  auto none = runtime_.Infer(edgeprune::testing::MakeSample(task_, 0), task_.input_shape());
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().code, "no_active_model");

  ASSERT_TRUE(runtime_.Install(edgeprune::testing::SpecFor("v1", Model("v1"), task_), nullptr).ok());
  auto sample = edgeprune::testing::MakeSample(task_, 1);
  auto shape = runtime_.Infer(sample, {1, 1, 4, 16});
  ASSERT_FALSE(shape.ok());
  EXPECT_EQ(shape.error().code, "invalid_shape");

  std::vector<float> short_sample(sample.begin(), sample.end() - 1);
  auto count = runtime_.Infer(short_sample, task_.input_shape());
  ASSERT_FALSE(count.ok());
  EXPECT_EQ(count.error().code, "invalid_shape");

  sample[3] = std::nanf("");
  auto nan = runtime_.Infer(sample, task_.input_shape());
  ASSERT_FALSE(nan.ok());
  EXPECT_EQ(nan.error().code, "invalid_input");
  EXPECT_NE(nan.error().message.find("index 3"), std::string::npos);
}

TEST_F(RuntimeTest, HotSwapUnderLoadFailsNoRequestAndFreesTheOldModel) {
  const std::string a = Model("a");
  const std::string b = Model("b");
  ASSERT_TRUE(runtime_.Install(edgeprune::testing::SpecFor("a0", a, task_), nullptr).ok());
  std::weak_ptr<const LoadedModel> first = runtime_.active();

  std::atomic<bool> stop{false};
  std::atomic<int> failures{0};
  std::atomic<int> wrong{0};
  std::atomic<int> served{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 3; ++t) {
    clients.emplace_back([&, t] {
      const auto sample = edgeprune::testing::MakeSample(task_, t % task_.classes);
      while (!stop.load()) {
        auto r = runtime_.Infer(sample, task_.input_shape());
        if (!r.ok()) {
          failures.fetch_add(1);
        } else if (r->class_index != t % task_.classes) {
          wrong.fetch_add(1);
        }
        served.fetch_add(1);
      }
    });
  }
  constexpr int kSwaps = 8;
  for (int i = 1; i <= kSwaps; ++i) {
    // Wait (bounded) until requests are flowing so each swap happens under load.
    const int before = served.load();
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (served.load() < before + 5 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::yield();
    }
    auto r = runtime_.Install(
        edgeprune::testing::SpecFor((i % 2 ? "b" : "a") + std::to_string(i), i % 2 ? b : a, task_),
        probe_);
    ASSERT_TRUE(r.ok()) << r.error().ToString();
  }
  stop = true;
  for (auto& c : clients) c.join();

  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_GT(served.load(), kSwaps * 5);
  EXPECT_EQ(runtime_.active_spec()->variant_id, "a" + std::to_string(kSwaps));
  EXPECT_TRUE(first.expired()) << "the replaced model must be freed once no request holds it";
}

TEST(LatencyStatsTest, NearestRankQuantiles) {
  std::vector<double> samples;
  for (int i = 100; i >= 1; --i) samples.push_back(i);
  auto q = QuantilesOf(samples);
  EXPECT_EQ(q.count, 100);
  EXPECT_DOUBLE_EQ(q.p50_ms, 50);
  EXPECT_DOUBLE_EQ(q.p95_ms, 95);
  EXPECT_DOUBLE_EQ(q.p99_ms, 99);
  EXPECT_EQ(QuantilesOf({}).count, 0);
  EXPECT_DOUBLE_EQ(QuantilesOf({3.0}).p99_ms, 3.0);
}

}  // namespace
}  // namespace edgeprune::agent
