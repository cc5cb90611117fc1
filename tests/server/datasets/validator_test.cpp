// The data set reader and validator on generated files: every accepted format, and every
// malformed case answering its own code.
#include "support/build_paths.hpp"
#include "server/datasets/validator.hpp"

#include <gtest/gtest.h>

#include "server/datasets/dataset_files.hpp"
#include "server/datasets/dataset_reader.hpp"
#include "server/datasets/normalized.hpp"
#include "server/datasets/npy.hpp"
#include "server/datasets/probe_sampler.hpp"
#include "support/temp_dir.hpp"

namespace edgeprune::datasets {
namespace {

using testing::GeneratedSpec;
using testing::ZipMember;

class ValidatorTest : public ::testing::Test {
 protected:
  Result<DatasetInfo> Validate(const std::string& bytes, ValidationLimits limits = {}) {
    return ValidateDatasetFile(dir_.WriteFile("data-" + std::to_string(n_++), bytes), limits);
  }
  std::string CodeOf(const std::string& bytes, ValidationLimits limits = {}) {
    auto r = Validate(bytes, limits);
    return r.ok() ? "ok" : r.error().code;
  }
  std::string CodeOf(const std::vector<ZipMember>& members, ValidationLimits limits = {}) {
    return CodeOf(testing::Zip(members), limits);
  }
  testing::TempDir dir_{"datasets-test"};
  int n_ = 0;
};

TEST_F(ValidatorTest, StoredNpzOfImagesWithClassNames) {
  GeneratedSpec spec;
  spec.class_names = {"bolt", "nut", "washer"};
  auto info = Validate(testing::Npz(spec));
  ASSERT_TRUE(info.ok()) << info.error().ToString();
  EXPECT_EQ(info->format, "npz");
  EXPECT_EQ(info->dtype, DType::kUInt8);
  EXPECT_EQ(info->sample_shape, (std::vector<std::int64_t>{1, 8, 8}));
  EXPECT_EQ(info->class_names, spec.class_names);
  EXPECT_EQ(info->train.count, 60);
  EXPECT_EQ(info->test.count, 15);
  EXPECT_EQ(info->train.per_class, (std::vector<std::int64_t>{20, 20, 20}));
  EXPECT_EQ(info->test.per_class, (std::vector<std::int64_t>{5, 5, 5}));
  EXPECT_DOUBLE_EQ(info->scale, 1.0 / 255.0);
  ASSERT_EQ(info->mean.size(), 1u);  // one channel
  EXPECT_GT(info->mean[0], 0.2);
  EXPECT_LT(info->mean[0], 0.8);
  EXPECT_GT(info->std[0], 0.05);
}

TEST_F(ValidatorTest, DeflatedNpzOfFloatSignalsAndFeatureVectors) {
  GeneratedSpec signals;
  signals.sample_shape = {3, 128};
  signals.dtype = "<f4";
  auto a = Validate(testing::Npz(signals, /*deflate=*/true));
  ASSERT_TRUE(a.ok()) << a.error().ToString();
  EXPECT_EQ(a->sample_shape, (std::vector<std::int64_t>{3, 128}));
  EXPECT_EQ(a->mean.size(), 3u);  // per channel
  EXPECT_EQ(a->class_names, (std::vector<std::string>{"0", "1", "2"}));
  EXPECT_DOUBLE_EQ(a->scale, 1.0);

  GeneratedSpec features;
  features.sample_shape = {20};
  features.dtype = "<f2";
  auto b = Validate(testing::Npz(features, true));
  ASSERT_TRUE(b.ok()) << b.error().ToString();
  EXPECT_EQ(b->dtype, DType::kFloat16);
  EXPECT_EQ(b->mean.size(), 20u);  // per feature
}

TEST_F(ValidatorTest, IdxPairsInTarZipTarGzAndDirectory) {
  GeneratedSpec spec;
  spec.sample_shape = {8, 8};
  const auto a = testing::Generate(spec);
  std::string y_train, y_test;  // IDX labels are bytes
  for (std::size_t i = 0; i < a.y_train.size(); i += 8) y_train += a.y_train[i];
  for (std::size_t i = 0; i < a.y_test.size(); i += 8) y_test += a.y_test[i];
  const auto n = static_cast<std::uint32_t>(a.n_train), m = static_cast<std::uint32_t>(a.n_test);
  std::vector<std::pair<std::string, std::string>> files{
      {"set/train-images-idx3-ubyte.gz", testing::Gzip(testing::Idx({n, 8, 8}, a.x_train))},
      {"set/train-labels-idx1-ubyte", testing::Idx({n}, y_train)},
      {"set/t10k-images-idx3-ubyte", testing::Idx({m, 8, 8}, a.x_test)},
      {"set/t10k-labels-idx1-ubyte.gz", testing::Gzip(testing::Idx({m}, y_test))},
      {"set/class_names.txt", "circle\nsquare\ntriangle\n"},
      {"set/README", "ignored"}};
  auto tar = Validate(testing::Tar(files));
  ASSERT_TRUE(tar.ok()) << tar.error().ToString();
  EXPECT_EQ(tar->format, "idx-tar");
  EXPECT_EQ(tar->sample_shape, (std::vector<std::int64_t>{1, 8, 8}));
  EXPECT_EQ(tar->class_names, (std::vector<std::string>{"circle", "square", "triangle"}));

  auto targz = Validate(testing::Gzip(testing::Tar(files)));
  ASSERT_TRUE(targz.ok()) << targz.error().ToString();
  EXPECT_EQ(targz->train.count, tar->train.count);

  std::vector<ZipMember> members;
  for (const auto& [name, data] : files) members.push_back({name, data, true});
  auto zip = Validate(testing::Zip(members));
  ASSERT_TRUE(zip.ok()) << zip.error().ToString();
  EXPECT_EQ(zip->format, "idx-zip");

  for (const auto& [name, data] : files) dir_.WriteFile("idxdir/" + name.substr(4), data);
  auto directory = ValidateDatasetFile(dir_.path() + "/idxdir", {});
  ASSERT_TRUE(directory.ok()) << directory.error().ToString();
  EXPECT_EQ(directory->format, "idx-dir");
  EXPECT_EQ(directory->test.per_class, tar->test.per_class);
}

// Files NumPy wrote (tests/fixtures/datasets/make_numpy_fixtures.py): np.savez's zip64 local
// headers, np.savez_compressed's deflate, '<U' class names, uint8/int32 labels, layout='HW'.
TEST_F(ValidatorTest, ReadsWhatNumPyWrites) {
  const std::string dir = edgeprune::testing::SourceDir() + "/tests/fixtures/datasets/";
  auto features = ValidateDatasetFile(dir + "features_savez.npz", {});
  ASSERT_TRUE(features.ok()) << features.error().ToString();
  EXPECT_EQ(features->dtype, DType::kFloat32);
  EXPECT_EQ(features->sample_shape, (std::vector<std::int64_t>{20}));
  EXPECT_EQ(features->class_names, (std::vector<std::string>{"idle", "normal", "worn", "broken"}));
  EXPECT_EQ(features->train.per_class, (std::vector<std::int64_t>{10, 10, 10, 10}));
  EXPECT_EQ(features->test.count, 12);
  auto images = ValidateDatasetFile(dir + "images_savez_compressed.npz", {});
  ASSERT_TRUE(images.ok()) << images.error().ToString();
  EXPECT_EQ(images->sample_shape, (std::vector<std::int64_t>{3, 4, 4}));
  EXPECT_EQ(images->class_names, (std::vector<std::string>{"0", "1"}));
  EXPECT_EQ(images->mean.size(), 3u);
  // np.savez(..., layout='HW'): a 0-d '<U2' array after the [N, 5, 6] samples.
  auto grey = ValidateDatasetFile(dir + "grey_layout_savez.npz", {});
  ASSERT_TRUE(grey.ok()) << grey.error().ToString();
  EXPECT_EQ(grey->sample_shape, (std::vector<std::int64_t>{1, 5, 6}));
  ASSERT_EQ(grey->mean.size(), 1u);
  EXPECT_NEAR(grey->mean[0], 0.4962483660130719, 1e-9);  // NumPy: (x_train / 255).mean()
  EXPECT_NEAR(grey->std[0], 0.27949941857921, 1e-9);    // and .std()
}

// Grey images saved as [N, H, W] (what torchvision/MNIST users save) are signals [H, W] by rank
// alone; layout 'HW' makes them one-channel images [1, H, W], as IDX images are, for every reader
// downstream: the summary, the normalized files and the probe sets.
TEST_F(ValidatorTest, LayoutHWMakesGreyImagesOneChannelImages) {
  GeneratedSpec spec;
  spec.sample_shape = {8, 8};
  auto plain = Validate(testing::Npz(spec));
  ASSERT_TRUE(plain.ok()) << plain.error().ToString();
  EXPECT_EQ(plain->sample_shape, (std::vector<std::int64_t>{8, 8}));  // unchanged without it
  EXPECT_EQ(plain->mean.size(), 8u);

  spec.layout = "HW";
  const std::string npz = testing::Npz(spec);
  auto info = Validate(npz);
  ASSERT_TRUE(info.ok()) << info.error().ToString();
  EXPECT_EQ(info->sample_shape, (std::vector<std::int64_t>{1, 8, 8}));
  EXPECT_EQ(info->dtype, DType::kUInt8);
  ASSERT_EQ(info->mean.size(), 1u);  // one channel's statistics
  ASSERT_EQ(info->std.size(), 1u);
  // Every row of a sample holds as many pixels: the image's mean is the rows' mean.
  double rows = 0;
  for (double m : plain->mean) rows += m;
  EXPECT_NEAR(info->mean[0], rows / 8, 1e-9);

  auto normalized = WriteNormalized(dir_.WriteFile("hw.npz", npz), dir_.path() + "/hw", {});
  ASSERT_TRUE(normalized.ok()) << normalized.error().ToString();
  auto stored = ReadNormalizedInfo(dir_.path() + "/hw");
  ASSERT_TRUE(stored.ok()) << stored.error().ToString();
  EXPECT_EQ(stored->sample_shape, (std::vector<std::int64_t>{1, 8, 8}));
  auto probe = SampleProbeSet(dir_.path() + "/hw.npz", 4, {});
  ASSERT_TRUE(probe.ok()) << probe.error().ToString();
  EXPECT_EQ(probe->sample_shape, (std::vector<std::int64_t>{1, 8, 8}));
  EXPECT_EQ(probe->data.size(), 4u * 64);

  // A 1-element array and byte strings say the same; so do deflated members.
  auto members = testing::NpzMembers(spec, /*deflate=*/true);
  members.back().data = testing::Npy("|S2", {1}, "HW");
  auto bytes = Validate(testing::Zip(members));
  ASSERT_TRUE(bytes.ok()) << bytes.error().ToString();
  EXPECT_EQ(bytes->sample_shape, (std::vector<std::int64_t>{1, 8, 8}));
  // layout.npy before the samples reads alike.
  members = testing::NpzMembers(spec);
  std::rotate(members.begin(), members.end() - 1, members.end());
  auto first = Validate(testing::Zip(members));
  ASSERT_TRUE(first.ok()) << first.error().ToString();
  EXPECT_EQ(first->sample_shape, (std::vector<std::int64_t>{1, 8, 8}));
}

// The other layouts only confirm what the rank says.
TEST_F(ValidatorTest, LayoutsCHWCLAndFConfirmTheRank) {
  struct Case {
    const char* layout;
    std::vector<std::int64_t> shape;
  };
  for (const Case& c : {Case{"CHW", {3, 4, 4}}, Case{"CL", {3, 16}}, Case{"F", {20}}}) {
    SCOPED_TRACE(c.layout);
    GeneratedSpec spec;
    spec.sample_shape = c.shape;
    spec.layout = c.layout;
    auto info = Validate(testing::Npz(spec));
    ASSERT_TRUE(info.ok()) << info.error().ToString();
    EXPECT_EQ(info->sample_shape, c.shape);
  }
}

// Every bad layout answers its code, naming the problem: a rank the layout does not describe is
// dataset_shape_mismatch, anything but one known string dataset_invalid.
TEST_F(ValidatorTest, BadLayoutsAreRefused) {
  GeneratedSpec grey;
  grey.sample_shape = {8, 8};
  grey.layout = "HW";
  struct Case {
    const char* what;
    std::vector<ZipMember> members;
    const char* code;
    const char* says;  // in the message
  };
  std::vector<Case> cases;
  auto with = [&](const char* what, const GeneratedSpec& spec, std::string layout_npy,
                  const char* code, const char* says) {
    auto m = testing::NpzMembers(spec);
    m.back() = {"layout.npy", std::move(layout_npy)};
    cases.push_back({what, std::move(m), code, says});
  };
  GeneratedSpec images = grey;  // [N, 1, 8, 8]
  images.sample_shape = {1, 8, 8};
  with("HW on CHW samples", images, testing::NpyString("HW"), "dataset_shape_mismatch",
       "x_train.npy is [60, 1, 8, 8], but layout 'HW' needs [N, H, W]");
  with("CHW on HW samples", grey, testing::NpyString("CHW"), "dataset_shape_mismatch",
       "layout 'CHW' needs [N, C, H, W]");
  with("F on HW samples", grey, testing::NpyString("F"), "dataset_shape_mismatch",
       "layout 'F' needs [N, F]");
  with("unknown", grey, testing::NpyString("WH"), "dataset_invalid", "layout 'WH' is unknown");
  with("lower case", grey, testing::NpyString("hw"), "dataset_invalid", "layout 'hw' is unknown");
  with("with the sample axis", grey, testing::NpyString("NHW"), "dataset_invalid",
       "(write 'HW')");
  with("empty", grey, testing::NpyString(""), "dataset_invalid", "layout '' is unknown");
  const std::string e_acute("\xe9\0\0\0", 4);  // U+00E9
  with("not ASCII", grey, testing::Npy("<U2", {}, testing::Utf32Names({"H"}, 1) + e_acute),
       "dataset_invalid", "layout is not ASCII text");
  with("a number", grey, testing::Npy("<i8", {}, std::string(8, '\0')), "dataset_invalid",
       "not an array of int64");
  with("a pickle", grey, testing::Npy("|O", {}, ""), "dataset_invalid",
       "layout must be one string");
  with("several strings", grey, testing::Npy("<U2", {2}, testing::Utf32Names({"HW", "HW"}, 2)),
       "dataset_invalid", "not an array of shape [2]");
  with("no strings", grey, testing::Npy("<U2", {0}, ""), "dataset_invalid",
       "not an array of shape [0]");
  with("trailing bytes", grey, testing::NpyString("HW") + "xx", "dataset_invalid",
       "more bytes than its shape needs");
  with("short", grey, testing::Npy("<U2", {}, "H"), "dataset_invalid", "layout.npy is truncated");
  with("not a .npy", grey, "HW", "dataset_invalid", "layout.npy is truncated");
  auto twice = testing::NpzMembers(grey);
  twice.push_back(twice.back());
  cases.push_back({"twice", twice, "dataset_invalid", "layout.npy twice"});
  // The test split is checked too, not only the train split.
  auto test_split = testing::NpzMembers(grey);
  test_split[2].data = testing::Npy("|u1", {15, 1, 8, 8}, std::string(15 * 64, 'x'));
  cases.push_back(
      {"test split", test_split, "dataset_shape_mismatch", "x_test.npy is [15, 1, 8, 8]"});
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    auto r = Validate(testing::Zip(c.members));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, c.code) << r.error().message;
    EXPECT_NE(r.error().message.find(c.says), std::string::npos) << r.error().message;
  }
}

