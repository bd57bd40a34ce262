// libFuzzer target for the body decoders: BatchDecoder<Rec> over CSV and NDJSON for every event
// family and reference table, RowValidator on what they decode, and the CSV and NDJSON writers
// as the decoders' inverse. docs/fuzzing.md lists the invariants and how to run and reproduce.
//
// Input layout (kept to three bytes so seeds are a body with a short prefix):
//   byte 0  table: value % 15; 0..7 are the EventFamily values, 8..14 the ReferenceTable values
//   byte 1  bit 0     format: 0 CSV, 1 NDJSON
//           bits 1-2  DecodeOptions::max_line_bytes: default (1 MiB), 64, 1024, kMaxRawBytes + 1024
//           bits 3-4  CSV header: 0 or 3 in the body; 1 csv_header = the record's full header;
//                     2 csv_header = the first line of the rest of the input
//           bit 5     UnknownSubscriberPolicy::kReject instead of kFlag
//           bit 6     DecodeOptions::first_line = 1000 instead of 1
//           bit 7     widen: the first '~' of the body becomes kMaxRawBytes + 1 of them
//   byte 2  where the body is cut in two for the chunking check
//   rest    the body
//
// Widening reaches lines longer than kMaxRawBytes (and than the kMaxRawBytes + 1024 limit) from
// small inputs, so the fuzzer can run with a small -max_len and many executions a second.
//
// Every violated invariant prints what broke and aborts, so libFuzzer keeps the input.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "core/text_buffer.h"
#include "core/utf8.h"
#include "ingest/batch_decoder.h"
#include "ingest/row_validator.h"
#include "ingest/subscriber_directory.h"
#include "model/families.h"
#include "model/record_codec.h"

