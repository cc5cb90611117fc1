#include <gtest/gtest.h>

#include "agent/profile/hardware.hpp"
#include "support/temp_dir.hpp"

namespace edgeprune::agent {
namespace {

constexpr const char* kX86 = R"(processor	: 0
vendor_id	: GenuineIntel
model name	: Intel(R) Xeon(R) CPU @ 2.20GHz
flags		: fpu vme sse sse2 ssse3 fma sse4_1 sse4_2 avx avx2 avx512f pni aes

processor	: 1
model name	: Intel(R) Xeon(R) CPU @ 2.20GHz
flags		: fpu vme sse sse2 ssse3 fma sse4_1 sse4_2 avx avx2 avx512f pni aes
)";

constexpr const char* kArm = R"(processor	: 0
BogoMIPS	: 108.00
Features	: fp asimd evtstrm aes pmull sha1 sha2 crc32 cpuid
CPU implementer	: 0x41
CPU part	: 0xd08

processor	: 1
Features	: fp asimd evtstrm aes pmull sha1 sha2 crc32 cpuid
CPU part	: 0xd08

processor	: 2
processor	: 3
Model		: Raspberry Pi 4 Model B Rev 1.4
)";

TEST(CpuInfo, ParsesX86ModelCoresAndSimdSubset) {
  auto info = ParseCpuInfo(kX86);
  ASSERT_TRUE(info.ok()) << info.error().ToString();
  EXPECT_EQ(info->model, "Intel(R) Xeon(R) CPU @ 2.20GHz");
  EXPECT_EQ(info->logical_cpus, 2);
  const std::vector<std::string> want = {"avx", "avx2", "avx512f", "fma", "pni", "sse",
                                         "sse2", "sse4_1", "sse4_2", "ssse3"};
  EXPECT_EQ(info->simd_flags, want);
}

TEST(CpuInfo, ParsesArmBoardModelAndNeonFeatures) {
  auto info = ParseCpuInfo(kArm);
  ASSERT_TRUE(info.ok()) << info.error().ToString();
  EXPECT_EQ(info->logical_cpus, 4);
  EXPECT_EQ(info->model, "Raspberry Pi 4 Model B Rev 1.4");
  EXPECT_EQ(info->simd_flags, std::vector<std::string>{"asimd"});
}

TEST(CpuInfo, RejectsTextWithoutProcessors) {
  auto info = ParseCpuInfo("garbage\nmore: garbage\n");
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(info.error().code, "invalid_cpuinfo");
}

TEST(MemInfo, ReadsTotalAndAvailableInBytes) {
  auto mem = ParseMemInfo("MemTotal:        8000 kB\nMemFree:  1000 kB\nMemAvailable:    6000 kB\n");
  ASSERT_TRUE(mem.ok());
  EXPECT_EQ(mem->total_bytes, 8000 * 1024);
  EXPECT_EQ(mem->available_bytes, 6000 * 1024);
}

TEST(MemInfo, FallsBackToFreePlusCachedOnOldKernels) {
  auto mem = ParseMemInfo("MemTotal: 8000 kB\nMemFree: 1000 kB\nCached: 500 kB\n");
  ASSERT_TRUE(mem.ok());
  EXPECT_EQ(mem->available_bytes, 1500 * 1024);
}

TEST(MemInfo, RejectsMissingTotal) {
  auto mem = ParseMemInfo("MemFree: 1000 kB\n");
  ASSERT_FALSE(mem.ok());
  EXPECT_EQ(mem.error().code, "invalid_meminfo");
}

TEST(HostFacts, ReadsTheRunningMachine) {
  testing::TempDir dir;
  auto facts = ReadHostFacts(dir.path());
  ASSERT_TRUE(facts.ok()) << facts.error().ToString();
  EXPECT_FALSE(facts->arch.empty());
  EXPECT_EQ(facts->os.rfind("Linux ", 0), 0u);
  EXPECT_GE(facts->cpu.logical_cpus, 1);
  EXPECT_GT(facts->mem.total_bytes, 0);
  EXPECT_LE(facts->mem.available_bytes, facts->mem.total_bytes);
  EXPECT_GT(facts->disk_free_bytes, 0);
}

TEST(HostFacts, DiskFreeNamesAMissingPath) {
  testing::TempDir dir;
  auto free = DiskFreeBytes(dir.File("absent/sub"));
  ASSERT_FALSE(free.ok());
  EXPECT_NE(free.error().message.find("absent/sub"), std::string::npos);
}

}  // namespace
}  // namespace edgeprune::agent
