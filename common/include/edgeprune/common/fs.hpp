#pragma once
// Small, careful file helpers. Errors name the path and the reason (errno text).
//
// Thread-safety: free functions; concurrent writers to the same path each leave a complete file
// (the last rename wins).

#include <cstddef>
#include <string>
#include <string_view>
#include <sys/types.h>

#include "edgeprune/common/result.hpp"

namespace edgeprune::fs {

// Writes bytes so that readers see either the old file or the complete new one, also after a
// crash: a temp file in the same directory, written, fsync'd, renamed over path, directory fsync'd.
// The temp file is removed on failure. Error "write_failed" (kIo).
Status WriteFileAtomic(const std::string& path, std::string_view bytes, mode_t mode = 0644);

// Reads a whole file. "file_not_found" (kNotFound) when absent, "file_unreadable" (kIo) on other
// errors, "file_too_large" (kPayloadTooLarge) when it holds more than max_bytes.
Result<std::string> ReadFile(const std::string& path, std::size_t max_bytes = 64 * 1024 * 1024);

// Creates path and missing parents with mode (existing directories are left as they are).
// Error "mkdir_failed" (kIo), also when path exists and is not a directory.
Status EnsureDir(const std::string& path, mode_t mode = 0755);

}  // namespace edgeprune::fs
