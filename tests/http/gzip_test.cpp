#include "ingest/gzip.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>

namespace tally {
namespace {

// Text that compresses well, plus some bytes that do not, so both code paths of deflate run.
std::string SampleText(size_t n, uint32_t seed = 7) {
  std::mt19937 rng(seed);
  std::string s;
  s.reserve(n);
  while (s.size() < n) {
    if (rng() % 4 == 0) {
      s += static_cast<char>(rng() & 0xff);
    } else {
      s += "{\"event\":\"usage\",\"mb\":" + std::to_string(rng() % 1000) + "}\n";
    }
  }
  s.resize(n);
  return s;
}

TEST(GzipTest, RoundTripsAtEveryLevelAndSize) {
  for (size_t n : {size_t{0}, size_t{1}, size_t{100}, size_t{70000}, size_t{1} << 20}) {
    const std::string text = SampleText(n);
    for (int level : {-1, 0, 1, 6, 9}) {
      const std::string gz = Gzip(text, level);
      ASSERT_GE(gz.size(), 18u) << "a gzip member has a 10-byte header and 8-byte trailer";
      EXPECT_EQ(static_cast<unsigned char>(gz[0]), 0x1f);
      EXPECT_EQ(static_cast<unsigned char>(gz[1]), 0x8b);
      Result<std::string> back = Gunzip(gz, n);
      ASSERT_TRUE(back.ok()) << "n=" << n << " level=" << level << ": " << back.status().ToString();
      EXPECT_EQ(*back, text) << "n=" << n << " level=" << level;
    }
  }
}

TEST(GzipTest, CompressesRepetitiveText) {
  const std::string text(100000, 'a');
  EXPECT_LT(Gzip(text).size(), text.size() / 50);
}

TEST(GzipTest, DecodesConcatenatedMembersIntoOneBody) {
  const std::string a = SampleText(5000, 1);
  const std::string b = SampleText(3000, 2);
  const std::string stream = Gzip(a) + Gzip("") + Gzip(b, 1);
  Result<std::string> back = Gunzip(stream, 1 << 20);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, a + b);
}

TEST(GzipTest, EmptyInputIsTruncated) {
  Result<std::string> r = Gunzip("", 100);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "truncated gzip stream");
  EXPECT_EQ(r.status().code(), Status::Code::kCorruption);
}

TEST(GzipTest, EveryProperPrefixOfAStreamIsTruncated) {
  const std::string text = SampleText(600);
  const std::string gz = Gzip(text);
  for (size_t len = 0; len < gz.size(); ++len) {
    Result<std::string> r = Gunzip(std::string_view(gz).substr(0, len), 1 << 20);
    ASSERT_FALSE(r.ok()) << "a " << len << "-byte prefix of " << gz.size() << " decoded";
    EXPECT_EQ(r.status().message(), "truncated gzip stream") << "prefix length " << len;
  }
}

TEST(GzipTest, TruncatedSecondMemberIsTruncated) {
  const std::string first = Gzip("complete member\n");
  const std::string second = Gzip("second member\n");
  for (size_t len = 1; len < second.size(); ++len) {
    Result<std::string> r = Gunzip(first + second.substr(0, len), 1 << 20);
    ASSERT_FALSE(r.ok()) << "second member cut at " << len;
    EXPECT_EQ(r.status().message(), "truncated gzip stream") << "second member cut at " << len;
  }
}

TEST(GzipTest, CorruptStreamsNameTheProblem) {
  const std::string text = SampleText(2000);
  const std::string gz = Gzip(text);

  Result<std::string> not_gzip = Gunzip("this is plain text, not gzip", 1 << 20);
  ASSERT_FALSE(not_gzip.ok());
  EXPECT_EQ(not_gzip.status().message(), "corrupt gzip stream: incorrect header check");
  EXPECT_EQ(not_gzip.status().code(), Status::Code::kCorruption);

  std::string bad_crc = gz;
  bad_crc[gz.size() - 8] ^= 0x01;  // first byte of the CRC-32
  Result<std::string> r1 = Gunzip(bad_crc, 1 << 20);
  ASSERT_FALSE(r1.ok());
  EXPECT_EQ(r1.status().message(), "corrupt gzip stream: incorrect data check");

  std::string bad_size = gz;
  bad_size[gz.size() - 4] ^= 0x01;  // first byte of ISIZE
  Result<std::string> r2 = Gunzip(bad_size, 1 << 20);
  ASSERT_FALSE(r2.ok());
  EXPECT_EQ(r2.status().message(), "corrupt gzip stream: incorrect length check");

  Result<std::string> trailing = Gunzip(gz + "garbage after the member", 1 << 20);
  ASSERT_FALSE(trailing.ok());
  EXPECT_EQ(trailing.status().message(), "corrupt gzip stream: incorrect header check");

  // A raw zlib stream is not gzip.
  Result<std::string> zlib_format = Gunzip(std::string("\x78\x9c\x03\x00\x00\x00\x00\x01", 8), 100);
  ASSERT_FALSE(zlib_format.ok());
  EXPECT_EQ(zlib_format.status().message().rfind("corrupt gzip stream: ", 0), 0u);
}

