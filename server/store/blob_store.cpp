#include "server/store/blob_store.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <vector>

#include "edgeprune/common/crypto.hpp"
#include "edgeprune/common/fs.hpp"
#include "edgeprune/common/log.hpp"

namespace edgeprune::store {
namespace {

constexpr std::size_t kChunk = 256 * 1024;
constexpr std::time_t kStaleTempSeconds = 3600;

std::string ErrnoText() { return std::strerror(errno); }

Error IoError(const std::string& what) {
  return MakeError(ErrorKind::kIo, "blob_io", what + ": " + ErrnoText());
}

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int Release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

Status SyncDir(const std::string& dir) {
  Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0 || ::fsync(fd.get()) != 0) return IoError("fsync of directory " + dir);
  return Ok();
}

// A temp file in <root>/.tmp that is hashed while written and removed unless kept.
class TempBlob {
 public:
  static Result<TempBlob> Create(const std::string& tmp_dir) {
    std::string tmpl = tmp_dir + "/blob.XXXXXX";
    std::vector<char> name(tmpl.begin(), tmpl.end());
    name.push_back('\0');
    int fd = ::mkstemp(name.data());
    if (fd < 0) return IoError("creating a temp file in " + tmp_dir);
    return TempBlob(fd, std::string(name.data()));
  }
  TempBlob(TempBlob&& other) noexcept
      : fd_(other.fd_.Release()),
        path_(std::move(other.path_)),
        hash_(std::move(other.hash_)),
        size_(other.size_),
        keep_(std::exchange(other.keep_, true)) {}
  ~TempBlob() {
    if (!keep_) ::unlink(path_.c_str());
  }

  Status Write(const char* data, std::size_t size) {
    hash_.Update(data, size);
    size_ += size;
    std::size_t off = 0;
    while (off < size) {
      ssize_t n = ::write(fd_.get(), data + off, size - off);
      if (n < 0) {
        if (errno == EINTR) continue;
        return IoError("writing " + path_);
      }
      off += static_cast<std::size_t>(n);
    }
    return Ok();
  }
  // fsyncs and closes; returns the content's ref.
  Result<BlobRef> Finish() {
    if (::fchmod(fd_.get(), 0400) != 0) return IoError("chmod " + path_);
    if (::fsync(fd_.get()) != 0) return IoError("fsync " + path_);
    if (::close(fd_.Release()) != 0) return IoError("close " + path_);
    return BlobRef{hash_.HexDigest(), size_};
  }
  const std::string& path() const { return path_; }
  void Keep() { keep_ = true; }

 private:
  TempBlob(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  Fd fd_;
  std::string path_;
  crypto::Sha256 hash_;
  std::uint64_t size_ = 0;
  bool keep_ = false;
};

Error InvalidName(std::string_view sha256) {
  std::string shown(sha256.substr(0, 80));
  return MakeError(ErrorKind::kInvalidArgument, "invalid_blob_name",
                   "blob name '" + shown + "' is not 64 lower-case hex characters");
}

}  // namespace

Result<BlobRef> BlobStore::Hash(const std::string& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    if (errno == ENOENT) {
      return MakeError(ErrorKind::kNotFound, "blob_not_found", path + " does not exist");
    }
    return IoError("opening " + path);
  }
  crypto::Sha256 hash;
  std::vector<char> buf(kChunk);
  std::uint64_t size = 0;
  for (;;) {
    ssize_t n = ::read(fd.get(), buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return IoError("reading " + path);
    }
    if (n == 0) break;
    hash.Update(buf.data(), static_cast<std::size_t>(n));
    size += static_cast<std::uint64_t>(n);
  }
  return BlobRef{hash.HexDigest(), size};
}

