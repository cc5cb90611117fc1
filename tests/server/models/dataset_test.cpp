// IDX reading (raw and gzip, every kind of broken file) and the data set type: splits, limits,
// normalization, shapes other than 1x28x28, and Debian's Fashion-MNIST when it is installed.
#include <gtest/gtest.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>

#include "fixtures.hpp"
#include "support/temp_dir.hpp"
#include "server/models/dataset.hpp"
#include "server/models/idx.hpp"

namespace edgeprune::models {
namespace {

IdxArray Images(std::int64_t n, std::vector<std::int64_t> dims) {
  IdxArray a;
  a.dims = {n};
  a.dims.insert(a.dims.end(), dims.begin(), dims.end());
  std::int64_t count = n;
  for (auto d : dims) count *= d;
  for (std::int64_t i = 0; i < count; ++i) a.data.push_back(static_cast<std::uint8_t>(i * 7 % 256));
  return a;
}

IdxArray Labels(std::int64_t n, std::int64_t classes) {
  IdxArray a;
  a.dims = {n};
  for (std::int64_t i = 0; i < n; ++i) a.data.push_back(static_cast<std::uint8_t>(i % classes));
  return a;
}

std::string ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

void WriteBytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

void Gzip(const std::string& from, const std::string& to) {
  std::string bytes = ReadBytes(from);
  gzFile f = gzopen(to.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())),
            static_cast<int>(bytes.size()));
  gzclose(f);
}

TEST(Idx, RoundTripsRawAndGzip) {
  testing::TempDir dir;
  auto img = Images(5, {3, 4});
  ASSERT_TRUE(WriteIdx(dir.File("a.idx"), img).ok());
  Gzip(dir.File("a.idx"), dir.File("a.idx.gz"));
  for (const char* name : {"a.idx", "a.idx.gz"}) {
    auto back = ReadIdx(dir.File(name));
    ASSERT_TRUE(back.ok()) << back.error().ToString();
    EXPECT_EQ(back->dims, img.dims);
    EXPECT_EQ(back->data, img.data);
  }
}

TEST(Idx, BrokenFilesNameTheFileAndTheProblem) {
  testing::TempDir dir;
  ASSERT_TRUE(WriteIdx(dir.File("good.idx"), Images(4, {2, 2})).ok());
  std::string good = ReadBytes(dir.File("good.idx"));

  auto missing = ReadIdx(dir.File("missing.idx"));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, "not_found");
  EXPECT_NE(missing.error().message.find("missing.idx"), std::string::npos);

  struct Case {
    const char* name;
    std::string bytes;
    const char* says;
  };
  std::string wrong_magic = good;
  wrong_magic[0] = 0x1f;
  wrong_magic[1] = 0x00;
  std::string float_type = good;
  float_type[2] = 0x0d;
  std::string rank_zero = good;
  rank_zero[3] = 0;
  for (const Case& c : {Case{"magic.idx", wrong_magic, "wrong magic"},
                        Case{"type.idx", float_type, "element type"},
                        Case{"rank.idx", rank_zero, "rank 0"},
                        Case{"short.idx", good.substr(0, 2), "too short"},
                        Case{"header.idx", good.substr(0, 9), "inside its header"},
                        Case{"truncated.idx", good.substr(0, good.size() - 3), "truncated"},
                        Case{"trailing.idx", good + "xyz", "trailing"}}) {
    SCOPED_TRACE(c.name);
    WriteBytes(dir.File(c.name), c.bytes);
    auto r = ReadIdx(dir.File(c.name));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, "invalid_idx");
    EXPECT_NE(r.error().message.find(c.name), std::string::npos) << r.error().message;
    EXPECT_NE(r.error().message.find(c.says), std::string::npos) << r.error().message;
  }

  // A gzip file cut in the middle of its stream.
  ASSERT_TRUE(WriteIdx(dir.File("big.idx"), Images(64, {16, 16})).ok());
  Gzip(dir.File("big.idx"), dir.File("big.idx.gz"));
  std::string gz = ReadBytes(dir.File("big.idx.gz"));
  WriteBytes(dir.File("cut.idx.gz"), gz.substr(0, gz.size() / 2));
  auto cut = ReadIdx(dir.File("cut.idx.gz"));
  ASSERT_FALSE(cut.ok());
  EXPECT_NE(cut.error().message.find("cut.idx.gz"), std::string::npos);
  EXPECT_NE(cut.error().message.find("truncated"), std::string::npos) << cut.error().message;
}

TEST(Dataset, LoadsThreeChannelIdxWithAnyClassCount) {
  testing::TempDir dir;
  ASSERT_TRUE(WriteIdx(dir.File("img"), Images(40, {3, 8, 6})).ok());
  ASSERT_TRUE(WriteIdx(dir.File("lbl"), Labels(40, 5)).ok());
  auto d = LoadIdxPair(dir.File("img"), dir.File("lbl"), "toy",
                       {"a", "b", "c", "d", "e"});
  ASSERT_TRUE(d.ok()) << d.error().ToString();
  EXPECT_EQ(d->image_shape(), (std::vector<std::int64_t>{3, 8, 6}));
  EXPECT_EQ(d->num_classes(), 5);
  EXPECT_EQ(d->size(), 40);
  EXPECT_LE(d->images.max().item<float>(), 1.0f);
  EXPECT_EQ(d->labels[7].item<std::int64_t>(), 2);
}

