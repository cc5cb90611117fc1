#pragma once
// Expected-style results for fallible calls. Errors carry a kind (which decides the HTTP status
// and the process exit code), a stable snake_case code, a human sentence and whether trying the
// same call again may succeed (Retry).
//
// Thread-safety: value types; safe to copy between threads.

#include <cassert>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>

namespace edgeprune {

enum class ErrorKind {
  kInvalidArgument,     // bad input from a caller: 400
  kUnauthenticated,     // 401
  kPermissionDenied,    // 403
  kNotFound,            // 404
  kConflict,            // 409 (already exists, state does not allow it)
  kPayloadTooLarge,     // 413
  kFailedPrecondition,  // 412/422-ish: a budget that cannot be met, a model that does not fit
  kResourceExhausted,   // 429/503
  kUnavailable,         // 503: a dependency is down
  kTimeout,             // 504
  kIo,                  // file system or network failure
  kInternal,            // a bug or an unexpected library failure
};

const char* ErrorKindName(ErrorKind kind);

// Whether the same call, made again, may succeed. It is set where the error is made, by the code
// that knows (a 5xx vs a 4xx that means "never", a bad signature, a model failing its check), and
// read by whoever retries (the agent's update flow), so renaming a code never changes what is
// retried. The kind says who is at fault and what to answer; this says whether to try again.
enum class Retry {
  // May succeed later (network, 5xx, I/O, not connected yet): retry after a backoff. The default,
  // because it is the safe mistake for a loop with a capped backoff: an unclassified permanent
  // error costs a few wasted retries, while a transient one wrongly taken as permanent would
  // refuse a variant for good until the agent restarts.
  kTransient,
  // May be fixed by trying again (bytes damaged on the way or on the server's disk) but may also
  // never be: retry a bounded number of times, then treat it as permanent.
  kLimited,
  // The same call will fail the same way (a bad signature, a model below its accuracy floor):
  // do not retry it.
  kPermanent,
};

const char* RetryName(Retry retry);

struct Error {
  ErrorKind kind = ErrorKind::kInternal;
  std::string code;     // stable snake_case, e.g. "invalid_json"
  std::string message;  // one human sentence naming the problem
  Retry retry = Retry::kTransient;

  // Prefixes the message with where it happened: "loading master.pt: <message>".
  Error WithContext(const std::string& context) const {
    return Error{kind, code, context + ": " + message, retry};
  }
  // The same error, reclassified by a caller that knows better (e.g. a parse error of bytes that
  // were signed, and so will never parse).
  Error WithRetry(Retry r) const { return Error{kind, code, message, r}; }
  bool permanent() const { return retry == Retry::kPermanent; }
  std::string ToString() const { return code + ": " + message; }
};

inline Error MakeError(ErrorKind kind, std::string code, std::string message,
                       Retry retry = Retry::kTransient) {
  return Error{kind, std::move(code), std::move(message), retry};
}
// An error that retrying cannot fix.
inline Error PermanentError(ErrorKind kind, std::string code, std::string message) {
  return MakeError(kind, std::move(code), std::move(message), Retry::kPermanent);
}

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
  Result(Error error) : v_(std::in_place_index<1>, std::move(error)) {}  // NOLINT

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & {
    assert(ok());
    return std::get<0>(v_);
  }
  const T& value() const& {
    assert(ok());
    return std::get<0>(v_);
  }
  T&& value() && {
    assert(ok());
    return std::get<0>(std::move(v_));
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const Error& error() const {
    assert(!ok());
    return std::get<1>(v_);
  }
  T value_or(T fallback) const { return ok() ? std::get<0>(v_) : std::move(fallback); }

 private:
  std::variant<T, Error> v_;
};

// Result<void>: success carries nothing.
template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)) {}  // NOLINT
  bool ok() const { return !error_.has_value(); }
  explicit operator bool() const { return ok(); }
  const Error& error() const {
    assert(!ok());
    return *error_;
  }

 private:
  std::optional<Error> error_;
};

using Status = Result<void>;
inline Status Ok() { return Status(); }

}  // namespace edgeprune

// Propagates an error from an expression returning Result/Status.
#define EP_CONCAT_INNER(a, b) a##b
#define EP_CONCAT(a, b) EP_CONCAT_INNER(a, b)
#define EP_RETURN_IF_ERROR(expr)              \
  do {                                        \
    auto ep_status_ = (expr);                 \
    if (!ep_status_.ok()) return ep_status_.error(); \
  } while (0)
#define EP_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                             \
  if (!tmp.ok()) return tmp.error();             \
  lhs = std::move(tmp).value()
#define EP_ASSIGN_OR_RETURN(lhs, expr) \
  EP_ASSIGN_OR_RETURN_IMPL(EP_CONCAT(ep_result_, __LINE__), lhs, expr)
