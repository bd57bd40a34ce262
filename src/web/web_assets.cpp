#include "web/web_assets.h"

#include <span>

namespace tally {

// Defined in the file web/build.mjs generates (web_assets_data.cpp in the build directory).
extern const std::span<const WebAsset> kWebAssets;

const WebAsset* FindWebAsset(std::string_view path) {
  for (const WebAsset& a : kWebAssets) {
    if (a.path == path) return &a;
  }
  return nullptr;
}

namespace {

// True when an Accept-Encoding header value allows gzip: a "gzip" coding not given q=0.
bool AcceptsGzip(std::string_view header) {
  size_t at = 0;
  while (at < header.size()) {
    size_t end = header.find(',', at);
    if (end == std::string_view::npos) end = header.size();
    std::string_view item = header.substr(at, end - at);
    at = end + 1;
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    const size_t semi = item.find(';');
    std::string_view coding = item.substr(0, semi);
    while (!coding.empty() && coding.back() == ' ') coding.remove_suffix(1);
    if (coding != "gzip" && coding != "*") continue;
    if (semi == std::string_view::npos) return true;
    std::string_view params = item.substr(semi + 1);
    const size_t q = params.find("q=");
    if (q == std::string_view::npos) return true;
    std::string_view value = params.substr(q + 2);
    // q=0, q=0.0, q=0.00, q=0.000 refuse it; any other value allows it.
    bool zero = !value.empty() && value.front() == '0';
    for (size_t i = 1; zero && i < value.size() && value[i] != ' ' && value[i] != ';'; ++i) {
      if (value[i] != '.' && value[i] != '0') zero = false;
    }
    return !zero;
  }
  return false;
}

// True when an If-None-Match header value lists `etag` (or is "*").
bool Matches(std::string_view header, std::string_view etag) {
  if (header == "*") return true;
  size_t at = 0;
  while ((at = header.find(etag, at)) != std::string_view::npos) {
    const bool starts = at == 0 || header[at - 1] == ' ' || header[at - 1] == ',' ||
                        (at >= 2 && header.substr(at - 2, 2) == "W/");
    const size_t end = at + etag.size();
    const bool ends = end == header.size() || header[end] == ',' || header[end] == ' ';
    if (starts && ends) return true;
    at = end;
  }
  return false;
}

}  // namespace

std::optional<HttpResponse> ServeWebAsset(const HttpRequest& request) {
  const WebAsset* a = FindWebAsset(request.path);
  if (a == nullptr) return std::nullopt;
  HttpResponse r;
  r.content_type = std::string(a->content_type);
  r.headers.emplace_back("ETag", std::string(a->etag));
  r.headers.emplace_back("Cache-Control", "no-cache");
  r.headers.emplace_back("Vary", "Accept-Encoding");
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  if (Matches(request.Header("if-none-match"), a->etag)) {
    r.status = 304;
    return r;
  }
  if (!a->gzip.empty() && AcceptsGzip(request.Header("accept-encoding"))) {
    r.headers.emplace_back("Content-Encoding", "gzip");
    r.body = std::string(a->gzip);
  } else {
    r.body = std::string(a->body);
  }
  return r;
}

}  // namespace tally
