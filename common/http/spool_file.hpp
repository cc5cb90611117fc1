#pragma once
// The file a big request body is spooled to (Session::OpenSpool): Beast's File concept over a
// file descriptor, with writes gathered into 1 MiB before they reach the kernel. Beast hands the
// body over one TLS record (at most 16 KiB) at a time; one write() per record made a 1 GiB upload
// cost 65,536 write system calls, the biggest share of the server's CPU for it on a virtual
// machine (docs/benchmarks/server.md, "Upload and validation").
//
// close() writes what is gathered and reports a failed write or close: a body is complete on
// disk only when close() succeeded.
//
// Thread-safety: owned by one request parser at a time; not shared.

#include <boost/beast/core/file.hpp>

#include <cstdint>
#include <memory>

namespace edgeprune::http {

class SpoolFile {
 public:
  using native_handle_type = boost::beast::file::native_handle_type;

  SpoolFile() = default;
  SpoolFile(SpoolFile&&) = default;
  SpoolFile& operator=(SpoolFile&&) = default;

  // Takes an open, writable descriptor.
  void native_handle(native_handle_type fd) { file_.native_handle(fd); }

  // Beast File concept; only writing is supported.
  bool is_open() const { return file_.is_open(); }
  void close(boost::beast::error_code& ec);
  void open(const char* path, boost::beast::file_mode mode, boost::beast::error_code& ec);
  std::uint64_t size(boost::beast::error_code& ec) const;
  std::uint64_t pos(boost::beast::error_code& ec) const;
  void seek(std::uint64_t offset, boost::beast::error_code& ec);
  std::size_t read(void* buffer, std::size_t n, boost::beast::error_code& ec);
  std::size_t write(const void* buffer, std::size_t n, boost::beast::error_code& ec);

 private:
  static constexpr std::size_t kGather = 1024 * 1024;
  void Flush(boost::beast::error_code& ec);

  boost::beast::file file_;
  std::unique_ptr<char[]> gathered_;
  std::size_t used_ = 0;
  std::uint64_t written_ = 0;  // bytes accepted by write(), flushed or not
};

}  // namespace edgeprune::http
