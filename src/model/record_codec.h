#pragma once
// CSV and NDJSON text forms of any record with a kFields list (see field.h).
//
// Writing is the generator's hot path, so it is a compile-time walk over the fields with no
// virtual calls. Reading maps CSV columns by header name, so files whose columns come in another
// order still load; every error names the field and the offending value.

#include <array>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "model/field.h"

namespace tally {

template <typename Rec>
constexpr size_t FieldCount() { return std::tuple_size_v<decltype(Rec::kFields)>; }

//! Calls fn(field) for every field of Rec, in order.
template <typename Rec, typename Fn>
constexpr void ForEachField(Fn&& fn) {
  std::apply([&](const auto&... f) { (fn(f), ...); }, Rec::kFields);
}

//! Field descriptions of a record, for docs and DDL.
template <typename Rec>
std::vector<FieldInfo> DescribeFields() {
  std::vector<FieldInfo> out;
  ForEachField<Rec>([&](const auto& f) { out.push_back(Describe(f)); });
  return out;
}

//! The field names, comma separated, with a newline.
template <typename Rec>
void WriteCsvHeader(TextBuffer& out) {
  ForEachField<Rec>([&](const auto& f) {
    out.Put(f.name);
    out.Put(',');
  });
  out.Chop(1);
  out.Put('\n');
}

namespace codec_internal {

template <typename T>
void PutCsvValue(TextBuffer& out, const T& v) {
  if constexpr (std::is_same_v<T, std::string>) {
    out.PutCsvString(v);
  } else {
    ValueCodec<T>::Write(out, v);
  }
}

template <typename T>
void PutJsonValue(TextBuffer& out, const T& v) {
  if constexpr (std::is_same_v<T, std::string>) {
    out.PutJsonString(v);
  } else if constexpr (ValueCodec<T>::kJson == JsonKind::kString) {
    out.Put('"');
    ValueCodec<T>::Write(out, v);  // enum names, dates, timestamps, currencies need no escaping
    out.Put('"');
  } else {
    ValueCodec<T>::Write(out, v);
  }
}

}  // namespace codec_internal

//! One CSV row with a trailing newline; null fields are empty.
template <typename Rec>
void WriteCsvRow(TextBuffer& out, const Rec& rec) {
  ForEachField<Rec>([&](const auto& f) {
    const auto& v = rec.*(f.member);
    using M = std::decay_t<decltype(v)>;
    if constexpr (IsOptional<M>::value) {
      if (v) codec_internal::PutCsvValue(out, *v);
    } else {
      codec_internal::PutCsvValue(out, v);
    }
    out.Put(',');
  });
  out.Chop(1);
  out.Put('\n');
}

//! One JSON object on one line with a trailing newline; null fields are left out.
template <typename Rec>
void WriteJsonRow(TextBuffer& out, const Rec& rec) {
  out.Put('{');
  bool first = true;
  ForEachField<Rec>([&](const auto& f) {
    const auto& v = rec.*(f.member);
    using M = std::decay_t<decltype(v)>;
    auto put = [&](const auto& value) {
      if (!first) out.Put(',');
      first = false;
      out.Put('"');
      out.Put(f.name);
      out.Put("\":");
      codec_internal::PutJsonValue(out, value);
    };
    if constexpr (IsOptional<M>::value) {
      if (v) put(*v);
    } else {
      put(v);
    }
  });
  out.Put("}\n");
}

//! Splits one CSV record (RFC 4180: quoted fields, doubled quotes) into fields. The line must not
//! contain the record's terminating newline. Fields point into `line` or into `scratch`.
Status SplitCsvLine(std::string_view line, std::vector<std::string_view>* fields,
                    std::vector<std::string>* scratch);

//! Parses the text of one field into member `m`; empty text is null for optional members and an
//! error for the others. Errors name the field.
template <typename Rec, typename M>
Status ParseFieldText(const Field<Rec, M>& f, std::string_view text, bool present, Rec* rec) {
  M& m = rec->*(f.member);
  if (!present || (text.empty() && !std::is_same_v<M, std::string>)) {
    if constexpr (IsOptional<M>::value) {
      m.reset();
      return Status::Ok();
    } else {
      return Status::InvalidArgument("field '" + std::string(f.name) + "' is required");
    }
  }
  if constexpr (IsOptional<M>::value) {
    typename M::value_type inner{};
    Status st = ValueCodec<typename M::value_type>::Parse(text, &inner);
    if (!st.ok()) return st.WithContext("field '" + std::string(f.name) + "'");
    m = std::move(inner);
    return Status::Ok();
  } else {
    Status st = ValueCodec<M>::Parse(text, &m);
    return st.ok() ? st : st.WithContext("field '" + std::string(f.name) + "'");
  }
}

//! Reads CSV rows of Rec. The header decides the column order; unknown columns are an error, and
//! so is a missing column that is not nullable.
template <typename Rec>
class CsvRecordReader {
 public:
  Status ReadHeader(std::string_view header) {
    std::vector<std::string_view> names;
    std::vector<std::string> scratch;
    TALLY_RETURN_IF_ERROR(SplitCsvLine(header, &names, &scratch).WithContext("header"));
    column_of_field_.fill(-1);
    num_columns_ = names.size();
    for (size_t c = 0; c < names.size(); ++c) {
      int found = -1;
      int i = 0;
      ForEachField<Rec>([&](const auto& f) {
        if (f.name == names[c]) found = i;
        ++i;
      });
      if (found < 0) {
        return Status::InvalidArgument("header: unknown column '" + std::string(names[c]) + "'");
      }
      if (column_of_field_[found] >= 0) {
        return Status::InvalidArgument("header: column '" + std::string(names[c]) +
                                       "' appears twice");
      }
      column_of_field_[found] = static_cast<int>(c);
    }
    Status missing;
    int i = 0;
    ForEachField<Rec>([&](const auto& f) {
      using M = std::decay_t<decltype(std::declval<Rec>().*(f.member))>;
      if (missing.ok() && column_of_field_[i] < 0 && !IsOptional<M>::value) {
        missing = Status::InvalidArgument("header: required column '" + std::string(f.name) +
                                          "' is missing");
      }
      ++i;
    });
    return missing;
  }

  //! Parses one data line (without its newline).
  Result<Rec> Parse(std::string_view line) {
    TALLY_RETURN_IF_ERROR(SplitCsvLine(line, &fields_, &scratch_));
    if (fields_.size() != num_columns_) {
      return Status::InvalidArgument("expected " + std::to_string(num_columns_) + " fields, found " +
                                     std::to_string(fields_.size()));
    }
    Rec rec{};
    Status st;
    int i = 0;
    ForEachField<Rec>([&](const auto& f) {
      if (st.ok()) {
        int c = column_of_field_[i];
        st = ParseFieldText(f, c >= 0 ? fields_[c] : std::string_view(), c >= 0, &rec);
      }
      ++i;
    });
    if (!st.ok()) return st;
    return rec;
  }

 private:
  std::array<int, FieldCount<Rec>()> column_of_field_{};
  size_t num_columns_ = 0;
  std::vector<std::string_view> fields_;
  std::vector<std::string> scratch_;
};

}  // namespace tally
