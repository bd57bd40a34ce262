#include "ingest/batch_decoder.h"

namespace tally {

void ClassifyDecodeError(const std::string& message, const std::function<bool(std::string_view)>& is_field,
                         const std::function<bool(std::string_view)>& enum_field, std::string* field,
                         std::string* check) {
  field->clear();
  const std::string_view m = message;
  constexpr std::string_view kPrefix = "field '";
  if (m.substr(0, kPrefix.size()) == kPrefix) {
    const size_t close = m.find('\'', kPrefix.size());
    const std::string_view name = close == std::string_view::npos ? std::string_view()
                                                                   : m.substr(kPrefix.size(), close - kPrefix.size());
    if (!name.empty() && is_field(name)) {
      const std::string_view rest = m.substr(close + 1);
      *field = std::string(name);
      if (rest == " is required" || rest == " is empty") {
        *check = "not_null";
      } else if (rest == " appears twice") {
        *check = "format";
      } else if (rest.substr(0, 18) == ": expected a JSON ") {
        *check = "type";
      } else {
        // The value did not parse: for an enum that means an unknown value, otherwise a bad type.
        *check = enum_field(name) ? "accepted_values" : "type";
      }
      return;
    }
  }
  // Errors about the whole line: malformed JSON, unknown fields, CSV quoting and column counts.
  *check = "format";
}

RejectedRow MakeReject(int64_t line, std::string_view raw, std::string field, std::string check, std::string reason) {
  RejectedRow r;
  r.line = line;
  r.field = std::move(field);
  r.check = std::move(check);
  r.reason = std::move(reason);
  r.raw_truncated = raw.size() > kMaxRawBytes;
  r.raw = std::string(raw.substr(0, kMaxRawBytes));
  return r;
}

}  // namespace tally
