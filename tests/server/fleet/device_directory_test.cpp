// The fleet's read interface for other modules (server/fleet/device_directory.hpp), on both
// backends: the whole fleet, one device, and the devices among a list, each without revoked ones.
#include <gtest/gtest.h>

#include <algorithm>

#include "server/fleet/device_directory.hpp"
#include "support/store_backends.hpp"

namespace edgeprune::fleet {
namespace {

class DeviceDirectoryTest : public testing::StoreBackendTest {
 protected:
  void SetUp() override {
    db_ = OpenDatabase();
    ASSERT_NE(db_, nullptr);
    auto lease = db_->Acquire();
    ASSERT_TRUE(lease.ok());
    struct Row {
      const char* id;
      const char* status;
      const char* tags;
    };
    for (const Row& r : {Row{"dev-a", "active", R"(["cam", "eu"])"}, Row{"dev-b", "revoked", "[]"},
                         Row{"dev-c", "active", "[]"}, Row{"dev-d", "active", R"(["cam"])"}}) {
      auto inserted = (*lease)->Execute(
          "test_device",
          "INSERT INTO devices (id, status, tags, installed_variant, enrolled_at) "
          "VALUES (?, ?, ?, ?, ?)",
          std::string(r.id), std::string(r.status), std::string(r.tags),
          std::string("var-") + r.id, std::int64_t{1'700'000'000'000});
      ASSERT_TRUE(inserted.ok()) << inserted.error().ToString();
    }
  }

  static std::vector<std::string> Ids(std::vector<DeviceFacts> facts) {
    std::vector<std::string> ids;
    for (const auto& f : facts) ids.push_back(f.id);
    std::sort(ids.begin(), ids.end());
    return ids;
  }

  std::shared_ptr<store::Database> db_;
};

TEST_P(DeviceDirectoryTest, ActiveAmongReadsOnlyTheListedDevicesThatAreNotRevoked) {
  auto lease = db_->Acquire();
  ASSERT_TRUE(lease.ok());
  auto among = DeviceDirectory::ActiveAmongIn(**lease, R"(["dev-a", "dev-b", "dev-d", "dev-zz"])");
  ASSERT_TRUE(among.ok()) << among.error().ToString();
  EXPECT_EQ(Ids(*among), (std::vector<std::string>{"dev-a", "dev-d"}));
  for (const auto& f : *among) {
    EXPECT_EQ(f.installed_variant, "var-" + f.id);
    if (f.id == "dev-a") {
      EXPECT_EQ(f.tags, (std::vector<std::string>{"cam", "eu"}));
    }
  }
  auto none = DeviceDirectory::ActiveAmongIn(**lease, "[]");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
  // The whole fleet reads the same facts for the same devices.
  auto all = DeviceDirectory::ActiveIn(**lease);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(Ids(*all), (std::vector<std::string>{"dev-a", "dev-c", "dev-d"}));
}

EDGEPRUNE_STORE_BACKENDS(DeviceDirectoryTest);

}  // namespace
}  // namespace edgeprune::fleet
