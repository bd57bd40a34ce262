#pragma once
// TextBuffer: an append-only character buffer for writing CSV and JSON quickly. The generator
// writes millions of rows a second through it, so appends avoid iostreams, locales and
// per-call allocation: integers and doubles go through std::to_chars into reserved space.

#include <array>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "core/time.h"

namespace tally {

//! A growable byte buffer with fast formatting appends. Not thread safe.
class TextBuffer {
 public:
  explicit TextBuffer(size_t reserve = 1 << 16) { buf_.reserve(reserve); }

  void Clear() { buf_.clear(); }
  size_t size() const { return buf_.size(); }
  bool empty() const { return buf_.empty(); }
  std::string_view view() const { return buf_; }
  const char* data() const { return buf_.data(); }
  //! Removes the last n characters (used to drop a trailing separator).
  void Chop(size_t n) { buf_.resize(buf_.size() - n); }

  void Put(char c) { buf_.push_back(c); }
  void Put(std::string_view s) { buf_.append(s); }
  void PutInt(int64_t v) {
    char tmp[24];
    auto r = std::to_chars(tmp, tmp + sizeof tmp, v);
    buf_.append(tmp, r.ptr);
  }
  //! Shortest text that reads back as the same double.
  void PutDouble(double v) {
    char tmp[32];
    auto r = std::to_chars(tmp, tmp + sizeof tmp, v);
    buf_.append(tmp, r.ptr);
  }
  void PutTimestamp(Timestamp t) {
    char tmp[32];
    int n = FormatTimestampTo(t, tmp);
    buf_.append(tmp, n);
  }
  //! A CSV field: quoted (with doubled quotes) only when it holds a separator, quote or newline.
  void PutCsvString(std::string_view s) {
    bool plain = true;
    for (char c : s) plain &= !kCsvSpecial[static_cast<unsigned char>(c)];
    if (plain) {
      buf_.append(s);
      return;
    }
    buf_.push_back('"');
    for (char c : s) {
      if (c == '"') buf_.push_back('"');
      buf_.push_back(c);
    }
    buf_.push_back('"');
  }
  //! A JSON string literal with RFC 8259 escapes.
  void PutJsonString(std::string_view s) {
    buf_.push_back('"');
    for (char c : s) {
      auto u = static_cast<unsigned char>(c);
      if (c == '"' || c == '\\') {
        buf_.push_back('\\');
        buf_.push_back(c);
      } else if (u < 0x20) {
        static constexpr char kHex[] = "0123456789abcdef";
        buf_.append("\\u00");
        buf_.push_back(kHex[u >> 4]);
        buf_.push_back(kHex[u & 15]);
      } else {
        buf_.push_back(c);
      }
    }
    buf_.push_back('"');
  }

 private:
  // Characters that force a CSV field into quotes.
  static constexpr auto kCsvSpecial = [] {
    std::array<bool, 256> t{};
    t[','] = t['"'] = t['\r'] = t['\n'] = true;
    return t;
  }();
  std::string buf_;
};

}  // namespace tally
