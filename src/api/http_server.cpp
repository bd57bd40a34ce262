#include "api/http_server.h"

#include <algorithm>
#include <atomic>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <condition_variable>
#include <cstdio>
#include <exception>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>

#include "ingest/gzip.h"

namespace tally {

namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using beast::error_code;

// Request headers larger than this get 431. Beast's default (8 KiB) is tight for long cookies or
// tokens; 64 KiB still bounds what one connection can make the server hold before a body starts.
constexpr uint32_t kMaxHeaderBytes = 64 * 1024;
// After an error response that leaves part of a request unread, the server stops sending and reads
// (and discards) what the client is still sending for up to this long before closing. Closing at
// once would make the kernel answer the unread bytes with a reset, which can destroy the error
// response before the client reads it.
constexpr std::chrono::seconds kLingerTime{2};
constexpr size_t kLingerMaxBytes = 16u << 20;
// The longest Stop() waits for requests in progress to be answered.
constexpr std::chrono::seconds kMaxStopDrain{10};

// ---------------------------------------------------------------------------------------------
// Text helpers for requests and error bodies.

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::string_view TrimSpaces(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// A JSON string body for `msg`. Bytes outside printable ASCII are escaped as \u00XX so the
// result is valid JSON whatever a message quotes from the request.
std::string ErrorJson(std::string_view msg) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "{\"error\":\"";
  for (char ch : msg) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c >= 0x20 && c < 0x7f) {
      out += ch;
    } else {
      out += "\\u00";
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    }
  }
  out += "\"}";
  return out;
}

HttpResponse ErrorResponse(int status, std::string_view msg) {
  HttpResponse r;
  r.status = status;
  r.body = ErrorJson(msg);
  return r;
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Decodes %XX escapes (and '+' as a space in query components). False on a malformed escape.
bool PercentDecode(std::string_view in, bool plus_is_space, std::string& out) {
  out.clear();
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    const char c = in[i];
    if (c == '%') {
      if (i + 2 >= in.size()) return false;
      const int hi = HexDigit(in[i + 1]);
      const int lo = HexDigit(in[i + 2]);
      if (hi < 0 || lo < 0) return false;
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return true;
}

// Splits a request target into its decoded path and query parameters. Accepts the origin form
// ("/a/b?x=1"), the absolute form ("http://host/a/b?x=1", which proxies send) and "*".
Status ParseTarget(std::string_view target, std::string& path,
                   std::map<std::string, std::string>& query) {
  if (target == "*") {
    path = "*";
    return Status::Ok();
  }
  std::string_view rest = target;
  const std::string lower_start = Lower(target.substr(0, 8));
  for (std::string_view scheme : {"http://", "https://"}) {
    if (std::string_view(lower_start).substr(0, scheme.size()) == scheme) {
      rest.remove_prefix(scheme.size());
      const size_t slash = rest.find_first_of("/?");
      rest = slash == std::string_view::npos ? std::string_view("/") : rest.substr(slash);
      break;
    }
  }
  if (rest.empty() || (rest.front() != '/' && rest.front() != '?')) {
    return Status::InvalidArgument("request target must start with '/'");
  }
  if (const size_t hash = rest.find('#'); hash != std::string_view::npos) {
    rest = rest.substr(0, hash);
  }
  const size_t qmark = rest.find('?');
  std::string_view raw_path = rest.substr(0, qmark);
  if (raw_path.empty()) raw_path = "/";
  if (!PercentDecode(raw_path, /*plus_is_space=*/false, path)) {
    return Status::InvalidArgument("bad percent-encoding in request path");
  }
  if (qmark == std::string_view::npos) return Status::Ok();
  std::string_view raw_query = rest.substr(qmark + 1);
  std::string key;
  std::string value;
  while (!raw_query.empty()) {
    const size_t amp = raw_query.find('&');
    const std::string_view pair = raw_query.substr(0, amp);
    raw_query = amp == std::string_view::npos ? std::string_view() : raw_query.substr(amp + 1);
    if (pair.empty()) continue;
    const size_t eq = pair.find('=');
    const std::string_view raw_key = pair.substr(0, eq);
    const std::string_view raw_value =
        eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
    if (!PercentDecode(raw_key, true, key) || !PercentDecode(raw_value, true, value)) {
      return Status::InvalidArgument("bad percent-encoding in query parameter");
    }
    query[key] = value;
  }
  return Status::Ok();
}

// A header a handler may add: a token name and a value without line breaks (which would let it
// inject headers). Framing headers are the server's business.
bool IsSendableHeader(std::string_view name, std::string_view value) {
  if (name.empty()) return false;
  for (char c : name) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f || c == ':') return false;
  }
  if (value.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos) return false;
  return !beast::iequals(name, "content-length") && !beast::iequals(name, "transfer-encoding") &&
         !beast::iequals(name, "connection");
}

