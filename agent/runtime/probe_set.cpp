#include "agent/runtime/probe_set.hpp"

#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <memory>

namespace edgeprune::agent {
namespace {

Error Invalid(const std::string& path, const std::string& why) {
  return MakeError(ErrorKind::kInvalidArgument, "probe_invalid", path + ": " + why);
}

// Reads a whole file through zlib (which also reads uncompressed files), up to max_bytes.
Result<std::string> ReadMaybeGzip(const std::string& path, std::size_t max_bytes) {
  std::unique_ptr<gzFile_s, int (*)(gzFile)> f(gzopen(path.c_str(), "rb"), gzclose);
  if (!f) {
    return MakeError(ErrorKind::kIo, "probe_unreadable",
                     path + ": " + std::strerror(errno ? errno : ENOENT));
  }
  std::string out;
  char buf[1 << 16];
  while (out.size() < max_bytes) {
    int n = gzread(f.get(), buf, sizeof(buf));
    if (n < 0) {
      int err = 0;
      return MakeError(ErrorKind::kIo, "probe_unreadable", path + ": " + gzerror(f.get(), &err));
    }
    if (n == 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

std::uint32_t BigEndian32(const std::string& s, std::size_t at) {
  auto b = [&](std::size_t i) { return static_cast<std::uint32_t>(static_cast<unsigned char>(s[at + i])); };
  return (b(0) << 24) | (b(1) << 16) | (b(2) << 8) | b(3);
}

}  // namespace

std::size_t ProbeSet::sample_elements() const {
  std::size_t n = 1;
  for (auto d : sample_shape) n *= static_cast<std::size_t>(d);
  return n;
}

Result<ProbeSet> LoadIdxProbeSet(const std::string& images_path, const std::string& labels_path,
                                 std::size_t limit) {
  constexpr std::size_t kMaxFile = 256 * 1024 * 1024;
  EP_ASSIGN_OR_RETURN(auto images, ReadMaybeGzip(images_path, kMaxFile));
  EP_ASSIGN_OR_RETURN(auto labels, ReadMaybeGzip(labels_path, kMaxFile));
  if (images.size() < 16 || BigEndian32(images, 0) != 0x00000803) {
    return Invalid(images_path, "not an IDX3 uint8 image file");
  }
  if (labels.size() < 8 || BigEndian32(labels, 0) != 0x00000801) {
    return Invalid(labels_path, "not an IDX1 uint8 label file");
  }
  const std::size_t n = BigEndian32(images, 4);
  const std::size_t rows = BigEndian32(images, 8);
  const std::size_t cols = BigEndian32(images, 12);
  if (BigEndian32(labels, 4) != n) {
    return Invalid(labels_path, "holds " + std::to_string(BigEndian32(labels, 4)) +
                                    " labels for " + std::to_string(n) + " images");
  }
  if (rows == 0 || cols == 0 || rows > 4096 || cols > 4096) {
    return Invalid(images_path, "has implausible image dimensions");
  }
  const std::size_t take = std::min(n, limit);
  if (images.size() < 16 + take * rows * cols) return Invalid(images_path, "is truncated");
  if (labels.size() < 8 + take) return Invalid(labels_path, "is truncated");
  if (take == 0) return Invalid(images_path, "holds no samples");

  ProbeSet set;
  set.sample_shape = {1, 1, static_cast<std::int64_t>(rows), static_cast<std::int64_t>(cols)};
  set.data.resize(take * rows * cols);
  for (std::size_t i = 0; i < set.data.size(); ++i) {
    set.data[i] = static_cast<float>(static_cast<unsigned char>(images[16 + i])) / 255.0f;
  }
  set.labels.resize(take);
  for (std::size_t i = 0; i < take; ++i) {
    set.labels[i] = static_cast<unsigned char>(labels[8 + i]);
  }
  return set;
}

}  // namespace edgeprune::agent
