// The normalized form the model toolkit loads: float32 samples × scale, int64 labels, the info.
#include "server/datasets/normalized.hpp"

#include <gtest/gtest.h>

#include <filesystem>

#include "edgeprune/common/fs.hpp"
#include "server/datasets/dataset_files.hpp"
#include "support/temp_dir.hpp"

namespace edgeprune::datasets {
namespace {

TEST(NormalizedTest, WritesScaledSamplesLabelsAndInfo) {
  testing::TempDir dir("normalized-test");
  testing::GeneratedSpec spec;
  spec.class_names = {"x", "y", "z"};
  const auto arrays = testing::Generate(spec);
  const std::string src = dir.WriteFile("set.npz", testing::Npz(spec, true));
  auto info = WriteNormalized(src, dir.path() + "/out", {});
  ASSERT_TRUE(info.ok()) << info.error().ToString();

  auto x = fs::ReadFile(dir.path() + "/out/x_train.f32");
  ASSERT_TRUE(x.ok());
  ASSERT_EQ(x->size(), arrays.x_train.size() * 4);
  float first;
  std::memcpy(&first, x->data(), 4);
  EXPECT_FLOAT_EQ(first, static_cast<unsigned char>(arrays.x_train[0]) / 255.0f);
  auto y = fs::ReadFile(dir.path() + "/out/y_test.i64");
  ASSERT_TRUE(y.ok());
  EXPECT_EQ(*y, arrays.y_test);

  auto again = ReadNormalizedInfo(dir.path() + "/out");
  ASSERT_TRUE(again.ok()) << again.error().ToString();
  EXPECT_EQ(again->class_names, spec.class_names);
  EXPECT_EQ(again->sample_shape, info->sample_shape);
  EXPECT_EQ(again->mean, info->mean);
}

TEST(NormalizedTest, RemovesWhatItWroteWhenTheDataSetIsRefused) {
  testing::TempDir dir("normalized-test");
  testing::GeneratedSpec spec;
  spec.train_per_class = 2;  // too few
  const std::string src = dir.WriteFile("set.npz", testing::Npz(spec));
  auto info = WriteNormalized(src, dir.path() + "/out", {});
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(info.error().code, "dataset_too_few_samples");
  EXPECT_TRUE(std::filesystem::is_empty(dir.path() + "/out"));
}

}  // namespace
}  // namespace edgeprune::datasets
