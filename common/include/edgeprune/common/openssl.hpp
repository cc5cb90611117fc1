#pragma once
// The one set of OpenSSL helpers: owning pointers for OpenSSL's objects and the text of its
// newest error. Every file that calls OpenSSL directly (crypto, TLS, the device CA, the device
// key) uses these instead of its own deleters, error text, BIO reading and time conversion.
//
// Thread-safety: OpenSSL's error queue is per thread; LastError() drains the caller's.

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/asn1.h>
#include <openssl/x509.h>

#include <cstdint>
#include <ctime>
#include <memory>
#include <optional>
#include <string>

namespace edgeprune::openssl {

template <typename T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* p) const { Free(p); }
};
inline void FreeBio(BIO* b) { BIO_free(b); }  // BIO_free returns int; a deleter returns nothing

using BioPtr = std::unique_ptr<BIO, Deleter<BIO, FreeBio>>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using PkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, Deleter<EVP_PKEY_CTX, EVP_PKEY_CTX_free>>;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, Deleter<EVP_MD_CTX, EVP_MD_CTX_free>>;
using X509Ptr = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using ReqPtr = std::unique_ptr<X509_REQ, Deleter<X509_REQ, X509_REQ_free>>;
using BnPtr = std::unique_ptr<BIGNUM, Deleter<BIGNUM, BN_free>>;

// A read-only memory BIO over `text` (which must outlive it).
inline BioPtr MemBio(const std::string& text) {
  return BioPtr(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
}

// Everything written to a memory BIO, as a string.
inline std::string MemBioText(BIO* bio) {
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio, &data);
  return len > 0 ? std::string(data, static_cast<std::size_t>(len)) : std::string();
}

// An ASN.1 time (a certificate's validity bound) as unix seconds; nullopt when unreadable.
inline std::optional<std::int64_t> UnixTime(const ASN1_TIME* t) {
  struct tm tm {};
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) return std::nullopt;
  return static_cast<std::int64_t>(timegm(&tm));
}

// The newest error of this thread's queue as text, clearing the queue. The newest is the one
// nearest the failed call; the older ones are the library's internal steps.
inline std::string LastError() {
  unsigned long code = 0;
  for (unsigned long e = ERR_get_error(); e != 0; e = ERR_get_error()) code = e;
  if (code == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(code, buf, sizeof(buf));
  return buf;
}

}  // namespace edgeprune::openssl
