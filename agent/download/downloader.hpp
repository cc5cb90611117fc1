#pragma once
// ResumableDownloader: fetches a variant payload over HttpsClient with HTTP Range into a partial
// file, resuming from the partial file's size after an interrupted attempt or a restart.
//
//   request  Range: bytes=N-            (N = partial file size; bounded to chunk_bytes per request
//                                        so a lost connection costs at most one chunk)
//   206      Content-Range must start at N and agree with the expected total; bytes appended and
//            fsync'd before the next request
//   200      the server ignored Range: the partial file is truncated and the download restarts
//            from 0 with the whole body
//   416      the partial file is already complete (N == size) or bigger than the payload
//            (truncated, restarted once)
// At the end the file's size and SHA-256 are checked against the manifest; on a mismatch the
// partial file is deleted so the next attempt starts clean.
//
// Errors: "download_failed" (status named; kUnavailable for 5xx, kNotFound for 404, kIo else),
// "download_inconsistent" (a Content-Range that does not fit), "download_interrupted" (stopped
// while the rate cap waited), "write_failed", all Retry::kTransient, and the verifier's payload
// errors (Retry::kLimited).
//
// Thread-safety: not thread-safe (the HttpsClient is not); one download at a time.

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include "edgeprune/common/https_client.hpp"
#include "edgeprune/common/result.hpp"
#include "edgeprune/common/wire/manifest.hpp"

namespace edgeprune::agent {

struct DownloadOptions {
  std::int64_t chunk_bytes = 8 * 1024 * 1024;
  // Average payload rate cap in bytes per second (0: none). After each chunk the download sleeps
  // until the bytes fetched in this call are within the cap, so a gateway on a shared uplink does
  // not saturate it; the partial file is complete up to the last chunk while it waits.
  std::int64_t max_bytes_per_s = 0;
  // How the rate cap waits: returns false when the agent is stopping, and the download then ends
  // with "download_interrupted" (the partial file is kept for the next attempt). Empty: sleep.
  std::function<bool(std::chrono::milliseconds)> wait;
};

struct DownloadStats {
  std::int64_t resumed_from = 0;    // bytes already present when Fetch started
  std::int64_t bytes_fetched = 0;   // payload bytes received in this call
  int requests = 0;
  bool restarted = false;           // the server ignored Range (200) or the partial was bad
};

class ResumableDownloader {
 public:
  ResumableDownloader(http::HttpsClient& client, DownloadOptions options = {});

  // Downloads `target` into partial_path until it holds payload.size_bytes bytes, then verifies
  // size and SHA-256. On success partial_path holds the verified payload.
  Result<DownloadStats> Fetch(const std::string& target, const std::string& partial_path,
                              const wire::ManifestPayload& payload,
                              const http::HeaderList& headers = {});

 private:
  http::HttpsClient& client_;
  DownloadOptions options_;
};

}  // namespace edgeprune::agent
