// IDX probe set loading: plain and gzip files, and clear errors for malformed ones.
#include <gtest/gtest.h>
#include <zlib.h>

#include <string>

#include "agent/runtime/probe_set.hpp"
#include "support/temp_dir.hpp"

namespace edgeprune::agent {
namespace {

std::string Be32(std::uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}

std::string Images(std::uint32_t n, std::uint32_t rows, std::uint32_t cols) {
  std::string s = Be32(0x803) + Be32(n) + Be32(rows) + Be32(cols);
  for (std::uint32_t i = 0; i < n * rows * cols; ++i) s.push_back(static_cast<char>(i % 256));
  return s;
}

std::string Labels(std::uint32_t n) {
  std::string s = Be32(0x801) + Be32(n);
  for (std::uint32_t i = 0; i < n; ++i) s.push_back(static_cast<char>(i % 10));
  return s;
}

void WriteGzip(const std::string& path, const std::string& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())),
            static_cast<int>(bytes.size()));
  gzclose(f);
}

TEST(ProbeSetTest, LoadsPlainIdxUpToTheLimit) {
  edgeprune::testing::TempDir dir;
  auto images = dir.WriteFile("img", Images(5, 3, 2));
  auto labels = dir.WriteFile("lbl", Labels(5));
  auto set = LoadIdxProbeSet(images, labels, 3);
  ASSERT_TRUE(set.ok()) << set.error().ToString();
  EXPECT_EQ(set->size(), 3u);
  EXPECT_EQ(set->sample_shape, (std::vector<std::int64_t>{1, 1, 3, 2}));
  EXPECT_EQ(set->data.size(), 18u);
  EXPECT_FLOAT_EQ(set->data[7], 7.0f / 255.0f);
  EXPECT_EQ(set->labels, (std::vector<std::int64_t>{0, 1, 2}));
}

TEST(ProbeSetTest, LoadsGzipIdx) {
  edgeprune::testing::TempDir dir;
  WriteGzip(dir.File("img.gz"), Images(4, 2, 2));
  WriteGzip(dir.File("lbl.gz"), Labels(4));
  auto set = LoadIdxProbeSet(dir.File("img.gz"), dir.File("lbl.gz"), 100);
  ASSERT_TRUE(set.ok()) << set.error().ToString();
  EXPECT_EQ(set->size(), 4u);
  EXPECT_FLOAT_EQ(set->sample(3)[3], 15.0f / 255.0f);
}

TEST(ProbeSetTest, MalformedFilesAreRefusedNamingTheFile) {
  edgeprune::testing::TempDir dir;
  auto labels = dir.WriteFile("lbl", Labels(5));
  auto bad_magic = dir.WriteFile("magic", Be32(0x801) + Images(5, 3, 2).substr(4));
  auto r = LoadIdxProbeSet(bad_magic, labels, 5);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "probe_invalid");
  EXPECT_NE(r.error().message.find(bad_magic), std::string::npos);

  auto truncated = dir.WriteFile("trunc", Images(5, 3, 2).substr(0, 30));
  EXPECT_EQ(LoadIdxProbeSet(truncated, labels, 5).error().code, "probe_invalid");

  auto other_count = dir.WriteFile("img4", Images(4, 3, 2));
  EXPECT_EQ(LoadIdxProbeSet(other_count, labels, 5).error().code, "probe_invalid");

  auto missing = LoadIdxProbeSet(dir.File("absent"), labels, 5);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, "probe_unreadable");
}

}  // namespace
}  // namespace edgeprune::agent