TEST_F(ValidatorTest, BadArchivesAreInvalid) {
  EXPECT_EQ(CodeOf(""), "dataset_invalid");
  EXPECT_EQ(CodeOf("just some text, not an archive at all"), "dataset_invalid");
  const std::string npz = testing::Npz(GeneratedSpec{});
  EXPECT_EQ(CodeOf(npz.substr(0, npz.size() / 2)), "dataset_invalid");  // truncated
  std::string damaged = testing::Npz(GeneratedSpec{}, true);
  damaged[200] = static_cast<char>(damaged[200] ^ 0x55);
  EXPECT_EQ(CodeOf(damaged), "dataset_invalid");
  auto members = testing::NpzMembers(GeneratedSpec{});
  members[0].declared_crc = 1234;
  EXPECT_EQ(CodeOf(members), "dataset_invalid");
  members = testing::NpzMembers(GeneratedSpec{});
  members.erase(members.begin() + 3);  // no y_test
  EXPECT_EQ(CodeOf(members), "dataset_invalid");
  members = testing::NpzMembers(GeneratedSpec{});
  members[1].data = testing::Npy("<f4", {60}, std::string(240, '\0'));  // float labels
  EXPECT_EQ(CodeOf(members), "dataset_invalid");
  members = testing::NpzMembers(GeneratedSpec{});
  members[0].data = testing::Npy("|O", {60}, "");  // a pickle
  EXPECT_EQ(CodeOf(members), "dataset_invalid");
  members = testing::NpzMembers(GeneratedSpec{});
  members[0].data.resize(members[0].data.size() - 1);  // one byte short of its shape
  EXPECT_EQ(CodeOf(members), "dataset_invalid");
  EXPECT_EQ(CodeOf(testing::Tar({{"train-images-idx3-ubyte", "not idx"}})), "dataset_invalid");
}

