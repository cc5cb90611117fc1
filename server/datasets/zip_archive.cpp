#include "server/datasets/zip_archive.hpp"

#include <zlib.h>

#include <algorithm>
#include <set>

#include "server/datasets/dataset_error.hpp"

namespace edgeprune::datasets {
namespace {

constexpr std::uint32_t kEocdSig = 0x06054b50;
constexpr std::uint32_t kZip64LocatorSig = 0x07064b50;
constexpr std::uint32_t kZip64EocdSig = 0x06064b50;
constexpr std::uint32_t kCentralSig = 0x02014b50;
constexpr std::uint32_t kLocalSig = 0x04034b50;
constexpr std::uint64_t kMaxCentralDirectory = 4 * 1024 * 1024;

std::uint16_t U16(const unsigned char* p) { return static_cast<std::uint16_t>(p[0] | (p[1] << 8)); }
std::uint32_t U32(const unsigned char* p) {
  return static_cast<std::uint32_t>(p[0]) | (static_cast<std::uint32_t>(p[1]) << 8) |
         (static_cast<std::uint32_t>(p[2]) << 16) | (static_cast<std::uint32_t>(p[3]) << 24);
}
std::uint64_t U64(const unsigned char* p) {
  return static_cast<std::uint64_t>(U32(p)) | (static_cast<std::uint64_t>(U32(p + 4)) << 32);
}

// Checks size and CRC of an entry's bytes as they pass.
class CheckedEntry : public ByteStream {
 public:
  CheckedEntry(std::unique_ptr<ByteStream> inner, ZipEntry entry)
      : inner_(std::move(inner)), entry_(std::move(entry)) {}

  Result<std::size_t> Read(char* out, std::size_t n) override {
    if (n == 0) return std::size_t{0};
    EP_ASSIGN_OR_RETURN(std::size_t got, inner_->Read(out, n));
    if (got == 0) {
      if (seen_ != entry_.size) return Invalid(entry_.name + " is shorter than its zip entry says");
      if (crc_ != entry_.crc32) return Invalid(entry_.name + " fails its CRC-32 check");
      return std::size_t{0};
    }
    seen_ += got;
    if (seen_ > entry_.size) return TooLarge(entry_.name + " is larger than its zip entry says");
    crc_ = static_cast<std::uint32_t>(
        crc32(crc_, reinterpret_cast<const Bytef*>(out), static_cast<uInt>(got)));
    return got;
  }

 private:
  std::unique_ptr<ByteStream> inner_;  // the stored bytes or an inflater over them
  ZipEntry entry_;
  std::uint64_t seen_ = 0;
  std::uint32_t crc_ = 0;
};

class Owning : public ByteStream {  // an inflater that owns its source
 public:
  Owning(std::unique_ptr<ByteStream> src, std::uint64_t max_out, const std::string& what)
      : src_(std::move(src)), inflater_(*src_, Inflater::Format::kRaw, max_out, what) {}
  Result<std::size_t> Read(char* out, std::size_t n) override { return inflater_.Read(out, n); }

