// The cost model against hand-computed numbers (docs/models.md conventions) for LeNet-5 and a
// depthwise-separable block, in the three forms a model arrives in: built by the zoo, scripted
// and traced by PyTorch.
#include <gtest/gtest.h>

#include "fixtures.hpp"
#include "server/models/cost_model.hpp"
#include "server/models/torchscript.hpp"
#include "server/models/zoo.hpp"

namespace edgeprune::models {
namespace {

using testing::Fixture;

// LeNet-5 on 1x28x28, 10 classes:
//   conv1 6x28x28 out × 1·5·5 = 117600, conv2 16x10x10 × 6·5·5 = 240000,
//   fc 400→120 = 48000, 120→84 = 10080, 84→10 = 840.
constexpr std::int64_t kLeNetMacs = 117600 + 240000 + 48000 + 10080 + 840;
constexpr std::int64_t kLeNetParams = 156 + 2416 + 48120 + 10164 + 850;
// Peak: conv1's output (6·28·28·4 = 18816 B) and relu's output of the same size, both live.
constexpr std::int64_t kLeNetPeak = 2 * 18816;

void ExpectLeNet5(const CostReport& r) {
  EXPECT_EQ(r.macs, kLeNetMacs);
  EXPECT_EQ(r.params, kLeNetParams);
  EXPECT_EQ(r.param_bytes, kLeNetParams * 4);
  EXPECT_EQ(r.buffer_bytes, 0);
  EXPECT_EQ(r.peak_activation_bytes, kLeNetPeak);
  EXPECT_EQ(r.output_shape, (std::vector<std::int64_t>{1, 10}));
  const LayerCost* conv1 = r.FindByPath("features.0");
  ASSERT_NE(conv1, nullptr);
  EXPECT_EQ(conv1->op, "conv2d");
  EXPECT_EQ(conv1->macs, 117600);
  EXPECT_EQ(conv1->params, 156);
  EXPECT_EQ(conv1->groups, 1);
  EXPECT_EQ(conv1->output_shape, (std::vector<std::int64_t>{1, 6, 28, 28}));
  const LayerCost* conv2 = r.FindByPath("features.3");
  ASSERT_NE(conv2, nullptr);
  EXPECT_EQ(conv2->macs, 240000);
  EXPECT_EQ(conv2->input_shape, (std::vector<std::int64_t>{1, 6, 14, 14}));
  const LayerCost* fc1 = r.FindByPath("classifier.1");
  ASSERT_NE(fc1, nullptr);
  EXPECT_EQ(fc1->op, "linear");
  EXPECT_EQ(fc1->macs, 48000);
  EXPECT_EQ(fc1->params, 48120);
  EXPECT_EQ(r.MacsUnder("classifier"), 48000 + 10080 + 840);
  EXPECT_EQ(r.MacsUnder("features"), 117600 + 240000);
  int pools = 0;
  for (const auto& l : r.layers) {
    if (l.op == "max_pool2d") {
      ++pools;
      EXPECT_EQ(l.macs, 0);
    }
  }
  EXPECT_EQ(pools, 2);
}

TEST(CostModel, LeNet5FromTheZooMatchesHandCount) {
  auto m = BuildMaster("lenet5", {{1, 28, 28}, 10, 1, 1.0});
  ASSERT_TRUE(m.ok()) << m.error().ToString();
  auto r = EstimateCost(*m, {1, 28, 28});
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  ExpectLeNet5(*r);
}

TEST(CostModel, LeNet5ScriptedAndTracedByPyTorchMatchHandCount) {
  for (const char* file : {"lenet5_scripted.pt", "lenet5_traced.pt"}) {
    SCOPED_TRACE(file);
    auto m = LoadModule(Fixture(file));
    ASSERT_TRUE(m.ok()) << m.error().ToString();
    auto r = EstimateCost(*m, {1, 28, 28});
    ASSERT_TRUE(r.ok()) << r.error().ToString();
    ExpectLeNet5(*r);
  }
}

// Depthwise-separable block on 8x16x16, 4 classes:
//   dw 3x3 groups=8: 8·16·16 out × 1·3·3 = 18432 MACs, 72 params
//   bn1: 2048 MACs (one per element), 16 params
//   pw 1x1 8→16: 16·16·16 out × 8 = 32768 MACs, 128 params
//   bn2: 4096 MACs, 32 params
//   adaptive avg pool to 1x1: 16 out × 256 window = 4096 MACs
//   fc 16→4: 64 MACs, 68 params
// Peak: bn2's input and output (16·16·16·4 B each) = 32768 B.
TEST(CostModel, DepthwiseSeparableBlockMatchesHandCount) {
  for (const char* file : {"dwsep_scripted.pt", "dwsep_traced.pt"}) {
    SCOPED_TRACE(file);
    auto m = LoadModule(Fixture(file));
    ASSERT_TRUE(m.ok()) << m.error().ToString();
    auto r = EstimateCost(*m, {8, 16, 16});
    ASSERT_TRUE(r.ok()) << r.error().ToString();
    EXPECT_EQ(r->params, 316);
    EXPECT_EQ(r->buffer_bytes, (8 + 8 + 16 + 16) * 4 + 2 * 8);  // running stats + 2 int64 counters
    EXPECT_EQ(r->macs, 18432 + 2048 + 32768 + 4096 + 4096 + 64);
    EXPECT_EQ(r->peak_activation_bytes, 32768);
    const LayerCost* dw = r->FindByPath("dw");
    ASSERT_NE(dw, nullptr);
    EXPECT_EQ(dw->groups, 8);
    EXPECT_EQ(dw->macs, 18432);
    EXPECT_EQ(dw->params, 72);
    const LayerCost* pw = r->FindByPath("pw");
    ASSERT_NE(pw, nullptr);
    EXPECT_EQ(pw->groups, 1);
    EXPECT_EQ(pw->macs, 32768);
    const LayerCost* bn1 = r->FindByPath("bn1");
    ASSERT_NE(bn1, nullptr);
    EXPECT_EQ(bn1->op, "batch_norm");
    EXPECT_EQ(bn1->macs, 2048);
    EXPECT_EQ(r->FindByPath("fc")->macs, 64);
  }
}

TEST(CostModel, ResidualAddAndPoolingAreListed) {
  auto m = BuildMaster("resnet", {{1, 28, 28}, 10, 1, 1.0});
  ASSERT_TRUE(m.ok()) << m.error().ToString();
  auto r = EstimateCost(*m, {1, 28, 28});
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  int adds = 0;
  for (const auto& l : r->layers) {
    if (l.op == "add") {
      ++adds;
      EXPECT_EQ(l.macs, 0);
      EXPECT_FALSE(l.path.empty()) << "add inside a block should carry the block's path";
    }
  }
  EXPECT_EQ(adds, 3);
  // Block paths follow torchvision: layer2.0.downsample.0 is the 1x1 projection.
  const LayerCost* proj = r->FindByPath("layer2.0.downsample.0");
  ASSERT_NE(proj, nullptr);
  EXPECT_EQ(proj->output_shape, (std::vector<std::int64_t>{1, 32, 7, 7}));
  EXPECT_EQ(proj->macs, 32 * 7 * 7 * 16);
  std::int64_t sum = 0;
  for (const auto& l : r->layers) sum += l.macs;
  EXPECT_EQ(sum, r->macs);
}

TEST(CostModel, MobileNetReportsDepthwiseGroups) {
  auto m = BuildMaster("mobilenet", {{3, 32, 32}, 5, 1, 0.5});
  ASSERT_TRUE(m.ok()) << m.error().ToString();
  auto r = EstimateCost(*m, {3, 32, 32});
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  const LayerCost* dw = r->FindByPath("features.1.0");
  ASSERT_NE(dw, nullptr);
  EXPECT_EQ(dw->groups, 8);  // 16 × 0.5 input channels, one group each
  EXPECT_EQ(dw->macs, 8 * 32 * 32 * 9);
  EXPECT_EQ(r->output_shape, (std::vector<std::int64_t>{1, 5}));
}

TEST(CostModel, RefusesModelWithoutParametersAndWrongShape) {
  auto none = LoadModule(Fixture("noparams_scripted.pt"));
  ASSERT_TRUE(none.ok()) << none.error().ToString();
  auto r = EstimateCost(*none, {1, 28, 28});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "invalid_model");
  EXPECT_NE(r.error().message.find("no parameters"), std::string::npos) << r.error().message;

  auto lenet = LoadModule(Fixture("lenet5_scripted.pt"));
  ASSERT_TRUE(lenet.ok());
  auto bad = EstimateCost(*lenet, {3, 32, 32});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, "invalid_model");
  EXPECT_NE(bad.error().message.find("[1, 3, 32, 32]"), std::string::npos) << bad.error().message;
}

TEST(CostModel, ReportSerialisesEveryLayer) {
  auto m = BuildMaster("lenet5", {{1, 28, 28}, 10, 1, 1.0});
  ASSERT_TRUE(m.ok());
  auto r = EstimateCost(*m, {1, 28, 28});
  ASSERT_TRUE(r.ok());
  auto j = r->ToJson();
  EXPECT_EQ(j.at("macs").as_int64(), kLeNetMacs);
  EXPECT_EQ(j.at("layers").as_array().size(), r->layers.size());
  EXPECT_NE(r->ToTable().find("features.0"), std::string::npos);
}

}  // namespace
}  // namespace edgeprune::models
