#pragma once
// TextBuffer: an append-only character buffer for writing CSV and JSON quickly. The generator
// writes millions of rows a second through it, so appends avoid iostreams, locales and
// per-call allocation: every append is an inlined capacity check and a copy into owned memory,
// and integers and doubles are formatted with std::to_chars straight into that memory.

#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <string_view>

#include "core/time.h"

namespace tally {

//! A growable byte buffer with fast formatting appends. Not thread safe. Movable, not copyable.
//! `align` aligns the storage (O_DIRECT writes need 4096).
class TextBuffer {
 public:
  explicit TextBuffer(size_t reserve = 1 << 16, size_t align = 64)
      : data_(Allocate(reserve < 64 ? 64 : reserve, align)), cap_(reserve < 64 ? 64 : reserve) {}
  TextBuffer(const TextBuffer&) = delete;
  TextBuffer& operator=(const TextBuffer&) = delete;
  TextBuffer(TextBuffer&&) noexcept = default;
  TextBuffer& operator=(TextBuffer&&) noexcept = default;

  void Clear() { size_ = 0; }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  std::string_view view() const { return {data_.get(), size_}; }
  const char* data() const { return data_.get(); }
  //! Removes the last n characters (used to drop a trailing separator).
  void Chop(size_t n) { size_ -= n; }

  [[gnu::always_inline]] void Put(char c) {
    Reserve(1);
    data_[size_++] = c;
  }
  [[gnu::always_inline]] void Put(std::string_view s) {
    Reserve(s.size());
    char* p = data_.get() + size_;
    // Most fields are a few bytes: a plain loop beats a call into memcpy.
    if (s.size() <= 16) {
      for (char c : s) *p++ = c;
    } else {
      std::memcpy(p, s.data(), s.size());
    }
    size_ += s.size();
  }
  [[gnu::always_inline]] void PutInt(int64_t v) {
    Reserve(24);
    char* p = data_.get() + size_;
    if (v >= 0 && v < 100000) {
      // Most integers written are small (durations, ids, amounts): digits without a call.
      auto u = static_cast<uint32_t>(v);
      int n = u < 10 ? 1 : u < 100 ? 2 : u < 1000 ? 3 : u < 10000 ? 4 : 5;
      for (int i = n - 1; i >= 0; --i) {
        p[i] = static_cast<char>('0' + u % 10);
        u /= 10;
      }
      size_ += n;
      return;
    }
    size_ = std::to_chars(p, data_.get() + cap_, v).ptr - data_.get();
  }
  //! Shortest text that reads back as the same double. Magnitudes from 1e18 up are written with
  //! an exponent: the plain form of such a value (e.g. 18446744073709552000) reads as an integer
  //! beyond 64 bits, which JSON parsers reject.
  void PutDouble(double v) {
    Reserve(32);
    char* p = data_.get() + size_;
    char* end = data_.get() + cap_;
    size_ = (std::fabs(v) >= 1e18 ? std::to_chars(p, end, v, std::chars_format::scientific)
                                  : std::to_chars(p, end, v))
                .ptr -
            data_.get();
  }
  [[gnu::always_inline]] void PutTimestamp(Timestamp t) {
    Reserve(32);
    size_ += FormatTimestampTo(t, data_.get() + size_);
  }
  //! A CSV field: quoted (with doubled quotes) only when it holds a separator, quote or newline.
  [[gnu::always_inline]] void PutCsvString(std::string_view s) {
    // One pass: copy while checking; almost no field needs quotes, so the rare one is redone.
    Reserve(2 * s.size() + 2);
    char* p = data_.get() + size_;
    bool special = false;
    for (char c : s) {
      special |= kCsvSpecial[static_cast<unsigned char>(c)];
      *p++ = c;
    }
    if (!special) [[likely]] {
      size_ = p - data_.get();
      return;
    }
    p = data_.get() + size_;
    *p++ = '"';
    for (char c : s) {
      if (c == '"') *p++ = '"';
      *p++ = c;
    }
    *p++ = '"';
    size_ = p - data_.get();
  }
  //! A JSON string literal with RFC 8259 escapes.
  void PutJsonString(std::string_view s) {
    Reserve(6 * s.size() + 2);
    char* p = data_.get() + size_;
    *p++ = '"';
    for (char c : s) {
      auto u = static_cast<unsigned char>(c);
      if (c == '"' || c == '\\') {
        *p++ = '\\';
        *p++ = c;
      } else if (u < 0x20) {
        static constexpr char kHex[] = "0123456789abcdef";
        std::memcpy(p, "\\u00", 4);
        p[4] = kHex[u >> 4];
        p[5] = kHex[u & 15];
        p += 6;
      } else {
        *p++ = c;
      }
    }
    *p++ = '"';
    size_ = p - data_.get();
  }

 private:
  [[gnu::always_inline]] void Reserve(size_t extra) {
    if (size_ + extra > cap_) [[unlikely]] Grow(size_ + extra);
  }
  struct AlignedDelete {
    std::align_val_t align;
    void operator()(char* p) const { ::operator delete[](p, align); }
  };
  using Storage = std::unique_ptr<char[], AlignedDelete>;
  static Storage Allocate(size_t bytes, size_t align) {
    std::align_val_t a{align};
    return Storage(static_cast<char*>(::operator new[](bytes, a)), AlignedDelete{a});
  }
  void Grow(size_t need) {
    size_t cap = cap_ * 2;
    while (cap < need) cap *= 2;
    Storage bigger = Allocate(cap, static_cast<size_t>(data_.get_deleter().align));
    std::memcpy(bigger.get(), data_.get(), size_);
    data_ = std::move(bigger);
    cap_ = cap;
  }
  // Characters that force a CSV field into quotes.
  static constexpr auto kCsvSpecial = [] {
    std::array<bool, 256> t{};
    t[','] = t['"'] = t['\r'] = t['\n'] = true;
    return t;
  }();
  Storage data_;
  size_t cap_;
  size_t size_ = 0;
};

}  // namespace tally