 private:
  std::unique_ptr<ByteStream> src_;
  Inflater inflater_;
};

}  // namespace

bool LooksLikeZip(std::string_view head) {
  return head.size() >= 4 && head[0] == 'P' && head[1] == 'K' &&
         ((head[2] == 3 && head[3] == 4) || (head[2] == 5 && head[3] == 6));
}

Result<ZipArchive> ZipArchive::Open(std::shared_ptr<const File> file, std::uint64_t max_total) {
  const std::uint64_t size = file->size();
  if (size < 22) return Invalid("the zip archive is truncated");
  // The end-of-central-directory record is in the last 22 + 65535 bytes.
  const std::uint64_t tail_len = std::min<std::uint64_t>(size, 22 + 65535);
  std::vector<unsigned char> tail(tail_len);
  EP_RETURN_IF_ERROR(file->ReadAt(size - tail_len, reinterpret_cast<char*>(tail.data()), tail_len));
  std::int64_t at = -1;
  for (std::int64_t i = static_cast<std::int64_t>(tail_len) - 22; i >= 0; --i) {
    if (U32(&tail[i]) == kEocdSig &&
        static_cast<std::uint64_t>(i) + 22 + U16(&tail[i + 20]) == tail_len) {
      at = i;
      break;
    }
  }
  if (at < 0) return Invalid("no zip end-of-central-directory record (not a zip, or truncated)");
  const unsigned char* e = &tail[at];
  const std::uint64_t eocd_offset = size - tail_len + static_cast<std::uint64_t>(at);
  if (U16(e + 4) != 0 || U16(e + 6) != 0) return Invalid("multi-part zip archives are not read");
  std::uint64_t count = U16(e + 10);
  std::uint64_t cd_size = U32(e + 12);
  std::uint64_t cd_offset = U32(e + 16);
  std::uint64_t cd_end_limit = eocd_offset;
  if (count == 0xFFFF || cd_size == 0xFFFFFFFFu || cd_offset == 0xFFFFFFFFu) {
    if (eocd_offset < 20) return Invalid("the zip64 locator is missing");
    unsigned char loc[20];
    EP_RETURN_IF_ERROR(file->ReadAt(eocd_offset - 20, reinterpret_cast<char*>(loc), 20));
    if (U32(loc) != kZip64LocatorSig) return Invalid("the zip64 locator is missing");
    const std::uint64_t z64 = U64(loc + 8);
    unsigned char rec[56];
    if (z64 > eocd_offset - 20 || eocd_offset - 20 - z64 < 56) {
      return Invalid("the zip64 end record is out of place");
    }
    EP_RETURN_IF_ERROR(file->ReadAt(z64, reinterpret_cast<char*>(rec), 56));
    if (U32(rec) != kZip64EocdSig) return Invalid("the zip64 end record is missing");
    count = U64(rec + 32);
    cd_size = U64(rec + 40);
    cd_offset = U64(rec + 48);
    cd_end_limit = z64;
  }
  if (count > kMaxEntries) return Invalid("the zip archive has more than 1024 entries");
  if (cd_size > kMaxCentralDirectory) return Invalid("the zip central directory is too large");
  if (cd_offset > cd_end_limit || cd_size > cd_end_limit - cd_offset) {
    return Invalid("the zip central directory is out of place");
  }
  std::vector<unsigned char> cd(cd_size);
  EP_RETURN_IF_ERROR(file->ReadAt(cd_offset, reinterpret_cast<char*>(cd.data()), cd_size));

  ZipArchive zip;
  zip.file_ = std::move(file);
  zip.central_directory_offset_ = cd_offset;
  std::set<std::string> names;
  std::uint64_t total = 0;
  std::size_t pos = 0;
  for (std::uint64_t i = 0; i < count; ++i) {
    if (cd_size - pos < 46 || U32(&cd[pos]) != kCentralSig) {
      return Invalid("the zip central directory is damaged");
    }
    const unsigned char* c = &cd[pos];
    const std::uint16_t flags = U16(c + 8);
    ZipEntry entry;
    entry.method = U16(c + 10);
    entry.crc32 = U32(c + 16);
    entry.compressed_size = U32(c + 20);
    entry.size = U32(c + 24);
    const std::size_t name_len = U16(c + 28), extra_len = U16(c + 30), comment_len = U16(c + 32);
    entry.local_header_offset = U32(c + 42);
    if (cd_size - pos - 46 < name_len + extra_len + comment_len) {
      return Invalid("the zip central directory is damaged");
    }
    entry.name.assign(reinterpret_cast<const char*>(c + 46), name_len);
    // zip64 extra field: the 64-bit values of the fields saturated above, in this order.
    const unsigned char* x = c + 46 + name_len;
    for (std::size_t k = 0; k + 4 <= extra_len;) {
      const std::uint16_t id = U16(x + k), len = U16(x + k + 2);
      if (k + 4 + len > extra_len) return Invalid("a zip extra field is damaged");
      if (id == 0x0001) {
        std::size_t f = k + 4;
        const std::size_t end = f + len;
        for (std::uint64_t* field : {&entry.size, &entry.compressed_size, &entry.local_header_offset}) {
          if (*field != 0xFFFFFFFFu) continue;
          if (f + 8 > end) return Invalid("a zip64 extra field is short");
          *field = U64(x + f);
          f += 8;
        }
      }
      k += 4 + len;
    }
    pos += 46 + name_len + extra_len + comment_len;
    if (flags & 0x1) return Invalid(entry.name + " is encrypted");
    if (entry.method != 0 && entry.method != 8) {
      return Invalid(entry.name + " uses zip compression method " + std::to_string(entry.method) +
                     "; only stored and deflate are read");
    }
    if (entry.method == 0 && entry.compressed_size != entry.size) {
      return Invalid(entry.name + ": a stored entry with two different sizes");
    }
    if (entry.name.empty() || entry.name.find('\0') != std::string::npos) {
      return Invalid("a zip entry has an empty or binary name");
    }
    if (!names.insert(entry.name).second) return Invalid("the zip holds " + entry.name + " twice");
    if (entry.local_header_offset >= cd_offset || entry.compressed_size > cd_offset) {
      return Invalid(entry.name + " lies outside the archive");
    }
    if (entry.name.back() == '/') continue;  // a directory
    if (entry.size > max_total || total > max_total - entry.size) {
      return TooLarge("the archive declares more than " + std::to_string(max_total) +
                      " uncompressed bytes");
    }
    total += entry.size;
    zip.entries_.push_back(std::move(entry));
  }
  return zip;
}

Result<std::unique_ptr<ByteStream>> ZipArchive::OpenEntry(const ZipEntry& entry) const {
  unsigned char local[30];
  EP_RETURN_IF_ERROR(file_->ReadAt(entry.local_header_offset, reinterpret_cast<char*>(local), 30));
  if (U32(local) != kLocalSig) return Invalid(entry.name + ": the zip local header is missing");
  if (U16(local + 8) != entry.method) {
    return Invalid(entry.name + ": the local and central zip headers disagree");
  }
  const std::uint64_t data = entry.local_header_offset + 30 + U16(local + 26) + U16(local + 28);
  if (data > central_directory_offset_ ||
      entry.compressed_size > central_directory_offset_ - data) {
    return Invalid(entry.name + " lies outside the archive");
  }
  auto raw = std::make_unique<FileRange>(file_, data, entry.compressed_size);
  if (entry.method == 0) {
    return std::unique_ptr<ByteStream>(std::make_unique<CheckedEntry>(std::move(raw), entry));
  }
  auto inflater = std::make_unique<Owning>(std::move(raw), entry.size, entry.name);
  return std::unique_ptr<ByteStream>(
      std::make_unique<CheckedEntry>(std::move(inflater), entry));
}

}  // namespace edgeprune::datasets
