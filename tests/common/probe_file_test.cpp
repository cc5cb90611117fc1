// The probe set's wire format and the manifest field naming it: round trips, and every hostile
// file or field refused with its code.
#include "edgeprune/common/wire/probe_file.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "edgeprune/common/crypto.hpp"
#include "edgeprune/common/wire/manifest.hpp"

namespace edgeprune::wire {
namespace {

ProbeFile Signals() {
  ProbeFile p;
  p.sample_shape = {3, 4};  // [C, L]
  for (int i = 0; i < 2; ++i) {
    p.labels.push_back(i);
    for (int e = 0; e < 12; ++e) p.data.push_back(static_cast<float>(i * 100 + e) / 7.0f);
  }
  return p;
}

std::string CodeOf(std::string_view bytes) {
  auto r = ParseProbeFile(bytes);
  return r.ok() ? "ok" : r.error().code + ": " + r.error().message;
}

// Overwrites sizeof(T) bytes at `at`.
template <typename T>
std::string Patched(std::string bytes, std::size_t at, T v) {
  std::memcpy(bytes.data() + at, &v, sizeof v);
  return bytes;
}

TEST(ProbeFileTest, RoundTripKeepsShapeLabelsAndValuesExactly) {
  const auto p = Signals();
  const auto bytes = SerializeProbeFile(p);
  // magic + rank + 2 dims + count + 2 labels + 24 floats
  EXPECT_EQ(bytes.size(), 8u + 4 + 16 + 8 + 16 + 96);
  auto back = ParseProbeFile(bytes);
  ASSERT_TRUE(back.ok()) << back.error().ToString();
  EXPECT_EQ(back->sample_shape, p.sample_shape);
  EXPECT_EQ(back->labels, p.labels);
  EXPECT_EQ(back->data, p.data);
}

TEST(ProbeFileTest, HostileFilesAreRefusedNamingTheProblem) {
  const auto good = SerializeProbeFile(Signals());
  auto refused = [](const std::string& bytes, const char* why) {
    const auto code = CodeOf(bytes);
    EXPECT_EQ(code.rfind("probe_invalid: ", 0), 0u) << code;
    EXPECT_NE(code.find(why), std::string::npos) << code;
  };
  refused("", "bad magic");
  refused("EPPROBE2" + good.substr(8), "bad magic");
  refused(good.substr(0, 10), "truncated header");
  refused(Patched(good, 8, std::uint32_t{0}), "sample rank 0");
  refused(Patched(good, 8, std::uint32_t{6}), "sample rank 6");
  refused(Patched(good, 12, std::int64_t{0}), "non-positive dimension");
  refused(Patched(good, 12, std::int64_t{-3}), "non-positive dimension");
  refused(Patched(good, 12, std::int64_t{1} << 40), "too large");
  refused(Patched(good, 28, std::uint64_t{0}), "holds 0 samples");
  refused(Patched(good, 28, std::uint64_t{kMaxProbeSamples + 1}), "samples, not 1 to");
  refused(Patched(good, 28, std::uint64_t{3}), "its header says");  // count larger than the data
  refused(good.substr(0, good.size() - 1), "its header says");
  refused(good + "x", "its header says");
  refused(Patched(good, 36, std::int64_t{-1}), "negative label");
  refused(Patched(good, 52, std::numeric_limits<float>::quiet_NaN()), "NaN or infinite");
  refused(Patched(good, good.size() - 4, std::numeric_limits<float>::infinity()),
          "NaN or infinite");
  // Larger than any probe set may be: refused from its size, before anything is read.
  refused(std::string(static_cast<std::size_t>(kMaxProbeBytes) + 1, '\0'), "exceed the limit");
}

VariantManifest WithProbe() {
  VariantManifest m;
  m.model_id = "m";
  m.variant_id = "v";
  m.version = 1;
  m.payload = {crypto::Sha256Hex("payload"), 7};
  m.probe = ManifestProbe{crypto::Sha256Hex("probe"), 5, 2};
  m.input_shape = {1, 3, 4};
  m.num_classes = 2;
  m.key_id = "ab12";
  return m;
}

TEST(ProbeFileTest, ManifestNamesTheProbeSetAndStaysCompatibleWithoutOne) {
  auto back = ParseManifest(SerializeManifest(WithProbe()));
  ASSERT_TRUE(back.ok()) << back.error().ToString();
  ASSERT_TRUE(back->probe.has_value());
  EXPECT_EQ(back->probe->sha256, crypto::Sha256Hex("probe"));
  EXPECT_EQ(back->probe->size_bytes, 5);
  EXPECT_EQ(back->probe->samples, 2);

  auto without = WithProbe();
  without.probe.reset();
  const auto bytes = SerializeManifest(without);
  EXPECT_EQ(bytes.find("probe"), std::string::npos);  // older agents read it unchanged
  auto parsed = ParseManifest(bytes);
  ASSERT_TRUE(parsed.ok()) << parsed.error().ToString();
  EXPECT_FALSE(parsed->probe.has_value());
}

TEST(ProbeFileTest, ManifestProbeFieldsAreCheckedNamingTheField) {
  auto with = [](auto edit) {
    auto o = ToJson(WithProbe());
    edit(o["probe"].as_object());
    auto r = ParseManifest(boost::json::serialize(o));
    return r.ok() ? std::string("ok") : r.error().message;
  };
  EXPECT_NE(with([](auto& p) { p["sha256"] = "ABC"; }).find("probe.sha256"), std::string::npos);
  EXPECT_NE(with([](auto& p) { p["size_bytes"] = 0; }).find("size_bytes"), std::string::npos);
  EXPECT_NE(with([](auto& p) { p["size_bytes"] = kMaxProbeBytes + 1; }).find("size_bytes"),
            std::string::npos);
  EXPECT_NE(with([](auto& p) { p["samples"] = kMaxProbeSamples + 1; }).find("samples"),
            std::string::npos);
  EXPECT_NE(with([](auto& p) { p["extra"] = 1; }).find("extra"), std::string::npos);
  EXPECT_NE(with([](auto& p) { p.erase("sha256"); }).find("sha256"), std::string::npos);
}

}  // namespace
}  // namespace edgeprune::wire
