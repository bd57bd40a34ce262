// The dashboards' files compiled into the binary (src/web/web_assets.h): what is there, and how
// it is served (gzip when accepted, 304 on a matching ETag).

#include "web/web_assets.h"

#include <gtest/gtest.h>

#include "ingest/gzip.h"

namespace tally {
namespace {

HttpRequest Get(std::string path, std::map<std::string, std::string> headers = {}) {
  HttpRequest r;
  r.method = "GET";
  r.path = r.target = std::move(path);
  r.headers = std::move(headers);
  return r;
}

std::string HeaderOf(const HttpResponse& r, std::string_view name) {
  for (const auto& [n, v] : r.headers) {
    if (n == name) return v;
  }
  return "";
}

TEST(WebAssets, ThePageItsScriptStylesMapsAndEmbedScriptAreCompiledIn) {
  for (const char* path : {"/", "/ui/app.js", "/ui/app.css", "/ui/world-110m.json",
                           "/ui/us-states-10m.json", "/embed.js"}) {
    const WebAsset* a = FindWebAsset(path);
    ASSERT_NE(a, nullptr) << path;
    EXPECT_GT(a->body.size(), 100u) << path;
    auto unzipped = Gunzip(a->gzip, a->body.size() + 1);
    ASSERT_TRUE(unzipped.ok()) << path;
    EXPECT_EQ(*unzipped, a->body) << path;
    EXPECT_EQ(a->etag.size(), 22u) << path;  // 20 hex digits, quoted
  }
  EXPECT_NE(FindWebAsset("/")->body.find("/ui/app.js"), std::string_view::npos);
  EXPECT_TRUE(FindWebAsset("/")->content_type.starts_with("text/html"));
  EXPECT_EQ(FindWebAsset("/ui/nothing.js"), nullptr);
  EXPECT_EQ(FindWebAsset("/ui"), nullptr);
}

TEST(WebAssets, GzipOnlyWhenAcceptedAndNotModifiedOnAMatchingEtag) {
  const WebAsset* js = FindWebAsset("/ui/app.js");
  auto plain = ServeWebAsset(Get("/ui/app.js"));
  ASSERT_TRUE(plain.has_value());
  EXPECT_EQ(plain->status, 200);
  EXPECT_EQ(plain->body, js->body);
  EXPECT_EQ(HeaderOf(*plain, "Content-Encoding"), "");
  EXPECT_EQ(HeaderOf(*plain, "ETag"), js->etag);
  EXPECT_TRUE(plain->content_type.starts_with("text/javascript"));

  for (const char* accept : {"gzip", "gzip, deflate, br", "br;q=1.0, gzip;q=0.8", "*"}) {
    auto zipped = ServeWebAsset(Get("/ui/app.js", {{"accept-encoding", accept}}));
    EXPECT_EQ(HeaderOf(*zipped, "Content-Encoding"), "gzip") << accept;
    EXPECT_EQ(zipped->body, js->gzip) << accept;
  }
  for (const char* refuse : {"gzip;q=0", "gzip; q=0.000", "identity", "deflate, br", "gzipx"}) {
    auto raw = ServeWebAsset(Get("/ui/app.js", {{"accept-encoding", refuse}}));
    EXPECT_EQ(raw->body, js->body) << refuse;
  }

  auto again = ServeWebAsset(Get("/ui/app.js", {{"if-none-match", std::string(js->etag)}}));
  EXPECT_EQ(again->status, 304);
  EXPECT_TRUE(again->body.empty());
  auto listed = ServeWebAsset(
      Get("/ui/app.js", {{"if-none-match", "\"other\", W/" + std::string(js->etag)}}));
  EXPECT_EQ(listed->status, 304);
  auto stale = ServeWebAsset(Get("/ui/app.js", {{"if-none-match", "\"0123\""}}));
  EXPECT_EQ(stale->status, 200);
  EXPECT_FALSE(ServeWebAsset(Get("/v1/metrics")).has_value());
}

}  // namespace
}  // namespace tally