TEST_F(ValidatorTest, MismatchedCounts) {
  auto members = testing::NpzMembers(GeneratedSpec{});
  std::string y(59 * 8, '\0');
  members[1].data = testing::Npy("<i8", {59}, y);
  EXPECT_EQ(CodeOf(members), "dataset_count_mismatch");
}

TEST_F(ValidatorTest, LabelsOutOfRange) {
  auto members = testing::NpzMembers(GeneratedSpec{});
  std::vector<std::int64_t> y(60, 0);
  y[17] = -1;
  members[1].data = testing::Npy("<i8", {60}, testing::Bytes(y));
  EXPECT_EQ(CodeOf(members), "dataset_label_out_of_range");
  y[17] = 1 << 20;
  members[1].data = testing::Npy("<i8", {60}, testing::Bytes(y));
  EXPECT_EQ(CodeOf(members), "dataset_label_out_of_range");
  // Labels 0..2 with two class names.
  GeneratedSpec spec;
  spec.class_names = {"a", "b", "c"};
  members = testing::NpzMembers(spec);
  members[4].data = testing::Npy("<U1", {2}, testing::Utf32Names({"a", "b"}, 1));
  EXPECT_EQ(CodeOf(members), "dataset_label_out_of_range");
}

TEST_F(ValidatorTest, NaNAndInfinity) {
  GeneratedSpec spec;
  spec.dtype = "<f4";
  spec.sample_shape = {20};
  for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
    auto members = testing::NpzMembers(spec);
    std::memcpy(members[2].data.data() + members[2].data.size() - 4, &bad, 4);
    EXPECT_EQ(CodeOf(members), "dataset_not_finite");
  }
  spec.dtype = "<f2";
  auto members = testing::NpzMembers(spec);
  members[0].data[members[0].data.size() - 1] = 0x7E;  // half NaN (0x7E00)
  members[0].data[members[0].data.size() - 2] = 0x00;
  EXPECT_EQ(CodeOf(members), "dataset_not_finite");
}

