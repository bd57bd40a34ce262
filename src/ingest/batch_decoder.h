#pragma once
// Decoding of a request body (NDJSON or CSV) into typed records, line by line, keeping every bad
// line as a RejectedRow with its line number, the field at fault, the reason and its raw text.
// Nothing in a body can stop the valid lines around it from being decoded.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "core/utf8.h"
#include "ingest/ingest_request.h"
#include "model/record_codec.h"
#include "model/record_json.h"

namespace tally {

//! A row that was not stored, and why.
struct RejectedRow {
  int64_t line = 0;    // 1-based line in the body or file (a CSV header is line 1)
  std::string field;   // the field at fault; empty when the whole line is bad
  std::string check;   // the data-quality check it failed: format, type, not_null,
                       // accepted_values, range, relationships, length, encoding
  std::string reason;  // readable message
  std::string raw;     // the line as received (cut at kMaxRawBytes, see raw_truncated)
  bool raw_truncated = false;
};

//! Records of one family decoded from a body, in body order, with their line numbers.
template <typename Rec>
struct DecodedBatch {
  std::vector<Rec> rows;
  std::vector<int64_t> lines;
  std::vector<std::string_view> raw;  // each row's line, pointing into the decoded body
  std::vector<RejectedRow> rejects;
  int64_t read = 0;  // non-empty lines seen, header excluded
};

struct DecodeOptions {
  size_t max_line_bytes = size_t{1} << 20;  // longer lines are rejected
  int64_t first_line = 1;                   // line number of the body's first line
  //! CSV only: the header, when the body is a later chunk of a file without its own header.
  std::optional<std::string> csv_header;
};

inline constexpr size_t kMaxRawBytes = 64 * 1024;  // raw text kept in quarantine per row

//! Classifies a decoder error into (field, check). Only the parts of a message that tally writes
//! itself are looked at (its "field 'name'" prefix, which must name a real field, and the fixed
//! texts that follow it), never the quoted input it may contain, so no input can forge a check.
//! `enum_field(name)` tells whether a field holds an enum.
void ClassifyDecodeError(const std::string& message, const std::function<bool(std::string_view)>& is_field,
                         const std::function<bool(std::string_view)>& enum_field, std::string* field,
                         std::string* check);

//! ClassifyDecodeError for the fields of Rec.
template <typename Rec>
void ClassifyRecordError(const std::string& message, std::string* field, std::string* check) {
  auto find = [](std::string_view name, bool want_enum) {
    bool found = false, is_enum = false;
    ForEachField<Rec>([&](const auto& f) {
      using M = std::decay_t<decltype(std::declval<Rec>().*(f.member))>;
      if (f.name == name) {
        found = true;
        is_enum = std::is_enum_v<BaseType<M>>;
      }
    });
    return want_enum ? found && is_enum : found;
  };
  ClassifyDecodeError(
      message, [&](std::string_view n) { return find(n, false); }, [&](std::string_view n) { return find(n, true); },
      field, check);
}

//! Makes a RejectedRow from a line and a decode or validation failure.
RejectedRow MakeReject(int64_t line, std::string_view raw, std::string field, std::string check, std::string reason);

//! Decoder of one record type; reuse one per thread (it keeps parser buffers).
template <typename Rec>
class BatchDecoder {
 public:
  //! Decodes `body`. Fails as a whole only when a CSV header is unusable (the error names it);
  //! bad lines become rejects.
  Status Decode(BodyFormat format, std::string_view body, const DecodeOptions& options, DecodedBatch<Rec>* out) {
    size_t pos = 0;
    int64_t line_no = options.first_line - 1;
    bool need_header = format == BodyFormat::kCsv;
    if (need_header && options.csv_header) {
      TALLY_RETURN_IF_ERROR(csv_.ReadHeader(*options.csv_header));
      need_header = false;
    }
    while (pos < body.size()) {
      size_t end = body.find('\n', pos);
      if (end == std::string_view::npos) end = body.size();
      std::string_view line = body.substr(pos, end - pos);
      pos = end + 1;
      ++line_no;
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (need_header) {
        if (line.empty()) continue;
        Status st = csv_.ReadHeader(line);
        if (!st.ok()) return st.WithContext("line " + std::to_string(line_no));
        need_header = false;
        continue;
      }
      if (line.empty()) continue;
      ++out->read;
      if (line.size() > options.max_line_bytes) {
        out->rejects.push_back(MakeReject(line_no, line, "", "length",
                                          "line is " + std::to_string(line.size()) + " bytes, longer than the " +
                                              std::to_string(options.max_line_bytes) + "-byte limit"));
        continue;
      }
      if (size_t bad = FindInvalidUtf8(line); bad != std::string_view::npos) {
        out->rejects.push_back(MakeReject(line_no, line, "", "encoding",
                                          "invalid UTF-8 at byte " + std::to_string(bad + 1)));
        continue;
      }
      Result<Rec> rec = format == BodyFormat::kCsv ? csv_.Parse(line) : json_.Parse(line);
      if (!rec.ok()) {
        std::string field, check;
        ClassifyRecordError<Rec>(rec.status().message(), &field, &check);
        out->rejects.push_back(MakeReject(line_no, line, std::move(field), std::move(check), rec.status().message()));
        continue;
      }
      out->rows.push_back(std::move(*rec));
      out->lines.push_back(line_no);
      out->raw.push_back(line);
    }
    if (need_header) return Status::InvalidArgument("CSV body has no header line");
    return Status::Ok();
  }

 private:
  CsvRecordReader<Rec> csv_;
  JsonRecordReader<Rec> json_;
};

}  // namespace tally
