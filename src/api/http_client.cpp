#include "api/http_client.h"

#include <sys/socket.h>

#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cerrno>
#include <optional>

namespace tally {

namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using beast::error_code;

constexpr uint32_t kMaxResponseHeaderBytes = 64 * 1024;

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// RFC 9110 token characters, as used in methods and header names.
bool IsToken(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    const bool alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    if (!alnum && std::string_view("!#$%&'*+-.^_`|~").find(c) == std::string_view::npos) {
      return false;
    }
    if (u >= 0x7f) return false;
  }
  return true;
}

bool HasLineBreakOrNul(std::string_view s) {
  return s.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos;
}

bool IsSendableTarget(std::string_view target) {
  if (target.empty()) return false;
  for (char c : target) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f) return false;
  }
  return true;
}

}  // namespace

//! The connection and the io_context that drives it; each request runs the io_context on the
//! caller's thread until the request completes or its deadline passes.
class HttpClient::Impl {
 public:
  Impl(std::string host, uint16_t port, std::chrono::milliseconds timeout)
      : host_(std::move(host)), port_(port), timeout_(timeout) {}
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;
  ~Impl() { Disconnect(); }

  std::vector<std::pair<std::string, std::string>> defaults_;

  Result<HttpClientResponse> Request(
      std::string_view method, std::string_view target, std::string_view body,
      const std::vector<std::pair<std::string, std::string>>& headers) {
    const std::string what = std::string(method) + " http://" + host_ + ":" +
                             std::to_string(port_) + std::string(target);
    if (!IsToken(method)) {
      return Status::InvalidArgument("HttpClient: bad method '" + std::string(method) + "'");
    }
    if (!IsSendableTarget(target)) {
      return Status::InvalidArgument("HttpClient: bad target '" + std::string(target) + "'");
    }
    http::request<http::string_body> req;
    req.method_string(method);
    req.target(target);
    req.version(11);
    req.set(http::field::host, host_ + ":" + std::to_string(port_));
    req.set(http::field::user_agent, "tally-http-client");
    for (const auto& header : defaults_) {
      const bool overridden = std::any_of(headers.begin(), headers.end(), [&](const auto& h) {
        return beast::iequals(h.first, header.first);
      });
      if (!overridden) req.set(header.first, header.second);
    }
    for (const auto& [name, value] : headers) {
      if (!IsToken(name) || HasLineBreakOrNul(value)) {
        return Status::InvalidArgument("HttpClient: bad header '" + name + "' for " + what);
      }
      if (beast::iequals(name, "content-length") || beast::iequals(name, "transfer-encoding")) {
        continue;  // framing is the client's business
      }
      if (beast::iequals(name, "host") || beast::iequals(name, "user-agent")) {
        req.set(name, value);
      } else {
        req.insert(name, value);
      }
    }
    req.body() = std::string(body);
    req.prepare_payload();
    const bool head = req.method() == http::verb::head;

    if (stream_ && !IdleConnectionUsable()) Disconnect();
    const auto deadline = std::chrono::steady_clock::now() + timeout_;
    if (!stream_) TALLY_RETURN_IF_ERROR(Connect(deadline, what));

    error_code ec;
    stream_->expires_at(deadline);
    http::async_write(*stream_, req, [&ec](error_code e, size_t) { ec = e; });
    RunUntilDone();
    if (ec) return Failure(what, "send", ec);

    // A server may precede the response with interim 1xx responses (100 Continue); skip them.
    std::optional<http::response_parser<http::string_body>> parser;
    for (;;) {
      parser.emplace();
      parser->header_limit(kMaxResponseHeaderBytes);
      parser->body_limit(boost::none);
      if (head) parser->skip(true);
      http::async_read(*stream_, buffer_, *parser, [&ec](error_code e, size_t) { ec = e; });
      RunUntilDone();
      if (ec) return Failure(what, "receive", ec);
      const unsigned status = parser->get().result_int();
      if (status < 100 || status >= 200 || status == 101) break;
    }
    stream_->expires_never();

    auto msg = parser->release();
    HttpClientResponse out;
    out.status = static_cast<int>(msg.result_int());
    for (const auto& field : msg) {
      auto [it, inserted] =
          out.headers.emplace(Lower(field.name_string()), std::string(field.value()));
      if (!inserted) {
        it->second += ", ";
        it->second += field.value();
      }
    }
    out.body = std::move(msg.body());
    if (!msg.keep_alive()) Disconnect();
    return out;
  }

