#include "api/http_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <optional>
#include <latch>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "api/http_client.h"
#include "ingest/gzip.h"

namespace tally {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

//! A plain TCP connection for sending bytes no well-behaved client would, and for watching
//! exactly what the server sends back (and when it closes).
class RawConnection {
 public:
  explicit RawConnection(uint16_t port, std::chrono::milliseconds read_timeout = 5000ms) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd_ < 0) throw std::runtime_error("socket failed");
    timeval tv{};
    tv.tv_sec = read_timeout.count() / 1000;
    tv.tv_usec = (read_timeout.count() % 1000) * 1000;
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      ::close(fd_);
      throw std::runtime_error("connect failed");
    }
  }
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;
  ~RawConnection() { ::close(fd_); }

  bool Send(std::string_view data) {
    while (!data.empty()) {
      const ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  //! Reads one response (headers and a Content-Length body); "" if the connection closed or the
  //! read timed out first.
  std::string ReadResponse() {
    for (;;) {
      const size_t end = pending_.find("\r\n\r\n");
      if (end != std::string::npos) {
        size_t length = 0;
        const std::string head = Lower(pending_.substr(0, end));
        if (const size_t cl = head.find("\r\ncontent-length:"); cl != std::string::npos) {
          length = std::stoul(head.substr(cl + 17));
        }
        if (head.rfind("http/1.1 1", 0) == 0) length = 0;  // interim responses have no body
        if (pending_.size() >= end + 4 + length) {
          std::string response = pending_.substr(0, end + 4 + length);
          pending_.erase(0, end + 4 + length);
          return response;
        }
      }
      if (!ReadMore()) return "";
    }
  }

  //! Everything the server sends until it closes the connection; nullopt when a read times out.
  std::optional<std::string> ReadUntilClose() {
    std::string all = std::move(pending_);
    pending_.clear();
    for (;;) {
      char buf[4096];
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n == 0) return all;
      if (n < 0) return std::nullopt;
      all.append(buf, static_cast<size_t>(n));
    }
  }

  //! True when the server closes the connection (after any bytes) within the read timeout.
  bool WaitForClose() {
    pending_.clear();
    for (;;) {
      char buf[4096];
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n == 0) return true;
      if (n < 0) return errno == ECONNRESET;
    }
  }

 private:
  static std::string Lower(std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
  }
  bool ReadMore() {
    char buf[4096];
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) return false;
    pending_.append(buf, static_cast<size_t>(n));
    return true;
  }

  int fd_ = -1;
  std::string pending_;
};

int StatusOf(const std::string& raw_response) {
  if (raw_response.size() < 12) return 0;
  return std::stoi(raw_response.substr(9, 3));
}

std::string BodyOf(const std::string& raw_response) {
  const size_t end = raw_response.find("\r\n\r\n");
  return end == std::string::npos ? "" : raw_response.substr(end + 4);
}

// A handler that describes the request it got, so tests can check what the server passed on.
HttpResponse Describe(const HttpRequest& req) {
  HttpResponse r;
  r.content_type = "text/plain";
  r.body = req.method + " " + req.path + "\n";
  for (const auto& [k, v] : req.query) r.body += "q " + k + "=" + v + "\n";
  r.body += "body " + req.body;
  return r;
}

std::unique_ptr<HttpServer> StartServer(HttpHandler handler, HttpServer::Options options = {}) {
  Result<std::unique_ptr<HttpServer>> server = HttpServer::Start(options, std::move(handler));
  if (!server.ok()) throw std::runtime_error(server.status().ToString());
  return std::move(server).value();
}

TEST(HttpServerTest, PortZeroPicksAFreePortThatServesRequests) {
  auto a = StartServer(Describe);
  auto b = StartServer(Describe);
  EXPECT_NE(a->port(), 0);
  EXPECT_NE(b->port(), 0);
  EXPECT_NE(a->port(), b->port());
  HttpClient client("127.0.0.1", b->port());
  Result<HttpClientResponse> r = client.Get("/hello");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "GET /hello\nbody ");
  EXPECT_EQ(r->headers["content-type"], "text/plain");
  EXPECT_EQ(r->headers["content-length"], std::to_string(r->body.size()));
}

