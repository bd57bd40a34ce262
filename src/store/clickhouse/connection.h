#pragma once
// One ClickHouse server's HTTP interface, as the event store, the local server and the cluster
// tools talk to it: a statement is the POST body, settings go into the URL, and errors come back
// as Status values that quote the statement and ClickHouse's own message.
//
// 18.16 has no query parameters over HTTP (they came in 19.x), so callers that bind values format
// them as literals with ClickHouseLiteral() (the drivers of that era bound values the same way).
//
// `wait_end_of_query=1` is added unless the caller sets it: without it 18.16 streams the result
// and reports an error that happens after the first block as HTTP 200 with "Code: ..." appended to
// the body, which a caller would take for data.
//
// Thread safety: calls may come from several threads; they share one keep-alive connection, so
// they are serialized.

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"

namespace tally {

class HttpClient;

using ClickHouseSettings = std::vector<std::pair<std::string, std::string>>;

class ClickHouseConnection {
 public:
  ClickHouseConnection(std::string host, uint16_t port,
                       std::chrono::seconds timeout = std::chrono::seconds(300));
  ClickHouseConnection(const ClickHouseConnection&) = delete;
  ClickHouseConnection& operator=(const ClickHouseConnection&) = delete;
  ~ClickHouseConnection();

  //! Runs one statement and returns the response body. Errors: IOError when the server cannot be
  //! reached, otherwise the HTTP status's kind (NotFound, Unavailable, else InvalidArgument) with
  //! a message naming the statement and quoting ClickHouse's "Code: N, e.displayText() = ..." text.
  Result<std::string> Query(const std::string& sql, const ClickHouseSettings& settings = {});

  //! Runs `INSERT INTO <table> FORMAT <format>` with `data` as the body. `table` may be
  //! "db.table" or "db.table (col, ...)"; `format` is a format name such as TabSeparated.
  Status Insert(const std::string& table, const std::string& format, std::string_view data,
                const ClickHouseSettings& settings = {});

  //! Drops the kept connection (the next call reconnects). For a server that was stopped.
  void Close();

  const std::string& host() const { return host_; }
  uint16_t port() const { return port_; }
  std::string endpoint() const { return host_ + ":" + std::to_string(port_); }

 private:
  Result<std::string> Send(const std::string& url_query, std::string_view body,
                           const ClickHouseSettings& settings, std::string_view statement);

  std::string host_;
  uint16_t port_;
  std::chrono::seconds timeout_;
  std::mutex mu_;
  std::unique_ptr<HttpClient> client_;  // guarded by mu_; created on first use
};

//! `s` as a ClickHouse string literal: single quotes, with \ and ' escaped and control bytes as
//! \xHH, so no value can end the literal.
std::string ClickHouseQuote(std::string_view s);

//! The first `max` bytes of `s`, with "..." when it was cut (for statements quoted in errors).
std::string AbbreviateText(std::string_view s, size_t max);

}  // namespace tally
