#include "agent/download/downloader.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <optional>
#include <thread>

#include "agent/download/manifest_verifier.hpp"
#include "edgeprune/common/log.hpp"

namespace edgeprune::agent {
namespace {

Error WriteError(const std::string& path, const std::string& what) {
  return MakeError(ErrorKind::kIo, "write_failed", path + ": " + what + ": " + std::strerror(errno));
}

std::int64_t FileSize(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<std::int64_t>(st.st_size) : 0;
}

// Appends (or, when truncate is set, replaces the file with) bytes, then fdatasync.
Status WriteChunk(const std::string& path, const std::string& bytes, bool truncate) {
  int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (truncate ? O_TRUNC : O_APPEND);
  int fd = ::open(path.c_str(), flags, 0600);
  if (fd < 0) return WriteError(path, "open");
  std::size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      auto e = WriteError(path, "write");
      ::close(fd);
      return e;
    }
    done += static_cast<std::size_t>(n);
  }
  if (::fdatasync(fd) != 0) {
    auto e = WriteError(path, "fdatasync");
    ::close(fd);
    return e;
  }
  if (::close(fd) != 0) return WriteError(path, "close");
  return Ok();
}

struct ContentRange {
  std::int64_t first = 0;
  std::int64_t last = 0;
  std::int64_t total = 0;
};

std::optional<std::int64_t> ToInt(std::string_view s) {
  std::int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v < 0) return std::nullopt;
  return v;
}

// "bytes 100-199/1000"
std::optional<ContentRange> ParseContentRange(std::string_view h) {
  constexpr std::string_view kPrefix = "bytes ";
  if (h.substr(0, kPrefix.size()) != kPrefix) return std::nullopt;
  h.remove_prefix(kPrefix.size());
  auto dash = h.find('-');
  auto slash = h.find('/');
  if (dash == std::string_view::npos || slash == std::string_view::npos || slash < dash) {
    return std::nullopt;
  }
  auto first = ToInt(h.substr(0, dash));
  auto last = ToInt(h.substr(dash + 1, slash - dash - 1));
  auto total = ToInt(h.substr(slash + 1));
  if (!first || !last || !total || *last < *first || *last >= *total) return std::nullopt;
  return ContentRange{*first, *last, *total};
}

// Every status is retried (Retry::kTransient), 4xx included: the manifest was just served, so a
// payload 4xx is the server changing under us (a blob being replaced, the assignment changing).
// The retry fetches the manifest again, which answers "variant_not_offered" if it was withdrawn.
Error StatusError(const std::string& target, int status) {
  ErrorKind kind = status >= 500 ? ErrorKind::kUnavailable
                   : status == 404 ? ErrorKind::kNotFound
                                   : ErrorKind::kIo;
  return MakeError(kind, "download_failed",
                   "GET " + target + " answered HTTP " + std::to_string(status));
}

}  // namespace

ResumableDownloader::ResumableDownloader(http::HttpsClient& client, DownloadOptions options)
    : client_(client), options_(options) {}

Result<DownloadStats> ResumableDownloader::Fetch(const std::string& target,
                                                 const std::string& partial_path,
                                                 const wire::ManifestPayload& payload,
                                                 const http::HeaderList& headers) {
  const std::int64_t size = payload.size_bytes;
  DownloadStats stats;
  std::int64_t have = FileSize(partial_path);
  if (have > size) {
    EP_RETURN_IF_ERROR(WriteChunk(partial_path, "", true));
    have = 0;
    stats.restarted = true;
  }
  stats.resumed_from = have;
  if (have > 0) {
    log::Get("download")->info("resuming {} at byte {} of {}", target, have, size);
  }
  // Enough requests for every chunk plus a restart; anything beyond is a misbehaving server.
  const std::int64_t chunk = std::max<std::int64_t>(1, options_.chunk_bytes);
  const int max_requests = static_cast<int>(2 * (size / chunk) + 4);
  bool restarted_on_416 = false;
  const auto started = std::chrono::steady_clock::now();
  while (have < size) {
    if (stats.requests >= max_requests) {
      return MakeError(ErrorKind::kIo, "download_inconsistent",
                       "GET " + target + " made no progress after " +
                           std::to_string(stats.requests) + " requests");
    }
    http::HeaderList h = headers;
    const bool last_chunk = size - have <= chunk;
    h.emplace_back("Range", "bytes=" + std::to_string(have) + "-" +
                                (last_chunk ? "" : std::to_string(have + chunk - 1)));
    ++stats.requests;
    EP_ASSIGN_OR_RETURN(auto resp, client_.Get(target, h));
    if (resp.status == 206) {
      auto range = ParseContentRange(resp.Header("content-range"));
      if (!range || range->first != have || range->total != size ||
          range->last - range->first + 1 != static_cast<std::int64_t>(resp.body.size())) {
        return MakeError(ErrorKind::kIo, "download_inconsistent",
                         "GET " + target + " answered Content-Range '" +
                             resp.Header("content-range") + "' with " +
                             std::to_string(resp.body.size()) + " bytes for a request from byte " +
                             std::to_string(have) + " of " + std::to_string(size));
      }
      EP_RETURN_IF_ERROR(WriteChunk(partial_path, resp.body, false));
      have += static_cast<std::int64_t>(resp.body.size());
      stats.bytes_fetched += static_cast<std::int64_t>(resp.body.size());
      if (options_.max_bytes_per_s > 0 && have < size) {
        // Hold the average rate of this call at the cap before asking for the next chunk.
        const auto due = started + std::chrono::milliseconds(stats.bytes_fetched * 1000 /
                                                             options_.max_bytes_per_s);
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            due - std::chrono::steady_clock::now());
        if (left.count() > 0) {
          if (!options_.wait) {
            std::this_thread::sleep_for(left);
          } else if (!options_.wait(left)) {
            return MakeError(ErrorKind::kUnavailable, "download_interrupted",
                             "GET " + target + " stopped at byte " + std::to_string(have) +
                                 " of " + std::to_string(size) + ": the agent is stopping");
          }
        }
      }
    } else if (resp.status == 200) {
      // The server ignored Range: what we hold is worthless, the body is the whole payload.
      log::Get("download")->warn("{} ignored Range; restarting from byte 0", target);
      EP_RETURN_IF_ERROR(WriteChunk(partial_path, resp.body, true));
      have = static_cast<std::int64_t>(resp.body.size());
      stats.bytes_fetched += have;
      stats.restarted = true;
      break;
    } else if (resp.status == 416 && !restarted_on_416) {
      EP_RETURN_IF_ERROR(WriteChunk(partial_path, "", true));
      have = 0;
      stats.restarted = true;
      restarted_on_416 = true;
    } else {
      return StatusError(target, resp.status);
    }
  }
  wire::VariantManifest check;
  check.payload = payload;
  auto verified = ManifestVerifier::CheckPayload(check, partial_path);
  if (!verified.ok()) {
    ::unlink(partial_path.c_str());  // a corrupt partial must not be resumed
    return verified.error();
  }
  return stats;
}

}  // namespace edgeprune::agent
