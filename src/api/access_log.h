#pragma once
// The structured access log of `tally serve`: one NDJSON line per request, to stdout or a file
// (config serve.access_log). docs/operations.md lists the fields. Lines are buffered and written
// by one thread at least every 200 ms, so a request never waits for the terminal or the disk.

#include <memory>
#include <string>

#include "core/status.h"
#include "core/time.h"

namespace tally {

struct AccessEntry {
  Timestamp time;
  std::string remote;  // client address
  std::string method;
  std::string path;   // the path without the query string (tokens never reach the log)
  std::string route;  // the matched route pattern, or "unmatched"
  int status = 0;
  size_t bytes = 0;  // response body bytes
  double duration_ms = 0;
  std::string key_id;  // API key id or embed token id; "" when unauthenticated
  std::string role;    // "" when unauthenticated
  std::string user_agent;
};

//! The line for `e`, without the newline.
std::string AccessLine(const AccessEntry& e);

class AccessLog {
 public:
  //! `target` is "stdout" or a file path (appended to, created with mode 0600).
  static Result<std::unique_ptr<AccessLog>> Open(const std::string& target);
  ~AccessLog();  // writes what is buffered
  AccessLog(const AccessLog&) = delete;
  AccessLog& operator=(const AccessLog&) = delete;

  void Record(const AccessEntry& e);  // thread-safe
  void Flush();                       // writes what is buffered now

 private:
  struct Impl;
  explicit AccessLog(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tally
