#pragma once
// UTC time. A Timestamp counts microseconds since 1970-01-01T00:00:00Z; a Date counts days.
// Civil-calendar conversions use the proleptic Gregorian calendar and never consult a time zone:
// every time tally stores or prints is UTC.

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/status.h"

namespace tally {

inline constexpr int64_t kMicrosPerSecond = 1'000'000;
inline constexpr int64_t kMicrosPerMinute = 60 * kMicrosPerSecond;
inline constexpr int64_t kMicrosPerHour = 60 * kMicrosPerMinute;
inline constexpr int64_t kMicrosPerDay = 24 * kMicrosPerHour;

//! A calendar day in UTC, as days since 1970-01-01.
struct Date {
  int32_t days = 0;
  friend constexpr bool operator==(Date, Date) = default;
  friend constexpr auto operator<=>(Date, Date) = default;
};

struct CivilDate {
  int year = 1970;
  int month = 1;  // 1..12
  int day = 1;    // 1..31
};

//! An instant in UTC with microsecond resolution.
struct Timestamp {
  int64_t micros = 0;
  static constexpr Timestamp FromSeconds(int64_t s) { return {s * kMicrosPerSecond}; }
  constexpr int64_t seconds() const { return micros >= 0 ? micros / kMicrosPerSecond
                                                         : -((-micros + kMicrosPerSecond - 1) / kMicrosPerSecond); }
  constexpr Date date() const {
    int64_t d = micros >= 0 ? micros / kMicrosPerDay : -((-micros + kMicrosPerDay - 1) / kMicrosPerDay);
    return Date{static_cast<int32_t>(d)};
  }
  friend constexpr bool operator==(Timestamp, Timestamp) = default;
  friend constexpr auto operator<=>(Timestamp, Timestamp) = default;
};

constexpr Timestamp StartOfDay(Date d) { return Timestamp{int64_t{d.days} * kMicrosPerDay}; }

//! The wall clock, in UTC microseconds.
inline Timestamp WallClock() {
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  return Timestamp{std::chrono::duration_cast<std::chrono::microseconds>(now).count()};
}

//! Days since 1970-01-01 of a civil date (Howard Hinnant's days_from_civil algorithm).
constexpr int32_t DaysFromCivil(int y, int m, int d) {
  y -= m <= 2;
  const int era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int>(doe) - 719468;
}

//! The civil date of a day count (inverse of DaysFromCivil).
constexpr CivilDate CivilFromDays(int32_t z) {
  z += 719468;
  const int era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int y = static_cast<int>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  return CivilDate{y + (m <= 2), static_cast<int>(m), static_cast<int>(d)};
}

constexpr bool IsLeapYear(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }
constexpr int DaysInMonth(int y, int m) {
  constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && IsLeapYear(y) ? 29 : kDays[m - 1];
}

//! 0 = Monday ... 6 = Sunday.
constexpr int Weekday(Date d) { return static_cast<int>(((int64_t{d.days} % 7) + 7 + 3) % 7); }

//! Parses "YYYY-MM-DD", checking that the day exists.
Result<Date> ParseDate(std::string_view text);
//! "YYYY-MM-DD".
std::string FormatDate(Date d);

//! Parses ISO 8601 / RFC 3339: "YYYY-MM-DDTHH:MM:SS[.ffffff](Z|+HH:MM|-HH:MM)". A space may stand
//! for the 'T', and a missing zone means UTC. Errors name the text and the part that is wrong.
Result<Timestamp> ParseTimestamp(std::string_view text);
//! "YYYY-MM-DDTHH:MM:SSZ", with ".fff" or ".ffffff" only when the instant has a fraction.
std::string FormatTimestamp(Timestamp t);
//! Appends the FormatTimestamp text to `out`; returns the number of characters written. `out` must
//! have room for 27 characters.
int FormatTimestampTo(Timestamp t, char* out);

}  // namespace tally
