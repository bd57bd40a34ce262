#pragma once
// Subscriber profiles for the agent console and partner apps (docs/api.md):
//   GET /v1/subscribers/{id}            one profile                                   200
//   GET /v1/subscribers?q=TEXT&limit=N  search by id, MSISDN or name (up to 100)       200
//   GET /v1/subscribers/{id}/activity   the agent console's view of the last hours: usage
//                                       sessions (those still open marked live), dropped calls,
//                                       complaints and recharges; ?hours=1..744 (72), ?limit=
//                                       1..100 (20) per list, ?to= the window's end (default:
//                                       the newest stored event)                          200
// Profiles come from the store's `subscribers` table. MSISDN, IMSI and name are masked by the
// caller's role (api/auth.h), and a partner or subscriber sees only its own subscribers: any
// other id is a 404. Roles that see a field only masked cannot search by it either, since a
// search that matches would reveal the value; the 400 says which fields they may search by.

#include <optional>

#include "api/auth.h"
#include "api/http_server.h"
#include "ingest/pipeline.h"

namespace tally {

//! One profile as a JSON object, masked for `caller`'s role. NotFound ("subscriber N not found")
//! when it does not exist or is outside the caller's scope, which look the same; another error
//! when the store fails. GET /v1/subscribers/{id} and GraphQL's `subscriber` both answer this.
Result<std::string> SubscriberProfileJson(IngestPipeline* pipeline, const Principal& caller,
                                          int64_t id);

//! The profiles matching search text `q` (an id, an MSISDN or a name, see above), as a JSON
//! array, at most `limit` (1..SubscriberApi::kMaxLimit) of them, ordered by id; `*count` is set
//! to their number. InvalidArgument, with a message that starts with the parameter ("q: ...",
//! "limit: ..."), when `q` or `limit` is out of range or `q` searches a field the caller sees
//! masked.
Result<std::string> SearchSubscribersJson(IngestPipeline* pipeline, const Principal& caller,
                                          std::string_view q, int64_t limit, size_t* count);

//! Subscriber `id`'s activity over the `hours` up to `until` (unset: the newest stored event),
//! the JSON object of GET /v1/subscribers/{id}/activity (docs/api.md): each list newest first, at
//! most `limit` long, with its count over the whole window; a session is live when it was still
//! open at the window's end ("as_of"). Counterparties are masked as MSISDNs are for `caller`'s
//! role. NotFound when the subscriber is outside the caller's scope; InvalidArgument ("hours:
//! ...", "limit: ...") for values out of range.
Result<std::string> SubscriberActivityJson(IngestPipeline* pipeline, const Principal& caller,
                                           int64_t id, int64_t hours, int64_t limit,
                                           std::optional<Timestamp> until = std::nullopt);

class SubscriberApi {
 public:
  explicit SubscriberApi(IngestPipeline* pipeline) : pipeline_(pipeline) {}

  //! The response for `request` made by `caller`, or nullopt when it is not one of the three
  //! routes above. Thread-safe.
  std::optional<HttpResponse> Handle(const HttpRequest& request, const Principal& caller);

  static constexpr int kMaxLimit = 100;
  static constexpr int kMaxActivityHours = 744;  // 31 days

 private:
  HttpResponse Profile(const Principal& caller, int64_t id);
  HttpResponse Search(const HttpRequest& request, const Principal& caller);
  HttpResponse Activity(const HttpRequest& request, const Principal& caller, int64_t id);

  IngestPipeline* pipeline_;
};

}  // namespace tally
