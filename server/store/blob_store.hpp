#pragma once
// Content-addressed blob store on the local file system: a blob named by the lower-case hex
// SHA-256 of its bytes lives at <data_dir>/blobs/ab/cdef… (first two hex chars as a shard
// directory, the other 62 as the file name). Writes go to a temp file on the same file system,
// are fsync'd, renamed into place and the directory fsync'd, so a crash leaves either no blob or
// a complete one. Putting content that is already stored is a no-op returning the same ref.
//
// Names are validated before any path is formed: anything but 64 lower-case hex chars is
// kInvalidArgument "invalid_blob_name", so no caller input can reach outside the store.
//
// Thread-safety: thread-safe, also across processes sharing the directory (each writer has its
// own temp file; renames are atomic and the content under a name never changes).

#include <chrono>
#include <ctime>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>

#include "edgeprune/common/result.hpp"

namespace edgeprune::store {

struct BlobRef {
  std::string sha256;  // 64 lower-case hex chars
  std::uint64_t size = 0;

  bool operator==(const BlobRef&) const = default;
};

// What one BlobStore::Collect pass did.
struct BlobCollection {
  std::int64_t removed = 0;
  std::uint64_t removed_bytes = 0;
  std::int64_t kept_referenced = 0;
  std::int64_t kept_recent = 0;  // unreferenced, but written or stored again within the grace
};

class BlobStore {
 public:
  // Uses (and creates) <data_dir>/blobs. Leftover temp files older than an hour are removed; a
  // blob a collection renamed aside and did not finish with (the process died) is put back.
  static Result<std::unique_ptr<BlobStore>> Open(const std::string& data_dir);

  Result<BlobRef> Put(std::string_view bytes);
  // Streams src_path into the store, hashing while copying (constant memory).
  Result<BlobRef> PutFile(const std::string& src_path);
  // Hashes a file (streamed, constant memory) without storing it.
  static Result<BlobRef> Hash(const std::string& path);
  // Moves a file the caller owns, and no longer writes, into the store: ref must be Hash(path)'s
  // answer (its size is checked again). The file is made read-only, fsync'd and renamed, so a
  // 1 GiB upload is not copied a second time. When the store already holds the blob, or the file
  // is on another file system (the copy then goes through PutFile), the file stays where it was
  // and removing it is still the caller's job.
  Result<BlobRef> Adopt(const std::string& path, const BlobRef& ref);

  // Reads the whole blob and checks its hash: "blob_not_found" (kNotFound), "blob_corrupt"
  // (kInternal) when the bytes no longer match the name, "blob_too_large" beyond max_bytes.
  Result<std::string> Get(std::string_view sha256,
                          std::uint64_t max_bytes = 1024ull * 1024 * 1024) const;
  // Where the blob lives (it may not exist); for streaming it out, e.g. HTTP Range replies.
  Result<std::string> PathOf(std::string_view sha256) const;
  // Size on disk without reading it.
  Result<BlobRef> Stat(std::string_view sha256) const;
  // Re-hashes the stored file (streamed).
  Status Verify(std::string_view sha256) const;
  // False for missing blobs and for invalid names.
  bool Exists(std::string_view sha256) const;
  // Removing a missing blob is not an error.
  Status Remove(std::string_view sha256);

  // Garbage collection (blob_gc.cpp; the retention task runs it): removes every stored blob
  // that is not in `referenced` and whose file was last written — or last stored again, which
  // touches it — longer than `grace` ago. The grace covers what the reference set cannot see: a
  // blob written and not yet named by its row (an upload being registered, a checkpoint being
  // recorded, a variant being marked ready), in this process or another one sharing the
  // directory. A blob is first renamed aside and its time read again: when a writer stored it
  // again in between, it is put back; a writer storing it after the rename finds it missing and
  // writes it anew. So a blob a writer was told is stored stays stored.
  Result<BlobCollection> Collect(const std::unordered_set<std::string>& referenced,
                                 std::chrono::seconds grace);

  static bool IsValidName(std::string_view sha256);
  const std::string& root() const { return root_; }

 private:
  explicit BlobStore(std::string root) : root_(std::move(root)) {}
  Result<BlobRef> Install(const std::string& temp_path, const BlobRef& ref);
  // Puts back the blobs a collection renamed aside (<root>/.tmp/gc.<sha256>) and did not finish
  // with; the next collection decides again.
  static void RestoreRetired(const std::string& root);
  // Collect's removal of one unreferenced blob, put back when it was stored again meanwhile;
  // returns the bytes removed, nullopt when it was kept (or another collector took it).
  Result<std::optional<std::uint64_t>> Retire(const std::string& sha256, std::time_t cutoff);

  std::string root_;  // <data_dir>/blobs
};

}  // namespace edgeprune::store
