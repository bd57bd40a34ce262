#pragma once
// Subscriber profiles for the agent console and partner apps (docs/api.md):
//   GET /v1/subscribers/{id}            one profile                                   200
//   GET /v1/subscribers?q=TEXT&limit=N  search by id, MSISDN or name (up to 100)       200
// Profiles come from the store's `subscribers` table. MSISDN, IMSI and name are masked by the
// caller's role (api/auth.h), and a partner or subscriber sees only its own subscribers: any
// other id is a 404. Roles that see a field only masked cannot search by it either, since a
// search that matches would reveal the value; the 400 says which fields they may search by.

#include <optional>

#include "api/auth.h"
#include "api/http_server.h"
#include "ingest/pipeline.h"

namespace tally {

class SubscriberApi {
 public:
  explicit SubscriberApi(IngestPipeline* pipeline) : pipeline_(pipeline) {}

  //! The response for `request` made by `caller`, or nullopt when it is not one of the two
  //! routes above. Thread-safe.
  std::optional<HttpResponse> Handle(const HttpRequest& request, const Principal& caller);

  static constexpr int kMaxLimit = 100;

 private:
  HttpResponse Profile(const Principal& caller, int64_t id);
  HttpResponse Search(const HttpRequest& request, const Principal& caller);

  IngestPipeline* pipeline_;
};

}  // namespace tally
