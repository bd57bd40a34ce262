#pragma once
// NDJSON reading of any record with a kFields list: one JSON object per line, parsed with
// simdjson. Unknown keys are an error, missing nullable keys are null, JSON null is null, and a
// value of the wrong JSON type (a string where a number belongs) names the field.

#include <simdjson.h>

#include <array>
#include <string>
#include <string_view>

#include "model/record_codec.h"

namespace tally {

//! Parses NDJSON lines into records with simdjson's DOM parser, which validates the whole line
//! (including UTF-8 and trailing content) before any field is read. Reuse one per thread.
template <typename Rec>
class JsonRecordReader {
 public:
  //! Parses one line (a JSON object, without the newline).
  Result<Rec> Parse(std::string_view line) {
    simdjson::dom::element doc;
    auto err = parser_.parse(line.data(), line.size(), true).get(doc);
    if (err) return Status::InvalidArgument(std::string("malformed JSON: ") + simdjson::error_message(err));
    simdjson::dom::object obj;
    if (doc.get_object().get(obj)) return Status::InvalidArgument("malformed JSON: not an object");
    Rec rec{};
    std::array<bool, FieldCount<Rec>()> seen{};
    for (auto member : obj) {
      std::string_view key = member.key;
      Status st = Status::InvalidArgument("unknown field '" + std::string(key.substr(0, 64)) + "'");
      int i = 0;
      ForEachField<Rec>([&](const auto& f) {
        if (f.name == key) {
          if (seen[i]) {
            st = Status::InvalidArgument("field '" + std::string(f.name) + "' appears twice");
          } else {
            seen[i] = true;
            st = ParseValue(f, member.value, &rec);
          }
        }
        ++i;
      });
      if (!st.ok()) return st;
    }
    Status missing;
    int i = 0;
    ForEachField<Rec>([&](const auto& f) {
      if (missing.ok() && !seen[i]) missing = ParseFieldText(f, {}, false, &rec);
      ++i;
    });
    if (!missing.ok()) return missing;
    return rec;
  }

 private:
  template <typename M>
  static Status ParseValue(const Field<Rec, M>& f, simdjson::dom::element v, Rec* rec) {
    using B = BaseType<M>;
    using T = simdjson::dom::element_type;
    const T type = v.type();
    if (type == T::NULL_VALUE) return ParseFieldText(f, {}, false, rec);
    auto wrong = [&](const char* want) {
      return Status::InvalidArgument("field '" + std::string(f.name) + "': expected a JSON " + want);
    };
    char num[40];
    std::string_view text;
    switch (ValueCodec<B>::kJson) {
      case JsonKind::kString:
        if (type != T::STRING) return wrong("string");
        text = v.get_string().value_unsafe();
        if constexpr (std::is_same_v<B, std::string>) {
          // An empty string is a value, not a null, for text fields.
          (rec->*(f.member)) = std::string(text);
          return Status::Ok();
        }
        break;
      case JsonKind::kNumber: {
        std::to_chars_result r{};
        if (type == T::INT64) {
          r = std::to_chars(num, num + sizeof num, v.get_int64().value_unsafe());
        } else if (type == T::UINT64) {
          r = std::to_chars(num, num + sizeof num, v.get_uint64().value_unsafe());
        } else if (type == T::DOUBLE) {
          r = std::to_chars(num, num + sizeof num, v.get_double().value_unsafe());
        } else {
          return wrong("number");
        }
        text = std::string_view(num, r.ptr - num);
        break;
      }
      case JsonKind::kBool:
        if (type != T::BOOL) return wrong("boolean");
        text = v.get_bool().value_unsafe() ? "true" : "false";
        break;
    }
    if (text.empty()) return Status::InvalidArgument("field '" + std::string(f.name) + "' is empty");
    return ParseFieldText(f, text, true, rec);
  }

  simdjson::dom::parser parser_;
};

}  // namespace tally