bool IsHttpParseError(const error_code& ec) {
  return ec.category() == http::make_error_code(http::error::bad_target).category();
}

class Session;

//! What the sessions of one server share: its options, its handler, the stop flag and the set of
//! open sessions (so Stop can close the idle ones and wait for the others).
struct ServerShared {
  HttpServer::Options options;
  HttpHandler handler;
  std::atomic<bool> stopping{false};

  std::mutex mu;
  std::condition_variable no_sessions;
  std::unordered_map<Session*, std::weak_ptr<Session>> sessions;

  void Register(Session* s, std::weak_ptr<Session> w) {
    std::lock_guard lock(mu);
    sessions.emplace(s, std::move(w));
  }
  void Unregister(Session* s) {
    std::lock_guard lock(mu);
    sessions.erase(s);
    if (sessions.empty()) no_sessions.notify_all();
  }
  std::vector<std::shared_ptr<Session>> Snapshot() {
    std::vector<std::shared_ptr<Session>> out;
    std::lock_guard lock(mu);
    for (auto& [raw, weak] : sessions) {
      if (auto s = weak.lock()) out.push_back(std::move(s));
    }
    return out;
  }
  void WaitForNoSessions(std::chrono::steady_clock::duration limit) {
    std::unique_lock lock(mu);
    no_sessions.wait_for(lock, limit, [this] { return sessions.empty(); });
  }
};

