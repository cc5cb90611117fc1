// The master zoo: every architecture builds for any input shape and class count, runs, saves as
// TorchScript that LibTorch (and, when present, Python's torch.jit.load) opens again.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <set>

#include "support/temp_dir.hpp"
#include "server/models/torchscript.hpp"
#include "server/models/zoo.hpp"

namespace edgeprune::models {
namespace {

// The sample shape an architecture takes for an image shape {C, H, W}: cnn1d reads each channel's
// rows as one signal {C, H·W}; every other architecture takes the image.
std::vector<std::int64_t> SampleShape(const std::string& arch, std::vector<std::int64_t> image) {
  if (arch != "cnn1d") return image;
  return {image[0], image[1] * image[2]};
}

TEST(Zoo, EveryArchitectureRunsOnAnyShapeAndClassCount) {
  struct Case {
    std::vector<std::int64_t> shape;
    std::int64_t classes;
  };
  for (const auto& arch : Architectures()) {
    for (const Case& c : {Case{{1, 28, 28}, 10}, Case{{3, 32, 32}, 7}, Case{{2, 20, 24}, 3}}) {
      SCOPED_TRACE(arch + " " + ShapeToString(c.shape));
      auto m = BuildMaster(arch, {SampleShape(arch, c.shape), c.classes, 3, 0.5});
      ASSERT_TRUE(m.ok()) << m.error().ToString();
      auto check = CheckModule(*m, SampleShape(arch, c.shape), arch, c.classes);
      ASSERT_TRUE(check.ok()) << check.error().ToString();
      EXPECT_GT(check->parameters, 0);
    }
  }
}

TEST(Zoo, SameSeedSameWeights) {
  auto a = BuildMaster("vgg", {{1, 28, 28}, 10, 42, 1.0});
  auto b = BuildMaster("vgg", {{1, 28, 28}, 10, 42, 1.0});
  auto c = BuildMaster("vgg", {{1, 28, 28}, 10, 43, 1.0});
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  auto pa = a->attr("features").toModule().attr("0").toModule().attr("weight").toTensor();
  auto pb = b->attr("features").toModule().attr("0").toModule().attr("weight").toTensor();
  auto pc = c->attr("features").toModule().attr("0").toModule().attr("weight").toTensor();
  EXPECT_TRUE(torch::equal(pa, pb));
  EXPECT_FALSE(torch::equal(pa, pc));
}

TEST(Zoo, ModulePathsFollowTorchNnConventions) {
  auto m = BuildMaster("resnet", {{1, 28, 28}, 10, 1, 1.0});
  ASSERT_TRUE(m.ok());
  std::set<std::string> names;
  for (const auto& p : m->named_parameters()) names.insert(p.name);
  for (const auto& b : m->named_buffers()) names.insert(b.name);
  for (const char* expected :
       {"conv1.weight", "bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var",
        "layer1.0.conv1.weight", "layer2.0.downsample.0.weight", "layer3.0.bn2.bias",
        "fc.weight", "fc.bias"}) {
    EXPECT_TRUE(names.count(expected)) << expected;
  }
}

TEST(Zoo, RejectsUnknownArchitectureAndBadShapes) {
  auto unknown = BuildMaster("transformer", {{1, 28, 28}, 10, 1, 1.0});
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().code, "unknown_architecture");
  EXPECT_NE(unknown.error().message.find("mobilenet"), std::string::npos);
  auto small = BuildMaster("lenet5", {{1, 8, 8}, 10, 1, 1.0});
  ASSERT_FALSE(small.ok());
  EXPECT_EQ(small.error().code, "input_too_small");
  // Convolutional nets need images; the MLP takes [F], [C, L] or [C, H, W], nothing of rank 4.
  auto rank = BuildMaster("vgg", {{28, 28}, 10, 1, 1.0});
  ASSERT_FALSE(rank.ok());
  EXPECT_EQ(rank.error().code, "invalid_shape");
  auto rank4 = BuildMaster("mlp", {{1, 1, 28, 28}, 10, 1, 1.0});
  ASSERT_FALSE(rank4.ok());
  EXPECT_EQ(rank4.error().code, "invalid_shape");
  auto features = BuildMaster("mlp", {{20}, 4, 1, 1.0});
  ASSERT_TRUE(features.ok()) << features.error().ToString();
  EXPECT_EQ(features->forward({torch::zeros({2, 20})}).toTensor().sizes(), (torch::IntArrayRef{2, 4}));
  auto one_class = BuildMaster("mlp", {{1, 28, 28}, 1, 1, 1.0});
  EXPECT_FALSE(one_class.ok());
  // cnn1d takes signals {C, L} of at least 8 samples, nothing else.
  auto image = BuildMaster("cnn1d", {{1, 28, 28}, 10, 1, 1.0});
  ASSERT_FALSE(image.ok());
  EXPECT_EQ(image.error().code, "invalid_shape");
  auto short_signal = BuildMaster("cnn1d", {{3, 4}, 10, 1, 1.0});
  ASSERT_FALSE(short_signal.ok());
  EXPECT_EQ(short_signal.error().code, "input_too_small");
}

TEST(Zoo, NonImageNetsTakeSignalsAndFeatureVectors) {
  auto signals = BuildMaster("cnn1d", {{3, 128}, 6, 1, 1.0});
  ASSERT_TRUE(signals.ok()) << signals.error().ToString();
  signals->eval();
  EXPECT_EQ(signals->forward({torch::randn({2, 3, 128})}).toTensor().sizes(),
            (torch::IntArrayRef{2, 6}));
  auto features = BuildMaster("mlp-bn", {{20}, 4, 1, 1.0});
  ASSERT_TRUE(features.ok()) << features.error().ToString();
  features->eval();
  EXPECT_EQ(features->forward({torch::randn({2, 20})}).toTensor().sizes(),
            (torch::IntArrayRef{2, 4}));
  std::set<std::string> names;
  for (const auto& b : features->named_buffers()) names.insert(b.name);
  EXPECT_TRUE(names.count("classifier.2.running_mean"));
}

TEST(Zoo, BatchNormUpdatesRunningStatsOnlyInTraining) {
  auto m = BuildMaster("vgg", {{1, 16, 16}, 4, 1, 0.25});
  ASSERT_TRUE(m.ok());
  auto bn = m->attr("features").toModule().attr("1").toModule();
  auto before = bn.attr("running_mean").toTensor().clone();
  auto x = torch::randn({8, 1, 16, 16}) + 3.0;
  m->eval();
  m->forward({x});
  EXPECT_TRUE(torch::equal(before, bn.attr("running_mean").toTensor()));
  m->train();
  m->forward({x});
  EXPECT_FALSE(torch::equal(before, bn.attr("running_mean").toTensor()));
}

TEST(Zoo, SavedMastersLoadBackWithIdenticalOutputs) {
  testing::TempDir dir;
  for (const auto& arch : Architectures()) {
    SCOPED_TRACE(arch);
    auto m = BuildMaster(arch, {SampleShape(arch, {1, 28, 28}), 10, 5, 0.5});
    ASSERT_TRUE(m.ok());
    std::string path = dir.File(arch + ".pt");
    ASSERT_TRUE(SaveModule(*m, path).ok());
    auto back = LoadModule(path);
    ASSERT_TRUE(back.ok()) << back.error().ToString();
    m->eval();
    back->eval();
    std::vector<std::int64_t> batch = {2};
    for (auto d : SampleShape(arch, {1, 28, 28})) batch.push_back(d);
    auto x = torch::randn(batch);
    EXPECT_TRUE(torch::allclose(m->forward({x}).toTensor(), back->forward({x}).toTensor()));
  }
}

// Operators' tooling is Python: masters must open with torch.jit.load there too. Skipped where
// Debian's python3-torch is not installed (it is only needed for this check and the fixtures).
TEST(Zoo, SavedMastersOpenInPythonTorch) {
  const char* python = "/usr/bin/python3";
  if (std::system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "python3-torch is not installed";
  }
  testing::TempDir dir;
  std::string args;
  for (const auto& arch : Architectures()) {
    if (arch == "cnn1d") continue;  // signals; the script below feeds images
    auto m = BuildMaster(arch, {{1, 28, 28}, 10, 5, 0.5});
    ASSERT_TRUE(m.ok());
    ASSERT_TRUE(SaveModule(*m, dir.File(arch + ".pt")).ok());
    args += " " + dir.File(arch + ".pt");
  }
  std::string script = dir.WriteFile(
      "check.py",
      "import sys, torch\n"
      "for p in sys.argv[1:]:\n"
      "    m = torch.jit.load(p)\n"
      "    m.eval()\n"
      "    y = m(torch.randn(3, 1, 28, 28))\n"
      "    assert tuple(y.shape) == (3, 10), (p, y.shape)\n"
      "print('ok')\n");
  std::string cmd = std::string(python) + " " + script + args + " > " + dir.File("out.txt") + " 2>&1";
  int rc = std::system(cmd.c_str());
  std::FILE* f = std::fopen(dir.File("out.txt").c_str(), "r");
  std::string out;
  if (f) {
    char buf[4096];
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) out.append(buf, n);
    std::fclose(f);
  }
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("ok"), std::string::npos) << out;
}

}  // namespace
}  // namespace edgeprune::models