TEST_F(ValidatorTest, InconsistentShapes) {
  auto members = testing::NpzMembers(GeneratedSpec{});
  members[2].data = testing::Npy("|u1", {15, 1, 8, 7}, std::string(15 * 56, 'x'));
  EXPECT_EQ(CodeOf(members), "dataset_shape_mismatch");
  members = testing::NpzMembers(GeneratedSpec{});
  members[2].data = testing::Npy("<f4", {15, 1, 8, 8}, std::string(15 * 64 * 4, '\0'));
  EXPECT_EQ(CodeOf(members), "dataset_shape_mismatch");  // uint8 train, float32 test
  members = testing::NpzMembers(GeneratedSpec{});
  members[0].data = testing::Npy("|u1", {60}, std::string(60, 'x'));  // no sample axis
  EXPECT_EQ(CodeOf(members), "dataset_shape_mismatch");
  members = testing::NpzMembers(GeneratedSpec{});
  members[0].data = testing::Npy("|u1", {60, 1, 1, 1, 8}, std::string(480, 'x'));
  EXPECT_EQ(CodeOf(members), "dataset_shape_mismatch");
}

TEST_F(ValidatorTest, TooFewSamplesPerClass) {
  GeneratedSpec spec;
  spec.train_per_class = 4;
  EXPECT_EQ(CodeOf(testing::Npz(spec)), "dataset_too_few_samples");
  ValidationLimits lenient;
  lenient.min_train_per_class = 4;
  EXPECT_EQ(CodeOf(testing::Npz(spec), lenient), "ok");
  // A class that only the names know has no samples at all.
  spec = GeneratedSpec{};
  spec.class_names = {"a", "b", "c", "d"};
  EXPECT_EQ(CodeOf(testing::Npz(spec)), "dataset_too_few_samples");
}

