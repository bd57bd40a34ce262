// TextBuffer is the generator's hot path: its fast paths must write exactly what the slow,
// obvious code would.

#include "core/text_buffer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <limits>
#include <string>

#include "core/rng.h"

namespace tally {
namespace {

TEST(TextBuffer, IntegersMatchToStringAcrossTheFastPathBoundaries) {
  TextBuffer b(64);  // small, so growth happens along the way
  std::string expected;
  for (int64_t v : {int64_t{0}, int64_t{9}, int64_t{10}, int64_t{99}, int64_t{100}, int64_t{9999},
                    int64_t{10000}, int64_t{99999}, int64_t{100000}, int64_t{-1}, int64_t{-100000},
                    std::numeric_limits<int64_t>::max(), std::numeric_limits<int64_t>::min()}) {
    b.PutInt(v);
    b.Put(',');
    expected += std::to_string(v) + ",";
  }
  EXPECT_EQ(b.view(), expected);
}

TEST(TextBuffer, CsvQuotesOnlyWhatNeedsQuotingAndGrows) {
  TextBuffer b(64);
  b.PutCsvString("plain");
  b.Put('|');
  b.PutCsvString("a,b");
  b.Put('|');
  b.PutCsvString("say \"hi\"");
  b.Put('|');
  b.PutCsvString("line\nbreak");
  b.Put('|');
  std::string long_text(1000, 'x');
  b.PutCsvString(long_text + ",");
  EXPECT_EQ(b.view(), "plain|\"a,b\"|\"say \"\"hi\"\"\"|\"line\nbreak\"|\"" + long_text + ",\"");
}

TEST(TextBuffer, JsonEscapesQuotesBackslashesAndControlCharacters) {
  TextBuffer b(64);
  b.PutJsonString(std::string("a\"b\\c\n\x01", 7));
  EXPECT_EQ(b.view(), "\"a\\\"b\\\\c\\u000a\\u0001\"");
}

// Found by the decode fuzzer: 1.8446744073709552e19 was written as 18446744073709552000, an
// integer beyond 64 bits that JSON readers reject. Large magnitudes keep their exponent.
TEST(TextBuffer, DoublesReadBackExactlyAndHugeOnesKeepAnExponent) {
  for (double v : {0.0, -0.5, 1.25, 123456.789, 1e17, 1.8446744073709552e19, -9.3e18, 1e300,
                   5e-324}) {
    TextBuffer b(64);
    b.PutDouble(v);
    std::string text(b.view());
    EXPECT_EQ(std::strtod(text.c_str(), nullptr), v) << text;
    if (std::abs(v) >= 1e18) {
      EXPECT_NE(text.find('e'), std::string::npos) << text;
    }
  }
}

TEST(TextBuffer, TimestampsAcrossDaysUseTheRightDate) {
  TextBuffer b(64);
  // The formatter caches the current day's text: alternate days to prove the cache is keyed.
  b.PutTimestamp(*ParseTimestamp("2024-07-01T23:59:59Z"));
  b.Put(' ');
  b.PutTimestamp(*ParseTimestamp("2024-07-02T00:00:00Z"));
  b.Put(' ');
  b.PutTimestamp(*ParseTimestamp("2024-07-01T00:00:00.250Z"));
  EXPECT_EQ(b.view(), "2024-07-01T23:59:59Z 2024-07-02T00:00:00Z 2024-07-01T00:00:00.250Z");
}

TEST(TablePicker, FollowsTheWeightsAndNeverPicksAZeroWeight) {
  std::vector<double> w = {1, 0, 3, 0.5};
  TablePicker picker(w);
  Rng r(9);
  int counts[4] = {0, 0, 0, 0};
  const int n = 400000;
  for (int i = 0; i < n; ++i) ++counts[picker.Pick(r.Next())];
  EXPECT_EQ(counts[1], 0);
  EXPECT_NEAR(counts[0] / double(n), 1 / 4.5, 0.003);
  EXPECT_NEAR(counts[2] / double(n), 3 / 4.5, 0.003);
  EXPECT_NEAR(counts[3] / double(n), 0.5 / 4.5, 0.003);
}

}  // namespace
}  // namespace tally