TEST(HttpServerTest, StartReportsBadOptionsAndTakenPorts) {
  auto taken = StartServer(Describe);
  HttpServer::Options same_port;
  same_port.port = taken->port();
  Result<std::unique_ptr<HttpServer>> clash = HttpServer::Start(same_port, Describe);
  ASSERT_FALSE(clash.ok());
  EXPECT_EQ(clash.status().code(), Status::Code::kIOError);
  EXPECT_NE(clash.status().message().find(std::to_string(taken->port())), std::string::npos);

  HttpServer::Options bad_address;
  bad_address.address = "not-an-address";
  Result<std::unique_ptr<HttpServer>> r1 = HttpServer::Start(bad_address, Describe);
  ASSERT_FALSE(r1.ok());
  EXPECT_EQ(r1.status().code(), Status::Code::kInvalidArgument);

  HttpServer::Options no_threads;
  no_threads.threads = 0;
  Result<std::unique_ptr<HttpServer>> r2 = HttpServer::Start(no_threads, Describe);
  ASSERT_FALSE(r2.ok());
  EXPECT_EQ(r2.status().code(), Status::Code::kInvalidArgument);
}

TEST(HttpServerTest, PathAndQueryArriveDecodedAndHeadersLowerCased) {
  HttpRequest seen;
  std::mutex mu;
  auto server = StartServer([&](const HttpRequest& req) {
    std::lock_guard lock(mu);
    seen = req;
    return HttpResponse{};
  });
  HttpClient client("127.0.0.1", server->port());
  Result<HttpClientResponse> r =
      client.Request("GET", "/v1/a%2Fb%20c?q=hello+world&k=%E2%9C%93&flag&k2=x%3Dy&q=last", {},
                     {{"X-Custom-Thing", "Value One"}, {"x-custom-thing", "Value Two"}});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  std::lock_guard lock(mu);
  EXPECT_EQ(seen.method, "GET");
  EXPECT_EQ(seen.target, "/v1/a%2Fb%20c?q=hello+world&k=%E2%9C%93&flag&k2=x%3Dy&q=last");
  EXPECT_EQ(seen.path, "/v1/a/b c");
  EXPECT_EQ(seen.query["q"], "last");
  EXPECT_EQ(seen.query["k"], "\xE2\x9C\x93");
  EXPECT_EQ(seen.query.count("flag"), 1u);
  EXPECT_EQ(seen.query["flag"], "");
  EXPECT_EQ(seen.query["k2"], "x=y");
  EXPECT_EQ(seen.Header("x-custom-thing"), "Value One, Value Two");
  EXPECT_EQ(seen.Header("host"), "127.0.0.1:" + std::to_string(server->port()));
  EXPECT_EQ(seen.Header("x-absent"), "");
}

