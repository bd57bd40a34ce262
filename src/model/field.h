#pragma once
// The schema of a record is a compile-time list of Fields: name, member, unit and description.
// Everything that reads or writes records (CSV, NDJSON, SQL DDL, the data dictionary) walks that
// one list, so a field added to a record appears everywhere at once and nowhere is out of date.
//
// A field is nullable exactly when its member is a std::optional.

#include <charconv>
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>

#include "core/ids.h"
#include "core/money.h"
#include "core/status.h"
#include "core/text_buffer.h"
#include "core/time.h"
#include "model/enums.h"

namespace tally {

//! One column of a record: which member it reads, its unit and what it means.
template <typename Rec, typename M>
struct Field {
  std::string_view name;
  M Rec::*member;
  std::string_view unit;  // "" when unitless
  std::string_view doc;
};

template <typename Rec, typename M>
constexpr Field<Rec, M> F(std::string_view name, M Rec::*member, std::string_view unit,
                          std::string_view doc) {
  return {name, member, unit, doc};
}

//! How the JSON form of a value looks: a number, a string or a boolean.
enum class JsonKind { kNumber, kString, kBool };

//! Text and SQL form of each value type. Specialized per type below.
template <typename T, typename Enable = void>
struct ValueCodec;

template <typename T>
struct ValueCodec<T, std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool>>> {
  static constexpr std::string_view kSqlType = sizeof(T) <= 4 ? "INTEGER" : "BIGINT";
  static constexpr JsonKind kJson = JsonKind::kNumber;
  static void Write(TextBuffer& out, T v) { out.PutInt(v); }
  static Status Parse(std::string_view s, T* v) {
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *v);
    if (ec == std::errc::result_out_of_range) {
      return Status::InvalidArgument("'" + std::string(s.substr(0, 64)) + "' is out of range");
    }
    if (ec != std::errc() || p != s.data() + s.size()) {
      return Status::InvalidArgument("'" + std::string(s.substr(0, 64)) + "' is not an integer");
    }
    return Status::Ok();
  }
  static std::string Allowed() { return "integer"; }
};

template <>
struct ValueCodec<double> {
  static constexpr std::string_view kSqlType = "DOUBLE";
  static constexpr JsonKind kJson = JsonKind::kNumber;
  static void Write(TextBuffer& out, double v) { out.PutDouble(v); }
  static Status Parse(std::string_view s, double* v) {
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *v);
    if (ec != std::errc() || p != s.data() + s.size() || !std::isfinite(*v)) {
      return Status::InvalidArgument("'" + std::string(s.substr(0, 64)) + "' is not a number");
    }
    return Status::Ok();
  }
  static std::string Allowed() { return "number"; }
};

template <>
struct ValueCodec<bool> {
  static constexpr std::string_view kSqlType = "BOOLEAN";
  static constexpr JsonKind kJson = JsonKind::kBool;
  static void Write(TextBuffer& out, bool v) { out.Put(v ? "true" : "false"); }
  static Status Parse(std::string_view s, bool* v) {
    if (s == "true") { *v = true; return Status::Ok(); }
    if (s == "false") { *v = false; return Status::Ok(); }
    return Status::InvalidArgument("'" + std::string(s.substr(0, 64)) + "' is not true or false");
  }
  static std::string Allowed() { return "true, false"; }
};

template <>
struct ValueCodec<std::string> {
  static constexpr std::string_view kSqlType = "VARCHAR";
  static constexpr JsonKind kJson = JsonKind::kString;
  static void Write(TextBuffer& out, const std::string& v) { out.Put(v); }  // escaped by caller
  static Status Parse(std::string_view s, std::string* v) {
    v->assign(s);
    return Status::Ok();
  }
  static std::string Allowed() { return "text"; }
};

