#pragma once
// Status and Result<T>: how tally reports failures that come from input or the environment.
//
// Exceptions are kept for programmer errors. Anything that can fail because of data, files or the
// network returns a Status (or a Result<T>) whose message names the offending input: the file,
// line, field and value, so the person reading it can fix the input without reading the code.

#include <cassert>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace tally {

//! The outcome of an operation: ok, or a code with a message that names the bad input.
class Status {
 public:
  enum class Code {
    kOk = 0,
    kInvalidArgument,   // the caller's input is malformed or out of range
    kNotFound,          // a named thing does not exist
    kAlreadyExists,     // a unique thing exists already
    kIOError,           // the file system or network failed
    kCorruption,        // stored data is not what it should be
    kUnavailable,       // try again later (busy, shutting down)
    kInternal,          // a bug or an unexpected library error
    kDeadlineExceeded,  // the operation took longer than it was allowed, and was stopped
  };

  Status() = default;  // ok
  static Status Ok() { return Status(); }
  static Status InvalidArgument(std::string msg) {
    return {Code::kInvalidArgument, std::move(msg)};
  }
  static Status NotFound(std::string msg) { return {Code::kNotFound, std::move(msg)}; }
  static Status AlreadyExists(std::string msg) { return {Code::kAlreadyExists, std::move(msg)}; }
  static Status IOError(std::string msg) { return {Code::kIOError, std::move(msg)}; }
  static Status Corruption(std::string msg) { return {Code::kCorruption, std::move(msg)}; }
  static Status Unavailable(std::string msg) { return {Code::kUnavailable, std::move(msg)}; }
  static Status Internal(std::string msg) { return {Code::kInternal, std::move(msg)}; }
  static Status DeadlineExceeded(std::string msg) {
    return {Code::kDeadlineExceeded, std::move(msg)};
  }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }

  //! "invalid argument: <message>", or "ok".
  std::string ToString() const;

  //! Returns a copy whose message is prefixed with `context` (e.g. a file name and line).
  Status WithContext(std::string_view context) const;

 private:
  Status(Code code, std::string msg) : code_(code), message_(std::move(msg)) {}
  Code code_ = Code::kOk;
  std::string message_;
};

//! Either a value or the Status that explains why there is none.
template <typename T>
class Result {
 public:
  Result(T value) : v_(std::move(value)) {}        // NOLINT(google-explicit-constructor)
  Result(Status status) : v_(std::move(status)) {  // NOLINT(google-explicit-constructor)
    assert(!std::get<Status>(v_).ok() && "a Result built from a Status must carry an error");
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & {
    assert(ok());
    return std::get<T>(v_);
  }
  const T& value() const& {
    assert(ok());
    return std::get<T>(v_);
  }
  T&& value() && {
    assert(ok());
    return std::get<T>(std::move(v_));
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace tally

//! Returns early from the enclosing function when `expr` yields a non-ok Status.
#define TALLY_RETURN_IF_ERROR(expr) \
  do {                              \
    ::tally::Status _st = (expr);   \
    if (!_st.ok()) return _st;      \
  } while (0)

#define TALLY_CONCAT_INNER(a, b) a##b
#define TALLY_CONCAT(a, b) TALLY_CONCAT_INNER(a, b)
#define TALLY_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                \
  if (!tmp.ok()) return tmp.status();               \
  lhs = std::move(tmp).value()
//! `TALLY_ASSIGN_OR_RETURN(auto x, ComputeX());` unwraps a Result or returns its Status.
#define TALLY_ASSIGN_OR_RETURN(lhs, expr) \
  TALLY_ASSIGN_OR_RETURN_IMPL(TALLY_CONCAT(_result_, __LINE__), lhs, expr)
