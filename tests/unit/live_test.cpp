// The live stream (GET /v1/live, server-sent events) of a real `tally serve`: app events posted
// now show up in the next `second` events, per partner for a partner's credential, with the
// ingest rate for internal roles only; the stream ends when the embed token that opened it
// expires; subscribers have no stream.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <simdjson.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <filesystem>

#include "ingest/live_feed.h"
#include "serve_fixture.h"

namespace tally::testing {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

//! One server-sent event.
struct Sse {
  std::string event;
  std::string data;
};

//! A raw connection reading an event stream.
class SseReader {
 public:
  SseReader(uint16_t port, const std::string& target, const std::string& credential) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    timeval tv{};
    tv.tv_sec = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    const std::string req = "GET " + target +
                            " HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n" +
                            "Authorization: Bearer " + credential + "\r\n\r\n";
    if (connected_) connected_ = ::send(fd_, req.data(), req.size(), MSG_NOSIGNAL) > 0;
  }
  ~SseReader() { ::close(fd_); }

  //! Reads for up to `wait`; returns the events completed so far and whether the server closed.
  std::vector<Sse> Read(std::chrono::milliseconds wait, bool* closed = nullptr) {
    const auto until = std::chrono::steady_clock::now() + wait;
    bool eof = false;
    while (!eof && std::chrono::steady_clock::now() < until) {
      char buf[8192];
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n == 0) eof = true;
      if (n > 0) raw_.append(buf, static_cast<size_t>(n));
    }
    if (closed) *closed = eof;
    std::vector<Sse> out;
    if (!header_done_) {
      const size_t end = raw_.find("\r\n\r\n");
      if (end == std::string::npos) return out;
      head_ = raw_.substr(0, end);
      raw_.erase(0, end + 4);
      header_done_ = true;
    }
    for (size_t end; (end = raw_.find("\n\n")) != std::string::npos;) {
      const std::string block = raw_.substr(0, end);
      raw_.erase(0, end + 2);
      Sse e;
      size_t at = 0;
      while (at < block.size()) {
        const size_t nl = std::min(block.find('\n', at), block.size());
        const std::string line = block.substr(at, nl - at);
        if (line.starts_with("event: ")) e.event = line.substr(7);
        if (line.starts_with("data: ")) e.data = line.substr(6);
        at = nl + 1;
      }
      if (!e.event.empty()) out.push_back(e);
    }
    return out;
  }
  bool connected() const { return connected_; }
  const std::string& head() const { return head_; }

 private:
  int fd_ = -1;
  bool connected_ = false;
  bool header_done_ = false;
  std::string head_, raw_;
};

std::string AppLines(const std::string& prefix, int64_t partner, int sessions, int errors) {
  const std::string ts = FormatTimestamp(WallClock());
  std::string out;
  for (int i = 0; i < sessions + errors; ++i) {
    out += R"({"event_id":")" + prefix + std::to_string(i) + R"(","ts":")" + ts + R"(","kind":")" +
           (i < sessions ? "session" : "error") + R"(","visitor_id":)" + std::to_string(1000 + i) +
           R"(,"partner_id":)" + std::to_string(partner) +
           R"(,"region":"Europe","device_type":"ios")" +
           (i < sessions ? R"(,"duration_s":30})" : R"(,"error_code":"E502"})") + "\n";
  }
  return out;
}

// Sums of the `second` events' counters.
struct Totals {
  int64_t sessions = 0, errors = 0, rows = 0;
  bool rows_null = false;
  int seconds = 0;
};
Totals Sum(const std::vector<Sse>& events) {
  Totals t;
  simdjson::dom::parser p;
  for (const Sse& e : events) {
    if (e.event != "second") continue;
    simdjson::dom::element d = p.parse(e.data);
    t.sessions += int64_t(d["sessions"]);
    t.errors += int64_t(d["errors"]);
    if (d["ingest_rows"].is_null()) {
      t.rows_null = true;
    } else {
      t.rows += int64_t(d["ingest_rows"]);
    }
    ++t.seconds;
  }
  return t;
}

TEST(LiveFeedTest, SecondsArePerPartnerAndOldOnesAreOverwritten) {
  LiveFeed feed;
  RollupDelta d;
  SegmentRow a;
  a.partner_id = PartnerId(1);
  a.m[Measure::k_app_sessions] = 3;
  SegmentRow b = a;
  b.partner_id = PartnerId(2);
  b.m[Measure::k_app_sessions] = 5;
  d.segment_5m = {a, b, a};
  feed.Publish(Timestamp::FromSeconds(1000), d, 9);
  feed.Publish(Timestamp::FromSeconds(1002), d, 9);
  auto all = feed.Range(999, 1003, std::nullopt);
  ASSERT_EQ(all.size(), 4u);
  EXPECT_EQ(all[1].m[Measure::k_app_sessions], 11);
  EXPECT_EQ(all[1].rows, 9);
  EXPECT_EQ(all[2].m[Measure::k_app_sessions], 0);
  auto p2 = feed.Range(1000, 1001, PartnerId(2));
  EXPECT_EQ(p2[0].m[Measure::k_app_sessions], 5);
  EXPECT_EQ(p2[0].rows, -1);
  // kSeconds later the slot of second 1000 belongs to another second.
  feed.Publish(Timestamp::FromSeconds(1000 + LiveFeed::kSeconds), d, 1);
  EXPECT_EQ(feed.Range(1000, 1001, std::nullopt)[0].rows, 0);
}

