#include "ingest/quarantine.h"

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>

#include "core/text_buffer.h"
#include "core/utf8.h"

namespace tally {

namespace {

std::string Base64(std::string_view in) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    for (int k = 18; k >= 0; k -= 6) out += kAlphabet[(v >> k) & 63];
  }
  if (i + 1 == in.size()) {
    uint32_t v = uint8_t(in[i]) << 16;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == in.size()) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

}  // namespace

Result<std::string> Quarantine::Write(const std::string& load_id, const std::string& source,
                                      const std::string& table, const std::vector<RejectedRow>& rejects) const {
  if (rejects.empty()) return std::string();
  const Timestamp ts = WallClock();
  const std::string rel = "quarantine/" + FormatDate(ts.date()) + "/" + load_id + ".ndjson";
  const std::filesystem::path path = std::filesystem::path(data_dir_) / rel;
  std::error_code ec;
  std::filesystem::create_directories(path.parent_path(), ec);
  if (ec) return Status::IOError("cannot create " + path.parent_path().string() + ": " + ec.message());
  TextBuffer out(4096);
  for (const RejectedRow& r : rejects) {
    out.Put("{\"load_id\":");
    out.PutJsonString(load_id);
    out.Put(",\"source\":");
    out.PutJsonString(ValidUtf8OrEscaped(source));
    out.Put(",\"table\":");
    out.PutJsonString(table);
    out.Put(",\"line\":");
    out.PutInt(r.line);
    out.Put(",\"field\":");
    out.PutJsonString(r.field);
    out.Put(",\"check\":");
    out.PutJsonString(r.check);
    out.Put(",\"reason\":");
    out.PutJsonString(ValidUtf8OrEscaped(r.reason));
    if (FindInvalidUtf8(r.raw) == std::string_view::npos) {
      out.Put(",\"raw\":");
      out.PutJsonString(r.raw);
    } else {
      out.Put(",\"raw_base64\":");
      out.PutJsonString(Base64(r.raw));
    }
    out.Put(",\"raw_truncated\":");
    out.Put(r.raw_truncated ? "true" : "false");
    out.Put("}\n");
  }
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return Status::IOError("cannot open quarantine file " + path.string());
  std::string_view data = out.view();
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n <= 0) {
      ::close(fd);
      return Status::IOError("cannot write quarantine file " + path.string());
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return Status::IOError("cannot sync quarantine file " + path.string());
  return rel;
}

}  // namespace tally
