#pragma once
// An embedded HTTP/1.1 server for tally's API and its HTTP ingest source.
//
// The server is deliberately small: it parses requests, decodes gzip bodies, enforces size limits
// and time-outs, and hands each complete request to one HttpHandler. Routing, JSON and
// authentication belong to the handler. Boost.Beast does the parsing; it is kept out of this
// header (pimpl) because it is slow to compile and nothing that calls the server needs it.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"

namespace tally {

//! One request as a handler sees it: decoded path and query, lower-cased headers, plain body.
struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string target;  // raw target, e.g. "/v1/ingest/usage?x=1"
  std::string path;    // percent-decoded path without query
  // Decoded query parameters ('+' is a space); a repeated one keeps its last value and a bare
  // `flag` maps to "".
  std::map<std::string, std::string> query;
  std::map<std::string, std::string> headers;  // names lower-cased; repeated ones joined by ", "
  // Already gunzipped when Content-Encoding: gzip was sent; the content-encoding header is then
  // removed from `headers`, as it no longer applies.
  std::string body;
  std::string remote_address;  // the peer's IP address ("127.0.0.1"); "" when unknown
  std::string Header(std::string_view lower_name) const;  // "" when absent
};

//! What a handler answers. Content-Length (and Connection) are set by the server.
struct HttpResponse {
  int status = 200;  // 200..999; anything else (including 1xx) is sent as a 500
  std::string content_type = "application/json";
  std::string body;
  // Extra headers, sent in order (a name may repeat). Content-Length, Transfer-Encoding and
  // Connection are the server's and ignored here, as is any header with a line break in it.
  std::vector<std::pair<std::string, std::string>> headers;
  //! A streamed response (server-sent events): after `body`, the server calls `next` every
  //! `stream_interval`, on the connection's strand, and sends what it returns, until it returns
  //! nullopt, the client goes away or the server stops. A streamed response has no
  //! Content-Length: its end is the end of the connection (`Connection: close`).
  std::function<std::optional<std::string>()> next;
  std::chrono::milliseconds stream_interval{1000};
};

//! Called once per request on one of the server's worker threads. It may block (e.g. until data is
//! durable); the server must keep serving other connections on its other threads meanwhile.
//! It is called concurrently from several threads. An exception it throws becomes a 500.
using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

//! A small HTTP/1.1 server: keep-alive, pipelining-safe (one request at a time per connection),
//! listening on loopback only by default.
//!
//! Errors the server answers itself, each with a JSON body {"error": "..."}: 400 for malformed
//! HTTP, a bad target or a corrupt/truncated gzip body; 413 for a body over max_body_bytes (raw or
//! after gunzip); 415 for a Content-Encoding other than gzip/identity; 431 for headers over 64 KiB;
//! 505 for HTTP versions other than 1.0 and 1.1; 500 when the handler throws. Expect: 100-continue
//! is honoured. HEAD responses carry the Content-Length of the handler's body but no body.
//!
//! Thread safety: port() and Stop() may be called from any thread, but not from inside a handler
//! (Stop joins the worker threads).
class HttpServer {
 public:
  struct Options {
    std::string address = "127.0.0.1";
    uint16_t port = 0;                      // 0 picks a free port; see port()
    int threads = 8;                        // worker threads running I/O and handlers
    size_t max_body_bytes = 256u << 20;     // larger bodies (compressed or after gunzip) get 413
    std::chrono::seconds idle_timeout{60};  // a connection with no progress this long is closed
  };

  //! Binds, listens and starts the worker threads. Errors: InvalidArgument for a bad address or
  //! option, IOError when the address cannot be bound (e.g. the port is taken).
  static Result<std::unique_ptr<HttpServer>> Start(Options options, HttpHandler handler);

  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;
  ~HttpServer();  // stops

  //! The port the server listens on (the chosen one when Options::port was 0).
  uint16_t port() const;

  //! Stops accepting, closes connections and joins the threads. Idempotent.
  //! Idle connections are closed at once. Requests already being read or handled get up to
  //! min(idle_timeout, 10 s) to finish and send their response (with Connection: close); after
  //! that their connections are closed too. Stop still waits for handlers that are running.
  void Stop();

 private:
  class Impl;
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tally
