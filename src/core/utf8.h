#pragma once
// UTF-8 validation (RFC 3629): rejects overlong forms, surrogates and code points above U+10FFFF.

#include <string>
#include <string_view>

namespace tally {

//! Byte offset of the first invalid UTF-8 sequence in `s`, or npos if it is all valid.
inline size_t FindInvalidUtf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    unsigned char c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    } else {
      return i;
    }
    if (i + len > n) return i;
    if (p[i + 1] < lo || p[i + 1] > hi) return i;
    for (size_t k = 2; k < len; ++k) {
      if (p[i + k] < 0x80 || p[i + k] > 0xBF) return i;
    }
    i += len;
  }
  return std::string_view::npos;
}

//! `s` itself when it is valid UTF-8; otherwise a copy where each invalid byte is written as the
//! four characters \xNN, so it can be shown and embedded in JSON.
inline std::string ValidUtf8OrEscaped(std::string_view s) {
  std::string out;
  size_t bad = FindInvalidUtf8(s);
  if (bad == std::string_view::npos) return std::string(s);
  static constexpr char kHex[] = "0123456789ABCDEF";
  while (bad != std::string_view::npos) {
    out.append(s.substr(0, bad));
    const auto b = static_cast<unsigned char>(s[bad]);
    out += "\\x";
    out += kHex[b >> 4];
    out += kHex[b & 15];
    s.remove_prefix(bad + 1);
    bad = FindInvalidUtf8(s);
  }
  out.append(s);
  return out;
}

}  // namespace tally