//! One client connection: reads a request, runs the handler, writes the response, and repeats
//! while the connection is kept alive. All its work runs on its own strand, so a request is
//! handled only after the previous response is written (which makes pipelining safe).
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, ServerShared& shared) : shared_(shared), stream_(std::move(socket)) {
    error_code ec;
    const tcp::endpoint peer = stream_.socket().remote_endpoint(ec);
    if (!ec) remote_ = peer.address().to_string();
  }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
  ~Session() { shared_.Unregister(this); }

  void Begin() {
    shared_.Register(this, weak_from_this());
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->ReadHeader(); });
  }

  //! Thread-safe. Closes the connection if it is waiting for a request (or lingering after its
  //! last response); a request in progress is left to finish, and its response closes.
  void Shutdown() {
    net::post(stream_.get_executor(), [self = shared_from_this()] {
      if (self->state_ == State::kReadingHeader || self->state_ == State::kDraining) {
        self->Close();
      } else if (self->state_ == State::kStreaming) {
        self->timer_.cancel();  // OnTick sees the server stopping and ends the stream
      }
    });
  }

 private:
  enum class State {
    kReadingHeader,
    kReadingBody,
    kHandling,
    kWriting,
    kStreaming,
    kDraining,
    kClosed
  };

  std::chrono::steady_clock::duration IdleTimeout() const { return shared_.options.idle_timeout; }

  void ReadHeader() {
    if (shared_.stopping.load()) return Close();
    state_ = State::kReadingHeader;
    parser_.emplace();
    parser_->header_limit(kMaxHeaderBytes);
    parser_->body_limit(static_cast<std::uint64_t>(shared_.options.max_body_bytes));
    version_ = 11;
    // One deadline for the whole header: a client that trickles it byte by byte is still cut off.
    stream_.expires_after(IdleTimeout());
    http::async_read_header(stream_, buffer_, *parser_,
                            beast::bind_front_handler(&Session::OnHeader, shared_from_this()));
  }

  void OnHeader(error_code ec, size_t /*bytes*/) {
    if (ec) return OnReadError(ec);
    auto& msg = parser_->get();
    version_ = msg.version();
    if (version_ != 10 && version_ != 11) {
      version_ = 11;
      return SendError(505, "HTTP version not supported (1.0 and 1.1 are)", /*close=*/true);
    }
    const std::string_view encoding = TrimSpaces(msg[http::field::content_encoding]);
    gzip_ = beast::iequals(encoding, "gzip") || beast::iequals(encoding, "x-gzip");
    if (!gzip_ && !encoding.empty() && !beast::iequals(encoding, "identity")) {
      return SendError(415,
                       "unsupported Content-Encoding '" + std::string(encoding) +
                           "' (gzip and identity are accepted)",
                       /*close=*/!parser_->is_done());
    }
    if (!parser_->is_done() && version_ >= 11 &&
        beast::iequals(TrimSpaces(msg[http::field::expect]), "100-continue")) {
      state_ = State::kWriting;
      continue_.emplace(http::status::continue_, version_);
      stream_.expires_after(IdleTimeout());
      return http::async_write(
          stream_, *continue_,
          beast::bind_front_handler(&Session::OnContinueWritten, shared_from_this()));
    }
    ReadBody();
  }

  void OnContinueWritten(error_code ec, size_t /*bytes*/) {
    continue_.reset();
    if (ec) return Close();
    ReadBody();
  }

  // Reads the body piece by piece, renewing the deadline each time, so a large upload on a slow
  // link is limited by how long it stalls rather than by how long it takes.
  void ReadBody() {
    if (parser_->is_done()) return HandleRequest();
    state_ = State::kReadingBody;
    stream_.expires_after(IdleTimeout());
    http::async_read_some(stream_, buffer_, *parser_,
                          beast::bind_front_handler(&Session::OnBody, shared_from_this()));
  }

  void OnBody(error_code ec, size_t /*bytes*/) {
    if (ec) return OnReadError(ec);
    ReadBody();
  }

  void OnReadError(const error_code& ec) {
    if (ec == http::error::body_limit) {
      return SendError(
          413, "request body exceeds " + std::to_string(shared_.options.max_body_bytes) + " bytes",
          /*close=*/true);
    }
    if (ec == http::error::header_limit) {
      return SendError(431, "request headers exceed " + std::to_string(kMaxHeaderBytes) + " bytes",
                       /*close=*/true);
    }
    // The peer went away (end_of_stream, partial_message, a reset), went quiet (timeout) or the
    // server closed the socket: nobody is waiting for an answer.
    if (!IsHttpParseError(ec) || ec == http::error::end_of_stream ||
        ec == http::error::partial_message) {
      return Close();
    }
    SendError(400, "malformed HTTP request: " + ec.message(), /*close=*/true);
  }

  void HandleRequest() {
    auto& msg = parser_->get();
    keep_alive_ = msg.keep_alive();
    head_ = msg.method() == http::verb::head;

    HttpRequest req;
    req.method = std::string(msg.method_string());
    req.target = std::string(msg.target());
    req.remote_address = remote_;
    for (const auto& field : msg) {
      auto [it, inserted] =
          req.headers.emplace(Lower(field.name_string()), std::string(field.value()));
      if (!inserted) {
        it->second += ", ";
        it->second += field.value();
      }
    }
    req.body = std::move(msg.body());
    parser_.reset();

    if (Status st = ParseTarget(req.target, req.path, req.query); !st.ok()) {
      return SendError(400, st.message(), /*close=*/false);
    }
    if (gzip_) {
      Result<std::string> plain = Gunzip(req.body, shared_.options.max_body_bytes);
      if (!plain.ok()) {
        // Gunzip reports a body that is only too large as InvalidArgument, a broken one otherwise.
        const int status = plain.status().code() == Status::Code::kInvalidArgument ? 413 : 400;
        return SendError(status, plain.status().message(), /*close=*/false);
      }
      req.body = std::move(plain).value();
      req.headers.erase("content-encoding");
    }

    state_ = State::kHandling;
    HttpResponse res;
    try {
      res = shared_.handler(req);
    } catch (const std::exception& e) {
      res = ErrorResponse(500, std::string("handler failed: ") + e.what());
    } catch (...) {
      res = ErrorResponse(500, "handler failed with an unknown exception");
    }
    Send(std::move(res), /*close=*/false);
  }

  void SendError(int status, std::string_view msg, bool close) {
    // While a request is still being parsed, its header (if complete) says how to answer; once
    // HandleRequest has taken the request apart, it has recorded that already.
    if (parser_) {
      const bool header = parser_->is_header_done();
      keep_alive_ = header && parser_->get().keep_alive();
      head_ = header && parser_->get().method() == http::verb::head;
      parser_.reset();
    }
    Send(ErrorResponse(status, msg), close);
  }

  void Send(HttpResponse res, bool close) {
    if (res.status < 200 || res.status > 999) {
      res =
          ErrorResponse(500, "handler returned invalid HTTP status " + std::to_string(res.status));
    }
    response_.emplace();
    auto& out = *response_;
    out.version(version_);
    out.result(static_cast<unsigned>(res.status));
    out.set(http::field::server, "tally");
    if (!res.content_type.empty() && IsSendableHeader("content-type", res.content_type)) {
      out.set(http::field::content_type, res.content_type);
    }
    for (const auto& [name, value] : res.headers) {
      if (!IsSendableHeader(name, value)) continue;
      if (beast::iequals(name, "content-type")) {
        out.set(http::field::content_type, value);
      } else {
        out.insert(name, value);
      }
    }
    close_after_write_ = close || !keep_alive_ || shared_.stopping.load();
    if (res.next && !head_ && res.status == 200) {
      // A stream ends with the connection: no Content-Length, Connection: close.
      next_ = std::move(res.next);
      interval_ = std::max(res.stream_interval, std::chrono::milliseconds(10));
      close_after_write_ = true;
      out.keep_alive(false);
      out.body() = std::move(res.body);
      serializer_.emplace(out);
      state_ = State::kWriting;
      return WriteSome();
    }
    out.keep_alive(!close_after_write_);
    // 204 and 304 never have a body (RFC 9110 sections 15.3.5 and 15.4.5); a HEAD response states
    // the length a GET would have had but sends nothing.
    if (res.status == 204 || res.status == 304) {
      // no body, no Content-Length
    } else if (head_) {
      out.content_length(res.body.size());
    } else {
      out.body() = std::move(res.body);
      out.content_length(out.body().size());
    }
    serializer_.emplace(out);
    state_ = State::kWriting;
    WriteSome();
  }

  void WriteSome() {
    stream_.expires_after(IdleTimeout());
    http::async_write_some(stream_, *serializer_,
                           beast::bind_front_handler(&Session::OnWrite, shared_from_this()));
  }

  void OnWrite(error_code ec, size_t /*bytes*/) {
    if (ec) return Close();
    if (!serializer_->is_done()) return WriteSome();
    serializer_.reset();
    response_.reset();
    if (next_) return NextTick();
    if (close_after_write_) return LingeringClose();
    ReadHeader();
  }

  // Streaming: wait one interval, ask the handler's `next` for more, send it, repeat.
  void NextTick() {
    if (shared_.stopping.load()) return EndStream();
    state_ = State::kStreaming;
    timer_.expires_after(interval_);
    timer_.async_wait(beast::bind_front_handler(&Session::OnTick, shared_from_this()));
  }

  void OnTick(error_code ec) {
    if (state_ == State::kClosed) return;
    if (ec && ec != net::error::operation_aborted) return Close();
    if (shared_.stopping.load()) return EndStream();
    std::optional<std::string> piece;
    try {
      piece = next_();
    } catch (...) {
      piece.reset();
    }
    if (!piece) return EndStream();
    chunk_ = std::move(*piece);
    state_ = State::kWriting;
    stream_.expires_after(IdleTimeout());
    net::async_write(stream_, net::buffer(chunk_),
                     beast::bind_front_handler(&Session::OnChunkWritten, shared_from_this()));
  }

  void OnChunkWritten(error_code ec, size_t /*bytes*/) {
    if (ec) return Close();  // the client went away
    NextTick();
  }

  void EndStream() {
    next_ = nullptr;
    // The request was read whole, so there is nothing to drain when the server is stopping.
    if (shared_.stopping.load()) return Close();
    LingeringClose();
  }

  void LingeringClose() {
    state_ = State::kDraining;
    error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    if (ec) return Close();
    drained_ = 0;
    drain_buffer_.resize(16 * 1024);
    stream_.expires_after(kLingerTime);
    Drain();
  }

  void Drain() {
    stream_.async_read_some(net::buffer(drain_buffer_),
                            beast::bind_front_handler(&Session::OnDrain, shared_from_this()));
  }

  void OnDrain(error_code ec, size_t bytes) {
    drained_ += bytes;
    if (ec || drained_ > kLingerMaxBytes) return Close();
    Drain();
  }

  void Close() {
    state_ = State::kClosed;
    timer_.cancel();
    error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.close();
  }

  ServerShared& shared_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::optional<http::response<http::empty_body>> continue_;
  std::optional<http::response<http::string_body>> response_;
  std::optional<http::response_serializer<http::string_body>> serializer_;
  std::vector<char> drain_buffer_;
  size_t drained_ = 0;
  State state_ = State::kReadingHeader;
  unsigned version_ = 11;
  bool gzip_ = false;
  bool keep_alive_ = false;
  bool head_ = false;
  std::string remote_;  // the peer address, for HttpRequest::remote_address
  // A streamed response in progress: its source, its pace, the piece being written.
  std::function<std::optional<std::string>()> next_;
  std::chrono::milliseconds interval_{1000};
  std::string chunk_;
  net::steady_timer timer_{stream_.get_executor()};
  bool close_after_write_ = false;
};

}  // namespace

