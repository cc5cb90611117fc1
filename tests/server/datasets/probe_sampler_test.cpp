// Probe sets drawn from data set files: evenly spread over the test split, in the raw scale the
// agent expects, with the data set's own per-sample shape; a bad file yields the validator's code.
#include "server/datasets/probe_sampler.hpp"

#include <gtest/gtest.h>

#include <cstring>

#include "server/datasets/dataset_files.hpp"
#include "support/temp_dir.hpp"

namespace edgeprune::datasets {
namespace {

using testing::GeneratedSpec;

class ProbeSamplerTest : public ::testing::Test {
 protected:
  std::string Write(const std::string& bytes) {
    return dir_.WriteFile("data-" + std::to_string(n_++) + ".npz", bytes);
  }
  testing::TempDir dir_{"probe-sampler-test"};
  int n_ = 0;
};

TEST_F(ProbeSamplerTest, SignalsKeepTheirShapeAndValuesAndEveryClassIsDrawn) {
  GeneratedSpec spec;
  spec.sample_shape = {3, 128};
  spec.classes = 4;
  spec.test_per_class = 5;  // 20 test rows, labels 0 1 2 3 0 1 2 3 ...
  spec.dtype = "<f4";
  const auto arrays = testing::Generate(spec);
  auto probe = SampleProbeSet(Write(testing::Npz(spec)), 8, {});
  ASSERT_TRUE(probe.ok()) << probe.error().ToString();
  EXPECT_EQ(probe->sample_shape, (std::vector<std::int64_t>{3, 128}));
  ASSERT_EQ(probe->labels.size(), 8u);
  ASSERT_EQ(probe->data.size(), 8u * 3 * 128);
  // Rows k·20/8 = 0, 2, 5, 7, 10, 12, 15, 17: their labels and their exact values.
  const std::vector<std::int64_t> rows{0, 2, 5, 7, 10, 12, 15, 17};
  for (std::size_t i = 0; i < rows.size(); ++i) {
    EXPECT_EQ(probe->labels[i], rows[i] % 4) << i;
    std::vector<float> want(3 * 128);
    std::memcpy(want.data(), arrays.x_test.data() + rows[i] * 3 * 128 * 4, want.size() * 4);
    EXPECT_EQ(
        std::vector<float>(probe->data.begin() + i * 384, probe->data.begin() + (i + 1) * 384),
        want)
        << i;
  }
}

TEST_F(ProbeSamplerTest, ImagesAreScaledLikeInferenceInputsAndSmallSplitsGiveAllRows) {
  GeneratedSpec spec;  // uint8 [1, 8, 8], 3 classes, 15 test rows
  const auto arrays = testing::Generate(spec);
  auto probe = SampleProbeSet(Write(testing::Npz(spec, /*deflate=*/true)), 200, {});
  ASSERT_TRUE(probe.ok()) << probe.error().ToString();
  EXPECT_EQ(probe->sample_shape, (std::vector<std::int64_t>{1, 8, 8}));
  ASSERT_EQ(probe->labels.size(), 15u);
  for (std::size_t e = 0; e < probe->data.size(); ++e) {
    const auto raw = static_cast<unsigned char>(arrays.x_test[e]);
    ASSERT_FLOAT_EQ(probe->data[e], static_cast<float>(raw) / 255.0f) << e;
  }
}

TEST_F(ProbeSamplerTest, FeatureVectorsAndBadInputs) {
  GeneratedSpec spec;
  spec.sample_shape = {20};
  spec.dtype = "<f4";
  const auto path = Write(testing::Npz(spec));
  auto probe = SampleProbeSet(path, 3, {});
  ASSERT_TRUE(probe.ok()) << probe.error().ToString();
  EXPECT_EQ(probe->sample_shape, (std::vector<std::int64_t>{20}));
  EXPECT_EQ(probe->labels, (std::vector<std::int64_t>{0, 2, 1}));  // rows 0, 5, 10 of 0 1 2 0 1 2 …

  EXPECT_EQ(SampleProbeSet(path, 0, {}).error().code, "invalid_argument");
  EXPECT_EQ(SampleProbeSet(path, wire::kMaxProbeSamples + 1, {}).error().code, "invalid_argument");
  // A stored file damaged since its upload: the validator's code, no probe set.
  auto damaged = SampleProbeSet(Write(testing::Npz(spec).substr(0, 300)), 3, {});
  ASSERT_FALSE(damaged.ok());
  EXPECT_EQ(damaged.error().code.rfind("dataset_", 0), 0u) << damaged.error().ToString();
}

}  // namespace
}  // namespace edgeprune::datasets
