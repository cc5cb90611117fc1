#pragma once
// A reader of zip archives (.npz files are zips) written for hostile input: the central
// directory (zip64 too) is read and bounded before any entry is touched; only stored and
// deflated, unencrypted entries; every entry's declared size is summed against a limit before
// inflating anything, an entry that inflates past its declared size is refused while inflating,
// and its CRC-32 is checked at its end.
//
// Thread-safety: a ZipArchive is immutable after Open; each EntryReader is single-threaded.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "edgeprune/common/result.hpp"
#include "server/datasets/byte_stream.hpp"

namespace edgeprune::datasets {

struct ZipEntry {
  std::string name;
  std::uint16_t method = 0;  // 0 stored, 8 deflate
  std::uint32_t crc32 = 0;
  std::uint64_t compressed_size = 0;
  std::uint64_t size = 0;  // uncompressed, as declared
  std::uint64_t local_header_offset = 0;
};

class ZipArchive {
 public:
  static constexpr std::size_t kMaxEntries = 1024;
  // dataset_invalid for anything but a well-formed zip; dataset_too_large when the declared
  // uncompressed sizes add up to more than max_total_size.
  static Result<ZipArchive> Open(std::shared_ptr<const File> file, std::uint64_t max_total_size);

  const std::vector<ZipEntry>& entries() const { return entries_; }

  // The entry's uncompressed bytes. The stream fails with dataset_invalid on a CRC mismatch or a
  // size different from the declared one.
  Result<std::unique_ptr<ByteStream>> OpenEntry(const ZipEntry& entry) const;

 private:
  std::shared_ptr<const File> file_;
  std::vector<ZipEntry> entries_;
  std::uint64_t central_directory_offset_ = 0;
};

// True when the file starts with a zip local header ("PK\3\4") or is an empty zip ("PK\5\6").
bool LooksLikeZip(std::string_view head);

}  // namespace edgeprune::datasets
