#include "ingest/batch_decoder.h"

namespace tally {

void ClassifyDecodeError(const std::string& message, std::string* field, std::string* check) {
  field->clear();
  const std::string_view m = message;
  if (auto p = m.find("field '"); p != std::string_view::npos) {
    auto q = m.find('\'', p + 7);
    if (q != std::string_view::npos) *field = std::string(m.substr(p + 7, q - p - 7));
  }
  if (m.find("is required") != std::string_view::npos) {
    *check = "not_null";
  } else if (m.find("(expected one of") != std::string_view::npos) {
    *check = "accepted_values";
  } else if (m.find("malformed JSON") != std::string_view::npos || m.find("quote") != std::string_view::npos ||
             m.find("fields, found") != std::string_view::npos || m.find("unknown field") != std::string_view::npos ||
             m.find("appears twice") != std::string_view::npos) {
    *check = "format";
  } else {
    *check = "type";
  }
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
