#include "api/ingest_api.h"

#include "api/responses.h"
#include "core/text_buffer.h"
#include "core/utf8.h"

namespace tally {

namespace {

constexpr std::string_view kIngestPrefix = "/v1/ingest/";

// The HTTP status for a failed batch: the client's fault (4xx) or ours, worth a retry (503).
int StatusFor(const Status& st) {
  switch (st.code()) {
    case Status::Code::kInvalidArgument:
      return 400;
    case Status::Code::kNotFound:
      return 404;
    default:
      return 503;
  }
}

}  // namespace

std::optional<HttpResponse> IngestApi::Handle(const HttpRequest& request) {
  const std::string& path = request.path;
  if (path == "/healthz") {
    HttpResponse r;
    r.body = "{\"status\":\"ok\"}";
    return r;
  }
  if (path.rfind(kIngestPrefix, 0) == 0) {
    if (request.method != "POST") return JsonError(405, "use POST to ingest");
    return Ingest(request, std::string_view(path).substr(kIngestPrefix.size()));
  }
  if (path == "/v1/loads") {
    if (request.method != "GET") return JsonError(405, "use GET");
    return Loads(request);
  }
  if (path == "/v1/partitions") {
    if (request.method != "GET") return JsonError(405, "use GET");
    return Partitions();
  }
  return std::nullopt;
}

HttpResponse IngestApi::Ingest(const HttpRequest& request, std::string_view name) {
  // The format: ?format= wins, then Content-Type; NDJSON by default.
  BodyFormat format = BodyFormat::kNdjson;
  auto q = request.query.find("format");
  const std::string type = request.Header("content-type");
  if (q != request.query.end()) {
    if (q->second == "csv") {
      format = BodyFormat::kCsv;
    } else if (q->second != "ndjson") {
      return JsonError(400, "format '" + q->second + "': expected ndjson or csv");
    }
  } else if (type.rfind("text/csv", 0) == 0) {
    format = BodyFormat::kCsv;
  }
  std::future<IngestResult> pending;
  auto family = ParseEnum<EventFamily>(name);
  const std::string source = "http";
  if (family.ok() && *family == EventFamily::kCharge) {
    // Charges are the ledger's: they reach the store only through its outbox, so the ledger and the
    // store always reconcile. Usage goes to /v1/ingest/usage and is rated there.
    return JsonError(
        403, "the charge family is written only by the ledger; post usage to /v1/ingest/usage");
  }
  if (family.ok()) {
    IngestRequest req;
    req.family = *family;
    req.format = format;
    req.body = request.body;
    req.source = source;
    pending = pipeline_->Submit(std::move(req), {});
  } else if (auto table = ReferenceTableNamed(name)) {
    pending = pipeline_->SubmitReference(*table, format, request.body, source, {});
  } else {
    return JsonError(404,
                     "unknown event family or table '" + std::string(name.substr(0, 64)) + "'");
  }
  IngestResult result = pending.get();
  if (!result.ack.status.ok())
    return JsonError(StatusFor(result.ack.status), result.ack.status.message());
  TextBuffer out(1024);
  out.Put("{\"report\":");
  out.Put(result.report.ToJson());
  out.Put(",\"rejected\":[");
  const size_t n = std::min(result.rejects.size(), kMaxRejectsInResponse);
  for (size_t i = 0; i < n; ++i) {
    const RejectedRow& r = result.rejects[i];
    if (i) out.Put(",");
    out.Put("{\"line\":");
    out.PutInt(r.line);
    out.Put(",\"field\":");
    out.PutJsonString(r.field);
    out.Put(",\"check\":");
    out.PutJsonString(r.check);
    out.Put(",\"reason\":");
    out.PutJsonString(ValidUtf8OrEscaped(r.reason));
    out.Put("}");
  }
  out.Put("],\"rejected_truncated\":");
  out.Put(result.rejects.size() > n ? "true" : "false");
  out.Put("}");
  HttpResponse r;
  r.body = std::string(out.view());
  return r;
}

HttpResponse IngestApi::Loads(const HttpRequest& request) {
  int limit = 100;
  if (auto q = request.query.find("limit"); q != request.query.end()) {
    try {
      limit = std::clamp(std::stoi(q->second), 1, 10000);
    } catch (...) {
      return JsonError(400, "limit '" + q->second + "': expected a number");
    }
  }
  std::vector<LoadRecord> loads;
  Status st = pipeline_->RunExclusive([&](EventStore& store) -> Status {
    TALLY_ASSIGN_OR_RETURN(loads, store.Loads(limit));
    return Status::Ok();
  });
  if (!st.ok()) return JsonError(503, st.message());
  std::string body = "{\"loads\":[";
  for (size_t i = 0; i < loads.size(); ++i) body += (i ? "," : "") + loads[i].report_json;
  body += "]}";
  HttpResponse r;
  r.body = std::move(body);
  return r;
}

HttpResponse IngestApi::Partitions() {
  std::vector<PartitionInfo> parts;
  Status st = pipeline_->RunExclusive([&](EventStore& store) -> Status {
    TALLY_ASSIGN_OR_RETURN(parts, store.Partitions());
    return Status::Ok();
  });
  if (!st.ok()) return JsonError(503, st.message());
  TextBuffer out(4096);
  out.Put("{\"partitions\":[");
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i) out.Put(",");
    out.Put("{\"family\":");
    out.PutJsonString(Name(parts[i].family));
    out.Put(",\"day\":");
    out.PutJsonString(FormatDate(parts[i].day));
    out.Put(",\"files\":");
    out.PutInt(parts[i].files);
    out.Put(",\"rows\":");
    out.PutInt(parts[i].rows);
    out.Put("}");
  }
  out.Put("]}");
  HttpResponse r;
  r.body = std::string(out.view());
  return r;
}

}  // namespace tally
