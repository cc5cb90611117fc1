// Image-folder tars (train|test/<class>/<PNG or JPEG>, shape.txt) through the same reader and
// validator as every other format: generated PNG and JPEG files of other sizes are scaled,
// centre-cropped and labelled by their directory; every malformed case answers its code.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>

#include "server/datasets/dataset_files.hpp"
#include "server/datasets/image_files.hpp"
#include "server/datasets/validator.hpp"
#include "support/temp_dir.hpp"

namespace edgeprune::datasets {
namespace {

using testing::Jpeg;
using testing::Png;

// Keeps x_train and the class names as the reader hands them over.
struct Capture : ArraySink {
  Status Begin(Role r, const ArrayHeader& h) override {
    role = r;
    if (r == Role::kXTrain) x_shape = h.shape;
    return Ok();
  }
  Status Data(std::string_view bytes) override {
    if (role == Role::kXTrain) x_train.append(bytes);
    if (role == Role::kYTrain) y_train.append(bytes);
    return Ok();
  }
  Status End() override { return Ok(); }
  Role role = Role::kXTrain;
  std::vector<std::int64_t> x_shape;
  std::string x_train, y_train;
};

const unsigned char kRed[3] = {200, 20, 20};
const unsigned char kBlue[3] = {10, 30, 220};

class ImageFolderTest : public ::testing::Test {
 protected:
  std::string Write(const std::string& bytes) {
    return dir_.WriteFile("images-" + std::to_string(n_++) + ".tar", bytes);
  }
  std::string CodeOf(const std::vector<std::pair<std::string, std::string>>& files,
                     ValidationLimits limits = {}) {
    auto r = ValidateDatasetFile(Write(testing::Tar(files)), limits);
    return r.ok() ? "ok" : r.error().code + ": " + r.error().message;
  }
  // 6 training and 2 test images per class, PNG and JPEG of sizes other than the declared one.
  std::vector<std::pair<std::string, std::string>> ColourFiles() {
    std::vector<std::pair<std::string, std::string>> files{{"shape.txt", "3,32,32\n"}};
    for (int i = 0; i < 6; ++i) {
      files.push_back({"train/red/" + std::to_string(i) + ".png", Png(40, 48, 3, kRed)});
      files.push_back({"./train/blue/" + std::to_string(i) + ".jpg", Jpeg(64, 32, kBlue)});
    }
    for (int i = 0; i < 2; ++i) {
      files.push_back({"test/red/" + std::to_string(i) + ".jpg", Jpeg(32, 32, kRed)});
      files.push_back({"test/blue/" + std::to_string(i) + ".png", Png(33, 31, 3, kBlue)});
    }
    files.push_back({"README.txt", "ignored"});
    return files;
  }
  testing::TempDir dir_{"image-folder-test"};
  int n_ = 0;
};

TEST_F(ImageFolderTest, ColourPngAndJpegAreScaledCroppedAndLabelledByDirectory) {
  Capture capture;
  auto info = ValidateDatasetFile(Write(testing::Tar(ColourFiles())), {}, &capture);
  ASSERT_TRUE(info.ok()) << info.error().ToString();
  EXPECT_EQ(info->format, "image-tar");
  EXPECT_EQ(info->dtype, DType::kUInt8);
  EXPECT_EQ(info->sample_shape, (std::vector<std::int64_t>{3, 32, 32}));
  EXPECT_EQ(info->class_names, (std::vector<std::string>{"blue", "red"}));  // sorted
  EXPECT_EQ(info->train.per_class, (std::vector<std::int64_t>{6, 6}));
  EXPECT_EQ(info->test.per_class, (std::vector<std::int64_t>{2, 2}));
  ASSERT_EQ(capture.x_shape, (std::vector<std::int64_t>{12, 3, 32, 32}));
  ASSERT_EQ(capture.x_train.size(), 12u * 3 * 32 * 32);
  ASSERT_EQ(capture.y_train.size(), 12u * 8);
  // Every pixel of every sample has its colour, channel-first: PNG exactly, JPEG within its loss.
  for (int s = 0; s < 12; ++s) {
    std::int64_t label;
    std::memcpy(&label, capture.y_train.data() + s * 8, 8);
    const unsigned char* want = label == 1 ? kRed : kBlue;
    const int tolerance = label == 1 ? 0 : 6;
    for (int c = 0; c < 3; ++c) {
      for (int p = 0; p < 32 * 32; ++p) {
        const int got = static_cast<unsigned char>(capture.x_train[(s * 3 + c) * 1024 + p]);
        ASSERT_LE(std::abs(got - want[c]), tolerance) << "sample " << s << " channel " << c;
      }
    }
  }
}

TEST_F(ImageFolderTest, GreyImagesInAGzippedTar) {
  const unsigned char dark[3] = {30, 30, 30}, light[3] = {220, 220, 220};
  std::vector<std::pair<std::string, std::string>> files{{"shape.txt", "1,8,8"}};
  for (int i = 0; i < 5; ++i) {
    files.push_back({"train/dark/" + std::to_string(i) + ".png", Png(16, 16, 1, dark)});
    files.push_back({"train/light/" + std::to_string(i) + ".jpg", Jpeg(12, 9, light)});
  }
  files.push_back({"test/dark/a.png", Png(8, 8, 1, dark)});
  files.push_back({"test/light/b.png", Png(8, 8, 3, light)});  // RGB file, grey data set
  auto info = ValidateDatasetFile(Write(testing::Gzip(testing::Tar(files))), {});
  ASSERT_TRUE(info.ok()) << info.error().ToString();
  EXPECT_EQ(info->format, "image-tar");
  EXPECT_EQ(info->sample_shape, (std::vector<std::int64_t>{1, 8, 8}));
  EXPECT_EQ(info->train.count, 10);
  EXPECT_EQ(info->test.count, 2);
}

TEST_F(ImageFolderTest, MalformedFoldersAnswerTheirCode) {
  auto files = ColourFiles();
  auto without = [&](const std::string& name) {
    auto f = files;
    std::erase_if(f, [&](const auto& p) { return p.first == name; });
    return f;
  };
  auto with = [&](const std::string& name, const std::string& bytes) {
    auto f = files;
    f.push_back({name, bytes});
    return f;
  };
  auto starts = [](const std::string& code, const std::string& prefix) {
    EXPECT_EQ(code.rfind(prefix, 0), 0u) << code;
  };
  starts(CodeOf(without("shape.txt")), "dataset_invalid: the image folder has no shape.txt");
  auto bad_shape = without("shape.txt");
  bad_shape.push_back({"shape.txt", "4,32,32"});
  starts(CodeOf(bad_shape), "dataset_invalid: shape.txt must hold C,H,W");
  const auto png = Png(40, 48, 3, kRed);
  starts(CodeOf(with("train/red/cut.png", png.substr(0, png.size() / 2))),
         "dataset_invalid: train/red/cut.png is a damaged PNG");
  starts(CodeOf(with("train/red/text.png", "just some text")),
         "dataset_invalid: train/red/text.png is neither a PNG nor a JPEG");
  const auto jpeg = Jpeg(32, 32, kRed);
  starts(CodeOf(with("train/red/cut.jpg", jpeg.substr(0, 200))),
         "dataset_invalid: train/red/cut.jpg is a damaged JPEG");
  // Cut after its header: libjpeg would fill the rest with grey and only warn.
  starts(CodeOf(with("train/red/short.jpg", jpeg.substr(0, jpeg.size() - 40))),
         "dataset_invalid: train/red/short.jpg is a damaged JPEG");
  starts(CodeOf(with("test/green/x.png", png)),
         "dataset_invalid: test class 'green' has no training images");
  // A JPEG whose header declares 60000 × 60000 pixels: refused before any pixel is decoded.
  std::string bomb = jpeg;
  const auto sof = bomb.find("\xff\xc0", 0, 2);
  ASSERT_NE(sof, std::string::npos);
  bomb[sof + 5] = bomb[sof + 7] = static_cast<char>(0xEA);
  bomb[sof + 6] = bomb[sof + 8] = static_cast<char>(0x60);
  starts(CodeOf(with("train/red/bomb.jpg", bomb)), "dataset_too_large: train/red/bomb.jpg");
  // Decoded samples over the data set limit.
  ValidationLimits small;
  small.max_decompressed_bytes = 20000;
  starts(CodeOf(files, small), "dataset_too_large");
  // Classes with too few samples are the validator's, as for any format.
  ValidationLimits strict;
  strict.min_train_per_class = 7;
  starts(CodeOf(files, strict), "dataset_too_few_samples");
}

}  // namespace
}  // namespace edgeprune::datasets
