#include "server/datasets/tar_archive.hpp"

#include <algorithm>
#include <cstring>

#include "server/datasets/dataset_error.hpp"

namespace edgeprune::datasets {
namespace {

constexpr std::size_t kBlock = 512;
constexpr std::uint64_t kMaxNameRecord = 64 * 1024;

Result<std::uint64_t> Octal(const char* p, std::size_t n, const char* what) {
  if (static_cast<unsigned char>(p[0]) & 0x80) {  // GNU base-256
    std::uint64_t v = 0;
    for (std::size_t i = 1; i < n; ++i) {
      if (v >> 55) return Invalid(std::string("tar header: ") + what + " is too large");
      v = (v << 8) | static_cast<unsigned char>(p[i]);
    }
    return v;
  }
  std::uint64_t v = 0;
  std::size_t i = 0;
  while (i < n && p[i] == ' ') ++i;
  bool any = false;
  for (; i < n && p[i] >= '0' && p[i] <= '7'; ++i) {
    if (v >> 60) return Invalid(std::string("tar header: ") + what + " is too large");
    v = v * 8 + static_cast<std::uint64_t>(p[i] - '0');
    any = true;
  }
  for (; i < n; ++i) {
    if (p[i] != ' ' && p[i] != '\0') return Invalid(std::string("tar header: bad ") + what);
  }
  if (!any) return Invalid(std::string("tar header: bad ") + what);
  return v;
}

std::string Field(const char* p, std::size_t n) { return std::string(p, strnlen(p, n)); }

bool ChecksumOk(const char* h) {
  std::uint64_t sum = 0;
  for (std::size_t i = 0; i < kBlock; ++i) {
    sum += (i >= 148 && i < 156) ? ' ' : static_cast<unsigned char>(h[i]);
  }
  auto stored = Octal(h + 148, 8, "checksum");
  return stored.ok() && *stored == sum;
}

// "path" from a pax record set: lines "<len> key=value\n".
std::string PaxPath(const std::string& records) {
  std::size_t pos = 0;
  std::string path;
  while (pos < records.size()) {
    const std::size_t space = records.find(' ', pos);
    if (space == std::string::npos) break;
    std::size_t len = 0;
    for (std::size_t i = pos; i < space; ++i) {
      if (records[i] < '0' || records[i] > '9' || len > records.size()) return path;
      len = len * 10 + static_cast<std::size_t>(records[i] - '0');
    }
    if (len == 0 || pos + len > records.size()) break;
    const std::string rec = records.substr(space + 1, pos + len - space - 2);
    if (rec.rfind("path=", 0) == 0) path = rec.substr(5);
    pos += len;
  }
  return path;
}

}  // namespace

bool LooksLikeTar(std::string_view head) {
  return head.size() >= kBlock && head.substr(257, 5) == "ustar" && ChecksumOk(head.data());
}

Status TarReader::FinishEntry() {
  EP_RETURN_IF_ERROR(Skip(in_, remaining_ + padding_, "the tar archive"));
  remaining_ = 0;
  padding_ = 0;
  return Ok();
}

Result<std::optional<TarEntry>> TarReader::Next() {
  EP_RETURN_IF_ERROR(FinishEntry());
  std::string long_name;
  while (!ended_) {
    if (++headers_ > kMaxHeaders) return Invalid("the tar archive has too many entries");
    char h[kBlock];
    EP_ASSIGN_OR_RETURN(std::size_t got, in_.Read(h, kBlock));
    if (got == 0) break;  // no end-of-archive blocks: accepted
    if (got < kBlock) EP_RETURN_IF_ERROR(ReadExact(in_, h + got, kBlock - got, "the tar archive"));
    if (std::all_of(h, h + kBlock, [](char c) { return c == 0; })) {
      ended_ = true;
      break;
    }
    if (!ChecksumOk(h)) return Invalid("a tar header fails its checksum");
    EP_ASSIGN_OR_RETURN(std::uint64_t size, Octal(h + 124, 12, "size"));
    const char type = h[156];
    const std::uint64_t pad = (kBlock - size % kBlock) % kBlock;
    if (type == 'L' || type == 'x') {  // the next entry's name
      if (size > kMaxNameRecord) return Invalid("a tar name record is too long");
      std::string rec(size, '\0');
      EP_RETURN_IF_ERROR(ReadExact(in_, rec.data(), size, "the tar archive"));
      EP_RETURN_IF_ERROR(Skip(in_, pad, "the tar archive"));
      long_name = type == 'L' ? Field(rec.data(), rec.size()) : PaxPath(rec);
      continue;
    }
    if (type != '0' && type != '\0' && type != '7') {  // not a regular file: skip it
      EP_RETURN_IF_ERROR(Skip(in_, size + pad, "the tar archive"));
      long_name.clear();
      continue;
    }
    TarEntry entry;
    if (!long_name.empty()) {
      entry.name = long_name;
    } else {
      const std::string prefix = std::memcmp(h + 257, "ustar", 5) == 0 ? Field(h + 345, 155) : "";
      entry.name = prefix.empty() ? Field(h, 100) : prefix + "/" + Field(h, 100);
    }
    entry.size = size;
    remaining_ = size;
    padding_ = pad;
    return std::optional<TarEntry>(std::move(entry));
  }
  ended_ = true;
  return std::optional<TarEntry>();
}

Result<std::size_t> TarReader::EntryStream::Read(char* out, std::size_t n) {
  const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(n, r_.remaining_));
  if (want == 0) return std::size_t{0};
  EP_ASSIGN_OR_RETURN(std::size_t got, r_.in_.Read(out, want));
  if (got == 0) return Invalid("the tar archive is truncated");
  r_.remaining_ -= got;
  return got;
}

}  // namespace edgeprune::datasets
