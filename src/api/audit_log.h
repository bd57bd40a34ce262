#pragma once
// The audit log: who asked what, and what they got. One NDJSON line per request, appended to
// DIR/audit/audit-YYYY-MM-DD.ndjson (the UTC day of the request). docs/security.md lists the
// fields.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "api/auth.h"
#include "core/status.h"
#include "core/time.h"

namespace tally {

//! One audited request.
struct AuditEntry {
  Timestamp time;            // when the request arrived
  std::string key_id;        // the API key id, when a key was used
  std::string token_id;      // the embed token's jti, when a token was used
  std::optional<Role> role;  // absent when the caller was not authenticated
  std::string scope;         // Principal::Scope(): "partner:7", "analyst", ...
  std::string method;        // "GET"
  std::string route;         // the route pattern or path, e.g. "/v1/query"
  std::string query;         // a summary the caller chooses (measures, filters, ...)
  int status = 0;            // the HTTP status answered
  int64_t rows = 0;          // rows returned
  double duration_ms = 0;    // time to answer
};

//! The line Record writes for `e`, without the newline: one JSON object with the members time,
//! key_id, token_id, role, scope, method, route, query, status, rows and duration_ms (key_id,
//! token_id and role are null when absent). Invalid UTF-8 in strings is escaped as \xNN.
std::string AuditLine(const AuditEntry& e);

//! An append-only audit log with one writer thread.
//!
//! Record formats the line on the caller's thread and queues it; the writer appends queued lines
//! to the file of their day at least every Options::flush_interval, and Flush and Close wait for
//! everything recorded before them. Lines are never interleaved or torn: the writer is the only
//! one to write to the files. When the queue holds more than Options::max_queued_bytes (the disk
//! is slow or failing), Record waits for the writer rather than dropping lines.
//!
//! Thread safety: every method may be called concurrently. Files are created with mode 0600.
class AuditLog {
 public:
  struct Options {
    std::chrono::milliseconds flush_interval{1000};
    size_t max_queued_bytes = 16u << 20;
  };

  //! Creates DIR/audit if missing and starts the writer.
  static Result<std::unique_ptr<AuditLog>> Open(const std::string& dir, Options options);
  static Result<std::unique_ptr<AuditLog>> Open(const std::string& dir) {
    return Open(dir, Options());
  }

  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;
  ~AuditLog();  // Close()

  //! Queues one line. After Close, lines are dropped and counted as lost.
  void Record(const AuditEntry& e);

  //! Waits until every line recorded before the call is written (and fsync'ed). Returns the first
  //! write error since the log was opened, if any, with the number of lines lost.
  Status Flush();

  //! Flushes, stops the writer and closes the files. Idempotent.
  Status Close();

  //! The file that holds the lines of `day`.
  std::string PathFor(Date day) const;

 private:
  class Impl;
  explicit AuditLog(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tally
