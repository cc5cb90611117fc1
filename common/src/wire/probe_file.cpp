#include "edgeprune/common/wire/probe_file.hpp"

#include <bit>
#include <cmath>
#include <cstring>

#include "edgeprune/common/wire/manifest.hpp"

namespace edgeprune::wire {
namespace {

static_assert(std::endian::native == std::endian::little,
              "the probe file is little-endian and copied as is");
static_assert(sizeof(float) == 4);

constexpr char kMagic[8] = {'E', 'P', 'P', 'R', 'O', 'B', 'E', '1'};

Error Invalid(const std::string& why) {
  return MakeError(ErrorKind::kInvalidArgument, "probe_invalid", "probe set: " + why);
}

template <typename T>
void Put(std::string& out, T v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof v);
}

// Reads a T at `at` when enough bytes remain; advances `at`.
template <typename T>
bool Take(std::string_view in, std::size_t& at, T* v) {
  if (in.size() - at < sizeof(T)) return false;
  std::memcpy(v, in.data() + at, sizeof(T));
  at += sizeof(T);
  return true;
}

}  // namespace

std::string SerializeProbeFile(const ProbeFile& p) {
  std::string out(kMagic, sizeof kMagic);
  Put(out, static_cast<std::uint32_t>(p.sample_shape.size()));
  for (auto d : p.sample_shape) Put(out, d);
  Put(out, static_cast<std::uint64_t>(p.labels.size()));
  out.append(reinterpret_cast<const char*>(p.labels.data()),
             p.labels.size() * sizeof(std::int64_t));
  out.append(reinterpret_cast<const char*>(p.data.data()), p.data.size() * sizeof(float));
  return out;
}

Result<ProbeFile> ParseProbeFile(std::string_view in) {
  if (in.size() > static_cast<std::size_t>(kMaxProbeBytes)) {
    return Invalid(std::to_string(in.size()) + " bytes exceed the limit of " +
                   std::to_string(kMaxProbeBytes));
  }
  if (in.size() < sizeof kMagic || std::memcmp(in.data(), kMagic, sizeof kMagic) != 0) {
    return Invalid("not a probe file (bad magic)");
  }
  std::size_t at = sizeof kMagic;
  std::uint32_t rank = 0;
  if (!Take(in, at, &rank)) return Invalid("truncated header");
  if (rank < 1 || rank >= kMaxInputRank) {
    return Invalid("sample rank " + std::to_string(rank) + " is not in [1, " +
                   std::to_string(kMaxInputRank - 1) + "]");
  }
  ProbeFile p;
  for (std::uint32_t i = 0; i < rank; ++i) {
    std::int64_t d = 0;
    if (!Take(in, at, &d)) return Invalid("truncated header");
    if (d < 1) return Invalid("sample shape holds a non-positive dimension");
    p.sample_shape.push_back(d);
  }
  std::vector<std::int64_t> batch1{1};
  batch1.insert(batch1.end(), p.sample_shape.begin(), p.sample_shape.end());
  const std::int64_t elements = ElementCount(batch1);
  if (elements > kMaxInputElements) return Invalid("samples are too large");
  std::uint64_t n = 0;
  if (!Take(in, at, &n)) return Invalid("truncated header");
  if (n < 1 || n > static_cast<std::uint64_t>(kMaxProbeSamples)) {
    return Invalid("holds " + std::to_string(n) + " samples, not 1 to " +
                   std::to_string(kMaxProbeSamples));
  }
  // Both factors are bounded (10^4 samples, 2^26 elements), so the product cannot overflow.
  const std::uint64_t want =
      at + n * sizeof(std::int64_t) + n * static_cast<std::uint64_t>(elements) * sizeof(float);
  if (in.size() != want) {
    return Invalid("is " + std::to_string(in.size()) + " bytes, its header says " +
                   std::to_string(want));
  }
  p.labels.resize(n);
  std::memcpy(p.labels.data(), in.data() + at, n * sizeof(std::int64_t));
  at += n * sizeof(std::int64_t);
  p.data.resize(n * static_cast<std::uint64_t>(elements));
  std::memcpy(p.data.data(), in.data() + at, p.data.size() * sizeof(float));
  for (auto label : p.labels) {
    if (label < 0) return Invalid("holds a negative label");
  }
  for (float v : p.data) {
    if (!std::isfinite(v)) return Invalid("holds a NaN or infinite value");
  }
  return p;
}

}  // namespace edgeprune::wire
