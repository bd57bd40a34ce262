#pragma once
// Runtime values of the executor: coerced variables and arguments, what resolvers return, and
// the response data. A JSON-like tree whose objects keep their members in insertion order (the
// response must follow the order of the selection set).

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "core/status.h"
#include "core/text_buffer.h"

namespace tally::graphql {

class Value {
 public:
  using List = std::vector<Value>;
  using Member = std::pair<std::string, Value>;
  using Object = std::vector<Member>;

  Value() = default;                             // null
  Value(bool b) : v_(b) {}                       // NOLINT(google-explicit-constructor)
  Value(int v) : v_(static_cast<int64_t>(v)) {}  // NOLINT(google-explicit-constructor)
  Value(int64_t v) : v_(v) {}                    // NOLINT(google-explicit-constructor)
  Value(double v) : v_(v) {}                     // NOLINT(google-explicit-constructor)
  Value(std::string s) : v_(std::move(s)) {}     // NOLINT(google-explicit-constructor)
  Value(const char* s) : v_(std::string(s)) {}   // NOLINT(google-explicit-constructor)
  Value(List l) : v_(std::move(l)) {}            // NOLINT(google-explicit-constructor)
  Value(Object o) : v_(std::move(o)) {}          // NOLINT(google-explicit-constructor)

  bool is_null() const { return std::holds_alternative<std::monostate>(v_); }
  bool is_bool() const { return std::holds_alternative<bool>(v_); }
  bool is_int() const { return std::holds_alternative<int64_t>(v_); }
  bool is_float() const { return std::holds_alternative<double>(v_); }
  bool is_number() const { return is_int() || is_float(); }
  bool is_string() const { return std::holds_alternative<std::string>(v_); }
  bool is_list() const { return std::holds_alternative<List>(v_); }
  bool is_object() const { return std::holds_alternative<Object>(v_); }

  bool as_bool() const { return std::get<bool>(v_); }
  int64_t as_int() const { return std::get<int64_t>(v_); }
  double as_double() const {
    return is_int() ? static_cast<double>(as_int()) : std::get<double>(v_);
  }
  const std::string& as_string() const { return std::get<std::string>(v_); }
  const List& as_list() const { return std::get<List>(v_); }
  List& as_list() { return std::get<List>(v_); }
  const Object& as_object() const { return std::get<Object>(v_); }
  Object& as_object() { return std::get<Object>(v_); }

  //! The member `name` of an object; nullptr when absent or not an object.
  const Value* Find(std::string_view name) const;
  //! Appends a member to an object (no check for duplicates).
  void Set(std::string name, Value v) { as_object().emplace_back(std::move(name), std::move(v)); }

  //! Compact JSON. Strings are written as given (callers keep them valid UTF-8).
  void WriteJson(TextBuffer& out) const;
  std::string ToJson() const;

  //! Parses JSON text (simdjson). Integers that fit int64 stay integers.
  static Result<Value> FromJson(std::string_view json);

  friend bool operator==(const Value& a, const Value& b) { return a.v_ == b.v_; }

 private:
  std::variant<std::monostate, bool, int64_t, double, std::string, List, Object> v_;
};

}  // namespace tally::graphql