 private:
  Status Connect(std::chrono::steady_clock::time_point deadline, const std::string& what) {
    error_code ec;
    tcp::resolver resolver(ioc_);
    const auto endpoints = resolver.resolve(host_, std::to_string(port_), ec);
    if (ec) return Status::IOError(what + ": cannot resolve '" + host_ + "': " + ec.message());
    stream_.emplace(ioc_);
    stream_->expires_at(deadline);
    stream_->async_connect(endpoints, [&ec](error_code e, const tcp::endpoint&) { ec = e; });
    RunUntilDone();
    if (ec) return Failure(what, "connect", ec);
    stream_->socket().set_option(tcp::no_delay(true), ec);
    buffer_.clear();
    return Status::Ok();
  }

  // Whether a kept-alive connection can carry the next request. A server that closed it (idle
  // time-out, restart) has left an end-of-file to read; finding it here, before sending, avoids
  // failing a request that never reached anyone. Unexpected bytes also mean the connection is in
  // an unknown state.
  bool IdleConnectionUsable() {
    if (buffer_.size() != 0) return false;
    char byte = 0;
    const ssize_t n = ::recv(stream_->socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
  }

  void RunUntilDone() {
    ioc_.restart();
    ioc_.run();
  }

  Status Failure(const std::string& what, std::string_view step, const error_code& ec) {
    Disconnect();
    std::string reason = ec == beast::error::timeout
                             ? "timed out after " + std::to_string(timeout_.count()) + " ms"
                             : ec.message();
    return Status::IOError(what + ": " + std::string(step) + ": " + reason);
  }

  void Disconnect() {
    if (!stream_) return;
    error_code ignored;
    stream_->socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_->close();
    stream_.reset();
    // Run what the close cancelled so no handler outlives the stream it refers to.
    RunUntilDone();
    buffer_.clear();
  }

  std::string host_;
  uint16_t port_;
  std::chrono::milliseconds timeout_;
  net::io_context ioc_{1};
  std::optional<beast::tcp_stream> stream_;
  beast::flat_buffer buffer_;
};

HttpClient::HttpClient(std::string host, uint16_t port, std::chrono::milliseconds timeout)
    : impl_(std::make_unique<Impl>(std::move(host), port, timeout)) {}

HttpClient::~HttpClient() = default;

Status HttpClient::SetDefaultHeader(std::string name, std::string value) {
  if (!IsToken(name) || HasLineBreakOrNul(value)) {
    return Status::InvalidArgument("HttpClient: bad default header '" + name + "'");
  }
  for (auto& [n, v] : impl_->defaults_) {
    if (beast::iequals(n, name)) {
      v = std::move(value);
      return Status::Ok();
    }
  }
  impl_->defaults_.emplace_back(std::move(name), std::move(value));
  return Status::Ok();
}

Result<HttpClientResponse> HttpClient::Request(
    std::string_view method, std::string_view target, std::string_view body,
    const std::vector<std::pair<std::string, std::string>>& headers) {
  return impl_->Request(method, target, body, headers);
}

Result<HttpClientResponse> HttpClient::Post(
    std::string_view target, std::string_view body, std::string_view content_type,
    const std::vector<std::pair<std::string, std::string>>& headers) {
  std::vector<std::pair<std::string, std::string>> all;
  all.reserve(headers.size() + 1);
  const bool has_type = std::any_of(headers.begin(), headers.end(), [](const auto& h) {
    return beast::iequals(h.first, "content-type");
  });
  if (!has_type && !content_type.empty()) all.emplace_back("Content-Type", content_type);
  all.insert(all.end(), headers.begin(), headers.end());
  return impl_->Request("POST", target, body, all);
}

}  // namespace tally
