#pragma once
// Response helpers shared by tally's HTTP routes.

#include <string>
#include <string_view>

#include "api/http_server.h"
#include "core/status.h"
#include "core/text_buffer.h"
#include "core/utf8.h"

namespace tally {

//! A JSON response with `body`.
inline HttpResponse JsonResponse(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

//! {"error": message}. The message may quote input, so invalid UTF-8 in it is escaped.
inline HttpResponse JsonError(int status, std::string_view message) {
  TextBuffer out(256);
  out.Put("{\"error\":");
  out.PutJsonString(ValidUtf8OrEscaped(message));
  out.Put('}');
  return JsonResponse(status, std::string(out.view()));
}

//! The response for a query that failed: 400 for a bad argument (the message names it), 404 for
//! something that does not exist, 504 when it ran out of time, 500 otherwise.
inline HttpResponse QueryError(const Status& st) {
  switch (st.code()) {
    case Status::Code::kInvalidArgument:
      return JsonError(400, st.message());
    case Status::Code::kNotFound:
      return JsonError(404, st.message());
    case Status::Code::kDeadlineExceeded:
      return JsonError(504, st.message() + " (serve.query_timeout_ms)");
    default:
      return JsonError(500, st.message());
  }
}

}  // namespace tally
