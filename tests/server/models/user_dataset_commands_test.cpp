// `edgeprune-server train|evaluate|prune --dataset <file>` on operators' data set files written by
// test code: an .npz of 8×8 grayscale images and a tar of IDX pairs go through training,
// evaluation and pruning with their own shape and class names; a malformed file stops the
// command with the validator's code.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>

#include "support/build_paths.hpp"
#include "edgeprune/common/json.hpp"
#include "server/datasets/dataset_files.hpp"
#include "server/datasets/image_files.hpp"
#include "server/datasets/normalized.hpp"
#include "server/models/model_card.hpp"
#include "support/temp_dir.hpp"

namespace edgeprune::models {
namespace {

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

double Accuracy(const Run& eval) {
  const auto brace = eval.out.find('{');
  if (brace == std::string::npos) return -1;
  auto json = json::ParseObject(eval.out.substr(brace));
  return json.ok() ? json->at("accuracy").as_double() : -1;
}

TEST(UserDatasetCommands, TrainEvaluatePruneOnAnNpzOfSmallImages) {
  testing::TempDir dir;
  edgeprune::testing::GeneratedSpec spec;
  spec.sample_shape = {1, 8, 8};
  spec.classes = 4;
  spec.train_per_class = 60;
  spec.test_per_class = 20;
  spec.class_names = {"circle", "square", "star", "cross"};
  const std::string data = dir.WriteFile("shapes.npz", edgeprune::testing::Npz(spec, true));
  const std::string model = dir.File("m.pt");
  auto train = Server("train --arch vgg --width 0.5 --dataset " + data +
                      " --epochs 3 --batch-size 16 --lr 0.003 --latency-runs 2 --threads 1 --out " +
                      model);
  ASSERT_EQ(train.code, 0) << train.out;
  auto card = ReadModelCard(dir.File("m.json"));
  ASSERT_TRUE(card.ok()) << card.error().ToString();
  EXPECT_EQ(card->input_shape, (std::vector<std::int64_t>{1, 8, 8}));
  EXPECT_EQ(card->classes, spec.class_names);
  EXPECT_EQ(card->normalization_mean.size(), 1u);
  EXPECT_GT(card->test_accuracy, 0.8);

  auto eval = Server("evaluate --model " + model + " --dataset " + data + " --runs 2 --warmup 1");
  ASSERT_EQ(eval.code, 0) << eval.out;
  EXPECT_NEAR(Accuracy(eval), card->test_accuracy, 1e-9);

  const std::string variant = dir.File("v.pt");
  auto prune = Server("prune --master " + model + " --dataset " + data +
                      " --max-macs 0.5x --importance l1 --finetune-steps 30 "
                      "--step-finetune-steps 5 --no-latency --out " + variant);
  ASSERT_EQ(prune.code, 0) << prune.out;
  auto pruned = Server("evaluate --model " + variant + " --dataset " + data + " --runs 2 --warmup 1");
  ASSERT_EQ(pruned.code, 0) << pruned.out;
  EXPECT_GT(Accuracy(pruned), 0.7) << pruned.out;
}

TEST(UserDatasetCommands, AnMlpOnFeatureVectors) {
  testing::TempDir dir;
  edgeprune::testing::GeneratedSpec spec;
  spec.sample_shape = {20};
  spec.dtype = "<f4";
  spec.classes = 4;
  spec.train_per_class = 60;
  spec.test_per_class = 20;
  const std::string data = dir.WriteFile("features.npz", edgeprune::testing::Npz(spec, true));
  const std::string model = dir.File("m.pt");
  auto train = Server("train --arch mlp --dataset " + data +
                      " --epochs 3 --batch-size 16 --latency-runs 2 --threads 1 --out " + model);
  ASSERT_EQ(train.code, 0) << train.out;
  auto card = ReadModelCard(dir.File("m.json"));
  ASSERT_TRUE(card.ok()) << card.error().ToString();
  EXPECT_EQ(card->input_shape, (std::vector<std::int64_t>{20}));
  EXPECT_EQ(card->normalization_mean.size(), 20u);  // per feature
  EXPECT_GT(card->test_accuracy, 0.8);
  auto eval = Server("evaluate --model " + model + " --dataset " + data + " --runs 2 --warmup 1");
  ASSERT_EQ(eval.code, 0) << eval.out;
  EXPECT_NEAR(Accuracy(eval), card->test_accuracy, 1e-9);
  // A convolutional net needs images: refused with a sentence, not a crash.
  auto conv = Server("train --arch vgg --dataset " + data + " --epochs 1 --out " + dir.File("c.pt"));
  EXPECT_NE(conv.code, 0);
  EXPECT_NE(conv.out.find("needs images"), std::string::npos) << conv.out;
}

// Grey images saved as [N, H, W]: by rank alone signals, which a LeNet-5 refuses; with
// layout='HW' one-channel images, which it trains on, its card saying [1, H, W].
TEST(UserDatasetCommands, GreyImagesDeclaredHWTrainALeNet5) {
  testing::TempDir dir;
  edgeprune::testing::GeneratedSpec spec;
  spec.sample_shape = {12, 12};  // LeNet-5's smallest input
  spec.classes = 3;
  const std::string plain = dir.WriteFile("plain.npz", edgeprune::testing::Npz(spec));
  auto refused = Server("train --arch lenet5 --dataset " + plain + " --epochs 1 --out " +
                        dir.File("x.pt"));
  EXPECT_NE(refused.code, 0);
  EXPECT_NE(refused.out.find("needs images"), std::string::npos) << refused.out;
  EXPECT_NE(refused.out.find("layout='HW'"), std::string::npos) << refused.out;  // the way out

  spec.layout = "HW";
  const std::string data = dir.WriteFile("grey.npz", edgeprune::testing::Npz(spec, true));
  const std::string model = dir.File("m.pt");
  auto train = Server("train --arch lenet5 --dataset " + data +
                      " --epochs 2 --batch-size 16 --latency-runs 2 --threads 1 --out " + model);
  ASSERT_EQ(train.code, 0) << train.out;
  auto card = ReadModelCard(dir.File("m.json"));
  ASSERT_TRUE(card.ok()) << card.error().ToString();
  EXPECT_EQ(card->input_shape, (std::vector<std::int64_t>{1, 12, 12}));
  EXPECT_EQ(card->normalization_mean.size(), 1u);  // one channel
  auto eval = Server("evaluate --model " + model + " --dataset " + data + " --runs 2 --warmup 1");
  ASSERT_EQ(eval.code, 0) << eval.out;
  EXPECT_NEAR(Accuracy(eval), card->test_accuracy, 1e-9);
}

TEST(UserDatasetCommands, TrainEvaluatePruneOnAColourImageFolderTar) {
  testing::TempDir dir;
  // Three colours of 3×32×32 after decoding: PNG and JPEG files of other sizes, per class a
  // slightly different shade per file.
  const char* names[] = {"red", "green", "blue"};
  std::vector<std::pair<std::string, std::string>> files{{"shape.txt", "3,32,32"}};
  for (int k = 0; k < 3; ++k) {
    for (int i = 0; i < 28; ++i) {
      unsigned char rgb[3] = {30, 30, 30};
      rgb[k] = static_cast<unsigned char>(120 + 4 * i);
      const bool test = i >= 24;
      const std::string path = std::string(test ? "test/" : "train/") + names[k] + "/" +
                               std::to_string(i) + (i % 2 ? ".jpg" : ".png");
      files.push_back({path, i % 2 ? edgeprune::testing::Jpeg(40, 36, rgb)
                                   : edgeprune::testing::Png(36, 40, 3, rgb)});
    }
  }
  const std::string data = dir.WriteFile("colours.tar", edgeprune::testing::Tar(files));
  const std::string model = dir.File("m.pt");
  auto train = Server("train --arch vgg --width 0.25 --dataset " + data +
                      " --epochs 12 --batch-size 8 --lr 0.003 --latency-runs 2 --threads 1 --out " +
                      model);
  ASSERT_EQ(train.code, 0) << train.out;
  auto card = ReadModelCard(dir.File("m.json"));
  ASSERT_TRUE(card.ok()) << card.error().ToString();
  EXPECT_EQ(card->input_shape, (std::vector<std::int64_t>{3, 32, 32}));
  EXPECT_EQ(card->classes, (std::vector<std::string>{"blue", "green", "red"}));
  auto eval = Server("evaluate --model " + model + " --dataset " + data + " --runs 2 --warmup 1");
  ASSERT_EQ(eval.code, 0) << eval.out;
  EXPECT_NEAR(Accuracy(eval), card->test_accuracy, 1e-9);
  const std::string variant = dir.File("v.pt");
  auto prune = Server("prune --master " + model + " --dataset " + data +
                      " --max-macs 0.5x --importance l1 --finetune-steps 20 "
                      "--step-finetune-steps 5 --no-latency --out " + variant);
  ASSERT_EQ(prune.code, 0) << prune.out;
  auto pruned = Server("evaluate --model " + variant + " --dataset " + data + " --runs 2 --warmup 1");
  ASSERT_EQ(pruned.code, 0) << pruned.out;
  EXPECT_GT(card->test_accuracy, 0.8) << train.out;
  EXPECT_GT(Accuracy(pruned), 0.7) << pruned.out;
}

TEST(UserDatasetCommands, IdxPairsInATarAndAMalformedFile) {
  testing::TempDir dir;
  edgeprune::testing::GeneratedSpec spec;
  spec.sample_shape = {8, 8};
  spec.classes = 3;
  spec.train_per_class = 40;
  const auto a = edgeprune::testing::Generate(spec);
  std::string y_train, y_test;
  for (std::size_t i = 0; i < a.y_train.size(); i += 8) y_train += a.y_train[i];
  for (std::size_t i = 0; i < a.y_test.size(); i += 8) y_test += a.y_test[i];
  const auto n = static_cast<std::uint32_t>(a.n_train), m = static_cast<std::uint32_t>(a.n_test);
  const std::string tar = dir.WriteFile(
      "set.tar", edgeprune::testing::Tar({
                     {"train-images-idx3-ubyte.gz", edgeprune::testing::Gzip(edgeprune::testing::Idx({n, 8, 8}, a.x_train))},
                     {"train-labels-idx1-ubyte", edgeprune::testing::Idx({n}, y_train)},
                     {"t10k-images-idx3-ubyte", edgeprune::testing::Idx({m, 8, 8}, a.x_test)},
                     {"t10k-labels-idx1-ubyte", edgeprune::testing::Idx({m}, y_test)},
                     {"class_names.txt", "low\nmid\nhigh\n"}}));
  const std::string model = dir.File("m.pt");
  auto train = Server("train --arch mlp --dataset " + tar +
                      " --epochs 10 --batch-size 16 --latency-runs 2 --threads 1 --out " + model);
  ASSERT_EQ(train.code, 0) << train.out;
  auto card = ReadModelCard(dir.File("m.json"));
  ASSERT_TRUE(card.ok()) << card.error().ToString();
  EXPECT_EQ(card->classes, (std::vector<std::string>{"low", "mid", "high"}));
  EXPECT_EQ(card->input_shape, (std::vector<std::int64_t>{1, 8, 8}));
  // The normalized form of the same data set evaluates the model alike.
  auto normalized = datasets::WriteNormalized(tar, dir.File("normalized"), {});
  ASSERT_TRUE(normalized.ok()) << normalized.error().ToString();
  auto from_tar = Server("evaluate --model " + model + " --dataset " + tar + " --runs 2 --warmup 1");
  auto from_dir = Server("evaluate --model " + model + " --dataset " + dir.File("normalized") +
                         " --runs 2 --warmup 1");
  ASSERT_EQ(from_tar.code, 0) << from_tar.out;
  ASSERT_EQ(from_dir.code, 0) << from_dir.out;
  EXPECT_GT(Accuracy(from_tar), 0.5);
  EXPECT_NEAR(Accuracy(from_dir), Accuracy(from_tar), 1e-9);

  auto members = edgeprune::testing::NpzMembers(edgeprune::testing::GeneratedSpec{});
  members[1].data = edgeprune::testing::Npy("<i8", {59}, std::string(59 * 8, '\0'));
  const std::string bad = dir.WriteFile("bad.npz", edgeprune::testing::Zip(members));
  auto refused = Server("train --arch mlp --dataset " + bad + " --epochs 1 --out " + dir.File("x.pt"));
  EXPECT_NE(refused.code, 0);
  EXPECT_NE(refused.out.find("dataset_count_mismatch"), std::string::npos) << refused.out;
  EXPECT_FALSE(std::filesystem::exists(dir.File("x.pt")));
}

}  // namespace
}  // namespace edgeprune::models