TEST(HttpServerTest, BadPercentEncodingGets400) {
  auto server = StartServer(Describe);
  HttpClient client("127.0.0.1", server->port());
  for (const char* target : {"/a%zz", "/a%2", "/ok?x=%g1"}) {
    Result<HttpClientResponse> r = client.Get(target);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->status, 400) << target;
    EXPECT_EQ(r->headers["content-type"], "application/json");
    EXPECT_NE(r->body.find("\"error\":\"bad percent-encoding"), std::string::npos) << r->body;
  }
  // A target that is not a path is refused too, but the connection stays usable.
  RawConnection conn(server->port());
  ASSERT_TRUE(conn.Send("GET relative HTTP/1.1\r\nHost: x\r\n\r\n"));
  const std::string response = conn.ReadResponse();
  EXPECT_EQ(StatusOf(response), 400) << response;
  EXPECT_NE(BodyOf(response).find("must start with '/'"), std::string::npos) << response;
  ASSERT_TRUE(conn.Send("GET /next HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_EQ(BodyOf(conn.ReadResponse()), "GET /next\nbody ");
}

TEST(HttpServerTest, GzipBodyIsDecodedBeforeTheHandlerSeesIt) {
  std::string seen_encoding = "unset";
  std::mutex mu;
  auto server = StartServer([&](const HttpRequest& req) {
    std::lock_guard lock(mu);
    seen_encoding = req.Header("content-encoding");
    return Describe(req);
  });
  const std::string text = "{\"a\":1}\n{\"a\":2}\n";
  HttpClient client("127.0.0.1", server->port());
  Result<HttpClientResponse> r = client.Post("/v1/ingest/usage", Gzip(text), "application/x-ndjson",
                                             {{"Content-Encoding", "gzip"}});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "POST /v1/ingest/usage\nbody " + text);
  std::lock_guard lock(mu);
  EXPECT_EQ(seen_encoding, "") << "the body is no longer encoded, so the header is dropped";
}

TEST(HttpServerTest, CorruptOrTruncatedGzipGets400WithTheGunzipMessage) {
  std::atomic<int> calls{0};
  auto server = StartServer([&](const HttpRequest& req) {
    ++calls;
    return Describe(req);
  });
  HttpClient client("127.0.0.1", server->port());
  const std::string gz = Gzip(std::string(5000, 'x'));
  Result<HttpClientResponse> truncated =
      client.Post("/in", gz.substr(0, gz.size() / 2), "text/plain", {{"Content-Encoding", "gzip"}});
  ASSERT_TRUE(truncated.ok()) << truncated.status().ToString();
  EXPECT_EQ(truncated->status, 400);
  EXPECT_EQ(truncated->body, "{\"error\":\"truncated gzip stream\"}");
  EXPECT_EQ(truncated->headers["content-type"], "application/json");

  Result<HttpClientResponse> corrupt =
      client.Post("/in", "plain text", "text/plain", {{"Content-Encoding", "GZIP"}});
  ASSERT_TRUE(corrupt.ok()) << corrupt.status().ToString();
  EXPECT_EQ(corrupt->status, 400);
  EXPECT_EQ(corrupt->body, "{\"error\":\"corrupt gzip stream: incorrect header check\"}");

  Result<HttpClientResponse> empty =
      client.Post("/in", "", "text/plain", {{"Content-Encoding", "gzip"}});
  ASSERT_TRUE(empty.ok()) << empty.status().ToString();
  EXPECT_EQ(empty->status, 400);
  EXPECT_EQ(empty->body, "{\"error\":\"truncated gzip stream\"}");
  EXPECT_EQ(calls.load(), 0) << "the handler never sees a broken body";

  // The connection stays usable after these errors, since each body was read completely.
  Result<HttpClientResponse> ok =
      client.Post("/in", Gzip("fine"), "text/plain", {{"Content-Encoding", "gzip"}});
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->body, "POST /in\nbody fine");
}

TEST(HttpServerTest, UnsupportedContentEncodingGets415) {
  auto server = StartServer(Describe);
  HttpClient client("127.0.0.1", server->port());
  Result<HttpClientResponse> r =
      client.Post("/in", "data", "text/plain", {{"Content-Encoding", "br"}});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 415);
  EXPECT_NE(r->body.find("unsupported Content-Encoding 'br'"), std::string::npos) << r->body;

  Result<HttpClientResponse> identity =
      client.Post("/in", "data", "text/plain", {{"Content-Encoding", "identity"}});
  ASSERT_TRUE(identity.ok()) << identity.status().ToString();
  EXPECT_EQ(identity->status, 200);
  EXPECT_EQ(identity->body, "POST /in\nbody data");
}

