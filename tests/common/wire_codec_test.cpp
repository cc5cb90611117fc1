#include <gtest/gtest.h>

#include "edgeprune/common/wire/budget.hpp"
#include "edgeprune/common/wire/enroll.hpp"
#include "edgeprune/common/wire/heartbeat.hpp"
#include "edgeprune/common/wire/profile.hpp"

namespace edgeprune::wire {
namespace {

DeviceProfile Sample() {
  DeviceProfile p;
  p.arch = "x86_64";
  p.cpu_model = "Test CPU";
  p.cores = 4;
  p.simd_flags = {"avx2", "sse4_2"};
  p.ram_total_bytes = 8LL << 30;
  p.ram_available_bytes = 6LL << 30;
  p.disk_free_bytes = 100LL << 30;
  p.os = "Linux 6.1";
  p.torch_version = "1.13.1";
  p.agent_version = "0.1.0";
  p.bench = {50.0, 20.0, 0.02, 10.0, 2};
  p.caps.latency_slo_ms = 25.0;
  p.measured_at = 1700000000;
  return p;
}

std::string Body(const boost::json::object& o) { return boost::json::serialize(o); }

TEST(ProfileCodec, RoundTrips) {
  auto back = ParseProfile(Body(ToJson(Sample())));
  ASSERT_TRUE(back.ok()) << back.error().ToString();
  EXPECT_EQ(back->cpu_model, "Test CPU");
  EXPECT_EQ(back->cores, 4);
  EXPECT_EQ(back->simd_flags.size(), 2u);
  EXPECT_EQ(back->ram_available_bytes, 6LL << 30);
  EXPECT_DOUBLE_EQ(back->bench.conv_gmacs_per_s, 20.0);
  EXPECT_EQ(back->caps.latency_slo_ms, 25.0);
  EXPECT_FALSE(back->caps.memory_reserve_bytes);
}

struct BadCase {
  const char* name;
  const char* field;
  boost::json::value value;  // null value = remove the field
  const char* expect_in_message;
};

class ProfileRejects : public ::testing::TestWithParam<BadCase> {};

TEST_P(ProfileRejects, NamesTheField) {
  const BadCase& c = GetParam();
  auto o = ToJson(Sample());
  if (c.value.is_null()) o.erase(c.field);
  else o[c.field] = c.value;
  auto p = ParseProfile(Body(o));
  ASSERT_FALSE(p.ok()) << c.name;
  EXPECT_EQ(p.error().kind, ErrorKind::kInvalidArgument);
  EXPECT_NE(p.error().message.find(c.field), std::string::npos) << p.error().message;
  EXPECT_NE(p.error().message.find(c.expect_in_message), std::string::npos) << p.error().message;
}

INSTANTIATE_TEST_SUITE_P(
    AbsurdValues, ProfileRejects,
    ::testing::Values(BadCase{"negative_ram", "ram_total_bytes", -1, "must be an integer in"},
                      BadCase{"huge_cores", "cores", 1e30, "[1, 4096], got 1"},
                      BadCase{"zero_cores", "cores", 0, "[1, 4096]"},
                      BadCase{"missing_cores", "cores", nullptr, "is missing"},
                      BadCase{"string_ram", "ram_total_bytes", "8GB", "got \"8GB\""},
                      BadCase{"numeric_string_cores", "cores", "4", "got \"4\""},
                      BadCase{"fraction_cores", "cores", 2.5, "got 2.5"},
                      BadCase{"missing_arch", "arch", nullptr, "is missing"},
                      BadCase{"empty_arch", "arch", "", "must not be empty"},
                      BadCase{"number_os", "os", 12, "must be a string"},
                      BadCase{"simd_not_array", "simd_flags", "avx2", "array"},
                      BadCase{"negative_disk", "disk_free_bytes", -5, "got -5"},
                      BadCase{"missing_bench", "microbench", nullptr, "is missing"}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(ProfileCodec, RejectsAvailableAboveTotal) {
  auto o = ToJson(Sample());
  o["ram_available_bytes"] = 9LL << 30;
  auto p = ParseProfile(Body(o));
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.error().message.find("ram_available_bytes"), std::string::npos);
}

TEST(ProfileCodec, NamesNestedMicrobenchAndCapsFields) {
  auto o = ToJson(Sample());
  o["microbench"].as_object()["matmul_gflops"] = -3.0;
  auto p = ParseProfile(Body(o));
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.error().message.find("microbench: field 'matmul_gflops'"), std::string::npos)
      << p.error().message;

  o = ToJson(Sample());
  o["caps"] = {{"latency_slo", 5}};
  p = ParseProfile(Body(o));
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error().code, "unknown_field");
  EXPECT_NE(p.error().message.find("latency_slo"), std::string::npos);
}

TEST(ProfileCodec, RejectsOversizedBodyBeforeParsing) {
  std::string big(10 * 1024 * 1024, ' ');
  auto p = ParseProfile(big);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error().kind, ErrorKind::kPayloadTooLarge);
}

