#pragma once
// The dashboards' files (web/, built by web/build.mjs with esbuild) as compiled into the binary,
// so `tally serve` needs nothing on disk to serve its pages. docs/web.md describes the pages.

#include <string_view>

#include "api/http_server.h"

namespace tally {

//! One file of the built dashboards.
struct WebAsset {
  std::string_view path;          // the URL path it is served at: "/", "/ui/app.js", ...
  std::string_view content_type;  // "text/html; charset=utf-8", ...
  std::string_view body;          // the file
  std::string_view gzip;          // the file gzipped (sent to clients that accept gzip)
  std::string_view etag;          // a strong validator: "\"<sha-256 prefix>\""
};

//! The file served at `path`, or nullptr.
const WebAsset* FindWebAsset(std::string_view path);

//! Answers GET/HEAD `request` for a web file: 200 with the file (gzipped when the client
//! accepts gzip), or 304 when If-None-Match names its ETag; nullopt when there is no such file.
//! Pages are revalidated on every load (Cache-Control: no-cache), which costs a 304 on loopback.
std::optional<HttpResponse> ServeWebAsset(const HttpRequest& request);

}  // namespace tally
