#include "edgeprune/common/fs.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>

#include "support/temp_dir.hpp"

namespace edgeprune::fs {
namespace {

mode_t ModeOf(const std::string& p) {
  struct stat st {};
  EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
  return st.st_mode & 0777;
}

TEST(FsTest, WriteAtomicCreatesAndReplaces) {
  testing::TempDir dir;
  std::string p = dir.File("state.json");
  ASSERT_TRUE(WriteFileAtomic(p, "first").ok());
  EXPECT_EQ(ReadFile(p).value(), "first");
  ASSERT_TRUE(WriteFileAtomic(p, "second, longer").ok());
  EXPECT_EQ(ReadFile(p).value(), "second, longer");
  // No temp files left next to it.
  int entries = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir.path())) ++entries;
  EXPECT_EQ(entries, 1);
}

TEST(FsTest, WriteAtomicAppliesMode) {
  testing::TempDir dir;
  std::string p = dir.File("device.key");
  ASSERT_TRUE(WriteFileAtomic(p, "secret", 0600).ok());
  EXPECT_EQ(ModeOf(p), 0600u);
}

TEST(FsTest, WriteAtomicIntoMissingDirFailsNamingPath) {
  testing::TempDir dir;
  std::string p = dir.File("no/such/dir/file");
  auto s = WriteFileAtomic(p, "x");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, "write_failed");
  EXPECT_NE(s.error().message.find(p), std::string::npos);
  EXPECT_EQ(WriteFileAtomic(dir.path() + "/", "x").error().code, "invalid_path");
}

TEST(FsTest, WriteAtomicOverDirectoryFailsAndLeavesNoTemp) {
  testing::TempDir dir;
  std::string sub = dir.Subdir("target");
  auto s = WriteFileAtomic(sub, "x");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, "write_failed");
  int entries = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir.path())) ++entries;
  EXPECT_EQ(entries, 1);
}

TEST(FsTest, ReadFileErrors) {
  testing::TempDir dir;
  auto missing = ReadFile(dir.File("absent"));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, "file_not_found");
  EXPECT_EQ(missing.error().kind, ErrorKind::kNotFound);
  std::string p = dir.WriteFile("ten", "0123456789");
  EXPECT_EQ(ReadFile(p, 10).value(), "0123456789");
  auto big = ReadFile(p, 9);
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.error().code, "file_too_large");
  EXPECT_EQ(ReadFile(dir.path()).error().code, "file_unreadable");
  EXPECT_EQ(ReadFile(dir.WriteFile("empty", "")).value(), "");
}

TEST(FsTest, EnsureDirCreatesParentsAndIsIdempotent) {
  testing::TempDir dir;
  std::string p = dir.File("a/b/c");
  ASSERT_TRUE(EnsureDir(p, 0700).ok());
  EXPECT_TRUE(std::filesystem::is_directory(p));
  EXPECT_EQ(ModeOf(p), 0700u);
  EXPECT_TRUE(EnsureDir(p).ok());
  std::string file = dir.WriteFile("plain", "x");
  auto s = EnsureDir(file + "/sub");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, "mkdir_failed");
  EXPECT_EQ(EnsureDir(file).error().code, "mkdir_failed");
  EXPECT_EQ(EnsureDir("").error().code, "invalid_path");
}

}  // namespace
}  // namespace edgeprune::fs
