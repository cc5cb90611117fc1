#include "server/store/blob_store.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

#include "edgeprune/common/crypto.hpp"
#include "edgeprune/common/fs.hpp"
#include "support/temp_dir.hpp"

namespace edgeprune::store {
namespace {

std::unique_ptr<BlobStore> OpenStore(const std::string& data_dir) {
  auto store = BlobStore::Open(data_dir);
  EXPECT_TRUE(store.ok()) << (store.ok() ? "" : store.error().ToString());
  return store.ok() ? std::move(store).value() : nullptr;
}

std::size_t FilesUnder(const std::string& dir) {
  std::size_t n = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) ++n;
  }
  return n;
}

// Issue 13 item 9: masters and variants are private to the server's user.
TEST(BlobStoreTest, BlobsAndTheirDirectoriesAreOwnerOnly) {
  testing::TempDir dir;
  const mode_t old_umask = ::umask(022);
  auto store = OpenStore(dir.path());
  ASSERT_NE(store, nullptr);
  auto ref = store->Put("weights");
  ::umask(old_umask);
  ASSERT_TRUE(ref.ok()) << ref.error().ToString();
  auto path = store->PathOf(ref->sha256);
  ASSERT_TRUE(path.ok());
  auto mode = [](const std::string& p) {
    struct stat st {};
    EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
    return st.st_mode & 0777;
  };
  EXPECT_EQ(mode(*path), 0400u);
  EXPECT_EQ(mode(std::filesystem::path(*path).parent_path().string()), 0700u);
  EXPECT_EQ(mode(dir.path() + "/blobs"), 0700u);
  EXPECT_EQ(mode(dir.path() + "/blobs/.tmp"), 0700u);
}

TEST(BlobStoreTest, PutGetVerifyRoundTrip) {
  testing::TempDir dir;
  auto store = OpenStore(dir.path());
  // 24 bytes with a NUL inside. (Built from a std::string of the literal, it stopped at the NUL
  // and 25 bytes were read out of a 12-byte string: AddressSanitizer's stack-buffer-overflow.)
  const std::string full("model bytes \0 with a nul", 24);
  auto ref = store->Put(full);
  ASSERT_TRUE(ref.ok()) << ref.error().ToString();
  EXPECT_EQ(ref->sha256, crypto::Sha256Hex(full));
  EXPECT_EQ(ref->size, full.size());

  auto path = store->PathOf(ref->sha256);
  ASSERT_TRUE(path.ok());
  EXPECT_EQ(*path, dir.path() + "/blobs/" + ref->sha256.substr(0, 2) + "/" + ref->sha256.substr(2));
  EXPECT_TRUE(store->Exists(ref->sha256));
  auto back = store->Get(ref->sha256);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, full);
  EXPECT_TRUE(store->Verify(ref->sha256).ok());
  auto stat = store->Stat(ref->sha256);
  ASSERT_TRUE(stat.ok());
  EXPECT_EQ(*stat, *ref);

  // Same content again: same ref, still one file, no temp files left behind.
  auto again = store->Put(full);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *ref);
  EXPECT_EQ(FilesUnder(store->root()), 1u);

  auto empty = store->Put("");
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->sha256, crypto::Sha256Hex(""));
  EXPECT_EQ(*store->Get(empty->sha256), "");
}

TEST(BlobStoreTest, PutFileStreamsLargeFiles) {
  testing::TempDir dir;
  auto store = OpenStore(dir.File("data"));
  std::string big(3 * 1024 * 1024 + 17, '\0');
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>((i * 2654435761u) >> 13);
  const std::string src = dir.WriteFile("master.pt", big);
  auto ref = store->PutFile(src);
  ASSERT_TRUE(ref.ok()) << ref.error().ToString();
  EXPECT_EQ(ref->sha256, crypto::Sha256Hex(big));
  EXPECT_EQ(ref->size, big.size());
  EXPECT_EQ(*store->Get(ref->sha256), big);
  EXPECT_EQ(*store->Put(big), *ref);

  auto missing = store->PutFile(dir.File("nope.pt"));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().kind, ErrorKind::kNotFound);
  auto directory = store->PutFile(dir.path());
  ASSERT_FALSE(directory.ok());
  EXPECT_EQ(directory.error().code, "not_a_file");
  EXPECT_EQ(FilesUnder(store->root()), 1u);
}

TEST(BlobStoreTest, AdoptMovesAHashedFileInWithoutACopy) {
  testing::TempDir dir;
  auto store = OpenStore(dir.File("data"));
  const std::string bytes(1024 * 1024 + 3, 'u');
  const std::string spool = dir.WriteFile("data/upload.part", bytes);
  struct stat before {};
  ASSERT_EQ(::stat(spool.c_str(), &before), 0);
  auto ref = BlobStore::Hash(spool);
  ASSERT_TRUE(ref.ok()) << ref.error().ToString();
  EXPECT_EQ(ref->sha256, crypto::Sha256Hex(bytes));
  EXPECT_EQ(ref->size, bytes.size());

  auto adopted = store->Adopt(spool, *ref);
  ASSERT_TRUE(adopted.ok()) << adopted.error().ToString();
  EXPECT_EQ(*adopted, *ref);
  EXPECT_FALSE(std::filesystem::exists(spool));  // moved, not copied: the same inode
  struct stat after {};
  ASSERT_EQ(::stat(store->PathOf(ref->sha256)->c_str(), &after), 0);
  EXPECT_EQ(after.st_ino, before.st_ino);
  EXPECT_EQ(after.st_mode & 0777, 0400u);
  EXPECT_TRUE(store->Verify(ref->sha256).ok());

  // The same bytes again: the store keeps its blob and leaves the caller's file alone.
  const std::string again = dir.WriteFile("data/again.part", bytes);
  ASSERT_TRUE(store->Adopt(again, *ref).ok());
  EXPECT_TRUE(std::filesystem::exists(again));
  EXPECT_EQ(FilesUnder(store->root()), 1u);
}

