#include "common/http/spool_file.hpp"

#include <algorithm>
#include <cstring>

namespace edgeprune::http {
namespace errc = boost::system::errc;

void SpoolFile::Flush(boost::beast::error_code& ec) {
  std::size_t done = 0;
  while (done < used_) {
    done += file_.write(gathered_.get() + done, used_ - done, ec);
    if (ec) return;
  }
  used_ = 0;
}

void SpoolFile::close(boost::beast::error_code& ec) {
  ec = {};
  if (!file_.is_open()) return;
  Flush(ec);
  boost::beast::error_code closed;
  file_.close(closed);
  if (!ec) ec = closed;
  gathered_.reset();
}

void SpoolFile::open(const char*, boost::beast::file_mode, boost::beast::error_code& ec) {
  ec = errc::make_error_code(errc::operation_not_supported);  // native_handle() only
}

std::uint64_t SpoolFile::size(boost::beast::error_code& ec) const {
  ec = {};
  return written_;
}

std::uint64_t SpoolFile::pos(boost::beast::error_code& ec) const {
  ec = {};
  return written_;
}

void SpoolFile::seek(std::uint64_t, boost::beast::error_code& ec) {
  ec = errc::make_error_code(errc::operation_not_supported);
}

std::size_t SpoolFile::read(void*, std::size_t, boost::beast::error_code& ec) {
  ec = errc::make_error_code(errc::operation_not_supported);
  return 0;
}

std::size_t SpoolFile::write(const void* buffer, std::size_t n, boost::beast::error_code& ec) {
  ec = {};
  if (!gathered_) gathered_ = std::make_unique<char[]>(kGather);
  const char* in = static_cast<const char*>(buffer);
  std::size_t left = n;
  while (left > 0) {
    const std::size_t take = std::min(left, kGather - used_);
    std::memcpy(gathered_.get() + used_, in, take);
    used_ += take;
    in += take;
    left -= take;
    if (used_ == kGather) {
      Flush(ec);
      if (ec) return 0;  // the body is lost either way: the parser stops on the error
    }
  }
  written_ += n;
  return n;
}

}  // namespace edgeprune::http