TEST(HttpServerTest, BodiesOverTheLimitGet413RawOrAfterGunzip) {
  HttpServer::Options options;
  options.max_body_bytes = 1024;
  auto server = StartServer(Describe, options);
  HttpClient client("127.0.0.1", server->port());

  Result<HttpClientResponse> at_limit = client.Post("/in", std::string(1024, 'a'), "text/plain");
  ASSERT_TRUE(at_limit.ok()) << at_limit.status().ToString();
  EXPECT_EQ(at_limit->status, 200);

  Result<HttpClientResponse> raw = client.Post("/in", std::string(1025, 'a'), "text/plain");
  ASSERT_TRUE(raw.ok()) << raw.status().ToString();
  EXPECT_EQ(raw->status, 413);
  EXPECT_EQ(raw->body, "{\"error\":\"request body exceeds 1024 bytes\"}");

  // A large body the server refuses before reading it all still gets its 413 across.
  Result<HttpClientResponse> big = client.Post("/in", std::string(8 << 20, 'a'), "text/plain");
  ASSERT_TRUE(big.ok()) << big.status().ToString();
  EXPECT_EQ(big->status, 413);

  const std::string bomb = Gzip(std::string(100000, 'a'));
  ASSERT_LT(bomb.size(), 1024u);
  Result<HttpClientResponse> expanded =
      client.Post("/in", bomb, "text/plain", {{"Content-Encoding", "gzip"}});
  ASSERT_TRUE(expanded.ok()) << expanded.status().ToString();
  EXPECT_EQ(expanded->status, 413);
  EXPECT_EQ(expanded->body, "{\"error\":\"gzip body expands beyond 1024 bytes\"}");

  // Chunked bodies have no length up front; the limit applies as they arrive.
  RawConnection conn(server->port());
  ASSERT_TRUE(
      conn.Send("POST /in HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                "400\r\n" +
                std::string(1024, 'b') + "\r\n1\r\nb\r\n0\r\n\r\n"));
  const std::string response = conn.ReadResponse();
  EXPECT_EQ(StatusOf(response), 413) << response;
}

TEST(HttpServerTest, MalformedRequestsGetAnErrorAndACloseAndTheServerSurvives) {
  auto server = StartServer(Describe);
  const std::vector<std::string> garbage = {
      "GARBAGE\r\n\r\n",
      "GET / HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
      "GET / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
      "GET / HTTP/9.9\r\n\r\n",
      "GET / HTTP/1.1\r\nNo colon here\r\n\r\n",
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
      "GET /\x01\x02 HTTP/1.1\r\n\r\n",
      std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11),  // a TLS ClientHello
      std::string(100 * 1024, 'A'),                                     // an endless request line
      "GET / HTTP/1.1\r\nX: " + std::string(100 * 1024, 'v') + "\r\n\r\n",
  };
  for (const std::string& bytes : garbage) {
    RawConnection conn(server->port());
    conn.Send(bytes);
    const std::string response = conn.ReadResponse();
    const int status = StatusOf(response);
    EXPECT_TRUE(status == 400 || status == 431 || status == 505)
        << "for " << bytes.substr(0, 60) << " got " << response;
    EXPECT_NE(BodyOf(response).find("\"error\""), std::string::npos) << response;
    EXPECT_TRUE(conn.WaitForClose()) << "after a malformed request the connection is closed";
  }
  // A client that connects and leaves at once, or half-sends a request and leaves.
  { RawConnection conn(server->port()); }
  {
    RawConnection conn(server->port());
    conn.Send("POST / HTTP/1.1\r\nContent-Length: 100\r\n\r\nonly part");
  }
  HttpClient client("127.0.0.1", server->port());
  Result<HttpClientResponse> r = client.Get("/still-alive");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 200);
}

