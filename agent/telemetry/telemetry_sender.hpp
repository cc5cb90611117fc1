#pragma once
// TelemetrySender: drains the durable queue to the server. Each Flush() posts batches of the
// oldest reports to POST /agent/v1/telemetry (mTLS via the given HttpsClient) and deletes them
// only after the server's ack ({"acked_seq": N}); a failure leaves them queued for the next
// Flush(). A report may be sent twice (lost ack); the server drops duplicates by seq.
//
// Errors: the client's transport errors; "telemetry_rejected" (the server's status and error
// body); "telemetry_not_acked" when the server acks none of the batch.
//
// Thread-safety: not thread-safe (the HttpsClient is not); one flusher at a time.

#include <cstdint>
#include <string>

#include "agent/telemetry/telemetry_queue.hpp"
#include "edgeprune/common/https_client.hpp"
#include "edgeprune/common/result.hpp"

namespace edgeprune::agent {

struct SenderOptions {
  std::string target = "/agent/v1/telemetry";
  std::size_t batch_size = 100;
  int max_batches = 50;  // per Flush(), so one flush cannot run forever
};

struct FlushStats {
  std::int64_t sent = 0;   // reports posted
  std::int64_t acked = 0;  // reports deleted after the server's ack
  int batches = 0;
};

class TelemetrySender {
 public:
  TelemetrySender(TelemetryQueue& queue, http::HttpsClient& client, SenderOptions options = {});

  Result<FlushStats> Flush();

 private:
  TelemetryQueue& queue_;
  http::HttpsClient& client_;
  SenderOptions options_;
};

}  // namespace edgeprune::agent
