// The whole toolkit on data that is not Fashion-MNIST (3 channels, 32x32, 5 classes): build,
// train, evaluate, cost, save. And models from PyTorch (scripted and traced) fine-tune here.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "edgeprune/common/shape.hpp"
#include "fixtures.hpp"
#include "support/temp_dir.hpp"
#include "server/models/cost_model.hpp"
#include "server/models/evaluate.hpp"
#include "server/models/torchscript.hpp"
#include "server/models/train.hpp"
#include "server/models/zoo.hpp"

namespace edgeprune::models {
namespace {

using testing::Fixture;
using testing::SmallSynthetic;

TrainOptions Quick(int epochs) {
  TrainOptions o;
  o.epochs = epochs;
  o.batch_size = 32;
  o.learning_rate = 3e-3;
  o.seed = 11;
  o.threads = 1;
  o.on_epoch = [](const EpochReport&) {};
  return o;
}

// The same samples as signals: each channel's 32 rows read as one signal of 1024 samples.
DatasetSplits AsSignals(DatasetSplits d) {
  for (Dataset* part : {&d.train, &d.validation, &d.test, &d.calibration}) {
    part->images = part->images.reshape({part->images.size(0), part->images.size(1), -1});
  }
  return d;
}

TEST(Train, EveryArchitectureLearnsThreeChannelData) {
  const auto images = SmallSynthetic(3, 32, 5);
  const auto signals = AsSignals(images);
  for (const auto& arch : Architectures()) {
    SCOPED_TRACE(arch);
    const auto& data = arch == "cnn1d" ? signals : images;
    const auto shape = data.train.image_shape();
    auto m = BuildMaster(arch, {shape, 5, 2, 0.5});
    ASSERT_TRUE(m.ok()) << m.error().ToString();
    auto before = EvaluateAccuracy(*m, data.test);
    ASSERT_TRUE(before.ok()) << before.error().ToString();
    std::vector<EpochReport> epochs;
    auto o = Quick(5);
    o.on_epoch = [&](const EpochReport& r) { epochs.push_back(r); };
    auto report = Train(*m, data.train, &data.validation, o);
    ASSERT_TRUE(report.ok()) << report.error().ToString();
    ASSERT_EQ(epochs.size(), 5u);
    EXPECT_EQ(report->steps, 5 * (data.train.size() / 32));
    EXPECT_LT(epochs.back().train_loss, epochs.front().train_loss);
    EXPECT_GE(epochs.back().validation_accuracy, 0.0);
    EXPECT_NEAR(epochs.back().eta_seconds, 0.0, 1e-9);
    auto after = EvaluateAccuracy(*m, data.test);
    ASSERT_TRUE(after.ok());
    // Five classes: chance is 20%; the patterns are easy to tell apart.
    EXPECT_GT(after->accuracy, 0.5) << "before " << before->accuracy;
    EXPECT_FALSE(m->is_training());
    auto cost = EstimateCost(*m, shape);
    ASSERT_TRUE(cost.ok()) << cost.error().ToString();
    EXPECT_EQ(cost->output_shape, (std::vector<std::int64_t>{1, 5}));
  }
}

TEST(Train, SameSeedSameResult) {
  auto data = SmallSynthetic(1, 16, 3, 128, 32);
  auto run = [&] {
    auto m = BuildMaster("lenet5", {{1, 16, 16}, 3, 4, 1.0});
    EXPECT_TRUE(m.ok());
    auto o = Quick(1);
    o.augment = true;
    EXPECT_TRUE(Train(*m, data.train, nullptr, o).ok());
    return m->attr("classifier").toModule().attr("5").toModule().attr("weight").toTensor().clone();
  };
  EXPECT_TRUE(torch::allclose(run(), run()));
}

TEST(Train, FineTunesModelsFromPyTorch) {
  auto data = SmallSynthetic(1, 28, 10, 512, 64);
  for (const char* file : {"lenet5_scripted.pt", "lenet5_traced.pt"}) {
    SCOPED_TRACE(file);
    auto m = LoadModule(Fixture(file));
    ASSERT_TRUE(m.ok()) << m.error().ToString();
    auto before = EvaluateAccuracy(*m, data.test);
    ASSERT_TRUE(before.ok());
    auto report = Train(*m, data.train, nullptr, Quick(5));
    ASSERT_TRUE(report.ok()) << report.error().ToString();
    auto after = EvaluateAccuracy(*m, data.test);
    ASSERT_TRUE(after.ok());
    EXPECT_GT(after->accuracy, before->accuracy + 0.2);
    testing::TempDir dir;
    ASSERT_TRUE(SaveModule(*m, dir.File("tuned.pt")).ok());
    auto again = LoadModule(dir.File("tuned.pt"));
    ASSERT_TRUE(again.ok());
    auto acc = EvaluateAccuracy(*again, data.test);
    ASSERT_TRUE(acc.ok());
    EXPECT_EQ(acc->correct, after->correct);
  }
}

TEST(Train, MismatchedDataSetIsRefusedWithoutTouchingTheModel) {
  auto data = SmallSynthetic(3, 32, 5, 64, 16);
  auto m = LoadModule(Fixture("lenet5_scripted.pt"));
  ASSERT_TRUE(m.ok());
  auto before = m->attr("features").toModule().attr("0").toModule().attr("weight").toTensor().clone();
  auto r = Train(*m, data.train, nullptr, Quick(1));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "invalid_model");
  EXPECT_NE(r.error().message.find("[1, 3, 32, 32]"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("synthetic"), std::string::npos) << r.error().message;
  EXPECT_TRUE(torch::equal(before,
                           m->attr("features").toModule().attr("0").toModule().attr("weight").toTensor()));

  // Right image shape, wrong number of classes.
  auto four = SmallSynthetic(1, 28, 4, 64, 16);
  auto classes = EvaluateAccuracy(*m, four.test);
  ASSERT_FALSE(classes.ok());
  EXPECT_NE(classes.error().message.find("10 class scores but 4"), std::string::npos)
      << classes.error().message;

  auto none = LoadModule(Fixture("noparams_scripted.pt"));
  ASSERT_TRUE(none.ok());
  auto np = Train(*none, four.train, nullptr, Quick(1));
  ASSERT_FALSE(np.ok());
  EXPECT_NE(np.error().message.find("no parameters"), std::string::npos);
}

TEST(Train, RejectsBadOptions) {
  auto data = SmallSynthetic(1, 16, 3, 64, 16);
  auto m = BuildMaster("mlp", {{1, 16, 16}, 3, 1, 0.25});
  ASSERT_TRUE(m.ok());
  auto o = Quick(1);
  o.optimizer = "lbfgs";
  EXPECT_EQ(Train(*m, data.train, nullptr, o).error().code, "invalid_argument");
  o = Quick(0);
  EXPECT_EQ(Train(*m, data.train, nullptr, o).error().code, "invalid_argument");
  o = Quick(1);
  o.learning_rate = 0.0;
  EXPECT_EQ(Train(*m, data.train, nullptr, o).error().code, "invalid_argument");
  o = Quick(1);
  o.momentum = 1.5;
  EXPECT_EQ(Train(*m, data.train, nullptr, o).error().code, "invalid_argument");
}

TEST(Evaluate, AccuracyCountsAndLatencyStatistics) {
  auto data = SmallSynthetic(1, 16, 3, 64, 40);
  auto m = BuildMaster("lenet5", {{1, 16, 16}, 3, 1, 1.0});
  ASSERT_TRUE(m.ok());
  auto acc = EvaluateAccuracy(*m, data.test, 7);  // batches that do not divide the set
  ASSERT_TRUE(acc.ok());
  EXPECT_EQ(acc->total, 40);
  m->eval();
  torch::NoGradGuard no_grad;
  auto expected = m->forward({data.test.images}).toTensor().argmax(1).eq(data.test.labels).sum();
  EXPECT_EQ(acc->correct, expected.item<std::int64_t>());

  LatencyOptions lo;
  lo.warmup = 2;
  lo.runs = 15;
  lo.threads = 1;
  auto lat = MeasureLatency(*m, {1, 16, 16}, lo);
  ASSERT_TRUE(lat.ok()) << lat.error().ToString();
  EXPECT_EQ(lat->runs, 15);
  EXPECT_GT(lat->p50_ms, 0.0);
  EXPECT_LE(lat->min_ms, lat->p50_ms);
  EXPECT_LE(lat->p50_ms, lat->p95_ms);
  lo.batch_size = 32;
  lo.runs = 3;
  auto tput = MeasureLatency(*m, {1, 16, 16}, lo);
  ASSERT_TRUE(tput.ok());
  EXPECT_NEAR(tput->items_per_second, 32.0 * 1000.0 / tput->p50_ms, 1e-6);
  lo.threads = 0;
  EXPECT_FALSE(MeasureLatency(*m, {1, 16, 16}, lo).ok());
  lo.threads = 1;
  auto wrong = MeasureLatency(*m, {3, 16, 16}, lo);
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.error().code, "invalid_model");
}

TEST(TorchScript, LoadErrorsNameTheFile) {
  testing::TempDir dir;
  auto missing = LoadModule(dir.File("nope.pt"));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, "not_found");
  EXPECT_NE(missing.error().message.find("nope.pt"), std::string::npos);
  std::string junk = dir.WriteFile("junk.pt", "this is not a zip archive of TorchScript");
  auto bad = LoadModule(junk);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, "invalid_model");
  EXPECT_NE(bad.error().message.find("junk.pt"), std::string::npos);
  EXPECT_EQ(bad.error().message.find('\n'), std::string::npos) << "one line, no backtrace";
  auto shape = ParseShape("3x32x32");
  ASSERT_TRUE(shape.ok());
  EXPECT_EQ(*shape, (std::vector<std::int64_t>{3, 32, 32}));
  EXPECT_FALSE(ParseShape("3,,32").ok());
  EXPECT_FALSE(ParseShape("-1,2").ok());
  EXPECT_FALSE(ParseShape("a").ok());
}

}  // namespace
}  // namespace edgeprune::models