TEST(HttpServerTest, AThrowingHandlerGets500AndTheServerSurvives) {
  auto server = StartServer([](const HttpRequest& req) -> HttpResponse {
    if (req.path == "/throw") throw std::runtime_error("boom \"quoted\"");
    if (req.path == "/throw-int") throw 42;
    return Describe(req);
  });
  HttpClient client("127.0.0.1", server->port());
  Result<HttpClientResponse> r = client.Get("/throw");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 500);
  EXPECT_EQ(r->body, "{\"error\":\"handler failed: boom \\\"quoted\\\"\"}");
  EXPECT_EQ(r->headers["content-type"], "application/json");
  Result<HttpClientResponse> r2 = client.Get("/throw-int");
  ASSERT_TRUE(r2.ok()) << r2.status().ToString();
  EXPECT_EQ(r2->status, 500);
  Result<HttpClientResponse> fine = client.Get("/fine");
  ASSERT_TRUE(fine.ok()) << fine.status().ToString();
  EXPECT_EQ(fine->status, 200);
}

TEST(HttpServerTest, ResponsesCarryTheHandlersStatusTypeAndHeaders) {
  auto server = StartServer([](const HttpRequest& req) {
    HttpResponse r;
    if (req.path == "/empty") {
      r.status = 204;
      r.body = "ignored: 204 has no body";
      return r;
    }
    if (req.path == "/bad-status") {
      r.status = 42;
      return r;
    }
    r.status = 201;
    r.content_type = "text/csv";
    r.body = "a,b\n1,2\n";
    r.headers = {{"X-Load-Id", "load-7"},
                 {"Set-Cookie", "a=1"},
                 {"Set-Cookie", "b=2"},
                 {"X-Evil", "v\r\nInjected: yes"},
                 {"Content-Length", "999"}};
    return r;
  });
  HttpClient client("127.0.0.1", server->port());
  Result<HttpClientResponse> r = client.Get("/csv");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 201);
  EXPECT_EQ(r->body, "a,b\n1,2\n");
  EXPECT_EQ(r->headers["content-type"], "text/csv");
  EXPECT_EQ(r->headers["content-length"], "8");
  EXPECT_EQ(r->headers["x-load-id"], "load-7");
  EXPECT_EQ(r->headers["set-cookie"], "a=1, b=2");
  EXPECT_EQ(r->headers.count("x-evil"), 0u);
  EXPECT_EQ(r->headers.count("injected"), 0u);

  Result<HttpClientResponse> head = client.Request("HEAD", "/csv");
  ASSERT_TRUE(head.ok()) << head.status().ToString();
  EXPECT_EQ(head->status, 201);
  EXPECT_EQ(head->body, "");
  EXPECT_EQ(head->headers["content-length"], "8");

  Result<HttpClientResponse> empty = client.Get("/empty");
  ASSERT_TRUE(empty.ok()) << empty.status().ToString();
  EXPECT_EQ(empty->status, 204);
  EXPECT_EQ(empty->body, "");

  Result<HttpClientResponse> bad = client.Get("/bad-status");
  ASSERT_TRUE(bad.ok()) << bad.status().ToString();
  EXPECT_EQ(bad->status, 500);

  // Still in step after the bodiless responses.
  Result<HttpClientResponse> again = client.Get("/csv");
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->body, "a,b\n1,2\n");
}

TEST(HttpServerTest, KeepAliveServesManyRequestsOnOneConnection) {
  auto server = StartServer(Describe);
  RawConnection conn(server->port());
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(conn.Send("GET /r" + std::to_string(i) + " HTTP/1.1\r\nHost: x\r\n\r\n"));
    const std::string response = conn.ReadResponse();
    EXPECT_EQ(StatusOf(response), 200) << response;
    EXPECT_EQ(BodyOf(response), "GET /r" + std::to_string(i) + "\nbody ");
  }
}

TEST(HttpServerTest, PipelinedRequestsAreAnsweredInOrderOneAtATime) {
  std::atomic<int> active{0};
  std::atomic<int> max_active{0};
  auto server = StartServer([&](const HttpRequest& req) {
    const int now = ++active;
    int seen = max_active.load();
    while (now > seen && !max_active.compare_exchange_weak(seen, now)) {
    }
    std::this_thread::sleep_for(20ms);
    --active;
    return Describe(req);
  });
  RawConnection conn(server->port());
  std::string burst;
  for (int i = 0; i < 6; ++i) {
    burst += "POST /p" + std::to_string(i) + " HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\n" +
             std::to_string(i);
  }
  ASSERT_TRUE(conn.Send(burst));
  for (int i = 0; i < 6; ++i) {
    const std::string response = conn.ReadResponse();
    EXPECT_EQ(BodyOf(response), "POST /p" + std::to_string(i) + "\nbody " + std::to_string(i));
  }
  EXPECT_EQ(max_active.load(), 1) << "one connection's requests never run at the same time";
}

