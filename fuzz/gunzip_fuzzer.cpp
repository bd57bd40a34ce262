// libFuzzer target for gzip decoding (src/ingest/gzip.h): Gunzip on arbitrary bytes with a small
// output limit, and Gzip/Gunzip round trips of the input read as plain text. docs/fuzzing.md
// lists the invariants and how to run and reproduce.
//
// Input layout:
//   byte 0  Gunzip's max_out: one of kLimits, by value % 8
//   byte 1  Gzip's level: value % 11 - 1 (zlib's -1..9)
//   byte 2  where the compressed round-trip text is cut for the truncation check
//   rest    the bytes handed to Gunzip, and the plain text of the round trips
//
// Every violated invariant prints what broke and aborts, so libFuzzer keeps the input.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "ingest/gzip.h"

namespace tally {
namespace {

[[noreturn]] void Violated(const char* invariant, const std::string& detail) {
  std::fprintf(stderr, "\ngunzip_fuzzer: invariant violated: %s\n  %s\n", invariant,
               detail.c_str());
  std::abort();
}

#define FUZZ_CHECK(cond, detail)            \
  do {                                      \
    if (!(cond)) Violated(#cond, (detail)); \
  } while (0)

constexpr size_t kLimits[] = {0, 1, 16, 255, 1024, 4096, 16384, 65536};
// A second, larger limit for the checks that a smaller one must not change how a stream ends.
constexpr size_t kLargeLimit = size_t{1} << 20;

std::string Describe(const Result<std::string>& r) {
  return r.ok() ? "ok, " + std::to_string(r->size()) + " bytes" : r.status().ToString();
}

//! The documented errors, and nothing else: truncated or corrupt (kCorruption), too large
//! (kInvalidArgument, naming the limit).
void CheckError(const Status& st, size_t max_out) {
  const std::string& m = st.message();
  if (st.code() == Status::Code::kInvalidArgument) {
    FUZZ_CHECK(m == "gzip body expands beyond " + std::to_string(max_out) + " bytes",
               st.ToString());
  } else {
    FUZZ_CHECK(st.code() == Status::Code::kCorruption, st.ToString());
    FUZZ_CHECK(
        m == "truncated gzip stream" || (m.starts_with("corrupt gzip stream: ") && m.size() > 21),
        st.ToString());
  }
}

//! Gunzip on arbitrary bytes: bounded output, documented errors, and a result that does not
//! depend on max_out except through the size check.
void CheckGunzip(std::string_view in, size_t max_out) {
  const Result<std::string> r = Gunzip(in, max_out);
  if (!r.ok()) {
    CheckError(r.status(), max_out);
    if (r.status().code() == Status::Code::kCorruption) {
      // Corruption is found at the same place whatever the room for output.
      const Result<std::string> large = Gunzip(in, kLargeLimit);
      FUZZ_CHECK(!large.ok() && large.status().message() == r.status().message(),
                 "with max_out " + std::to_string(max_out) + ": " + Describe(r) + "; with " +
                     std::to_string(kLargeLimit) + ": " + Describe(large));
    }
    return;
  }
  FUZZ_CHECK(r->size() <= max_out, Describe(r) + " with max_out " + std::to_string(max_out));
  // The exact size is enough room, and one byte less is not.
  const Result<std::string> exact = Gunzip(in, r->size());
  FUZZ_CHECK(exact.ok() && *exact == *r, "max_out = output size: " + Describe(exact));
  if (!r->empty()) {
    const Result<std::string> short_by_one = Gunzip(in, r->size() - 1);
    FUZZ_CHECK(
        !short_by_one.ok() && short_by_one.status().code() == Status::Code::kInvalidArgument,
        "max_out one less than " + std::to_string(r->size()) + ": " + Describe(short_by_one));
  }
}

//! Gzip then Gunzip gives the text back, for one member, two concatenated members, a cut stream
//! (truncated) and a stream with a byte after it (trailing garbage).
void CheckRoundTrip(std::string_view text, int level, uint8_t cut_byte) {
  const std::string z = Gzip(text, level);
  const Result<std::string> back = Gunzip(z, text.size());
  FUZZ_CHECK(back.ok() && *back == text, "Gunzip(Gzip(text, " + std::to_string(level) + ")) of " +
                                             std::to_string(text.size()) +
                                             " bytes: " + Describe(back));
  if (!text.empty()) {
    const Result<std::string> tight = Gunzip(z, text.size() - 1);
    FUZZ_CHECK(!tight.ok() && tight.status().code() == Status::Code::kInvalidArgument,
               "max_out one short of the text: " + Describe(tight));
  }
  const Result<std::string> twice = Gunzip(z + z, 2 * text.size());
  FUZZ_CHECK(twice.ok() && *twice == std::string(text) + std::string(text),
             "two members: " + Describe(twice));

  const size_t cut = z.size() * cut_byte / 256;  // always short of the whole stream
  const Result<std::string> cut_r = Gunzip(std::string_view(z).substr(0, cut), text.size());
  FUZZ_CHECK(!cut_r.ok() && cut_r.status().code() == Status::Code::kCorruption,
             "stream of " + std::to_string(z.size()) + " bytes cut at " + std::to_string(cut) +
                 ": " + Describe(cut_r));
  const Result<std::string> trailing = Gunzip(z + static_cast<char>(cut_byte), text.size());
  FUZZ_CHECK(!trailing.ok() && trailing.status().code() == Status::Code::kCorruption,
             "stream followed by byte " + std::to_string(cut_byte) + ": " + Describe(trailing));
}

}  // namespace
}  // namespace tally

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tally;
  if (size < 3) return 0;
  const size_t max_out = kLimits[data[0] % 8];
  const int level = data[1] % 11 - 1;
  const uint8_t cut_byte = data[2];
  const std::string_view rest(reinterpret_cast<const char*>(data) + 3, size - 3);
  CheckGunzip(rest, max_out);
  CheckRoundTrip(rest, level, cut_byte);
  return 0;
}
