#pragma once
// A blocking HTTP/1.1 client for tally's own tools and tests: load generators, the CLI talking to
// a running server, and end-to-end tests. It keeps one connection open between requests because
// ingest clients send many batches and a TCP handshake per batch would dominate small ones.

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"

namespace tally {

//! A response as received: status, body (not decoded; the client asks for no compression) and
//! lower-cased headers (repeated ones joined by ", ").
struct HttpClientResponse {
  int status = 0;
  std::string body;
  std::map<std::string, std::string> headers;  // names lower-cased
};

//! One keep-alive connection to host:port, reconnecting on demand (after the server closed it or
//! restarted). Not thread-safe: use one per thread. A transport failure returns an IOError status
//! (connection refused, reset, timeout) and the next call reconnects.
//!
//! `timeout` bounds each whole request: connecting, sending and receiving the full response (host
//! name resolution excepted). Before reusing an idle connection the client checks that the server
//! has not closed it, so a restarted server is reached without an error; a request is never sent
//! twice by the client itself, since a POST may not be safe to repeat.
class HttpClient {
 public:
  HttpClient(std::string host, uint16_t port,
             std::chrono::milliseconds timeout = std::chrono::seconds(30));
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;
  ~HttpClient();

  //! Sends one request and waits for its response. `headers` are added as given (Host,
  //! Content-Length and User-Agent are set by the client). Errors: IOError for transport failures,
  //! InvalidArgument for a method, target or header that cannot be sent.
  Result<HttpClientResponse> Request(
      std::string_view method, std::string_view target, std::string_view body = {},
      const std::vector<std::pair<std::string, std::string>>& headers = {});
  Result<HttpClientResponse> Get(std::string_view target) { return Request("GET", target); }
  //! A header sent with every later request unless the request gives its own (e.g.
  //! Authorization with an API key). InvalidArgument for a name or value that cannot be sent.
  Status SetDefaultHeader(std::string name, std::string value);
  Result<HttpClientResponse> Post(
      std::string_view target, std::string_view body, std::string_view content_type,
      const std::vector<std::pair<std::string, std::string>>& headers = {});

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tally
