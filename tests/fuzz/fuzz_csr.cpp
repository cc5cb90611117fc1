// libFuzzer target for CSR handling (server/fleet/device_ca.cpp): the input is the csr_pem an
// enrolling or renewing device sends, issued by a device CA made once per process. Property: an
// issued certificate carries the device id, a 128-bit serial and a SHA-256 fingerprint that
// CertificateFingerprint computes again from its PEM.
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "server/fleet/device_ca.hpp"
#include "support/test_pki.hpp"

using namespace edgeprune;

namespace {

const fleet::DeviceCa& Ca() {
  static const fleet::DeviceCa ca = [] {
    std::string dir = std::filesystem::temp_directory_path().string() + "/edgeprune-fuzz-ca-XXXXXX";
    if (::mkdtemp(dir.data()) == nullptr) std::abort();
    auto pki = testing::MakeTestPki(dir);
    auto loaded = fleet::DeviceCa::Load(pki.client_ca.cert, pki.client_ca.key);
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
    if (!loaded.ok()) std::abort();
    return std::move(*loaded);
  }();
  return ca;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string csr(reinterpret_cast<const char*>(data), size);
  auto issued = Ca().Issue(csr, "device-fuzz", std::chrono::hours(24), 1'800'000'000);
  if (!issued.ok()) return 0;
  if (issued->serial_hex.empty() || issued->serial_hex.size() > 34) std::abort();
  auto fingerprint = fleet::CertificateFingerprint(issued->pem);
  if (!fingerprint.ok() || *fingerprint != issued->fingerprint_sha256) std::abort();
  if (issued->not_after <= issued->not_before) std::abort();
  return 0;
}