TEST(Dataset, RejectsDisagreeingFiles) {
  testing::TempDir dir;
  ASSERT_TRUE(WriteIdx(dir.File("img"), Images(10, {4, 4})).ok());
  ASSERT_TRUE(WriteIdx(dir.File("lbl9"), Labels(9, 3)).ok());
  ASSERT_TRUE(WriteIdx(dir.File("lbl_big"), Labels(10, 7)).ok());
  auto count = LoadIdxPair(dir.File("img"), dir.File("lbl9"), "t", {"a", "b", "c"});
  ASSERT_FALSE(count.ok());
  EXPECT_NE(count.error().message.find("9 labels"), std::string::npos) << count.error().message;
  auto label = LoadIdxPair(dir.File("img"), dir.File("lbl_big"), "t", {"a", "b", "c"});
  ASSERT_FALSE(label.ok());
  EXPECT_NE(label.error().message.find("lbl_big"), std::string::npos);
  EXPECT_NE(label.error().message.find("only 3 classes"), std::string::npos)
      << label.error().message;
  auto swapped = LoadIdxPair(dir.File("lbl9"), dir.File("img"), "t", {"a", "b", "c"});
  ASSERT_FALSE(swapped.ok());
  EXPECT_NE(swapped.error().message.find("rank"), std::string::npos);
}

TEST(Dataset, SplitsAreSeededDisjointAndNormalized) {
  SyntheticSpec spec;
  spec.channels = 3;
  spec.height = 32;
  spec.width = 32;
  spec.classes = 6;
  spec.train_size = 400;
  spec.test_size = 50;
  SplitOptions o;
  o.validation_size = 80;
  o.calibration_size = 16;
  auto a = MakeSyntheticDataset(spec, o);
  auto b = MakeSyntheticDataset(spec, o);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->train.size(), 320);
  EXPECT_EQ(a->validation.size(), 80);
  EXPECT_EQ(a->test.size(), 50);
  EXPECT_EQ(a->calibration.size(), 16);
  EXPECT_EQ(a->train.image_shape(), (std::vector<std::int64_t>{3, 32, 32}));
  EXPECT_EQ(a->train.num_classes(), 6);
  EXPECT_TRUE(torch::equal(a->validation.images, b->validation.images));
  ASSERT_EQ(a->train.normalization.mean.size(), 3u);
  auto mean = a->train.images.mean({0, 2, 3});
  auto std = a->train.images.std();
  EXPECT_NEAR(mean.abs().max().item<float>(), 0.0f, 1e-3);
  EXPECT_NEAR(std.item<float>(), 1.0f, 0.05f);
  o.seed += 1;
  auto c = MakeSyntheticDataset(spec, o);
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(torch::equal(a->validation.labels, c->validation.labels) &&
               torch::equal(a->validation.images, c->validation.images));
}

TEST(Dataset, ByNameRejectsUnknownAndParsesSynthetic) {
  auto d = LoadDataset("synthetic:2x12x10:3", "", SplitOptions{});
  ASSERT_TRUE(d.ok()) << d.error().ToString();
  EXPECT_EQ(d->test.image_shape(), (std::vector<std::int64_t>{2, 12, 10}));
  EXPECT_EQ(d->test.num_classes(), 3);
  auto bad = LoadDataset("cifar", "", SplitOptions{});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, "unknown_dataset");
  testing::TempDir empty;
  auto missing = LoadDataset("fashion-mnist", empty.path(), SplitOptions{});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, "not_found");
  EXPECT_NE(missing.error().message.find("train-images-idx3-ubyte"), std::string::npos);
}

TEST(Dataset, FashionMnistFromDebian) {
  std::error_code ec;
  if (!std::filesystem::exists(std::string(kDefaultFashionMnistDir) + "/t10k-labels-idx1-ubyte.gz",
                               ec)) {
    GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  }
  SplitOptions o;
  o.train_limit = 1000;
  o.test_limit = 500;
  auto d = LoadFashionMnist(kDefaultFashionMnistDir, o);
  ASSERT_TRUE(d.ok()) << d.error().ToString();
  EXPECT_EQ(d->train.size(), 1000);
  EXPECT_EQ(d->validation.size(), 5000);
  EXPECT_EQ(d->test.size(), 500);
  EXPECT_EQ(d->test.image_shape(), (std::vector<std::int64_t>{1, 28, 28}));
  EXPECT_EQ(d->test.class_names.at(9), "Ankle boot");
  // Debian's test set starts with an ankle boot (label 9).
  EXPECT_EQ(d->test.labels[0].item<std::int64_t>(), 9);
}

}  // namespace
}  // namespace edgeprune::models
