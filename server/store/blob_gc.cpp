// BlobStore::Collect: garbage collection of the blob store (blob_store.hpp explains the
// protocol it keeps with writers).
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <optional>

#include "server/store/blob_store.hpp"

namespace edgeprune::store {
namespace {

Error IoError(const std::string& what) {
  return MakeError(ErrorKind::kIo, "blob_io", what + ": " + std::strerror(errno));
}

bool IsHexPart(std::string_view name, std::size_t size) {
  return name.size() == size &&
         BlobStore::IsValidName(std::string(64 - size, '0') + std::string(name));
}

struct DirCloser {
  void operator()(DIR* d) const { ::closedir(d); }
};
using DirPtr = std::unique_ptr<DIR, DirCloser>;

constexpr const char* kRetiredPrefix = "gc.";

}  // namespace

void BlobStore::RestoreRetired(const std::string& root) {
  const std::string tmp = root + "/.tmp";
  DirPtr dir(::opendir(tmp.c_str()));
  if (!dir) return;
  while (dirent* entry = ::readdir(dir.get())) {
    const std::string name = entry->d_name;
    if (name.rfind(kRetiredPrefix, 0) != 0) continue;
    const std::string sha = name.substr(std::strlen(kRetiredPrefix));
    if (!IsValidName(sha)) continue;
    const std::string retired = tmp + "/" + name;
    const std::string shard = root + "/" + sha.substr(0, 2);
    ::mkdir(shard.c_str(), 0700);
    // link() leaves a blob stored again since in place (EEXIST): same name, same bytes.
    (void)::link(retired.c_str(), (shard + "/" + sha.substr(2)).c_str());
    ::unlink(retired.c_str());
  }
}

Result<std::optional<std::uint64_t>> BlobStore::Retire(const std::string& sha256,
                                                       std::time_t cutoff) {
  EP_ASSIGN_OR_RETURN(std::string path, PathOf(sha256));
  const std::string retired = root_ + "/.tmp/" + kRetiredPrefix + sha256;
  if (::rename(path.c_str(), retired.c_str()) != 0) {
    if (errno == ENOENT) return std::optional<std::uint64_t>();  // another collector took it
    return IoError("renaming " + path + " aside");
  }
  // From here a writer storing this blob finds it missing and writes it anew. One that touched
  // it before the rename made its time recent: put it back.
  struct stat st {};
  if (::stat(retired.c_str(), &st) != 0) return IoError("stat " + retired);
  if (st.st_mtime >= cutoff) {
    if (::link(retired.c_str(), path.c_str()) != 0 && errno != EEXIST) {
      return IoError("putting " + path + " back");
    }
    ::unlink(retired.c_str());
    return std::optional<std::uint64_t>();
  }
  if (::unlink(retired.c_str()) != 0) return IoError("removing " + retired);
  return std::optional<std::uint64_t>(static_cast<std::uint64_t>(st.st_size));
}

Result<BlobCollection> BlobStore::Collect(const std::unordered_set<std::string>& referenced,
                                          std::chrono::seconds grace) {
  if (grace.count() < 0) {
    return MakeError(ErrorKind::kInvalidArgument, "invalid_grace", "negative blob grace period");
  }
  const std::time_t cutoff = std::time(nullptr) - static_cast<std::time_t>(grace.count());
  BlobCollection out;
  DirPtr root(::opendir(root_.c_str()));
  if (!root) return IoError("listing " + root_);
  while (dirent* shard_entry = ::readdir(root.get())) {
    const std::string shard_name = shard_entry->d_name;
    if (!IsHexPart(shard_name, 2)) continue;  // ".", "..", ".tmp"
    const std::string shard = root_ + "/" + shard_name;
    DirPtr dir(::opendir(shard.c_str()));
    if (!dir) return IoError("listing " + shard);
    while (dirent* entry = ::readdir(dir.get())) {
      const std::string sha = shard_name + entry->d_name;
      if (!IsValidName(sha)) continue;
      if (referenced.count(sha) != 0) {
        ++out.kept_referenced;
        continue;
      }
      struct stat st {};
      if (::lstat((shard + "/" + entry->d_name).c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
        continue;  // gone meanwhile, or not a blob
      }
      if (st.st_mtime >= cutoff) {
        ++out.kept_recent;
        continue;
      }
      EP_ASSIGN_OR_RETURN(std::optional<std::uint64_t> bytes, Retire(sha, cutoff));
      if (bytes) {
        ++out.removed;
        out.removed_bytes += *bytes;
      } else {
        ++out.kept_recent;
      }
    }
  }
  return out;
}

}  // namespace edgeprune::store
