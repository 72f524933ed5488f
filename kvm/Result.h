// Typed errors for everything the guest, the host or the user can make fail.
//
// Ember returns `Result<T>` (an expected-like value-or-Error) from every operation that can fail
// at run time; exceptions are never thrown across module or thread boundaries. An Error carries
// a category, the errno when one applies, and a one-line message meant for a human.
#pragma once

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace ember {

enum class Errc {
  InvalidArgument,  // the user or configuration asked for something malformed
  NotFound,         // a file, device or capability is missing
  Io,               // a host system call failed
  Kvm,              // a KVM ioctl failed
  Format,           // an image or table does not parse
  OutOfRange,       // an address, index or length is outside what is allowed
  Unsupported,      // well-formed but not implemented or not offered
  Guest,            // the guest broke a rule of the device or protocol
  Busy,             // the resource is in use
};

const char* errcName(Errc code);

struct Error {
  Errc code;
  std::string message;
  int sys_errno = 0;

  static Error fromErrno(Errc code, std::string what, int err = errno) {
    return Error{code, fmt::format("{}: {}", what, std::strerror(err)), err};
  }
};

template <typename... Args>
Error makeError(Errc code, fmt::format_string<Args...> f, Args&&... args) {
  return Error{code, fmt::format(f, std::forward<Args>(args)...), 0};
}

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}      // NOLINT(google-explicit-constructor)
  Result(Error error) : v_(std::move(error)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  const Error& error() const& { return std::get<1>(v_); }
  Error&& error() && { return std::get<1>(std::move(v_)); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : e_(std::move(error)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return !e_.has_value(); }
  explicit operator bool() const { return ok(); }
  const Error& error() const& { return *e_; }
  Error&& error() && { return std::move(*e_); }

 private:
  std::optional<Error> e_;
};

inline Result<void> okResult() {
  return {};
}

}  // namespace ember

// Propagates an error from a Result-returning expression; yields the value otherwise.
// (A GNU statement expression: supported by both g++ and clang.)
#define EMBER_TRY(expr)                                    \
  ({                                                       \
    auto ember_try_result_ = (expr);                       \
    if (!ember_try_result_.ok()) {                         \
      return std::move(ember_try_result_).error();         \
    }                                                      \
    ::ember::detail::unwrap(std::move(ember_try_result_)); \
  })

namespace ember::detail {
template <typename T>
T unwrap(Result<T>&& r) {
  return std::move(r).value();
}
inline void unwrap(Result<void>&&) {}
}  // namespace ember::detail
