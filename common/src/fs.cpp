#include "edgeprune/common/fs.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace edgeprune::fs {
namespace {

std::string ErrnoText() { return std::strerror(errno); }

std::string DirOf(const std::string& path) {
  auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// Closes the descriptor on scope exit.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int Release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_;
};

Error WriteError(const std::string& path, const std::string& what) {
  return MakeError(ErrorKind::kIo, "write_failed", "writing '" + path + "': " + what);
}

}  // namespace

Status WriteFileAtomic(const std::string& path, std::string_view bytes, mode_t mode) {
  if (path.empty() || path.back() == '/') {
    return MakeError(ErrorKind::kInvalidArgument, "invalid_path",
                     "'" + path + "' is not a file path");
  }
  std::string tmpl = path + ".tmp.XXXXXX";
  std::vector<char> name(tmpl.begin(), tmpl.end());
  name.push_back('\0');
  Fd fd(::mkstemp(name.data()));
  if (fd.get() < 0) return WriteError(path, "creating temp file: " + ErrnoText());
  std::string tmp(name.data());
  auto fail = [&](const std::string& what) {
    ::unlink(tmp.c_str());
    return WriteError(path, what);
  };
  if (::fchmod(fd.get(), mode) != 0) return fail("chmod: " + ErrnoText());
  std::size_t off = 0;
  while (off < bytes.size()) {
    ssize_t n = ::write(fd.get(), bytes.data() + off, bytes.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail(ErrnoText());
    }
    off += static_cast<std::size_t>(n);
  }
  if (::fsync(fd.get()) != 0) return fail("fsync: " + ErrnoText());
  if (::close(fd.Release()) != 0) return fail("close: " + ErrnoText());
  if (::rename(tmp.c_str(), path.c_str()) != 0) return fail("rename: " + ErrnoText());
  Fd dir(::open(DirOf(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir.get() < 0 || ::fsync(dir.get()) != 0) {
    return WriteError(path, "fsync of directory: " + ErrnoText());
  }
  return Ok();
}

Result<std::string> ReadFile(const std::string& path, std::size_t max_bytes) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    if (errno == ENOENT) {
      return MakeError(ErrorKind::kNotFound, "file_not_found", "'" + path + "' does not exist");
    }
    return MakeError(ErrorKind::kIo, "file_unreadable",
                     "cannot open '" + path + "': " + ErrnoText());
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) {
    return MakeError(ErrorKind::kIo, "file_unreadable", "cannot stat '" + path + "': " + ErrnoText());
  }
  if (S_ISDIR(st.st_mode)) {
    return MakeError(ErrorKind::kIo, "file_unreadable", "'" + path + "' is a directory");
  }
  auto too_large = [&] {
    return MakeError(ErrorKind::kPayloadTooLarge, "file_too_large",
                     "'" + path + "' is larger than " + std::to_string(max_bytes) + " bytes");
  };
  if (S_ISREG(st.st_mode) && static_cast<std::size_t>(st.st_size) > max_bytes) return too_large();
  std::string out;
  if (S_ISREG(st.st_mode)) out.reserve(static_cast<std::size_t>(st.st_size));
  char buf[64 * 1024];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      return MakeError(ErrorKind::kIo, "file_unreadable", "reading '" + path + "': " + ErrnoText());
    }
    if (n == 0) break;
    if (out.size() + static_cast<std::size_t>(n) > max_bytes) return too_large();
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

Status EnsureDir(const std::string& path, mode_t mode) {
  if (path.empty()) {
    return MakeError(ErrorKind::kInvalidArgument, "invalid_path", "directory path is empty");
  }
  // Create each prefix in turn, so missing parents are made too.
  for (std::size_t pos = 1; pos <= path.size(); ++pos) {
    if (pos != path.size() && path[pos] != '/') continue;
    std::string prefix = path.substr(0, pos);
    if (::mkdir(prefix.c_str(), mode) == 0) continue;
    int err = errno;
    struct stat st {};
    if (err == EEXIST && ::stat(prefix.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) continue;
    std::string reason = err == EEXIST ? "exists and is not a directory" : std::strerror(err);
    return MakeError(ErrorKind::kIo, "mkdir_failed", "creating '" + prefix + "': " + reason);
  }
  return Ok();
}

}  // namespace edgeprune::fs
