#pragma once
// Streaming a file, or one byte range of it, as a response body (HTTP Range, RFC 9110 §14).
// RangeFile models Beast's File concept over a window [offset, offset + length) of a real file,
// so boost::beast::http::basic_file_body<RangeFile> streams exactly that window from disk.
//
// Thread-safety: a RangeFile is owned by one response at a time; not shared.

#include <boost/beast/core/file.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "edgeprune/common/result.hpp"

namespace edgeprune::http {

class RangeFile {
 public:
  using native_handle_type = boost::beast::file::native_handle_type;

  RangeFile() = default;
  RangeFile(RangeFile&&) = default;
  RangeFile& operator=(RangeFile&&) = default;

  // Opens a regular file for reading with the window covering all of it.
  static Result<RangeFile> Open(const std::string& path);
  // Narrows the window; offset + length must not exceed total_size().
  void SetWindow(std::uint64_t offset, std::uint64_t length);
  std::uint64_t total_size() const { return total_; }
  std::uint64_t window_offset() const { return offset_; }

  // Beast File concept. Positions and sizes are relative to the window; writing is refused.
  bool is_open() const { return file_.is_open(); }
  void close(boost::beast::error_code& ec) { file_.close(ec); }
  void open(const char* path, boost::beast::file_mode mode, boost::beast::error_code& ec);
  std::uint64_t size(boost::beast::error_code& ec) const;
  std::uint64_t pos(boost::beast::error_code& ec) const;
  void seek(std::uint64_t offset, boost::beast::error_code& ec);
  std::size_t read(void* buffer, std::size_t n, boost::beast::error_code& ec);
  std::size_t write(const void* buffer, std::size_t n, boost::beast::error_code& ec);

 private:
  boost::beast::file file_;
  std::uint64_t total_ = 0;
  std::uint64_t offset_ = 0;
  std::uint64_t length_ = 0;
  std::uint64_t pos_ = 0;
};

struct ByteRange {
  std::uint64_t offset = 0;
  std::uint64_t length = 0;
};

// Parses a Range header value against a resource of `total` bytes. Returns std::nullopt-free
// results: the one satisfiable range, or an error (kInvalidArgument, code "range_not_satisfiable")
// for malformed, multiple or unsatisfiable ranges.
Result<ByteRange> ParseRange(std::string_view header, std::uint64_t total);

}  // namespace edgeprune::http
