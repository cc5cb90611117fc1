#include "server/models/idx.hpp"

#include <zlib.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

namespace edgeprune::models {
namespace {

constexpr std::uint8_t kUnsignedByte = 0x08;
constexpr int kMaxRank = 4;

Error IdxError(const std::string& path, const std::string& what) {
  return MakeError(ErrorKind::kInvalidArgument, "invalid_idx", "IDX file " + path + " " + what);
}

// Reads the whole file, inflating gzip when the content is gzip (zlib passes raw data through).
Result<std::vector<std::uint8_t>> ReadAll(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return MakeError(ErrorKind::kNotFound, "not_found",
                     "IDX file " + path + " does not exist or is not a regular file");
  }
  gzFile f = gzopen(path.c_str(), "rb");
  if (f == nullptr) {
    return MakeError(ErrorKind::kIo, "io_error",
                     "cannot open IDX file " + path + ": " + std::strerror(errno));
  }
  std::vector<std::uint8_t> out;
  std::vector<std::uint8_t> chunk(1 << 20);
  for (;;) {
    int n = gzread(f, chunk.data(), static_cast<unsigned>(chunk.size()));
    if (n < 0) {
      int code = 0;
      std::string msg = gzerror(f, &code);
      gzclose(f);
      return IdxError(path, "is corrupt or truncated (gzip: " + msg + ")");
    }
    if (n == 0) break;
    out.insert(out.end(), chunk.begin(), chunk.begin() + n);
  }
  // A gzip stream cut short reads as a clean EOF on some zlib versions; gzclose reports it.
  int rc = gzclose(f);
  if (rc == Z_BUF_ERROR || rc == Z_DATA_ERROR) {
    return IdxError(path, "is truncated (the gzip stream ends early)");
  }
  return out;
}

}  // namespace

Result<IdxArray> ReadIdx(const std::string& path) {
  EP_ASSIGN_OR_RETURN(std::vector<std::uint8_t> bytes, ReadAll(path));
  if (bytes.size() < 4) return IdxError(path, "is too short to hold the 4-byte IDX magic");
  if (bytes[0] != 0 || bytes[1] != 0) {
    char buf[64];
    std::snprintf(buf, sizeof(buf), "0x%02x%02x%02x%02x", bytes[0], bytes[1], bytes[2], bytes[3]);
    return IdxError(path, std::string("has wrong magic ") + buf +
                              " (IDX files start with two zero bytes)");
  }
  if (bytes[2] != kUnsignedByte) {
    return IdxError(path, "has element type 0x" +
                              std::to_string(static_cast<int>(bytes[2])) +
                              "; only unsigned bytes (0x08) are supported");
  }
  int rank = bytes[3];
  if (rank < 1 || rank > kMaxRank) {
    return IdxError(path, "has rank " + std::to_string(rank) + "; expected 1 to " +
                              std::to_string(kMaxRank));
  }
  std::size_t header = 4 + 4 * static_cast<std::size_t>(rank);
  if (bytes.size() < header) return IdxError(path, "is truncated inside its header");
  IdxArray array;
  std::uint64_t count = 1;
  for (int i = 0; i < rank; ++i) {
    const std::uint8_t* p = bytes.data() + 4 + 4 * i;
    std::uint64_t d = (std::uint64_t{p[0]} << 24) | (std::uint64_t{p[1]} << 16) |
                      (std::uint64_t{p[2]} << 8) | std::uint64_t{p[3]};
    if (d == 0) return IdxError(path, "has a zero-sized dimension " + std::to_string(i));
    count *= d;
    if (count > (std::uint64_t{1} << 34)) return IdxError(path, "declares an absurd size");
    array.dims.push_back(static_cast<std::int64_t>(d));
  }
  std::size_t have = bytes.size() - header;
  if (have < count) {
    return IdxError(path, "is truncated: header declares " + std::to_string(count) +
                              " elements but only " + std::to_string(have) + " follow");
  }
  if (have > count) {
    return IdxError(path, "has " + std::to_string(have - count) +
                              " trailing bytes after the declared elements");
  }
  array.data.assign(bytes.begin() + static_cast<std::ptrdiff_t>(header), bytes.end());
  return array;
}

Status WriteIdx(const std::string& path, const IdxArray& array) {
  if (array.dims.empty() || array.dims.size() > kMaxRank) {
    return MakeError(ErrorKind::kInvalidArgument, "invalid_idx", "IDX rank must be 1 to 4");
  }
  std::uint64_t count = 1;
  for (auto d : array.dims) count *= static_cast<std::uint64_t>(d);
  if (count != array.data.size()) {
    return MakeError(ErrorKind::kInvalidArgument, "invalid_idx",
                     "IDX data size does not match its dimensions");
  }
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) {
    return MakeError(ErrorKind::kIo, "io_error", "cannot write IDX file " + path);
  }
  std::uint8_t magic[4] = {0, 0, kUnsignedByte, static_cast<std::uint8_t>(array.dims.size())};
  out.write(reinterpret_cast<const char*>(magic), 4);
  for (auto d : array.dims) {
    std::uint32_t v = static_cast<std::uint32_t>(d);
    std::uint8_t be[4] = {static_cast<std::uint8_t>(v >> 24), static_cast<std::uint8_t>(v >> 16),
                          static_cast<std::uint8_t>(v >> 8), static_cast<std::uint8_t>(v)};
    out.write(reinterpret_cast<const char*>(be), 4);
  }
  out.write(reinterpret_cast<const char*>(array.data.data()),
            static_cast<std::streamsize>(array.data.size()));
  if (!out.flush()) return MakeError(ErrorKind::kIo, "io_error", "cannot write IDX file " + path);
  return Ok();
}

}  // namespace edgeprune::models
