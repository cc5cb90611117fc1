// The real `edgeprune-server train|evaluate|cost` processes end to end on a synthetic data set,
// and their answers to bad input: exit code and a message naming the file and the reason.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>

#include "support/build_paths.hpp"
#include "edgeprune/common/json.hpp"
#include "support/temp_dir.hpp"
#include "server/models/model_card.hpp"

namespace edgeprune::models {
namespace {

// Not fixtures.hpp: that pulls in LibTorch headers, which this file does not need.
std::string Fixture(const std::string& name) {
  return edgeprune::testing::SourceDir() + "/tests/fixtures/models/" + name;
}

struct Run {
  int code = -1;
  std::string out;  // stdout and stderr
};

Run Server(const std::string& args) {
  std::string cmd = edgeprune::testing::ServerBin() + " " + args + " 2>&1";
  Run r;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf;
  std::size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  int status = pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

TEST(Commands, TrainEvaluateCostOnSyntheticData) {
  testing::TempDir dir;
  std::string model = dir.File("m.pt");
  auto train = Server("train --arch vgg --width 0.25 --dataset synthetic:3x32x32:5 --epochs 2 "
                      "--batch-size 32 --lr 0.003 --latency-runs 5 --threads 1 --out " + model);
  ASSERT_EQ(train.code, 0) << train.out;
  EXPECT_NE(train.out.find("epoch 2/2"), std::string::npos) << train.out;
  auto card = ReadModelCard(dir.File("m.json"));
  ASSERT_TRUE(card.ok()) << card.error().ToString();
  EXPECT_EQ(card->architecture, "vgg");
  EXPECT_EQ(card->input_shape, (std::vector<std::int64_t>{3, 32, 32}));
  EXPECT_EQ(card->classes.size(), 5u);
  EXPECT_GT(card->test_accuracy, 0.5);
  EXPECT_GT(card->macs, 0);
  EXPECT_GT(card->params, 0);
  EXPECT_GT(card->latency_p50_ms, 0.0);
  EXPECT_EQ(card->training.epochs, 2);
  EXPECT_EQ(card->normalization_mean.size(), 3u);

  auto eval = Server("evaluate --model " + model +
                     " --dataset synthetic:3x32x32:5 --runs 5 --warmup 1 --throughput-batch 8");
  ASSERT_EQ(eval.code, 0) << eval.out;
  auto json = json::ParseObject(eval.out.substr(eval.out.find('{')));
  ASSERT_TRUE(json.ok()) << eval.out;
  EXPECT_NEAR(json->at("accuracy").as_double(), card->test_accuracy, 1e-9);
  EXPECT_GT(json->at("throughput").as_object().at("images_per_second").as_double(), 0.0);

  auto cost = Server("cost --json --model " + model);
  ASSERT_EQ(cost.code, 0) << cost.out;
  auto report = json::ParseObject(cost.out);
  ASSERT_TRUE(report.ok()) << cost.out;
  EXPECT_EQ(report->at("macs").as_int64(), card->macs);
}

TEST(Commands, BadInputNamesTheFileAndChangesNothing) {
  testing::TempDir dir;
  std::string junk = dir.WriteFile("junk.pt", "not torchscript");
  auto cost = Server("cost --model " + junk + " --input-shape 1,28,28");
  EXPECT_EQ(cost.code, 1);
  EXPECT_NE(cost.out.find("junk.pt"), std::string::npos) << cost.out;
  EXPECT_NE(cost.out.find("invalid_model"), std::string::npos) << cost.out;

  // A PyTorch LeNet-5 (1x28x28) evaluated on 3x32x32 images.
  auto shape = Server("evaluate --model " + Fixture("lenet5_traced.pt") +
                      " --dataset synthetic:3x32x32:10 --runs 2");
  EXPECT_EQ(shape.code, 1);
  EXPECT_NE(shape.out.find("lenet5_traced.pt"), std::string::npos) << shape.out;
  EXPECT_NE(shape.out.find("[1, 3, 32, 32]"), std::string::npos) << shape.out;

  auto none = Server("cost --model " + Fixture("noparams_scripted.pt") +
                     " --input-shape 1,28,28");
  EXPECT_EQ(none.code, 1);
  EXPECT_NE(none.out.find("no parameters"), std::string::npos) << none.out;

  std::string out = dir.File("never.pt");
  auto missing_data = Server("train --arch mlp --dataset fashion-mnist --data-dir " +
                             dir.Subdir("empty") + " --out " + out);
  EXPECT_EQ(missing_data.code, 1);
  EXPECT_NE(missing_data.out.find("train-images-idx3-ubyte"), std::string::npos)
      << missing_data.out;
  EXPECT_FALSE(std::filesystem::exists(out));

  auto arch = Server("train --arch nope --dataset synthetic:1x16x16:3 --out " + out);
  EXPECT_EQ(arch.code, 1);
  EXPECT_NE(arch.out.find("unknown architecture 'nope'"), std::string::npos) << arch.out;
  EXPECT_FALSE(std::filesystem::exists(out));

  auto flags = Server("train --out " + out);
  EXPECT_EQ(flags.code, 2) << flags.out;
  auto unknown_flag = Server("cost --model x.pt --frobnicate");
  EXPECT_EQ(unknown_flag.code, 2) << unknown_flag.out;
}

}  // namespace
}  // namespace edgeprune::models