TEST(HttpServerTest, ConnectionCloseIsHonoured) {
  auto server = StartServer(Describe);
  RawConnection conn(server->port());
  ASSERT_TRUE(conn.Send("GET /bye HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  const std::string response = conn.ReadResponse();
  EXPECT_EQ(StatusOf(response), 200);
  EXPECT_NE(response.find("Connection: close"), std::string::npos) << response;
  EXPECT_TRUE(conn.WaitForClose());

  // HTTP/1.0 closes by default.
  RawConnection old(server->port());
  ASSERT_TRUE(old.Send("GET /old HTTP/1.0\r\n\r\n"));
  EXPECT_EQ(BodyOf(old.ReadResponse()), "GET /old\nbody ");
  EXPECT_TRUE(old.WaitForClose());
}

TEST(HttpServerTest, Expect100ContinueIsAnswered) {
  auto server = StartServer(Describe);
  RawConnection conn(server->port());
  ASSERT_TRUE(conn.Send(
      "POST /up HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"));
  const std::string interim = conn.ReadResponse();
  EXPECT_EQ(StatusOf(interim), 100) << interim;
  ASSERT_TRUE(conn.Send("hello"));
  const std::string response = conn.ReadResponse();
  EXPECT_EQ(StatusOf(response), 200) << response;
  EXPECT_EQ(BodyOf(response), "POST /up\nbody hello");
}

TEST(HttpServerTest, HandlersRunConcurrentlyWhileOneBlocks) {
  std::latch release(1);
  std::latch blocked_entered(1);
  auto server = StartServer([&](const HttpRequest& req) {
    if (req.path == "/block") {
      blocked_entered.count_down();
      release.wait();
    }
    return Describe(req);
  });
  auto blocked = std::async(std::launch::async, [&] {
    HttpClient client("127.0.0.1", server->port());
    return client.Get("/block");
  });
  blocked_entered.wait();
  HttpClient fast("127.0.0.1", server->port(), 5000ms);
  for (int i = 0; i < 3; ++i) {
    Result<HttpClientResponse> r = fast.Get("/fast");
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->status, 200);
  }
  EXPECT_EQ(blocked.wait_for(0ms), std::future_status::timeout) << "still blocked in the handler";
  release.count_down();
  Result<HttpClientResponse> r = blocked.get();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->body, "GET /block\nbody ");
}

TEST(HttpServerTest, StopWithIdleConnectionsReturnsPromptlyAndClosesThem) {
  auto server = StartServer(Describe);
  std::vector<std::unique_ptr<RawConnection>> idle;
  for (int i = 0; i < 4; ++i) idle.push_back(std::make_unique<RawConnection>(server->port()));
  RawConnection half(server->port());
  half.Send("GET /half HTTP/1.1\r\nHo");  // a request that never completes
  HttpClient client("127.0.0.1", server->port());
  ASSERT_TRUE(client.Get("/x").ok());  // leaves a kept-alive connection open
  std::this_thread::sleep_for(50ms);   // let the server accept everything

  const auto start = Clock::now();
  server->Stop();
  EXPECT_LT(Clock::now() - start, 2s);
  for (auto& conn : idle) EXPECT_TRUE(conn->WaitForClose());
  EXPECT_TRUE(half.WaitForClose());
  server->Stop();  // idempotent
}