std::string HttpRequest::Header(std::string_view lower_name) const {
  auto it = headers.find(std::string(lower_name));
  return it == headers.end() ? std::string() : it->second;
}

//! The server's machinery: the io_context and its threads, the acceptor, and the shared state.
class HttpServer::Impl {
 public:
  Impl(Options options, HttpHandler handler) {
    shared_.options = std::move(options);
    shared_.handler = std::move(handler);
    ioc_.emplace(shared_.options.threads);
  }
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;
  ~Impl() { Stop(); }

  Status Listen() {
    const Options& o = shared_.options;
    const std::string where = o.address + ":" + std::to_string(o.port);
    error_code ec;
    const auto address = net::ip::make_address(o.address, ec);
    if (ec) {
      return Status::InvalidArgument("HttpServer: bad listen address '" + o.address +
                                     "': " + ec.message());
    }
    const tcp::endpoint endpoint(address, o.port);
    acceptor_.emplace(net::make_strand(*ioc_));
    retry_timer_.emplace(acceptor_->get_executor());
    acceptor_->open(endpoint.protocol(), ec);
    // Lets a restarted server bind its port while connections of the previous one linger in
    // TIME_WAIT; it does not let two servers listen on one port.
    if (!ec) acceptor_->set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_->bind(endpoint, ec);
    if (!ec) acceptor_->listen(net::socket_base::max_listen_connections, ec);
    if (ec) return Status::IOError("HttpServer: cannot listen on " + where + ": " + ec.message());
    port_ = acceptor_->local_endpoint(ec).port();
    if (ec) return Status::IOError("HttpServer: cannot read the port of " + where);
    return Status::Ok();
  }

