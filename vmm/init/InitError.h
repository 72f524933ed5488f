// The init's typed error: one human-readable line, as `setup-error MESSAGE` carries it to the host.
//
// The guest init links only libstdc++ and libc (not ember's kvm/ library with its {fmt}-based
// Result), so it has this small value-or-error of its own. Every step of the init returns one;
// Init.cpp turns the first error into the `setup-error` status line and powers off.
#pragma once

#include <cerrno>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace ember::init {

// The parsers' optional out-parameter: MESSAGE goes to *error when the caller asked for it.
inline void setError(std::string* error, std::string message) {
  if (error != nullptr) {
    *error = std::move(message);
  }
}

struct InitError {
  std::string message;

  // "WHAT: strerror(err)", e.g. "mount virtiofs tag root on /ember/root: No such device".
  static InitError fromErrno(std::string_view what, int err = errno);
};

template <typename T>
class [[nodiscard]] InitResult {
 public:
  InitResult(T value) : v_(std::move(value)) {}          // NOLINT(google-explicit-constructor)
  InitResult(InitError error) : v_(std::move(error)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return std::holds_alternative<T>(v_); }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  const InitError& error() const { return std::get<InitError>(v_); }

 private:
  std::variant<T, InitError> v_;
};

// A step that yields nothing: no error means it was done.
template <>
class [[nodiscard]] InitResult<void> {
 public:
  InitResult() = default;
  InitResult(InitError error) : error_(std::move(error)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return !error_.has_value(); }
  const InitError& error() const { return *error_; }

 private:
  std::optional<InitError> error_;
};

}  // namespace ember::init
