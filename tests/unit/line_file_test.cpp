// LineFile writes full blocks with O_DIRECT from a writer thread and the tail through the page
// cache. Whatever the path, the file must hold exactly the bytes that were appended.

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "generate/output.h"
#include "world_fixture.h"

namespace tally {
namespace {

// Appends `total` bytes of numbered lines, committing each line, and returns what was written.
std::string WriteLines(LineFile* f, size_t total) {
  std::string expected;
  for (int64_t i = 0; expected.size() < total; ++i) {
    std::string line = "row " + std::to_string(i) + " " + std::string(static_cast<size_t>(i % 97), 'x') + "\n";
    f->buffer().Put(line);
    f->Commit(1);
    expected += line;
  }
  return expected;
}

void CheckRoundTrip(const std::string& dir, IoQueue* io, size_t total) {
  std::filesystem::create_directories(dir);
  std::string path = dir + "/f.csv";
  std::string expected;
  {
    LineFile f;
    ASSERT_TRUE(f.Open(path, io).ok());
    expected = WriteLines(&f, total);
    ASSERT_TRUE(f.Close().ok());
  }
  std::string got = testing::ReadFile(path);
  ASSERT_EQ(got.size(), expected.size()) << dir << " " << total;
  EXPECT_TRUE(got == expected) << dir << " " << total;
  std::filesystem::remove_all(dir);
}

TEST(LineFile, HoldsExactlyTheAppendedBytesAcrossBlockAndFlushBoundaries) {
  IoQueue io;
  for (size_t total : {size_t{0}, size_t{1}, size_t{4095}, size_t{4096}, size_t{4097},
                       size_t{(1 << 20) - 3}, size_t{(1 << 20) + 5000}, size_t{5 << 20}}) {
    CheckRoundTrip(testing::TempDir("linefile_async"), &io, total);
    CheckRoundTrip(testing::TempDir("linefile_sync"), nullptr, total);
  }
}

TEST(LineFile, WorksWhereDirectIoIsRefused) {
  // tmpfs refuses O_DIRECT: the file falls back to ordinary writes.
  if (!std::filesystem::is_directory("/dev/shm")) GTEST_SKIP() << "no /dev/shm";
  IoQueue io;
  std::string dir = "/dev/shm/tally_linefile_" + std::to_string(::getpid());
  CheckRoundTrip(dir, &io, (3 << 20) + 123);
}

TEST(LineFile, ReportsAFileThatCannotBeCreated) {
  LineFile f;
  Status s = f.Open("/proc/no/such/dir/f.csv");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("/proc/no/such/dir/f.csv"), std::string::npos);
}

}  // namespace
}  // namespace tally
