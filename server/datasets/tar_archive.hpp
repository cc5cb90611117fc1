#pragma once
// A sequential reader of tar archives (POSIX ustar, GNU and pax headers; pax and GNU long-name
// records are read for the name and otherwise skipped). Regular files only; links, devices and
// the rest are skipped. Every header's checksum is verified; sizes are bounded by the stream.
//
// Thread-safety: none; one reader per stream.

#include <cstdint>
#include <optional>
#include <string>

#include "edgeprune/common/result.hpp"
#include "server/datasets/byte_stream.hpp"

namespace edgeprune::datasets {

struct TarEntry {
  std::string name;
  std::uint64_t size = 0;
};

class TarReader {
 public:
  static constexpr int kMaxHeaders = 4096;
  explicit TarReader(ByteStream& in) : in_(in), entry_(*this) {}

  // The next regular file (skipping what is left of the previous one), or nullopt at the end.
  Result<std::optional<TarEntry>> Next();
  // The current file's bytes; ends after its size.
  ByteStream& entry() { return entry_; }

 private:
  class EntryStream : public ByteStream {
   public:
    explicit EntryStream(TarReader& r) : r_(r) {}
    Result<std::size_t> Read(char* out, std::size_t n) override;

   private:
    TarReader& r_;
  };
  Status FinishEntry();

  ByteStream& in_;
  EntryStream entry_;
  std::uint64_t remaining_ = 0;  // of the current entry's data
  std::uint64_t padding_ = 0;    // to the next 512-byte boundary
  int headers_ = 0;
  bool ended_ = false;
};

// True when the 512-byte block at the start of `head` is a ustar or GNU tar header.
bool LooksLikeTar(std::string_view head);

}  // namespace edgeprune::datasets