TEST(BlobStoreTest, AdoptRefusesAFileThatChangedAfterHashing) {
  testing::TempDir dir;
  auto store = OpenStore(dir.File("data"));
  const std::string spool = dir.WriteFile("data/upload.part", "short");
  auto ref = BlobStore::Hash(spool);
  ASSERT_TRUE(ref.ok());
  dir.WriteFile("data/upload.part", "longer than it was");
  auto adopted = store->Adopt(spool, *ref);
  ASSERT_FALSE(adopted.ok());
  EXPECT_EQ(adopted.error().code, "blob_changed");
  EXPECT_TRUE(std::filesystem::exists(spool));
  EXPECT_EQ(FilesUnder(store->root()), 0u);
  auto bad = store->Adopt(spool, BlobRef{"../../etc", 5});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, "invalid_blob_name");
}

TEST(BlobStoreTest, CorruptedBlobIsDetected) {
  testing::TempDir dir;
  auto store = OpenStore(dir.path());
  auto ref = store->Put("the original bytes");
  ASSERT_TRUE(ref.ok());
  const std::string path = *store->PathOf(ref->sha256);
  ASSERT_EQ(::chmod(path.c_str(), 0644), 0);  // blobs are stored read-only
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(4);
    f.put('X');
  }
  Status verified = store->Verify(ref->sha256);
  ASSERT_FALSE(verified.ok());
  EXPECT_EQ(verified.error().code, "blob_corrupt");
  EXPECT_NE(verified.error().message.find(ref->sha256), std::string::npos);
  auto got = store->Get(ref->sha256);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().code, "blob_corrupt");

  ASSERT_TRUE(store->Remove(ref->sha256).ok());
  EXPECT_FALSE(store->Exists(ref->sha256));
  EXPECT_TRUE(store->Remove(ref->sha256).ok());  // removing twice is fine
  auto gone = store->Get(ref->sha256);
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.error().code, "blob_not_found");
  EXPECT_EQ(store->Verify(ref->sha256).error().kind, ErrorKind::kNotFound);
  // A fresh Put restores the content.
  ASSERT_TRUE(store->Put("the original bytes").ok());
  EXPECT_TRUE(store->Verify(ref->sha256).ok());
}

TEST(BlobStoreTest, BadNamesAreRefusedBeforeTouchingTheFileSystem) {
  testing::TempDir dir;
  auto store = OpenStore(dir.File("data"));
  dir.WriteFile("secret", "outside the store");
  const std::string valid = crypto::Sha256Hex("x");
  const std::vector<std::string> bad = {
      "",
      "../../secret",
      "ab/../../../secret",
      valid.substr(0, 63),
      valid + "0",
      std::string(64, 'g'),
      std::string(62, 'a') + "/.",
      [&] {
        std::string upper = valid;
        for (char& c : upper) c = static_cast<char>(std::toupper(c));
        return upper;
      }(),
  };
  for (const std::string& name : bad) {
    EXPECT_FALSE(BlobStore::IsValidName(name)) << name;
    auto got = store->Get(name);
    ASSERT_FALSE(got.ok()) << name;
    EXPECT_EQ(got.error().code, "invalid_blob_name") << name;
    EXPECT_EQ(got.error().kind, ErrorKind::kInvalidArgument);
    EXPECT_FALSE(store->PathOf(name).ok());
    EXPECT_FALSE(store->Verify(name).ok());
    EXPECT_FALSE(store->Exists(name));
    EXPECT_EQ(store->Remove(name).error().code, "invalid_blob_name");
  }
  EXPECT_TRUE(std::filesystem::exists(dir.File("secret")));
}

TEST(BlobStoreTest, ConcurrentPutsOfTheSameAndDifferentContent) {
  testing::TempDir dir;
  auto store = OpenStore(dir.path());
  std::vector<std::thread> threads;
  std::vector<Result<BlobRef>> results(8, Result<BlobRef>(BlobRef{}));
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      results[t] = store->Put("shared content " + std::to_string(t % 2));
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < 8; ++t) {
    ASSERT_TRUE(results[t].ok()) << results[t].error().ToString();
    EXPECT_TRUE(store->Verify(results[t]->sha256).ok());
  }
  EXPECT_EQ(FilesUnder(store->root()), 2u);
}

TEST(BlobStoreTest, OpenRefusesAnUnusableDataDir) {
  testing::TempDir dir;
  const std::string file = dir.WriteFile("plainfile", "x");
  auto store = BlobStore::Open(file);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.error().kind, ErrorKind::kIo);
  EXPECT_FALSE(BlobStore::Open("").ok());
}

}  // namespace
}  // namespace edgeprune::store