namespace {

// A blob stored again is touched, so the collector (blob_gc.cpp) sees it as just written and
// leaves it for the grace period: the writer is about to reference it. False when the collector
// removed it since the caller's stat: the caller then stores it anew.
Result<bool> TouchStored(const std::string& path) {
  if (::utimensat(AT_FDCWD, path.c_str(), nullptr, 0) == 0) return true;
  if (errno == ENOENT) return false;
  return IoError("touching " + path);
}

void RemoveStaleTemps(const std::string& tmp_dir) {
  DIR* dir = ::opendir(tmp_dir.c_str());
  if (dir == nullptr) return;
  const std::time_t now = std::time(nullptr);
  while (dirent* entry = ::readdir(dir)) {
    if (std::strncmp(entry->d_name, "blob.", 5) != 0) continue;  // gc.*: RestoreRetired
    std::string path = tmp_dir + "/" + entry->d_name;
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0 && now - st.st_mtime > kStaleTempSeconds) {
      ::unlink(path.c_str());
    }
  }
  ::closedir(dir);
}

}  // namespace

bool BlobStore::IsValidName(std::string_view sha256) {
  if (sha256.size() != 64) return false;
  for (char c : sha256) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

Result<std::unique_ptr<BlobStore>> BlobStore::Open(const std::string& data_dir) {
  if (data_dir.empty()) {
    return MakeError(ErrorKind::kInvalidArgument, "invalid_data_dir", "the data directory is empty");
  }
  std::string root = data_dir + "/blobs";
  // Owner-only: blobs are operators' masters and the variants built from them.
  Status made = fs::EnsureDir(root + "/.tmp", 0700);
  if (!made.ok()) return made.error().WithContext("opening blob store");
  RemoveStaleTemps(root + "/.tmp");
  RestoreRetired(root);
  return std::unique_ptr<BlobStore>(new BlobStore(std::move(root)));
}

Result<std::string> BlobStore::PathOf(std::string_view sha256) const {
  if (!IsValidName(sha256)) return InvalidName(sha256);
  return root_ + "/" + std::string(sha256.substr(0, 2)) + "/" + std::string(sha256.substr(2));
}

Result<BlobRef> BlobStore::Install(const std::string& temp_path, const BlobRef& ref) {
  const std::string shard = root_ + "/" + ref.sha256.substr(0, 2);
  EP_ASSIGN_OR_RETURN(std::string path, PathOf(ref.sha256));
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && static_cast<std::uint64_t>(st.st_size) == ref.size) {
    // Already stored; the temp file is dropped by its owner.
    EP_ASSIGN_OR_RETURN(bool still_there, TouchStored(path));
    if (still_there) return ref;
  }
  const bool new_shard = ::stat(shard.c_str(), &st) != 0;
  EP_RETURN_IF_ERROR(fs::EnsureDir(shard, 0700));
  if (new_shard) EP_RETURN_IF_ERROR(SyncDir(root_));
  if (::rename(temp_path.c_str(), path.c_str()) != 0) {
    return IoError("renaming " + temp_path + " to " + path);
  }
  EP_RETURN_IF_ERROR(SyncDir(shard));
  return ref;
}

Result<BlobRef> BlobStore::Put(std::string_view bytes) {
  EP_ASSIGN_OR_RETURN(TempBlob temp, TempBlob::Create(root_ + "/.tmp"));
  EP_RETURN_IF_ERROR(temp.Write(bytes.data(), bytes.size()));
  EP_ASSIGN_OR_RETURN(BlobRef ref, temp.Finish());
  return Install(temp.path(), ref);
}