  void Run() {
    net::post(acceptor_->get_executor(), [this] { Accept(); });
    threads_.reserve(static_cast<size_t>(shared_.options.threads));
    for (int i = 0; i < shared_.options.threads; ++i) {
      threads_.emplace_back([this] { RunWorker(); });
    }
  }

  uint16_t port() const { return port_; }

  void Stop() {
    std::lock_guard lock(stop_mu_);
    if (!ioc_) return;
    shared_.stopping.store(true);
    if (acceptor_) {
      net::post(acceptor_->get_executor(), [this] {
        error_code ignored;
        acceptor_->close(ignored);
        retry_timer_->cancel();
      });
    }
    for (const auto& session : shared_.Snapshot()) session->Shutdown();
    if (!threads_.empty()) {
      const auto drain = std::min<std::chrono::steady_clock::duration>(shared_.options.idle_timeout,
                                                                       kMaxStopDrain);
      shared_.WaitForNoSessions(drain);
    }
    ioc_->stop();
    for (auto& t : threads_) t.join();
    threads_.clear();
    retry_timer_.reset();
    acceptor_.reset();
    // Destroying the io_context destroys the handlers still queued, and with them the sessions
    // that outlived the drain, closing their sockets.
    ioc_.reset();
  }

 private:
  void RunWorker() {
    for (;;) {
      try {
        ioc_->run();
        return;
      } catch (const std::exception& e) {
        std::fprintf(stderr, "tally http server: unexpected exception: %s\n", e.what());
      } catch (...) {
        std::fprintf(stderr, "tally http server: unexpected exception\n");
      }
    }
  }