TEST(Live, SecondsStreamWhatArrivesPerPartnerAndTheStreamEndsWithItsToken) {
  const std::string dir = TempDir("live");
  Server server(dir, FreePort(), {"TALLY_SERVE_EMBED_LEEWAY_S=0"});
  server.Start();
  const std::string partner_key = CreateKey(dir, "--role partner --partner 1");
  const std::string subscriber_key = CreateKey(dir, "--role subscriber --subscriber 5");
  SseReader admin(server.port(), "/v1/live?history=5", server.admin_key());
  SseReader partner(server.port(), "/v1/live", partner_key);
  // The dashboards' partner filter: an admin may watch one partner; a partner naming another
  // sees nothing.
  SseReader admin_p2(server.port(), "/v1/live?history=5&partner=2", server.admin_key());
  SseReader partner_p2(server.port(), "/v1/live?partner=2", partner_key);
  ASSERT_TRUE(admin.connected() && partner.connected());
  ASSERT_TRUE(admin_p2.connected() && partner_p2.connected());
  std::vector<Sse> first = partner.Read(500ms);
  EXPECT_NE(partner.head().find("200 OK"), std::string::npos) << partner.head();
  EXPECT_NE(partner.head().find("text/event-stream"), std::string::npos);
  ASSERT_GE(first.size(), 2u);
  EXPECT_EQ(first[0].event, "history");
  EXPECT_EQ(first[1].event, "five_minute");
  admin.Read(100ms);

  HttpClient c("127.0.0.1", server.port(), 10s);
  server.Authorize(c);
  auto r1 = c.Post("/v1/ingest/app", AppLines("p1-", 1, 7, 2), "application/x-ndjson");
  auto r2 = c.Post("/v1/ingest/app", AppLines("p2-", 2, 4, 1), "application/x-ndjson");
  ASSERT_TRUE(r1.ok() && r1->status == 200) << (r1.ok() ? r1->body : r1.status().ToString());
  ASSERT_TRUE(r2.ok() && r2->status == 200) << (r2.ok() ? r2->body : r2.status().ToString());

  // The next seconds carry them: partner 1's stream sees its 7 sessions and 2 errors only.
  std::vector<Sse> p_events, a_events;
  for (int i = 0; i < 6 && (Sum(p_events).sessions < 7 || Sum(a_events).sessions < 11); ++i) {
    for (Sse& e : partner.Read(600ms)) p_events.push_back(e);
    for (Sse& e : admin.Read(600ms)) a_events.push_back(e);
  }
  std::vector<Sse> a2_events, p2_events;
  for (int i = 0; i < 6 && Sum(a2_events).sessions < 4; ++i) {
    for (Sse& e : admin_p2.Read(600ms)) a2_events.push_back(e);
  }
  for (Sse& e : partner_p2.Read(600ms)) p2_events.push_back(e);
  EXPECT_EQ(Sum(a2_events).sessions, 4);
  EXPECT_EQ(Sum(a2_events).errors, 1);
  EXPECT_EQ(Sum(p2_events).sessions, 0);
  Totals pt = Sum(p_events), at = Sum(a_events);
  EXPECT_EQ(pt.sessions, 7);
  EXPECT_EQ(pt.errors, 2);
  EXPECT_TRUE(pt.rows_null) << "a partner must not see the ingest rate of everyone";
  EXPECT_EQ(at.sessions, 11);
  EXPECT_EQ(at.errors, 3);
  EXPECT_EQ(at.rows, 14);
  EXPECT_GE(pt.seconds, 1);
  // New data brings new 5-minute aggregates (checked every 5 s): the admin's count all 11
  // sessions, the partner's only its own 7.
  auto five_minute_sessions = [](SseReader& reader, std::vector<Sse> seen) -> int64_t {
    for (int i = 0; i < 20; ++i) {
      for (const Sse& e : seen) {
        if (e.event != "five_minute") continue;
        simdjson::dom::parser p;
        simdjson::dom::element d = p.parse(e.data);
        size_t col = 0, i_sessions = 0;
        for (std::string_view name : simdjson::dom::array(d["columns"])) {
          if (name == "sessions") i_sessions = col;
          ++col;
        }
        int64_t sum = 0;
        for (simdjson::dom::array row : simdjson::dom::array(d["rows"])) {
          if (!row.at(i_sessions).is_null()) sum += int64_t(row.at(i_sessions));
        }
        if (sum > 0) return sum;
      }
      seen = reader.Read(500ms);
    }
    return -1;
  };
  EXPECT_EQ(five_minute_sessions(admin, a_events), 11);
  EXPECT_EQ(five_minute_sessions(partner, p_events), 7);

  // Subscribers have no stream; a partner token's stream ends when the token does.
  SseReader sub(server.port(), "/v1/live", subscriber_key);
  sub.Read(300ms);
  EXPECT_NE(sub.head().find("403"), std::string::npos) << sub.head();
  TallyRun tok = RunTally("keys token --data " + dir + " --role partner --partner 1 --ttl 2s");
  const std::string token = tok.out.substr(0, tok.out.find('\n'));
  SseReader by_token(server.port(), "/v1/live", token);
  bool closed = false;
  std::vector<Sse> events;
  for (int i = 0; i < 8 && !closed; ++i) {
    for (Sse& e : by_token.Read(500ms, &closed)) events.push_back(e);
  }
  EXPECT_TRUE(closed);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().event, "end");
  EXPECT_NE(events.back().data.find("expired"), std::string::npos);
  server.Kill(SIGTERM);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace tally::testing