TEST(HttpServerTest, DestructorStopsTheServer) {
  auto server = StartServer(Describe);
  const uint16_t port = server->port();
  RawConnection idle(port);
  std::this_thread::sleep_for(20ms);
  const auto start = Clock::now();
  server.reset();
  EXPECT_LT(Clock::now() - start, 2s);
  EXPECT_TRUE(idle.WaitForClose());
  HttpClient client("127.0.0.1", port, 2000ms);
  Result<HttpClientResponse> r = client.Get("/");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kIOError);
}

TEST(HttpServerTest, StopLetsARequestInProgressFinishItsResponse) {
  std::latch entered(1);
  auto server = StartServer([&](const HttpRequest& req) {
    entered.count_down();
    std::this_thread::sleep_for(300ms);
    return Describe(req);
  });
  auto pending = std::async(std::launch::async, [&] {
    HttpClient client("127.0.0.1", server->port());
    return client.Post("/slow", "payload", "text/plain");
  });
  entered.wait();
  server->Stop();
  Result<HttpClientResponse> r = pending.get();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "POST /slow\nbody payload");
  EXPECT_EQ(r->headers["connection"], "close");
}

TEST(HttpServerTest, IdleConnectionsAreClosedAfterTheTimeout) {
  HttpServer::Options options;
  options.idle_timeout = 1s;
  auto server = StartServer(Describe, options);
  RawConnection conn(server->port(), 5000ms);
  const auto start = Clock::now();
  EXPECT_TRUE(conn.WaitForClose());
  const auto waited = Clock::now() - start;
  EXPECT_GE(waited, 900ms);
  EXPECT_LT(waited, 4s);
}

TEST(HttpClientTest, ReturnsIOErrorWhileNothingListensAndReconnectsAfterARestart) {
  auto first = StartServer(Describe);
  const uint16_t port = first->port();
  HttpClient client("127.0.0.1", port, 2000ms);
  ASSERT_TRUE(client.Get("/one").ok());

  first->Stop();
  const auto start = Clock::now();
  Result<HttpClientResponse> down = client.Get("/two");
  ASSERT_FALSE(down.ok());
  EXPECT_EQ(down.status().code(), Status::Code::kIOError);
  EXPECT_NE(down.status().message().find("/two"), std::string::npos) << down.status().message();
  EXPECT_LT(Clock::now() - start, 2500ms);
  Result<HttpClientResponse> still_down = client.Get("/two");
  EXPECT_FALSE(still_down.ok());

  HttpServer::Options same_port;
  same_port.port = port;
  auto second = StartServer(Describe, same_port);
  Result<HttpClientResponse> back = client.Get("/three");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->body, "GET /three\nbody ");

  // A restart between two calls, with the kept-alive connection now dead, is not an error.
  second->Stop();
  auto third = StartServer(Describe, same_port);
  Result<HttpClientResponse> after_restart = client.Get("/four");
  ASSERT_TRUE(after_restart.ok()) << after_restart.status().ToString();
  EXPECT_EQ(after_restart->body, "GET /four\nbody ");
}

TEST(HttpClientTest, TimesOutOnASlowServerAndRecovers) {
  auto server = StartServer([](const HttpRequest& req) {
    if (req.path == "/slow") std::this_thread::sleep_for(1500ms);
    return Describe(req);
  });
  HttpClient client("127.0.0.1", server->port(), 200ms);
  const auto start = Clock::now();
  Result<HttpClientResponse> r = client.Get("/slow");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kIOError);
  EXPECT_NE(r.status().message().find("timed out after 200 ms"), std::string::npos)
      << r.status().message();
  EXPECT_LT(Clock::now() - start, 1000ms);
  Result<HttpClientResponse> next = client.Get("/quick");
  ASSERT_TRUE(next.ok()) << next.status().ToString();
  EXPECT_EQ(next->body, "GET /quick\nbody ");
}

