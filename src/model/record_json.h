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

//! Parses NDJSON lines into records. Holds a simdjson parser; reuse one per thread.
template <typename Rec>
class JsonRecordReader {
 public:
  //! Parses one line (a JSON object, without the newline).
  Result<Rec> Parse(std::string_view line) {
    padded_.assign(line.data(), line.size());
    padded_.append(simdjson::SIMDJSON_PADDING, ' ');
    simdjson::ondemand::document doc;
    auto err = parser_.iterate(padded_.data(), line.size(), padded_.size()).get(doc);
    if (err) return Status::InvalidArgument(std::string("malformed JSON: ") + simdjson::error_message(err));
    simdjson::ondemand::object obj;
    if (doc.get_object().get(obj)) return Status::InvalidArgument("malformed JSON: not an object");
    Rec rec{};
    std::array<bool, FieldCount<Rec>()> seen{};
    for (auto member : obj) {
      std::string_view key;
      if (member.unescaped_key().get(key)) return Status::InvalidArgument("malformed JSON key");
      simdjson::ondemand::value value;
      if (member.value().get(value)) return Status::InvalidArgument("malformed JSON value");
      Status st = Status::InvalidArgument("unknown field '" + std::string(key.substr(0, 64)) + "'");
      int i = 0;
      ForEachField<Rec>([&](const auto& f) {
        if (f.name == key) {
          if (seen[i]) {
            st = Status::InvalidArgument("field '" + std::string(f.name) + "' appears twice");
          } else {
            seen[i] = true;
            st = ParseValue(f, value, &rec);
          }
        }
        ++i;
      });
      if (!st.ok()) return st;
    }
    if (!doc.at_end()) return Status::InvalidArgument("malformed JSON: trailing content");
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
  static Status ParseValue(const Field<Rec, M>& f, simdjson::ondemand::value& v, Rec* rec) {
    using B = BaseType<M>;
    simdjson::ondemand::json_type type;
    if (v.type().get(type)) return Status::InvalidArgument("field '" + std::string(f.name) + "': malformed value");
    if (type == simdjson::ondemand::json_type::null) return ParseFieldText(f, {}, false, rec);
    auto wrong = [&](const char* want) {
      return Status::InvalidArgument("field '" + std::string(f.name) + "': expected a JSON " + want);
    };
    std::string_view text;
    switch (ValueCodec<B>::kJson) {
      case JsonKind::kString:
        if (type != simdjson::ondemand::json_type::string) return wrong("string");
        if (v.get_string().get(text)) return wrong("string");
        if constexpr (std::is_same_v<B, std::string>) {
          // An empty string is a value, not a null, for text fields.
          (rec->*(f.member)) = std::string(text);
          return Status::Ok();
        }
        break;
      case JsonKind::kNumber:
        if (type != simdjson::ondemand::json_type::number) return wrong("number");
        text = v.raw_json_token();
        while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\r' ||
                                 text.back() == '\n')) {
          text.remove_suffix(1);
        }
        break;
      case JsonKind::kBool:
        if (type != simdjson::ondemand::json_type::boolean) return wrong("boolean");
        text = v.raw_json_token();
        text = text.substr(0, text.starts_with("true") ? 4 : 5);
        break;
    }
    if (text.empty()) return Status::InvalidArgument("field '" + std::string(f.name) + "' is empty");
    return ParseFieldText(f, text, true, rec);
  }

  simdjson::ondemand::parser parser_;
  std::string padded_;
};

}  // namespace tally