TEST(ProfileCodec, RejectsNonObjectsAndBrokenJson) {
  EXPECT_EQ(ParseProfile("[1,2]").error().code, "invalid_json");
  EXPECT_EQ(ParseProfile("{\"arch\": ").error().code, "invalid_json");
}

TEST(CapsCodec, TighterTakesTheMinimumPerKey) {
  DeviceCaps a{1000, 50.0, std::nullopt};
  DeviceCaps b{std::nullopt, 20.0, 300};
  auto t = DeviceCaps::Tighter(a, b);
  EXPECT_EQ(t.memory_reserve_bytes, 1000);
  EXPECT_EQ(t.latency_slo_ms, 20.0);
  EXPECT_EQ(t.max_model_bytes, 300);
}

TEST(HeartbeatCodec, RoundTripsAndCarriesNullDesiredVariant) {
  Heartbeat hb{"poll", std::nullopt, 12, 30 << 20};
  auto back = HeartbeatFromJson(ToJson(hb));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->agent_state, "poll");
  EXPECT_FALSE(back->installed_variant_id);

  HeartbeatResponse r;
  r.server_time = 1700000000;
  auto json = ToJson(r);
  EXPECT_TRUE(json["desired_state"].as_object()["variant_id"].is_null());
  auto rb = HeartbeatResponseFromJson(json);
  ASSERT_TRUE(rb.ok());
  EXPECT_EQ(rb->heartbeat_interval_s, 10);

  auto bad = ToJson(hb);
  bad["uptime_s"] = -1;
  EXPECT_FALSE(HeartbeatFromJson(bad).ok());
}

TEST(EnrollCodec, RequiresTokenAndBoundsTheCsr) {
  EnrollRequest r{"tok", "csr", "gw-1"};
  ASSERT_TRUE(EnrollRequestFromJson(ToJson(r)).ok());
  auto o = ToJson(r);
  o.erase("token");
  EXPECT_NE(EnrollRequestFromJson(o).error().message.find("token"), std::string::npos);
  o = ToJson(r);
  o["csr_pem"] = std::string(kMaxCsrBytes + 1, 'x');
  EXPECT_NE(EnrollRequestFromJson(o).error().message.find("csr_pem"), std::string::npos);
}

TEST(BudgetCodec, OmitsAbsentBoundsAndRoundTrips) {
  Budget b;
  b.max_macs = 1000;
  b.latency_model = LatencyModel{2.0, 0.5};
  auto o = ToJson(b);
  EXPECT_FALSE(o.contains("max_param_bytes"));
  auto back = BudgetFromJson(o);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->max_macs, 1000);
  EXPECT_DOUBLE_EQ(back->latency_model->overhead_ms, 0.5);
}

}  // namespace
}  // namespace edgeprune::wire
