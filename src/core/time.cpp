#include "core/time.h"

#include <climits>
#include <cstring>

namespace tally {

namespace {

// Reads exactly `n` decimal digits at text[pos]; false if any is not a digit.
bool ReadDigits(std::string_view text, size_t pos, int n, int* out) {
  if (pos + n > text.size()) return false;
  int v = 0;
  for (int i = 0; i < n; ++i) {
    char c = text[pos + i];
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *out = v;
  return true;
}

Status Bad(std::string_view text, const char* what) {
  return Status::InvalidArgument("timestamp '" + std::string(text.substr(0, 64)) + "': " + what);
}

void Put2(char* p, int v) {
  p[0] = static_cast<char>('0' + v / 10);
  p[1] = static_cast<char>('0' + v % 10);
}

}  // namespace

Result<Date> ParseDate(std::string_view text) {
  int y, m, d;
  if (text.size() != 10 || text[4] != '-' || text[7] != '-' || !ReadDigits(text, 0, 4, &y) ||
      !ReadDigits(text, 5, 2, &m) || !ReadDigits(text, 8, 2, &d)) {
    return Status::InvalidArgument("date '" + std::string(text.substr(0, 64)) +
                                   "' is not YYYY-MM-DD");
  }
  if (m < 1 || m > 12 || d < 1 || d > DaysInMonth(y, m)) {
    return Status::InvalidArgument("date '" + std::string(text) + "' does not exist");
  }
  return Date{DaysFromCivil(y, m, d)};
}

std::string FormatDate(Date d) {
  CivilDate c = CivilFromDays(d.days);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02d", c.year, c.month, c.day);
  return buf;
}

Result<Timestamp> ParseTimestamp(std::string_view text) {
  if (text.size() < 19) return Bad(text, "too short for YYYY-MM-DDTHH:MM:SS");
  auto date = ParseDate(text.substr(0, 10));
  if (!date.ok()) return Bad(text, "the date part is not a valid YYYY-MM-DD");
  if (text[10] != 'T' && text[10] != 't' && text[10] != ' ') {
    return Bad(text, "expected 'T' between date and time");
  }
  int hh, mm, ss;
  if (!ReadDigits(text, 11, 2, &hh) || text[13] != ':' || !ReadDigits(text, 14, 2, &mm) ||
      text[16] != ':' || !ReadDigits(text, 17, 2, &ss)) {
    return Bad(text, "the time part is not HH:MM:SS");
  }
  if (hh > 23 || mm > 59 || ss > 59) return Bad(text, "hour, minute or second out of range");
  int64_t micros = 0;
  size_t pos = 19;
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    int digits = 0;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
      if (digits < 6) micros = micros * 10 + (text[pos] - '0');
      ++digits;
      ++pos;
    }
    if (digits == 0) return Bad(text, "a '.' must be followed by fraction digits");
    for (int i = digits; i < 6; ++i) micros *= 10;
  }
  int64_t offset_minutes = 0;
  if (pos < text.size()) {
    char z = text[pos];
    if ((z == 'Z' || z == 'z') && pos + 1 == text.size()) {
      pos += 1;
    } else if (z == '+' || z == '-') {
      int oh, om;
      if (!ReadDigits(text, pos + 1, 2, &oh) || pos + 6 != text.size() || text[pos + 3] != ':' ||
          !ReadDigits(text, pos + 4, 2, &om) || oh > 23 || om > 59) {
        return Bad(text, "the zone offset is not +HH:MM or -HH:MM");
      }
      offset_minutes = (z == '+' ? 1 : -1) * (oh * 60 + om);
      pos += 6;
    } else {
      return Bad(text, "unexpected characters after the time");
    }
  }
  int64_t t = int64_t{date->days} * kMicrosPerDay + hh * kMicrosPerHour + mm * kMicrosPerMinute +
              ss * kMicrosPerSecond + micros - offset_minutes * kMicrosPerMinute;
  // A zone offset can move 0000-01-01 or 9999-12-31 outside ISO 8601's four-digit years.
  static const int64_t kFirst = int64_t{DaysFromCivil(0, 1, 1)} * kMicrosPerDay;
  static const int64_t kEnd = int64_t{DaysFromCivil(10000, 1, 1)} * kMicrosPerDay;
  if (t < kFirst || t >= kEnd) return Bad(text, "outside the years 0000 to 9999 in UTC");
  return Timestamp{t};
}

int FormatTimestampTo(Timestamp t, char* out) {
  Date d = t.date();
  int64_t in_day = t.micros - int64_t{d.days} * kMicrosPerDay;
  int secs = static_cast<int>(in_day / kMicrosPerSecond);
  int frac = static_cast<int>(in_day % kMicrosPerSecond);
  // Consecutive timestamps mostly share a day: reuse its "YYYY-MM-DDT" text.
  thread_local int32_t cached_days = INT32_MIN;
  thread_local char prefix[11];
  if (d.days != cached_days) {
    CivilDate c = CivilFromDays(d.days);
    int y = c.year;
    if (y < 0 || y > 9999) y = y < 0 ? 0 : 9999;  // outside ISO 8601's four-digit years: clamp
    prefix[0] = static_cast<char>('0' + y / 1000);
    prefix[1] = static_cast<char>('0' + y / 100 % 10);
    prefix[2] = static_cast<char>('0' + y / 10 % 10);
    prefix[3] = static_cast<char>('0' + y % 10);
    prefix[4] = '-';
    Put2(prefix + 5, c.month);
    prefix[7] = '-';
    Put2(prefix + 8, c.day);
    prefix[10] = 'T';
    cached_days = d.days;
  }
  std::memcpy(out, prefix, 11);
  Put2(out + 11, secs / 3600);
  out[13] = ':';
  Put2(out + 14, secs / 60 % 60);
  out[16] = ':';
  Put2(out + 17, secs % 60);
  int n = 19;
  if (frac != 0) {
    out[n++] = '.';
    int digits = frac % 1000 == 0 ? 3 : 6;
    int v = digits == 3 ? frac / 1000 : frac;
    for (int i = digits - 1; i >= 0; --i) {
      out[n + i] = static_cast<char>('0' + v % 10);
      v /= 10;
    }
    n += digits;
  }
  out[n++] = 'Z';
  return n;
}

std::string FormatTimestamp(Timestamp t) {
  char buf[32];
  int n = FormatTimestampTo(t, buf);
  return std::string(buf, n);
}

}  // namespace tally