  void Accept() {
    acceptor_->async_accept(net::make_strand(*ioc_), [this](error_code ec, tcp::socket socket) {
      OnAccept(ec, std::move(socket));
    });
  }

  void OnAccept(error_code ec, tcp::socket socket) {
    if (!acceptor_->is_open() || shared_.stopping.load()) return;
    if (ec) {
      // Typically out of file descriptors: wait a little rather than spin on the error.
      retry_timer_->expires_after(std::chrono::milliseconds(50));
      retry_timer_->async_wait([this](error_code wait_ec) {
        if (!wait_ec && acceptor_->is_open()) Accept();
      });
      return;
    }
    error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    std::make_shared<Session>(std::move(socket), shared_)->Begin();
    Accept();
  }

  // Declared first so that it outlives the io_context: sessions destroyed with the io_context's
  // queued handlers unregister themselves here.
  ServerShared shared_;
  std::optional<net::io_context> ioc_;
  std::optional<tcp::acceptor> acceptor_;
  std::optional<net::steady_timer> retry_timer_;
  std::vector<std::thread> threads_;
  std::mutex stop_mu_;
  uint16_t port_ = 0;
};

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpServer::~HttpServer() {
  Stop();
}

Result<std::unique_ptr<HttpServer>> HttpServer::Start(Options options, HttpHandler handler) {
  if (options.threads < 1) {
    return Status::InvalidArgument("HttpServer: threads must be at least 1, got " +
                                   std::to_string(options.threads));
  }
  if (options.idle_timeout.count() <= 0) {
    return Status::InvalidArgument("HttpServer: idle_timeout must be positive, got " +
                                   std::to_string(options.idle_timeout.count()) + " s");
  }
  if (!handler) return Status::InvalidArgument("HttpServer: no handler");
  auto impl = std::make_unique<Impl>(std::move(options), std::move(handler));
  TALLY_RETURN_IF_ERROR(impl->Listen());
  impl->Run();
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

uint16_t HttpServer::port() const {
  return impl_->port();
}

void HttpServer::Stop() {
  if (impl_) impl_->Stop();
}

}  // namespace tally
