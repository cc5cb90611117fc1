// BlobStore::Collect: what the retention task's blob collector removes and what it must keep.
// File times are set back with utimensat instead of waiting out the grace period.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <ctime>
#include <filesystem>

#include "server/store/blob_store.hpp"
#include "support/temp_dir.hpp"

namespace edgeprune::store {
namespace {

using std::chrono::hours;
using std::chrono::seconds;

constexpr std::time_t kTwoDays = 2 * 86'400;

std::unique_ptr<BlobStore> OpenStore(const std::string& data_dir) {
  auto store = BlobStore::Open(data_dir);
  EXPECT_TRUE(store.ok()) << (store.ok() ? "" : store.error().ToString());
  return store.ok() ? std::move(store).value() : nullptr;
}

// Makes the blob's file look written `age` seconds ago.
void Age(const BlobStore& store, const std::string& sha, std::time_t age) {
  auto path = store.PathOf(sha);
  ASSERT_TRUE(path.ok());
  const timespec when{std::time(nullptr) - age, 0};
  const timespec times[2] = {when, when};
  ASSERT_EQ(::utimensat(AT_FDCWD, path->c_str(), times, 0), 0) << *path;
}

std::time_t MtimeOf(const BlobStore& store, const std::string& sha) {
  struct stat st {};
  EXPECT_EQ(::stat(store.PathOf(sha)->c_str(), &st), 0);
  return st.st_mtime;
}

TEST(BlobGcTest, AReferencedBlobSurvivesAnUnreferencedOldOneGoesAYoungOneStays) {
  testing::TempDir dir;
  auto store = OpenStore(dir.path());
  ASSERT_NE(store, nullptr);
  auto referenced = store->Put("a master model");
  auto orphan = store->Put("a checkpoint nobody names any more");
  auto young = store->Put("an upload not yet registered");
  ASSERT_TRUE(referenced.ok() && orphan.ok() && young.ok());
  Age(*store, referenced->sha256, kTwoDays);
  Age(*store, orphan->sha256, kTwoDays);

  auto done = store->Collect({referenced->sha256}, hours(1));
  ASSERT_TRUE(done.ok()) << done.error().ToString();
  EXPECT_EQ(done->removed, 1);
  EXPECT_EQ(done->removed_bytes, orphan->size);
  EXPECT_EQ(done->kept_referenced, 1);
  EXPECT_EQ(done->kept_recent, 1);
  EXPECT_TRUE(store->Exists(referenced->sha256));
  EXPECT_FALSE(store->Exists(orphan->sha256));
  EXPECT_TRUE(store->Exists(young->sha256));
  EXPECT_TRUE(store->Verify(referenced->sha256).ok());
  // Nothing is left aside in the temp directory.
  EXPECT_TRUE(std::filesystem::is_empty(store->root() + "/.tmp"));

  // A second pass finds nothing more to do.
  auto again = store->Collect({referenced->sha256}, hours(1));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->removed, 0);
}

// A writer storing bytes the store already holds is about to reference them: the store touches
// the file, so an old unreferenced blob stored again is not collected under the writer.
TEST(BlobGcTest, StoringAnOldUnreferencedBlobAgainKeepsItThroughTheGrace) {
  testing::TempDir dir;
  auto store = OpenStore(dir.path());
  ASSERT_NE(store, nullptr);
  auto ref = store->Put("variant bytes built twice");
  ASSERT_TRUE(ref.ok());
  Age(*store, ref->sha256, kTwoDays);
  ASSERT_LT(MtimeOf(*store, ref->sha256), std::time(nullptr) - kTwoDays + 60);

  auto again = store->Put("variant bytes built twice");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *ref);
  EXPECT_GE(MtimeOf(*store, ref->sha256), std::time(nullptr) - 60);

  auto done = store->Collect({}, hours(1));
  ASSERT_TRUE(done.ok()) << done.error().ToString();
  EXPECT_EQ(done->removed, 0);
  EXPECT_EQ(done->kept_recent, 1);
  EXPECT_TRUE(store->Exists(ref->sha256));

  // The same through PutFile (uploads and variant builds store files).
  Age(*store, ref->sha256, kTwoDays);
  const std::string src = dir.path() + "/copy";
  {
    auto bytes = store->Get(ref->sha256);
    ASSERT_TRUE(bytes.ok());
    FILE* f = std::fopen(src.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    std::fwrite(bytes->data(), 1, bytes->size(), f);
    std::fclose(f);
  }
  ASSERT_TRUE(store->PutFile(src).ok());
  auto after = store->Collect({}, hours(1));
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->removed, 0);
  EXPECT_TRUE(store->Exists(ref->sha256));
}

// A collection that died between renaming a blob aside and removing it: the next Open puts it
// back, and the next collection decides again.
TEST(BlobGcTest, ABlobLeftAsideByACollectionThatDiedIsPutBackAtOpen) {
  testing::TempDir dir;
  std::string sha;
  {
    auto store = OpenStore(dir.path());
    ASSERT_NE(store, nullptr);
    auto ref = store->Put("weights");
    ASSERT_TRUE(ref.ok());
    sha = ref->sha256;
    const std::string aside = store->root() + "/.tmp/gc." + sha;
    ASSERT_EQ(std::rename(store->PathOf(sha)->c_str(), aside.c_str()), 0);
    EXPECT_FALSE(store->Exists(sha));
  }
  auto reopened = OpenStore(dir.path());
  ASSERT_NE(reopened, nullptr);
  EXPECT_TRUE(reopened->Exists(sha));
  EXPECT_TRUE(reopened->Verify(sha).ok());
  EXPECT_TRUE(std::filesystem::is_empty(reopened->root() + "/.tmp"));
}

TEST(BlobGcTest, ANegativeGraceIsRefusedAndNothingOutsideTheNamingSchemeIsTouched) {
  testing::TempDir dir;
  auto store = OpenStore(dir.path());
  ASSERT_NE(store, nullptr);
  auto refused = store->Collect({}, seconds(-1));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, "invalid_grace");

  // A stray file in a shard directory is not a blob: never removed, however old.
  auto ref = store->Put("x");
  ASSERT_TRUE(ref.ok());
  const std::string stray = store->root() + "/" + ref->sha256.substr(0, 2) + "/notes.txt";
  FILE* f = std::fopen(stray.c_str(), "w");
  ASSERT_NE(f, nullptr);
  std::fclose(f);
  const timespec old{std::time(nullptr) - kTwoDays, 0};
  const timespec times[2] = {old, old};
  ASSERT_EQ(::utimensat(AT_FDCWD, stray.c_str(), times, 0), 0);
  auto done = store->Collect({ref->sha256}, hours(1));
  ASSERT_TRUE(done.ok());
  EXPECT_EQ(done->removed, 0);
  EXPECT_TRUE(std::filesystem::exists(stray));
}

}  // namespace
}  // namespace edgeprune::store