// Flipping any one byte either breaks the stream or touches a field the format does not check
// (modification time, OS): in no case may a different body come back.
TEST(GzipTest, ASingleFlippedByteNeverYieldsWrongData) {
  const std::string text = SampleText(1500);
  const std::string gz = Gzip(text);
  int errors = 0;
  for (size_t i = 0; i < gz.size(); ++i) {
    for (unsigned char mask : {0x01, 0x80, 0xff}) {
      std::string bad = gz;
      bad[i] = static_cast<char>(static_cast<unsigned char>(bad[i]) ^ mask);
      Result<std::string> r = Gunzip(bad, 1 << 20);
      if (r.ok()) {
        EXPECT_EQ(*r, text) << "byte " << i << " mask " << int{mask};
      } else {
        ++errors;
      }
    }
  }
  EXPECT_GT(errors, static_cast<int>(gz.size()));
}

TEST(GzipTest, RandomInputNeverCrashesOrExceedsTheLimit) {
  std::mt19937 rng(2024);
  const std::string seed_stream = Gzip(SampleText(3000));
  for (int round = 0; round < 3000; ++round) {
    std::string input;
    if (round % 2 == 0) {
      // Pure noise, sometimes behind a valid gzip magic so the decoder gets past the header.
      const size_t n = rng() % 200;
      input = round % 4 == 0 ? std::string("\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03", 10) : "";
      for (size_t i = 0; i < n; ++i) input += static_cast<char>(rng() & 0xff);
    } else {
      // A valid stream with a few random bytes overwritten.
      input = seed_stream;
      for (int k = 0; k < 4; ++k) input[rng() % input.size()] = static_cast<char>(rng() & 0xff);
    }
    Result<std::string> r = Gunzip(input, 4096);
    if (r.ok()) {
      EXPECT_LE(r->size(), 4096u);
    } else {
      EXPECT_FALSE(r.status().message().empty());
    }
  }
}

TEST(GzipTest, OutputLimitIsExact) {
  const std::string text = SampleText(100000);
  const std::string gz = Gzip(text);
  Result<std::string> at_limit = Gunzip(gz, text.size());
  ASSERT_TRUE(at_limit.ok()) << at_limit.status().ToString();
  EXPECT_EQ(*at_limit, text);

  Result<std::string> over = Gunzip(gz, text.size() - 1);
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.status().message(), "gzip body expands beyond 99999 bytes");
  EXPECT_EQ(over.status().code(), Status::Code::kInvalidArgument);

  EXPECT_TRUE(Gunzip(Gzip(""), 0).ok());
  Result<std::string> one = Gunzip(Gzip("x"), 0);
  ASSERT_FALSE(one.ok());
  EXPECT_EQ(one.status().message(), "gzip body expands beyond 0 bytes");
}

TEST(GzipTest, LimitCountsAllConcatenatedMembers) {
  const std::string member = Gzip(std::string(600, 'z'));
  EXPECT_TRUE(Gunzip(member + member, 1200).ok());
  Result<std::string> r = Gunzip(member + member, 1000);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "gzip body expands beyond 1000 bytes");
}

TEST(GzipTest, ABombIsStoppedAtTheLimit) {
  const std::string bomb = Gzip(std::string(size_t{32} << 20, '\0'), 9);
  ASSERT_LT(bomb.size(), 64u * 1024) << "32 MiB of zeros compresses to a few dozen KiB";
  Result<std::string> r = Gunzip(bomb, 1 << 20);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "gzip body expands beyond 1048576 bytes");
}

TEST(GzipTest, RejectsAnInvalidLevel) {
  EXPECT_THROW(Gzip("x", 10), std::invalid_argument);
  EXPECT_THROW(Gzip("x", -2), std::invalid_argument);
}

}  // namespace
}  // namespace tally
