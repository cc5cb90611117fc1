#pragma once
// Sequential byte sources the data set reader is built from: a range of a file, and an inflater
// (raw deflate for zip entries, gzip for .gz files) that refuses to produce more than a bound,
// so a zip bomb is stopped after at most `max_out` bytes and never buffered.
//
// Thread-safety: none; one reader per stream.

#include <zlib.h>

#include <cstdint>
#include <memory>
#include <string>

#include "edgeprune/common/result.hpp"

namespace edgeprune::datasets {

class ByteStream {
 public:
  virtual ~ByteStream() = default;
  // Up to n bytes; 0 only at the end of the stream.
  virtual Result<std::size_t> Read(char* out, std::size_t n) = 0;
};

// Exactly n bytes or dataset_invalid "<what> is truncated".
Status ReadExact(ByteStream& in, char* out, std::size_t n, const std::string& what);
// Reads and drops n bytes.
Status Skip(ByteStream& in, std::uint64_t n, const std::string& what);

// An open file read with pread (several streams may share it). "io_error" naming the path.
class File {
 public:
  static Result<std::shared_ptr<File>> Open(const std::string& path);
  ~File();
  File(const File&) = delete;
  File& operator=(const File&) = delete;

  std::uint64_t size() const { return size_; }
  const std::string& path() const { return path_; }
  // Exactly n bytes at offset, or dataset_invalid when the file ends before.
  Status ReadAt(std::uint64_t offset, char* out, std::size_t n) const;
  Result<std::size_t> ReadSome(std::uint64_t offset, char* out, std::size_t n) const;

 private:
  File(int fd, std::uint64_t size, std::string path) : fd_(fd), size_(size), path_(std::move(path)) {}
  int fd_;
  std::uint64_t size_;
  std::string path_;
};

// [offset, offset + length) of a file, clamped to its size.
class FileRange : public ByteStream {
 public:
  FileRange(std::shared_ptr<const File> file, std::uint64_t offset, std::uint64_t length);
  Result<std::size_t> Read(char* out, std::size_t n) override;

 private:
  std::shared_ptr<const File> file_;
  std::uint64_t offset_;
  std::uint64_t remaining_;
};

// Decompresses `source`. The output may not exceed max_out (dataset_too_large); a stream that
// ends early or is damaged is dataset_invalid. kRaw streams end at the deflate end marker;
// kGzip streams check the gzip trailer (zlib does).
class Inflater : public ByteStream {
 public:
  enum class Format { kRaw, kGzip };
  Inflater(ByteStream& source, Format format, std::uint64_t max_out, std::string what);
  ~Inflater() override;
  Inflater(const Inflater&) = delete;
  Inflater& operator=(const Inflater&) = delete;

  Result<std::size_t> Read(char* out, std::size_t n) override;
  std::uint64_t produced() const { return produced_; }

 private:
  ByteStream& source_;
  z_stream z_{};
  bool ready_ = false;
  bool done_ = false;
  bool source_done_ = false;
  std::uint64_t max_out_;
  std::uint64_t produced_ = 0;
  std::string what_;
  std::unique_ptr<char[]> in_;
};

}  // namespace edgeprune::datasets
