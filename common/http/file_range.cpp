#include "common/http/file_range.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <filesystem>
#include <system_error>

namespace edgeprune::http {

namespace beast = boost::beast;

Result<RangeFile> RangeFile::Open(const std::string& path) {
  std::error_code fs_ec;
  if (!std::filesystem::is_regular_file(path, fs_ec)) {
    return MakeError(ErrorKind::kNotFound, "file_not_found", "no regular file at " + path);
  }
  RangeFile f;
  beast::error_code ec;
  f.file_.open(path.c_str(), beast::file_mode::scan, ec);
  if (ec) return MakeError(ErrorKind::kIo, "file_unreadable", path + ": " + ec.message());
  f.total_ = f.file_.size(ec);
  if (ec) return MakeError(ErrorKind::kIo, "file_unreadable", path + ": " + ec.message());
  f.length_ = f.total_;
  return f;
}

void RangeFile::SetWindow(std::uint64_t offset, std::uint64_t length) {
  offset_ = std::min(offset, total_);
  length_ = std::min(length, total_ - offset_);
  pos_ = 0;
}

void RangeFile::open(const char* path, beast::file_mode mode, beast::error_code& ec) {
  file_.open(path, mode, ec);
  if (ec) return;
  total_ = file_.size(ec);
  offset_ = 0;
  length_ = total_;
  pos_ = 0;
}

std::uint64_t RangeFile::size(beast::error_code& ec) const {
  ec = {};
  return length_;
}

std::uint64_t RangeFile::pos(beast::error_code& ec) const {
  ec = {};
  return pos_;
}

void RangeFile::seek(std::uint64_t offset, beast::error_code& ec) {
  if (offset > length_) {
    ec = beast::errc::make_error_code(beast::errc::invalid_argument);
    return;
  }
  ec = {};
  pos_ = offset;
}

std::size_t RangeFile::read(void* buffer, std::size_t n, beast::error_code& ec) {
  ec = {};
  std::uint64_t left = length_ - pos_;
  std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(n, left));
  if (want == 0) return 0;
  for (;;) {
    ssize_t got = ::pread(file_.native_handle(), buffer, want, static_cast<off_t>(offset_ + pos_));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) {
      ec = beast::error_code(errno, boost::system::system_category());
      return 0;
    }
    pos_ += static_cast<std::uint64_t>(got);
    return static_cast<std::size_t>(got);
  }
}

std::size_t RangeFile::write(const void*, std::size_t, beast::error_code& ec) {
  ec = beast::errc::make_error_code(beast::errc::operation_not_supported);
  return 0;
}

namespace {

Error RangeError(const std::string& message) {
  return MakeError(ErrorKind::kInvalidArgument, "range_not_satisfiable", message);
}

std::optional<std::uint64_t> ParseNumber(std::string_view s) {
  if (s.empty()) return std::nullopt;
  std::uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

Result<ByteRange> ParseRange(std::string_view header, std::uint64_t total) {
  header = Trim(header);
  constexpr std::string_view kUnit = "bytes=";
  if (header.substr(0, kUnit.size()) != kUnit) {
    return RangeError("Range must be in bytes, e.g. 'bytes=0-99', got '" + std::string(header) + "'");
  }
  std::string_view spec = Trim(header.substr(kUnit.size()));
  if (spec.find(',') != std::string_view::npos) {
    return RangeError("only a single byte range is supported");
  }
  auto dash = spec.find('-');
  if (dash == std::string_view::npos) {
    return RangeError("malformed byte range '" + std::string(spec) + "'");
  }
  std::string_view first = Trim(spec.substr(0, dash));
  std::string_view last = Trim(spec.substr(dash + 1));
  if (first.empty()) {  // suffix range: the last N bytes
    auto n = ParseNumber(last);
    if (!n) return RangeError("malformed suffix range '" + std::string(spec) + "'");
    if (*n == 0 || total == 0) return RangeError("empty suffix range of a " + std::to_string(total) + "-byte resource");
    std::uint64_t len = std::min(*n, total);
    return ByteRange{total - len, len};
  }
  auto start = ParseNumber(first);
  if (!start) return RangeError("malformed range start '" + std::string(first) + "'");
  if (*start >= total) {
    return RangeError("range starts at " + std::to_string(*start) + " but the resource has " +
                      std::to_string(total) + " bytes");
  }
  std::uint64_t end = total - 1;
  if (!last.empty()) {
    auto e = ParseNumber(last);
    if (!e) return RangeError("malformed range end '" + std::string(last) + "'");
    if (*e < *start) return RangeError("range end is before its start");
    end = std::min(*e, total - 1);
  }
  return ByteRange{*start, end - *start + 1};
}

}  // namespace edgeprune::http
