// libFuzzer target for the wire JSON decoders (common/src/wire). One source, built once per message
// family (EDGEPRUNE_FUZZ_WIRE names it), each binary with its own corpus:
//   enroll     EnrollRequest, RenewRequest, CertificateGrant
//   profile    DeviceProfile (ParseProfile, the server's entry point), DeviceCaps, Microbench
//   heartbeat  Heartbeat, HeartbeatResponse, Budget
//   telemetry  TelemetryBatch (ParseTelemetryBatch), TelemetryReport, TelemetryAck
//   events     a variant event as POST /agent/v1/variants/{id}/events reads it
//   manifest   VariantManifest (ParseManifest, the agent's entry point)
// Properties checked beyond "no crash, no sanitizer report": whatever a decoder accepts, its encoder
// writes back, and the decoder accepts that again with the same encoding (a decoder that accepts
// what it cannot represent would drift between server and agent).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "edgeprune/common/json.hpp"
#include "edgeprune/common/wire/budget.hpp"
#include "edgeprune/common/wire/enroll.hpp"
#include "edgeprune/common/wire/heartbeat.hpp"
#include "edgeprune/common/wire/manifest.hpp"
#include "edgeprune/common/wire/profile.hpp"
#include "edgeprune/common/wire/telemetry.hpp"

namespace bj = boost::json;
using namespace edgeprune;

namespace {

// Decode → encode → decode → encode: the two encodings must be equal.
template <typename Decode>
void RoundTrip(const bj::object& o, Decode decode) {
  auto first = decode(o);
  if (!first.ok()) return;
  bj::object encoded = wire::ToJson(*first);
  auto second = decode(encoded);
  if (!second.ok()) {
    std::fprintf(stderr, "re-decoding the encoder's output failed: %s\n%s\n",
                 second.error().message.c_str(), bj::serialize(encoded).c_str());
    std::abort();
  }
  if (bj::serialize(wire::ToJson(*second)) != bj::serialize(encoded)) {
    std::fprintf(stderr, "encoding is not stable:\n%s\n%s\n", bj::serialize(encoded).c_str(),
                 bj::serialize(wire::ToJson(*second)).c_str());
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const std::string_view family = EDGEPRUNE_FUZZ_WIRE;
  if (family == "profile") {
    if (auto p = wire::ParseProfile(text); p.ok()) RoundTrip(wire::ToJson(*p), wire::ProfileFromJson);
  } else if (family == "telemetry") {
    if (auto b = wire::ParseTelemetryBatch(text); b.ok()) {
      RoundTrip(wire::ToJson(*b), wire::TelemetryBatchFromJson);
    }
  } else if (family == "manifest") {
    if (auto m = wire::ParseManifest(text); m.ok()) RoundTrip(wire::ToJson(*m), wire::ManifestFromJson);
  }
  auto parsed = json::ParseObject(text);
  if (!parsed.ok()) return 0;
  const bj::object& o = *parsed;
  if (family == "enroll") {
    RoundTrip(o, wire::EnrollRequestFromJson);
    RoundTrip(o, wire::RenewRequestFromJson);
    RoundTrip(o, wire::CertificateGrantFromJson);
  } else if (family == "profile") {
    RoundTrip(o, wire::ProfileFromJson);
    RoundTrip(o, wire::CapsFromJson);
    RoundTrip(o, wire::MicrobenchFromJson);
  } else if (family == "heartbeat") {
    RoundTrip(o, wire::HeartbeatFromJson);
    RoundTrip(o, wire::HeartbeatResponseFromJson);
    RoundTrip(o, wire::BudgetFromJson);
  } else if (family == "telemetry") {
    RoundTrip(o, wire::TelemetryBatchFromJson);
    RoundTrip(o, wire::TelemetryReportFromJson);
    RoundTrip(o, wire::TelemetryAckFromJson);
    RoundTrip(o, wire::LatencyQuantilesFromJson);
  } else if (family == "manifest") {
    RoundTrip(o, wire::ManifestFromJson);
  } else if (family == "events") {
    // The event route's own reading (server/variants/routes.cpp PostEvent): event, optional
    // reason, cut to 1 KiB for the audit row and the log.
    auto event = json::GetString(o, "event");
    auto reason = json::GetOptString(o, "reason");
    if (event.ok() && reason.ok()) {
      const std::string why = reason->value_or("").substr(0, 1024);
      if (why.size() > 1024) std::abort();
    }
  }
  return 0;
}