template <>
struct ValueCodec<Timestamp> {
  static constexpr std::string_view kSqlType = "TIMESTAMP";
  static constexpr JsonKind kJson = JsonKind::kString;
  static void Write(TextBuffer& out, Timestamp v) { out.PutTimestamp(v); }
  static Status Parse(std::string_view s, Timestamp* v) {
    auto r = ParseTimestamp(s);
    if (!r.ok()) return r.status();
    *v = *r;
    return Status::Ok();
  }
  static std::string Allowed() { return "ISO 8601 UTC timestamp"; }
};

template <>
struct ValueCodec<Date> {
  static constexpr std::string_view kSqlType = "DATE";
  static constexpr JsonKind kJson = JsonKind::kString;
  static void Write(TextBuffer& out, Date v) { out.Put(FormatDate(v)); }
  static Status Parse(std::string_view s, Date* v) {
    auto r = ParseDate(s);
    if (!r.ok()) return r.status();
    *v = *r;
    return Status::Ok();
  }
  static std::string Allowed() { return "YYYY-MM-DD"; }
};

template <>
struct ValueCodec<Currency> {
  static constexpr std::string_view kSqlType = "VARCHAR";
  static constexpr JsonKind kJson = JsonKind::kString;
  static void Write(TextBuffer& out, Currency v) { out.Put(v.code()); }
  static Status Parse(std::string_view s, Currency* v) {
    auto r = Currency::Parse(s);
    if (!r.ok()) return r.status();
    *v = *r;
    return Status::Ok();
  }
  static std::string Allowed() { return "ISO 4217 code"; }
};

template <typename Tag>
struct ValueCodec<TypedId<Tag>> {
  static constexpr std::string_view kSqlType = "BIGINT";
  static constexpr JsonKind kJson = JsonKind::kNumber;
  static void Write(TextBuffer& out, TypedId<Tag> v) { out.PutInt(v.value()); }
  static Status Parse(std::string_view s, TypedId<Tag>* v) {
    int64_t raw = 0;
    TALLY_RETURN_IF_ERROR(ValueCodec<int64_t>::Parse(s, &raw));
    *v = TypedId<Tag>(raw);
    if (!v->valid()) {
      return Status::InvalidArgument("'" + std::string(s) + "' is not a valid id (" +
                                     (Tag::kZeroIsValid ? ">= 0" : "> 0") + ")");
    }
    return Status::Ok();
  }
  static std::string Allowed() { return Tag::kZeroIsValid ? "id >= 0" : "id > 0"; }
};

template <typename E>
struct ValueCodec<E, std::enable_if_t<std::is_enum_v<E>>> {
  static constexpr std::string_view kSqlType = "VARCHAR";
  static constexpr JsonKind kJson = JsonKind::kString;
  static void Write(TextBuffer& out, E v) { out.Put(Name(v)); }
  static Status Parse(std::string_view s, E* v) {
    auto r = ParseEnum<E>(s);
    if (!r.ok()) return r.status();
    *v = *r;
    return Status::Ok();
  }
  static std::string Allowed() {
    std::string s;
    for (auto n : EnumNames<E>::kNames) {
      if (!s.empty()) s += ", ";
      s += n;
    }
    return s;
  }
};

template <typename T>
struct IsOptional : std::false_type {};
template <typename T>
struct IsOptional<std::optional<T>> : std::true_type {};

template <typename M>
struct BaseOf { using type = M; };
template <typename T>
struct BaseOf<std::optional<T>> { using type = T; };
//! The type a field holds once std::optional is peeled off.
template <typename M>
using BaseType = typename BaseOf<M>::type;

//! Description of a field for documentation and DDL.
struct FieldInfo {
  std::string name;
  std::string sql_type;
  std::string unit;
  std::string allowed;
  std::string doc;
  bool nullable = false;
};

template <typename Rec, typename M>
FieldInfo Describe(const Field<Rec, M>& f) {
  using B = BaseType<M>;
  return FieldInfo{std::string(f.name), std::string(ValueCodec<B>::kSqlType), std::string(f.unit),
                   ValueCodec<B>::Allowed(), std::string(f.doc), IsOptional<M>::value};
}

}  // namespace tally