Result<BlobRef> BlobStore::PutFile(const std::string& src_path) {
  Fd src(::open(src_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (src.get() < 0) {
    if (errno == ENOENT) {
      return MakeError(ErrorKind::kNotFound, "file_not_found", src_path + " does not exist");
    }
    return IoError("opening " + src_path);
  }
  struct stat st {};
  if (::fstat(src.get(), &st) != 0) return IoError("stat " + src_path);
  if (!S_ISREG(st.st_mode)) {
    return MakeError(ErrorKind::kInvalidArgument, "not_a_file", src_path + " is not a regular file");
  }
  EP_ASSIGN_OR_RETURN(TempBlob temp, TempBlob::Create(root_ + "/.tmp"));
  std::vector<char> buf(kChunk);
  for (;;) {
    ssize_t n = ::read(src.get(), buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return IoError("reading " + src_path);
    }
    if (n == 0) break;
    EP_RETURN_IF_ERROR(temp.Write(buf.data(), static_cast<std::size_t>(n)));
  }
  EP_ASSIGN_OR_RETURN(BlobRef ref, temp.Finish());
  return Install(temp.path(), ref);
}

Result<BlobRef> BlobStore::Adopt(const std::string& path, const BlobRef& ref) {
  EP_ASSIGN_OR_RETURN(std::string target, PathOf(ref.sha256));
  struct stat st {};
  if (::stat(target.c_str(), &st) == 0 && static_cast<std::uint64_t>(st.st_size) == ref.size) {
    EP_ASSIGN_OR_RETURN(bool still_there, TouchStored(target));
    if (still_there) return ref;  // already stored
  }
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return IoError("opening " + path);
  if (::fstat(fd.get(), &st) != 0) return IoError("stat " + path);
  if (!S_ISREG(st.st_mode)) {
    return MakeError(ErrorKind::kInvalidArgument, "not_a_file", path + " is not a regular file");
  }
  if (static_cast<std::uint64_t>(st.st_size) != ref.size) {
    return MakeError(ErrorKind::kInternal, "blob_changed",
                     path + " changed size after it was hashed");
  }
  if (::fchmod(fd.get(), 0400) != 0) return IoError("chmod " + path);
  if (::fsync(fd.get()) != 0) return IoError("fsync " + path);
  // Same file system as the store: a rename. Another one: rename fails with EXDEV, and a copy is
  // the only way in.
  struct stat root_st {};
  if (::stat(root_.c_str(), &root_st) == 0 && root_st.st_dev != st.st_dev) return PutFile(path);
  return Install(path, ref);
}

Result<std::string> BlobStore::Get(std::string_view sha256, std::uint64_t max_bytes) const {
  EP_ASSIGN_OR_RETURN(std::string path, PathOf(sha256));
  auto bytes = fs::ReadFile(path, max_bytes);
  if (!bytes.ok()) {
    const Error& e = bytes.error();
    if (e.kind == ErrorKind::kNotFound) {
      return MakeError(ErrorKind::kNotFound, "blob_not_found",
                       "blob " + std::string(sha256) + " is not stored");
    }
    if (e.kind == ErrorKind::kPayloadTooLarge) {
      return MakeError(ErrorKind::kPayloadTooLarge, "blob_too_large",
                       "blob " + std::string(sha256) + " is larger than " +
                           std::to_string(max_bytes) + " bytes");
    }
    return e;
  }
  const std::string actual = crypto::Sha256Hex(*bytes);
  if (actual != sha256) {
    return MakeError(ErrorKind::kInternal, "blob_corrupt",
                     "blob " + std::string(sha256) + " is corrupt: its bytes hash to " + actual);
  }
  return std::move(bytes).value();
}

Result<BlobRef> BlobStore::Stat(std::string_view sha256) const {
  EP_ASSIGN_OR_RETURN(std::string path, PathOf(sha256));
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) {
      return MakeError(ErrorKind::kNotFound, "blob_not_found",
                       "blob " + std::string(sha256) + " is not stored");
    }
    return IoError("stat " + path);
  }
  return BlobRef{std::string(sha256), static_cast<std::uint64_t>(st.st_size)};
}

Status BlobStore::Verify(std::string_view sha256) const {
  EP_ASSIGN_OR_RETURN(std::string path, PathOf(sha256));
  auto hashed = Hash(path);
  if (!hashed.ok()) {
    if (hashed.error().kind == ErrorKind::kNotFound) {
      return MakeError(ErrorKind::kNotFound, "blob_not_found",
                       "blob " + std::string(sha256) + " is not stored");
    }
    return hashed.error();
  }
  if (hashed->sha256 != sha256) {
    return MakeError(ErrorKind::kInternal, "blob_corrupt",
                     "blob " + std::string(sha256) + " is corrupt: its bytes hash to " +
                         hashed->sha256);
  }
  return Ok();
}

bool BlobStore::Exists(std::string_view sha256) const {
  auto path = PathOf(sha256);
  struct stat st {};
  return path.ok() && ::stat(path->c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

Status BlobStore::Remove(std::string_view sha256) {
  EP_ASSIGN_OR_RETURN(std::string path, PathOf(sha256));
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) return IoError("removing " + path);
  return Ok();
}

}  // namespace edgeprune::store
