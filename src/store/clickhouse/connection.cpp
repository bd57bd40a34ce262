#include "store/clickhouse/connection.h"

#include <cctype>

#include "api/http_client.h"
#include "core/url.h"

namespace tally {

namespace {

constexpr size_t kStatementInErrors = 300;  // how much of a statement an error message quotes

std::string TrimTrailingSpace(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

}  // namespace

std::string AbbreviateText(std::string_view s, size_t max) {
  if (s.size() <= max) return std::string(s);
  return std::string(s.substr(0, max)) + "...";
}

std::string ClickHouseQuote(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size() + 2);
  out += '\'';
  for (unsigned char c : s) {
    if (c == '\'' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7f) {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  out += '\'';
  return out;
}

ClickHouseConnection::ClickHouseConnection(std::string host, uint16_t port,
                                           std::chrono::seconds timeout)
    : host_(std::move(host)), port_(port), timeout_(timeout) {}

ClickHouseConnection::~ClickHouseConnection() = default;

void ClickHouseConnection::Close() {
  std::lock_guard<std::mutex> lock(mu_);
  client_.reset();
}

Result<std::string> ClickHouseConnection::Send(const std::string& url_query, std::string_view body,
                                               const ClickHouseSettings& settings,
                                               std::string_view statement_text) {
  std::string target = "/?" + url_query;
  bool wait_end_set = false;
  for (const auto& [name, value] : settings) {
    if (name.empty()) {
      return Status::InvalidArgument("empty setting name for ClickHouse statement `" +
                                     AbbreviateText(statement_text, kStatementInErrors) + "`");
    }
    wait_end_set = wait_end_set || name == "wait_end_of_query";
    target += (target.size() > 2 ? "&" : "") + UrlEncode(name) + "=" + UrlEncode(value);
  }
  if (!wait_end_set) target += std::string(target.size() > 2 ? "&" : "") + "wait_end_of_query=1";

  const std::string statement = AbbreviateText(statement_text, kStatementInErrors);
  std::lock_guard<std::mutex> lock(mu_);
  if (!client_) {
    client_ = std::make_unique<HttpClient>(
        host_, port_, std::chrono::duration_cast<std::chrono::milliseconds>(timeout_));
  }
  auto response = client_->Post(target, body, "text/plain; charset=UTF-8");
  if (!response.ok()) {
    return response.status().WithContext("ClickHouse statement `" + statement + "` on " +
                                         endpoint());
  }
  if (response->status == 200) return std::move(response->body);

  const std::string message = "ClickHouse on " + endpoint() + " rejected `" + statement +
                              "` (HTTP " + std::to_string(response->status) +
                              "): " + TrimTrailingSpace(AbbreviateText(response->body, 4000));
  switch (response->status) {
    case 404:
      return Status::NotFound(message);
    case 503:
      return Status::Unavailable(message);
    default:
      return Status::InvalidArgument(message);
  }
}

Result<std::string> ClickHouseConnection::Query(const std::string& sql,
                                                const ClickHouseSettings& settings) {
  return Send("", sql, settings, sql);
}

Status ClickHouseConnection::Insert(const std::string& table, const std::string& format,
                                    std::string_view data, const ClickHouseSettings& settings) {
  if (table.empty()) return Status::InvalidArgument("ClickHouse INSERT: empty table name");
  if (format.empty()) {
    return Status::InvalidArgument("ClickHouse INSERT into " + table + ": empty format name");
  }
  for (char c : format) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') {
      return Status::InvalidArgument("ClickHouse INSERT into " + table + ": format '" + format +
                                     "' is not a format name");
    }
  }
  const std::string statement = "INSERT INTO " + table + " FORMAT " + format;
  auto result = Send("query=" + UrlEncode(statement), data, settings, statement);
  return result.ok() ? Status::Ok() : result.status();
}

}  // namespace tally