namespace tally {
namespace {

[[noreturn]] void Violated(const char* invariant, const std::string& detail) {
  std::fprintf(stderr, "\ndecode_fuzzer: invariant violated: %s\n  %s\n", invariant,
               detail.c_str());
  std::abort();
}

// A failed check names the invariant (its source text) and a detail that shows the data.
#define FUZZ_CHECK(cond, detail)            \
  do {                                      \
    if (!(cond)) Violated(#cond, (detail)); \
  } while (0)

// Shows bytes that may be binary or very long, for a violation message.
std::string Show(std::string_view s) {
  std::string out = ValidUtf8OrEscaped(s.substr(0, 300));
  if (s.size() > 300) out += "... (" + std::to_string(s.size()) + " bytes)";
  return out;
}

constexpr int kTableCount = kEventFamilyCount + kReferenceTableCount;
constexpr size_t kMaxReasonBytes = 1024;  // every message cuts the values it quotes (to 64 bytes)
constexpr Timestamp kNow = StartOfDay(Date{DaysFromCivil(2024, 8, 1)});

//! The fuzzer's reading of its input; see the layout at the top of the file.
struct FuzzCase {
  int table = 0;
  BodyFormat format = BodyFormat::kCsv;
  DecodeOptions options;
  int header_mode = 0;
  UnknownSubscriberPolicy policy = UnknownSubscriberPolicy::kFlag;
  uint8_t split = 0;
  std::string_view body;
};

//! Reads the input; `widened` holds the body when bit 7 asks for widening.
std::optional<FuzzCase> ReadCase(const uint8_t* data, size_t size, std::string* widened) {
  if (size < 3) return std::nullopt;
  FuzzCase c;
  c.table = data[0] % kTableCount;
  const uint8_t flags = data[1];
  c.format = (flags & 1) ? BodyFormat::kNdjson : BodyFormat::kCsv;
  static const size_t kMaxLine[] = {DecodeOptions().max_line_bytes, 64, 1024, kMaxRawBytes + 1024};
  c.options.max_line_bytes = kMaxLine[(flags >> 1) & 3];
  c.header_mode = (flags >> 3) & 3;
  c.policy = (flags & 32) ? UnknownSubscriberPolicy::kReject : UnknownSubscriberPolicy::kFlag;
  c.options.first_line = (flags & 64) ? 1000 : 1;
  c.split = data[2];
  c.body = std::string_view(reinterpret_cast<const char*>(data) + 3, size - 3);
  if (flags & 128) {
    if (const size_t tilde = c.body.find('~'); tilde != std::string_view::npos) {
      *widened = std::string(c.body.substr(0, tilde)) + std::string(kMaxRawBytes + 1, '~') +
                 std::string(c.body.substr(tilde + 1));
      c.body = *widened;
    }
  }
  return c;
}

//! One line of a body as the decoder must see it: split at '\n', one trailing '\r' dropped.
struct BodyLine {
  int64_t number = 0;
  std::string_view text;
};

//! An independent split of a body into lines, the oracle for the decoder's line numbers.
std::vector<BodyLine> SplitLines(std::string_view body, int64_t first_line) {
  std::vector<BodyLine> lines;
  size_t pos = 0;
  int64_t number = first_line;
  while (pos < body.size()) {
    size_t end = std::min(body.find('\n', pos), body.size());
    std::string_view text = body.substr(pos, end - pos);
    if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
    lines.push_back({number++, text});
    pos = end + 1;
  }
  return lines;
}

template <typename Rec>
bool IsFieldName(std::string_view name) {
  bool found = false;
  ForEachField<Rec>([&](const auto& f) { found |= f.name == name; });
  return found;
}

//! The data-quality checks a decode reject can fail (see RejectedRow::check).
bool IsDecodeCheck(std::string_view check) {
  static constexpr std::string_view kChecks[] = {"format",          "type",   "not_null",
                                                 "accepted_values", "length", "encoding"};
  return std::find(std::begin(kChecks), std::end(kChecks), check) != std::end(kChecks);
}

//! Same content, including each row's raw text (the views point into different bodies).
template <typename Rec>
bool SameBatch(const DecodedBatch<Rec>& a, const DecodedBatch<Rec>& b, std::string* why) {
  auto differ = [&](std::string what) {
    *why = std::move(what);
    return false;
  };
  if (a.read != b.read) return differ("read differs");
  if (a.rows != b.rows || a.lines != b.lines) return differ("rows or their lines differ");
  if (!std::equal(a.raw.begin(), a.raw.end(), b.raw.begin(), b.raw.end()))
    return differ("raw rows differ");
  if (a.rejects.size() != b.rejects.size()) return differ("reject counts differ");
  for (size_t i = 0; i < a.rejects.size(); ++i) {
    const RejectedRow& x = a.rejects[i];
    const RejectedRow& y = b.rejects[i];
    if (x.line != y.line || x.field != y.field || x.check != y.check || x.reason != y.reason ||
        x.raw != y.raw || x.raw_truncated != y.raw_truncated) {
      return differ("reject " + std::to_string(i) + " differs: line " + std::to_string(x.line) +
                    " '" + x.reason + "' vs line " + std::to_string(y.line) + " '" + y.reason +
                    "'");
    }
  }
  return true;
}

template <typename Rec>
void Append(DecodedBatch<Rec>&& from, DecodedBatch<Rec>* to) {
  to->read += from.read;
  for (size_t i = 0; i < from.rows.size(); ++i) {
    to->rows.push_back(std::move(from.rows[i]));
    to->lines.push_back(from.lines[i]);
    to->raw.push_back(from.raw[i]);
  }
  for (auto& r : from.rejects) to->rejects.push_back(std::move(r));
}

//! Calls fn(value) for every value of type T a record holds, in a T or std::optional<T> member
//! (nulls skipped).
template <typename T, typename Rec, typename Fn>
void ForEachValue(const Rec& rec, Fn&& fn) {
  ForEachField<Rec>([&](const auto& f) {
    const auto& v = rec.*(f.member);
    using M = std::decay_t<decltype(v)>;
    if constexpr (std::is_same_v<M, T>) {
      fn(v);
    } else if constexpr (std::is_same_v<M, std::optional<T>>) {
      if (v) fn(*v);
    }
  });
}

template <typename Rec, typename Fn>
void ForEachString(const Rec& rec, Fn&& fn) {
  ForEachValue<std::string>(rec, [&](const std::string& s) { fn(std::string_view(s)); });
}

//! Checks what a decode returned against the body's lines. `header_text` is the CSV header the
//! decoder had to use (from the options or the body), when there is one.
template <typename Rec>
void CheckBatch(const FuzzCase& c, const Status& st, const DecodedBatch<Rec>& out,
                std::optional<std::string_view> header_text, const std::vector<BodyLine>& lines,
                size_t header_index) {
  FUZZ_CHECK(out.rows.size() == out.lines.size() && out.rows.size() == out.raw.size(),
             "rows " + std::to_string(out.rows.size()) + ", lines " +
                 std::to_string(out.lines.size()) + ", raw " + std::to_string(out.raw.size()));
  FUZZ_CHECK(out.read == static_cast<int64_t>(out.rows.size() + out.rejects.size()),
             "read " + std::to_string(out.read) + ", rows " + std::to_string(out.rows.size()) +
                 ", rejects " + std::to_string(out.rejects.size()));

  if (!st.ok()) {
    // Only an unusable CSV header fails a whole body, before any line is decoded.
    FUZZ_CHECK(c.format == BodyFormat::kCsv, "NDJSON body failed: " + st.ToString());
    FUZZ_CHECK(out.read == 0,
               "failed decode read " + std::to_string(out.read) + " lines: " + st.ToString());
    FUZZ_CHECK(!st.message().empty(), "error without a message");
    if (header_text) {
      CsvRecordReader<Rec> reader;
      FUZZ_CHECK(
          !reader.ReadHeader(*header_text).ok(),
          "decode failed (" + st.ToString() + ") though its header is fine: " + Show(*header_text));
    }
    return;
  }
  if (c.format == BodyFormat::kCsv) {
    FUZZ_CHECK(header_text.has_value(), "CSV body without a header decoded ok");
    CsvRecordReader<Rec> reader;
    FUZZ_CHECK(reader.ReadHeader(*header_text).ok(),
               "decode ok with a bad header: " + Show(*header_text));
  }

  // Every non-empty line after the header is a row or a reject, exactly once and in order.
  size_t row = 0;
  size_t rej = 0;
  int64_t last_line = std::numeric_limits<int64_t>::min();
  for (size_t i = header_index; i < lines.size(); ++i) {
    const BodyLine& line = lines[i];
    if (line.text.empty()) continue;
    const bool is_row = row < out.rows.size() && out.lines[row] == line.number;
    const bool is_reject = rej < out.rejects.size() && out.rejects[rej].line == line.number;
    FUZZ_CHECK(is_row != is_reject, "line " + std::to_string(line.number) + " is " +
                                        (is_row ? "both a row and a reject" : "missing") + ": " +
                                        Show(line.text));
    FUZZ_CHECK(line.number > last_line,
               "line numbers do not increase at " + std::to_string(line.number));
    last_line = line.number;
    const bool too_long = line.text.size() > c.options.max_line_bytes;
    const bool bad_utf8 = FindInvalidUtf8(line.text) != std::string_view::npos;
    if (is_row) {
      FUZZ_CHECK(out.raw[row] == line.text, "row raw text '" + Show(out.raw[row]) +
                                                "' is not line " + std::to_string(line.number));
      FUZZ_CHECK(!too_long && !bad_utf8, "line " + std::to_string(line.number) +
                                             " decoded though it is " +
                                             (too_long ? "too long" : "invalid UTF-8"));
      ForEachString(out.rows[row], [&](std::string_view s) {
        FUZZ_CHECK(FindInvalidUtf8(s) == std::string_view::npos,
                   "line " + std::to_string(line.number) + " decoded to invalid UTF-8: " + Show(s));
      });
      ++row;
      continue;
    }
    const RejectedRow& r = out.rejects[rej++];
    auto where = [&] {  // built only when a check fails
      return "reject at line " + std::to_string(r.line) + " (" + r.check + ", field '" + r.field +
             "', reason '" + Show(r.reason) + "') of " + Show(line.text);
    };
    FUZZ_CHECK(r.line >= 1, where());
    FUZZ_CHECK(!r.check.empty() && !r.reason.empty(), where());
    FUZZ_CHECK(IsDecodeCheck(r.check), where());
    FUZZ_CHECK(r.raw.size() <= kMaxRawBytes, where());
    FUZZ_CHECK(r.raw == line.text.substr(0, kMaxRawBytes), where());
    FUZZ_CHECK(r.raw_truncated == (line.text.size() > kMaxRawBytes), where());
    FUZZ_CHECK(r.reason.size() <= kMaxReasonBytes, where());
    FUZZ_CHECK((r.check == "length") == too_long, where());
    FUZZ_CHECK(too_long || (r.check == "encoding") == bad_utf8, where());
    // The check and field come from the decoder's message, never from the text of the bad value.
    // A missing value (CSV) or an empty one (an NDJSON "" for a non-text field) is not_null; a
    // field given twice is a format error of the line; other errors about the line name no field.
    if (r.check == "not_null") {
      FUZZ_CHECK(r.reason == "field '" + r.field + "' is required" ||
                     r.reason == "field '" + r.field + "' is empty",
                 where());
    }
    if (r.check == "type" || r.check == "accepted_values" || r.check == "not_null") {
      FUZZ_CHECK(IsFieldName<Rec>(r.field), where());
    }
    if (r.check == "format" && !r.field.empty()) {
      FUZZ_CHECK(IsFieldName<Rec>(r.field) && r.reason == "field '" + r.field + "' appears twice",
                 where());
    }
    if (r.check == "length" || r.check == "encoding") FUZZ_CHECK(r.field.empty(), where());
  }
  FUZZ_CHECK(row == out.rows.size() && rej == out.rejects.size(),
             "rows or rejects at lines that are not in the body (" +
                 std::to_string(out.rows.size() - row) + " rows, " +
                 std::to_string(out.rejects.size() - rej) + " rejects left)");
}

//! The semantic checks: a verdict is either clean or names a field, a check and a reason.
template <typename Rec>
void CheckValidator(const FuzzCase& c, const DecodedBatch<Rec>& batch,
                    const SubscriberDirectory& directory) {
  if constexpr (requires(const Rec& r) {
                  r.event_id;
                  r.ts;
                }) {
    ValidationOptions vo;
    vo.unknown_subscribers = c.policy;
    const RowValidator validator(vo, kNow, &directory);
    for (size_t i = 0; i < batch.rows.size(); ++i) {
      const Rec& r = batch.rows[i];
      const RowVerdict v = validator.Check(r);
      auto where = [&] {  // built only when a check fails
        return "verdict on line " + std::to_string(batch.lines[i]) + " (" + v.check + ", field '" +
               v.field + "', reason '" + Show(v.reason) + "') of " + Show(batch.raw[i]);
      };
      if (v.ok) {
        FUZZ_CHECK(v.field.empty() && v.check.empty() && v.reason.empty(), where());
        FUZZ_CHECK(!r.event_id.empty() && r.event_id.size() <= vo.max_id_bytes, where());
        FUZZ_CHECK(r.ts >= vo.min_ts && r.ts.micros <= kNow.micros + vo.max_future_micros, where());
        if (v.unknown_subscriber) FUZZ_CHECK(c.policy == UnknownSubscriberPolicy::kFlag, where());
      } else {
        FUZZ_CHECK(!v.unknown_subscriber, where());
        FUZZ_CHECK(!v.field.empty() && !v.reason.empty() && IsFieldName<Rec>(v.field), where());
        FUZZ_CHECK(v.check == "not_null" || v.check == "length" || v.check == "range" ||
                       v.check == "relationships",
                   where());
        FUZZ_CHECK(v.reason.size() <= kMaxReasonBytes, where());
      }
    }
  }
}

//! Instants that FormatTimestamp can write. ParseTimestamp reads four-digit years, but a zone
//! offset can move the instant out of them ("0000-01-01T00:00:00+01:00" is in year -1), and
//! FormatTimestamp then clamps the year to 0000 or 9999 (keeping month and day), as its comment
//! says: the text form has no way to hold such an instant. Rows holding one are left out of both
//! round trips. RowValidator rejects every event outside 1990..now+1 day, and no reference table
//! holds a timestamp, so no such instant is ever stored.
template <typename Rec>
bool TimestampsWritable(const Rec& rec) {
  constexpr Timestamp kFirst = StartOfDay(Date{DaysFromCivil(0, 1, 1)});
  constexpr Timestamp kEnd = StartOfDay(Date{DaysFromCivil(10000, 1, 1)});
  bool ok = true;
  ForEachValue<Timestamp>(rec, [&](Timestamp t) { ok &= t >= kFirst && t < kEnd; });
  return ok;
}

//! The CSV form cannot hold everything the NDJSON form can; these are the two known differences.
//!  - A null and an empty text are both written as an empty CSV field, which reads back as null
//!    for a nullable text field ("In CSV an empty field is null", docs/data-dictionary.md).
//!  - A text holding '\n' is written as an RFC 4180 quoted field spanning two lines, but the
//!    decoders frame records by line, so that row cannot be read back from CSV at all.
template <typename Rec>
bool CsvCanHold(const Rec& rec) {
  bool ok = true;
  ForEachString(rec, [&](std::string_view s) { ok &= s.find('\n') == std::string_view::npos; });
  return ok;
}

template <typename Rec>
Rec AsReadFromCsv(Rec rec) {
  ForEachField<Rec>([&](const auto& f) {
    auto& v = rec.*(f.member);
    if constexpr (std::is_same_v<std::decay_t<decltype(v)>, std::optional<std::string>>) {
      if (v && v->empty()) v.reset();
    }
  });
  return rec;
}

//! Writes `rows` with WriteCsvRow or WriteJsonRow, decodes the text, and expects the same records.
template <typename Rec>
void CheckRoundTrip(BodyFormat format, const std::vector<Rec>& rows) {
  std::vector<const Rec*> written;
  TextBuffer text(1 << 12);
  if (format == BodyFormat::kCsv) WriteCsvHeader<Rec>(text);
  for (const Rec& r : rows) {
    if (!TimestampsWritable(r) || (format == BodyFormat::kCsv && !CsvCanHold(r))) continue;
    written.push_back(&r);
    if (format == BodyFormat::kCsv) {
      WriteCsvRow(text, r);
    } else {
      WriteJsonRow(text, r);
    }
  }
  if (written.empty()) return;
  const char* name = format == BodyFormat::kCsv ? "CSV" : "NDJSON";
  BatchDecoder<Rec> decoder;
  DecodeOptions options;
  options.max_line_bytes =
      std::numeric_limits<size_t>::max();  // JSON escapes can grow a line sixfold
  DecodedBatch<Rec> back;
  const Status st = decoder.Decode(format, text.view(), options, &back);
  FUZZ_CHECK(st.ok(), std::string(name) + " round trip failed: " + st.ToString());
  for (const RejectedRow& r : back.rejects) {
    Violated("written row reads back", std::string(name) + " round trip rejected line " +
                                           std::to_string(r.line) + " (" + r.check + ", field '" +
                                           r.field + "'): " + Show(r.reason) +
                                           "\n  written: " + Show(r.raw));
  }
  FUZZ_CHECK(back.rows.size() == written.size(), std::string(name) + " round trip row count");
  for (size_t i = 0; i < written.size(); ++i) {
    const Rec want = format == BodyFormat::kCsv ? AsReadFromCsv(*written[i]) : *written[i];
    if (!(back.rows[i] == want)) {
      TextBuffer first(256);
      WriteJsonRow(first, *written[i]);
      TextBuffer second(256);
      WriteJsonRow(second, back.rows[i]);
      Violated("decode(write(row)) == row",
               std::string(name) + " round trip changed a row\n  written: " + Show(back.raw[i]) +
                   "\n  before:  " + Show(first.view()) + "\n  after:   " + Show(second.view()));
    }
  }
}

//! The subscribers the validator knows: two of the operator's (partner 0) and one of partner 2,
//! matching the generated seeds in fuzz/corpus/decode.
const SubscriberDirectory& Directory() {
  static const SubscriberDirectory directory = [] {
    SubscriberDirectory d;
    for (auto [id, partner] : {std::pair{1, 0}, std::pair{2, 0}, std::pair{3, 2}}) {
      Subscriber s;
      s.subscriber_id = SubscriberId(id);
      s.partner_id = PartnerId(partner);
      s.plan_id = PlanId(1);
      d.Upsert(s);
    }
    return d;
  }();
  return directory;
}

template <typename Rec>
void Run(const FuzzCase& input) {
  FuzzCase c = input;
  if (c.format == BodyFormat::kCsv && c.header_mode == 1) {
    TextBuffer h(256);
    WriteCsvHeader<Rec>(h);
    c.options.csv_header = std::string(h.view().substr(0, h.size() - 1));  // without its newline
  } else if (c.header_mode == 2) {  // for NDJSON too, which must ignore it
    const size_t nl = std::min(c.body.find('\n'), c.body.size());
    c.options.csv_header = std::string(c.body.substr(0, nl));
    c.body.remove_prefix(std::min(nl + 1, c.body.size()));
  }

  const std::vector<BodyLine> lines = SplitLines(c.body, c.options.first_line);
  // The header the decoder must use, and the index of the first line that may hold data.
  std::optional<std::string_view> header_text;
  size_t data_from = 0;
  if (c.format == BodyFormat::kCsv) {
    if (c.options.csv_header) {
      header_text = *c.options.csv_header;
    } else {
      while (data_from < lines.size() && lines[data_from].text.empty()) ++data_from;
      if (data_from < lines.size()) header_text = lines[data_from++].text;
    }
  }

  BatchDecoder<Rec> decoder;
  DecodedBatch<Rec> whole;
  const Status st = decoder.Decode(c.format, c.body, c.options, &whole);
  CheckBatch(c, st, whole, header_text, lines, data_from);
  if (!st.ok()) return;

  // Chunking: the same decoder, reused, on the body cut at a line boundary (the second part with
  // the header passed in csv_header, as the file loader does) gives the same result. A cut at or
  // before a CSV header line, or past the end, degenerates to decoding the whole body again.
  size_t cut_line = lines.empty() ? 0 : c.split % (lines.size() + 1);
  if (c.format == BodyFormat::kCsv && !c.options.csv_header && cut_line < data_from)
    cut_line = lines.size();
  size_t cut = 0;
  for (size_t i = 0; i < cut_line; ++i) cut = std::min(c.body.find('\n', cut), c.body.size()) + 1;
  cut = std::min(cut, c.body.size());
  DecodeOptions second_options = c.options;
  second_options.first_line = c.options.first_line + static_cast<int64_t>(cut_line);
  if (c.format == BodyFormat::kCsv) second_options.csv_header = std::string(*header_text);
  DecodedBatch<Rec> pieces;
  DecodedBatch<Rec> second;
  const Status st1 = decoder.Decode(c.format, c.body.substr(0, cut), c.options, &pieces);
  const Status st2 = decoder.Decode(c.format, c.body.substr(cut), second_options, &second);
  FUZZ_CHECK(st1.ok() && st2.ok(), "cut at line " + std::to_string(cut_line) + ": " +
                                       st1.ToString() + " / " + st2.ToString());
  Append(std::move(second), &pieces);
  std::string why;
  FUZZ_CHECK(SameBatch(whole, pieces, &why),
             "body cut at line " + std::to_string(cut_line) + ": " + why);

  CheckValidator(c, whole, Directory());
  CheckRoundTrip(BodyFormat::kNdjson, whole.rows);
  CheckRoundTrip(BodyFormat::kCsv, whole.rows);
}

}  // namespace
}  // namespace tally

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tally;
  std::string widened;
  const std::optional<FuzzCase> c = ReadCase(data, size, &widened);
  if (!c) return 0;
  if (c->table < kEventFamilyCount) {
    VisitFamily(static_cast<EventFamily>(c->table),
                [&](auto type) { Run<typename decltype(type)::type>(*c); });
  } else {
    VisitReference(static_cast<ReferenceTable>(c->table - kEventFamilyCount),
                   [&](auto type) { Run<typename decltype(type)::type>(*c); });
  }
  return 0;
}
