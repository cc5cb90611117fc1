#include "server/datasets/byte_stream.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "server/datasets/dataset_error.hpp"

namespace edgeprune::datasets {
namespace {
constexpr std::size_t kInputChunk = 256 * 1024;

Error IoError(const std::string& path, const char* what) {
  return MakeError(ErrorKind::kIo, "io_error", std::string(what) + " " + path + ": " +
                                                   std::strerror(errno));
}
}  // namespace

Status ReadExact(ByteStream& in, char* out, std::size_t n, const std::string& what) {
  while (n > 0) {
    EP_ASSIGN_OR_RETURN(std::size_t got, in.Read(out, n));
    if (got == 0) return Invalid(what + " is truncated");
    out += got;
    n -= got;
  }
  return Ok();
}

Status Skip(ByteStream& in, std::uint64_t n, const std::string& what) {
  char buf[16 * 1024];
  while (n > 0) {
    const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(n, sizeof buf));
    EP_RETURN_IF_ERROR(ReadExact(in, buf, want, what));
    n -= want;
  }
  return Ok();
}

Result<std::shared_ptr<File>> File::Open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return IoError(path, "opening");
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    return IoError(path, "reading the size of");
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return Invalid(path + " is not a regular file");
  }
  return std::shared_ptr<File>(new File(fd, static_cast<std::uint64_t>(st.st_size), path));
}

File::~File() { ::close(fd_); }

Result<std::size_t> File::ReadSome(std::uint64_t offset, char* out, std::size_t n) const {
  while (true) {
    const ssize_t got = ::pread(fd_, out, n, static_cast<off_t>(offset));
    if (got >= 0) return static_cast<std::size_t>(got);
    if (errno != EINTR) return IoError(path_, "reading");
  }
}

Status File::ReadAt(std::uint64_t offset, char* out, std::size_t n) const {
  if (offset > size_ || n > size_ - offset) return Invalid("the archive is truncated");
  while (n > 0) {
    EP_ASSIGN_OR_RETURN(std::size_t got, ReadSome(offset, out, n));
    if (got == 0) return Invalid("the archive is truncated");
    offset += got;
    out += got;
    n -= got;
  }
  return Ok();
}

FileRange::FileRange(std::shared_ptr<const File> file, std::uint64_t offset, std::uint64_t length)
    : file_(std::move(file)), offset_(offset) {
  const std::uint64_t size = file_->size();
  offset_ = std::min(offset, size);
  remaining_ = std::min(length, size - offset_);
}

Result<std::size_t> FileRange::Read(char* out, std::size_t n) {
  const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(n, remaining_));
  if (want == 0) return std::size_t{0};
  EP_ASSIGN_OR_RETURN(std::size_t got, file_->ReadSome(offset_, out, want));
  offset_ += got;
  remaining_ -= got;
  return got;
}

Inflater::Inflater(ByteStream& source, Format format, std::uint64_t max_out, std::string what)
    : source_(source), max_out_(max_out), what_(std::move(what)), in_(new char[kInputChunk]) {
  ready_ = inflateInit2(&z_, format == Format::kRaw ? -MAX_WBITS : 16 + MAX_WBITS) == Z_OK;
}

Inflater::~Inflater() {
  if (ready_) inflateEnd(&z_);
}

Result<std::size_t> Inflater::Read(char* out, std::size_t n) {
  if (!ready_) return MakeError(ErrorKind::kInternal, "zlib_failed", "zlib did not initialize");
  if (done_ || n == 0) return std::size_t{0};
  // One byte beyond the bound is enough to know the stream is too large.
  const std::uint64_t room = max_out_ - produced_ + 1;
  z_.next_out = reinterpret_cast<Bytef*>(out);
  z_.avail_out = static_cast<uInt>(std::min<std::uint64_t>({n, room, 1u << 30}));
  const uInt asked = z_.avail_out;
  while (z_.avail_out == asked) {
    if (z_.avail_in == 0 && !source_done_) {
      EP_ASSIGN_OR_RETURN(std::size_t got, source_.Read(in_.get(), kInputChunk));
      if (got == 0) source_done_ = true;
      z_.next_in = reinterpret_cast<Bytef*>(in_.get());
      z_.avail_in = static_cast<uInt>(got);
    }
    const int rc = inflate(&z_, Z_NO_FLUSH);
    if (rc == Z_STREAM_END) {
      done_ = true;
      break;
    }
    if (rc == Z_BUF_ERROR) {
      if (z_.avail_in != 0) return Invalid(what_ + ": the compressed stream is damaged");
      if (source_done_) return Invalid(what_ + ": the compressed stream is truncated");
      continue;  // needs more input
    }
    if (rc != Z_OK) {
      return Invalid(what_ + ": the compressed stream is damaged (" +
                     (z_.msg ? std::string(z_.msg) : std::to_string(rc)) + ")");
    }
  }
  const std::size_t got = asked - z_.avail_out;
  produced_ += got;
  if (produced_ > max_out_) {
    return TooLarge(what_ + " decompresses to more than " + std::to_string(max_out_) + " bytes");
  }
  return got;
}

}  // namespace edgeprune::datasets
