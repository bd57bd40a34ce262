#pragma once
// Small writers the insight reports share: JSON (rapidjson, numbers that are not finite become
// null) and CSV (RFC 4180 quoting).

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cmath>
#include <cstdio>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "store/event_store.h"

namespace tally {

struct JsonOut {
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w{sb};

  void Key(std::string_view k) { w.Key(k.data(), static_cast<rapidjson::SizeType>(k.size())); }
  void String(std::string_view s) {
    w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
  }
  void Number(double x) {
    if (std::isfinite(x)) {
      w.Double(x);
    } else {
      w.Null();
    }
  }
  void Number(const std::optional<double>& x) {
    if (x) {
      Number(*x);
    } else {
      w.Null();
    }
  }
  //! An integer, or null when there is none.
  void Int(const std::optional<int64_t>& x) {
    if (x) {
      w.Int64(*x);
    } else {
      w.Null();
    }
  }
  void Strings(const std::vector<std::string>& v) {
    w.StartArray();
    for (const auto& s : v) String(s);
    w.EndArray();
  }
  //! "name": x, for a number.
  void Field(std::string_view name, double x) {
    Key(name);
    Number(x);
  }
  //! "name": ["<from>", "<to>"] in ISO 8601.
  void Range(std::string_view name, const TimeRange& r) {
    Key(name);
    w.StartArray();
    String(FormatTimestamp(r.from));
    String(FormatTimestamp(r.to));
    w.EndArray();
  }
  std::string Take() { return sb.GetString(); }
};

struct CsvOut {
  std::string out;
  bool row_start = true;

  void Field(std::string_view v) {
    if (!row_start) out += ',';
    row_start = false;
    if (v.find_first_of(",\"\r\n") == std::string_view::npos) {
      out += v;
      return;
    }
    out += '"';
    for (char c : v) {
      if (c == '"') out += '"';
      out += c;
    }
    out += '"';
  }
  void Number(double x) {
    if (!std::isfinite(x)) {
      Field("");
      return;
    }
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.10g", x);
    Field(buf);
  }
  //! A value that may be missing (an empty cell).
  void Number(const std::optional<double>& x) {
    if (x) {
      Number(*x);
    } else {
      Field("");
    }
  }
  //! The header row.
  void Header(std::initializer_list<std::string_view> names) {
    for (std::string_view n : names) Field(n);
    EndRow();
  }
  void EndRow() {
    out += "\r\n";
    row_start = true;
  }
  std::string Take() { return std::move(out); }
};

}  // namespace tally