TEST_F(ValidatorTest, BadClassNames) {
  GeneratedSpec spec;
  spec.class_names = {"a", "a", "b"};
  EXPECT_EQ(CodeOf(testing::Npz(spec)), "dataset_invalid");
  spec.class_names = {"a", "", "b"};
  EXPECT_EQ(CodeOf(testing::Npz(spec)), "dataset_invalid");
  spec.class_names = {"a", "b\x01", "c"};
  EXPECT_EQ(CodeOf(testing::Npz(spec)), "dataset_invalid");
}

TEST_F(ValidatorTest, ZipBombIsRefusedBeforeOrWhileInflating) {
  // 16 MiB of zeros deflate to ~16 KiB; a 1 MiB limit refuses it from the declared sizes alone.
  GeneratedSpec spec;
  auto members = testing::NpzMembers(spec);
  members[0] = {"x_train.npy", testing::Npy("|u1", {16, 1024, 1024}, std::string(16 << 20, '\0')),
                true};
  ValidationLimits small;
  small.max_decompressed_bytes = 1 << 20;
  EXPECT_EQ(CodeOf(members, small), "dataset_too_large");
  // The same bomb declaring a small size is stopped by the inflater at that size.
  members[0].declared_size = 4096;
  EXPECT_EQ(CodeOf(members, small), "dataset_too_large");
  // Gzip'd IDX in a tar: bounded by the same limit while inflating.
  const std::string big = testing::Idx({4096, 16, 16}, std::string(4096 * 256, '\0'));
  EXPECT_EQ(CodeOf(testing::Tar({{"train-images-idx3-ubyte.gz", testing::Gzip(big)}}), small),
            "dataset_too_large");
  EXPECT_EQ(CodeOf(testing::Gzip(testing::Tar({{"train-images-idx3-ubyte", big}})), small),
            "dataset_too_large");
}

TEST_F(ValidatorTest, NpyHeaderGrammar) {
  EXPECT_TRUE(ParseNpyDict("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }", "a").ok());
  EXPECT_TRUE(ParseNpyDict("{'shape': (3,), 'descr': '|u1', 'fortran_order': False}", "a").ok());
  for (const char* bad : {"", "{", "{'descr': '<f4'}", "{'descr': '>f4', 'fortran_order': False, 'shape': (3,)}",
                          "{'descr': '<f4', 'fortran_order': True, 'shape': (3, 4)}",
                          "{'descr': '<f4', 'fortran_order': False, 'shape': (-3,)}",
                          "{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1)}",
                          "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), 'x': 1}",
                          "{'descr': '<c8', 'fortran_order': False, 'shape': (3,)}",
                          "{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 4)}"}) {
    auto r = ParseNpyDict(bad, "a");
    EXPECT_FALSE(r.ok()) << bad;
  }
}

}  // namespace
}  // namespace edgeprune::datasets