TEST(HttpClientTest, RejectsRequestsItCannotSend) {
  HttpClient client("127.0.0.1", 1);
  Result<HttpClientResponse> bad_method = client.Request("GE T", "/");
  ASSERT_FALSE(bad_method.ok());
  EXPECT_EQ(bad_method.status().code(), Status::Code::kInvalidArgument);
  Result<HttpClientResponse> bad_target = client.Get("/a b");
  ASSERT_FALSE(bad_target.ok());
  EXPECT_EQ(bad_target.status().code(), Status::Code::kInvalidArgument);
  Result<HttpClientResponse> bad_header = client.Request("GET", "/", {}, {{"X", "a\r\nB: c"}});
  ASSERT_FALSE(bad_header.ok());
  EXPECT_EQ(bad_header.status().code(), Status::Code::kInvalidArgument);
}

TEST(HttpClientTest, LargeBodiesTravelBothWays) {
  auto server = StartServer([](const HttpRequest& req) {
    HttpResponse r;
    r.content_type = "application/octet-stream";
    r.body = req.body + req.body;
    return r;
  });
  std::string body(3 << 20, '\0');
  for (size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>(i * 131 % 251);
  HttpClient client("127.0.0.1", server->port());
  Result<HttpClientResponse> r = client.Post("/echo", body, "application/octet-stream");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->body, body + body);
}

// A streamed response: the body, then each piece `next` returns, then the connection closes.
TEST(HttpServerTest, StreamedResponsesSendEachPieceAndEndWithTheConnection) {
  auto server = StartServer([](const HttpRequest&) {
    HttpResponse r;
    r.content_type = "text/event-stream";
    r.body = "start\n";
    auto count = std::make_shared<int>(0);
    r.stream_interval = 20ms;
    r.next = [count]() -> std::optional<std::string> {
      if (++*count > 3) return std::nullopt;
      return "piece " + std::to_string(*count) + "\n";
    };
    return r;
  });
  RawConnection c(server->port());
  ASSERT_TRUE(c.Send("GET /live HTTP/1.1\r\nHost: x\r\n\r\n"));
  std::optional<std::string> all = c.ReadUntilClose();
  ASSERT_TRUE(all.has_value());
  EXPECT_EQ(StatusOf(*all), 200);
  EXPECT_EQ(all->find("Content-Length"), std::string::npos);
  EXPECT_NE(all->find("Connection: close"), std::string::npos);
  EXPECT_EQ(all->substr(all->find("\r\n\r\n") + 4), "start\npiece 1\npiece 2\npiece 3\n");
  // The client's library reads a close-delimited body too.
  HttpClient client("127.0.0.1", server->port());
  auto r = client.Get("/live");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->body, "start\npiece 1\npiece 2\npiece 3\n");
}

// An endless stream ends when the client goes away, and Stop ends the ones still open.
TEST(HttpServerTest, EndlessStreamsEndWhenTheClientLeavesOrTheServerStops) {
  auto calls = std::make_shared<std::atomic<int>>(0);
  auto server = StartServer([calls](const HttpRequest&) {
    HttpResponse r;
    r.stream_interval = 10ms;
    r.next = [calls]() -> std::optional<std::string> {
      ++*calls;
      return std::string(1024, 'x');
    };
    return r;
  });
  {
    RawConnection gone(server->port());
    ASSERT_TRUE(gone.Send("GET /a HTTP/1.1\r\nHost: x\r\n\r\n"));
    std::this_thread::sleep_for(100ms);
  }  // closed by the client
  std::this_thread::sleep_for(200ms);
  const int after_close = calls->load();
  std::this_thread::sleep_for(200ms);
  EXPECT_LE(calls->load() - after_close, 2) << "the stream kept going after its client left";

  RawConnection open(server->port(), 10000ms);
  ASSERT_TRUE(open.Send("GET /b HTTP/1.1\r\nHost: x\r\n\r\n"));
  std::this_thread::sleep_for(100ms);
  const auto t0 = std::chrono::steady_clock::now();
  server->Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 10s);  // not left waiting for the stream
  EXPECT_TRUE(open.ReadUntilClose().has_value());
}

}  // namespace
}  // namespace tally
