#include "api/models_api.h"

#include <simdjson.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <numeric>

#include "api/responses.h"
#include "api/tenant_scope.h"
#include "core/text_buffer.h"

namespace tally {

namespace {

// Opens the JSON object of a model's answer: {"model":"churn","version":3 (the caller goes on).
void PutModelHeader(TextBuffer& out, ModelKind kind, int version) {
  out.Put("{\"model\":");
  out.PutJsonString(ModelName(kind));
  out.Put(",\"version\":");
  out.PutInt(version);
}

std::optional<int64_t> PositiveId(std::string_view text) {
  int64_t v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || p != text.data() + text.size() || v <= 0) return std::nullopt;
  return v;
}

void PutNumber(TextBuffer& out, double v) {
  if (std::isfinite(v)) {
    out.PutDouble(v);
  } else {
    out.Put("null");
  }
}

// The 404 of a model route before the model's first `tally train`.
HttpResponse NotTrained(ModelKind kind) {
  const std::string name(ModelName(kind));
  return JsonError(404, "no " + name + " model trained yet (tally train --model " + name + ")");
}

HttpResponse ErrorOf(const Status& st) {
  switch (st.code()) {
    case Status::Code::kInvalidArgument:
      return JsonError(400, st.message());
    case Status::Code::kNotFound:
      return JsonError(404, st.message());
    default:
      return JsonError(500, st.message());
  }
}

// {"model_version": N, "prediction": ..., "base_value": ..., "margin": ..., "contributions":
// [{"feature", "value", "contribution"}, ...]} ordered by |contribution|, largest first.
void PutExplanation(TextBuffer& out, const ScoreTable& t, const SubscriberScore& s, int version,
                    std::string_view prediction_name) {
  out.Put("{\"model_version\":");
  out.PutInt(version);
  out.Put(",\"scored_at\":");
  out.PutJsonString(t.scored_at);
  out.Put(",\"");
  out.Put(prediction_name);
  out.Put("\":");
  PutNumber(out, s.prediction);
  out.Put(",\"base_value\":");
  PutNumber(out, s.base_value);
  out.Put(",\"margin\":");
  PutNumber(out, s.margin);
  std::vector<size_t> order(t.features.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return std::fabs(s.contributions[a]) > std::fabs(s.contributions[b]);
  });
  out.Put(",\"contributions\":[");
  for (size_t k = 0; k < order.size(); ++k) {
    const size_t j = order[k];
    if (k) out.Put(',');
    out.Put("{\"feature\":");
    out.PutJsonString(t.features[j]);
    out.Put(",\"value\":");
    PutNumber(out, s.values[j]);
    out.Put(",\"contribution\":");
    PutNumber(out, s.contributions[j]);
    out.Put('}');
  }
  out.Put("]}");
}

}  // namespace

std::optional<HttpResponse> ModelsApi::Handle(const HttpRequest& request, const Principal& caller) {
  const std::string_view path = request.path;
  const bool read = request.method == "GET" || request.method == "HEAD";
  constexpr std::string_view kModels = "/v1/insights/models";
  if (path == kModels) return read ? List() : JsonError(405, "use GET");
  if (path.starts_with(kModels) && path[kModels.size()] == '/') {
    if (!read) return JsonError(405, "use GET");
    const std::string_view rest = path.substr(kModels.size() + 1);
    const size_t slash = rest.find('/');
    const std::string_view what =
        slash == std::string_view::npos ? std::string_view() : rest.substr(slash);
    if (what == "/importance") return Importance(request, rest.substr(0, slash));
    if (what == "/scores") return Scores(request, rest.substr(0, slash));
    return JsonError(404,
                     "no such model route (GET /v1/insights/models/{model}/importance or /scores)");
  }
  constexpr std::string_view kSubscribers = "/v1/subscribers/";
  constexpr std::string_view kChurn = "/churn";
  if (path.starts_with(kSubscribers) && path.ends_with(kChurn) &&
      path.size() > kSubscribers.size() + kChurn.size()) {
    const std::string_view id_text =
        path.substr(kSubscribers.size(), path.size() - kSubscribers.size() - kChurn.size());
    if (id_text.find('/') != std::string_view::npos) return std::nullopt;
    if (!read) return JsonError(405, "use GET");
    const std::optional<int64_t> id = PositiveId(id_text);
    if (!id) {
      return JsonError(400, "subscriber id '" + std::string(id_text.substr(0, 32)) +
                                "': expected a positive integer");
    }
    return Churn(caller, *id);
  }
  return std::nullopt;
}

HttpResponse ModelsApi::List() {
  TextBuffer out(1 << 14);
  out.Put("{\"models\":[");
  bool first_model = true;
  for (ModelKind kind : {ModelKind::kChurn, ModelKind::kLtv}) {
    auto versions = registry_.Versions(kind);
    if (!versions.ok()) return ErrorOf(versions.status());
    auto active = registry_.Active(kind);
    if (!active.ok()) return ErrorOf(active.status());
    if (!first_model) out.Put(',');
    first_model = false;
    out.Put("{\"model\":");
    out.PutJsonString(ModelName(kind));
    out.Put(",\"active_version\":");
    if (*active) {
      out.PutInt(**active);
    } else {
      out.Put("null");
    }
    out.Put(",\"versions\":[");
    for (size_t i = 0; i < versions->size(); ++i) {
      auto meta = registry_.Metadata(kind, (*versions)[i]);
      if (!meta.ok()) return ErrorOf(meta.status());
      if (i) out.Put(',');
      out.Put("{\"active\":");
      out.Put(*active && **active == (*versions)[i] ? "true" : "false");
      out.Put(",\"meta\":");
      out.Put(*meta);
      out.Put('}');
    }
    out.Put("]}");
  }
  out.Put("]}");
  return JsonResponse(200, std::string(out.view()));
}

HttpResponse ModelsApi::Importance(const HttpRequest& request, std::string_view model) {
  auto kind = ParseModelKind(model);
  if (!kind.ok()) return JsonError(404, kind.status().message());
  std::optional<int> version;
  if (auto v = request.query.find("version"); v != request.query.end()) {
    const std::optional<int64_t> n = PositiveId(v->second);
    if (!n || *n > 1000000) return JsonError(400, "version: expected a positive integer");
    version = static_cast<int>(*n);
  } else {
    auto active = registry_.Active(*kind);
    if (!active.ok()) return ErrorOf(active.status());
    version = *active;
  }
  if (!version) {
    return NotTrained(*kind);
  }
  auto meta = registry_.Metadata(*kind, *version);
  if (!meta.ok()) return ErrorOf(meta.status());
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  simdjson::dom::array importance;
  if (parser.parse(*meta).get(doc) != simdjson::SUCCESS ||
      doc["importance"].get(importance) != simdjson::SUCCESS) {
    return JsonError(500, registry_.PathOf(*kind, *version, "meta.json") + ": no importance");
  }
  TextBuffer out(1 << 12);
  PutModelHeader(out, *kind, *version);
  out.Put(",\"method\":\"mean |SHAP| over the holdout (exact TreeSHAP)\",\"importance\":");
  out.Put(simdjson::minify(importance));
  out.Put('}');
  return JsonResponse(200, std::string(out.view()));
}

Result<std::shared_ptr<const ScoreTable>> ModelsApi::ActiveScores(ModelKind kind,
                                                                  std::optional<int>* version) {
  TALLY_ASSIGN_OR_RETURN(*version, registry_.Active(kind));
  if (!*version) return std::shared_ptr<const ScoreTable>();
  const std::string path = registry_.PathOf(kind, **version, "scores.csv");
  std::error_code ec;
  const auto mtime = std::filesystem::last_write_time(path, ec);
  if (ec) return Status::Internal("cannot read " + path + ": " + ec.message());
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = cache_.find(kind);
    if (it != cache_.end() && it->second.version == **version && it->second.mtime == mtime) {
      return it->second.table;
    }
  }
  TALLY_ASSIGN_OR_RETURN(ScoreTable table, registry_.Scores(kind, **version));
  auto shared = std::make_shared<const ScoreTable>(std::move(table));
  std::lock_guard<std::mutex> lock(mu_);
  cache_[kind] = CachedScores{**version, mtime, shared};
  return shared;
}

HttpResponse ModelsApi::Scores(const HttpRequest& request, std::string_view model) {
  auto kind = ParseModelKind(model);
  if (!kind.ok()) return JsonError(404, kind.status().message());
  int64_t limit = 20;
  if (auto l = request.query.find("limit"); l != request.query.end()) {
    const std::optional<int64_t> n = PositiveId(l->second);
    if (!n || *n > 1000) return JsonError(400, "limit: expected an integer in 1..1000");
    limit = *n;
  }
  bool lowest = false;
  if (auto o = request.query.find("order"); o != request.query.end()) {
    if (o->second != "desc" && o->second != "asc") {
      return JsonError(400, "order: expected desc (highest first) or asc");
    }
    lowest = o->second == "asc";
  }
  // ?partner=: that partner's subscribers only (the dashboards' partner filter).
  std::optional<int64_t> partner;
  if (auto p = request.query.find("partner"); p != request.query.end()) {
    Result<SecurityScope> narrowed = NarrowToPartner(SecurityScope{}, p->second);
    if (!narrowed.ok()) return JsonError(400, narrowed.status().message());
    partner = narrowed->partner;
  }
  std::optional<int> version;
  auto table = ActiveScores(*kind, &version);
  if (!table.ok()) return ErrorOf(table.status());
  if (!*table) {
    return NotTrained(*kind);
  }
  std::vector<const SubscriberScore*> rows;
  rows.reserve((*table)->rows.size());
  for (const auto& [id, score] : (*table)->rows) {
    if (!partner || score.partner_id == *partner) rows.push_back(&score);
  }
  const size_t n = std::min(rows.size(), static_cast<size_t>(limit));
  // Highest (or lowest) first; ties by subscriber id, so the order is stable.
  std::partial_sort(rows.begin(), rows.begin() + static_cast<std::ptrdiff_t>(n), rows.end(),
                    [lowest](const SubscriberScore* a, const SubscriberScore* b) {
                      if (a->prediction != b->prediction) {
                        return lowest ? a->prediction < b->prediction
                                      : a->prediction > b->prediction;
                      }
                      return a->subscriber_id < b->subscriber_id;
                    });
  TextBuffer out(1 << 12);
  PutModelHeader(out, *kind, *version);
  out.Put(",\"scored_at\":");
  out.PutJsonString((*table)->scored_at);
  out.Put(",\"scored\":");
  out.PutInt(static_cast<int64_t>(rows.size()));
  out.Put(",\"scores\":[");
  for (size_t i = 0; i < n; ++i) {
    if (i) out.Put(',');
    out.Put("{\"subscriber_id\":");
    out.PutInt(rows[i]->subscriber_id);
    out.Put(",\"partner_id\":");
    out.PutInt(rows[i]->partner_id);
    out.Put(",\"prediction\":");
    PutNumber(out, rows[i]->prediction);
    out.Put('}');
  }
  out.Put("]}");
  return JsonResponse(200, std::string(out.view()));
}

HttpResponse ModelsApi::Churn(const Principal& caller, int64_t id) {
  std::optional<int> churn_version, ltv_version;
  auto churn = ActiveScores(ModelKind::kChurn, &churn_version);
  if (!churn.ok()) return ErrorOf(churn.status());
  auto ltv = ActiveScores(ModelKind::kLtv, &ltv_version);
  if (!ltv.ok()) return ErrorOf(ltv.status());
  if (!*churn) return NotTrained(ModelKind::kChurn);
  const auto row = (*churn)->rows.find(id);
  // Unscored (not active at the newest data) and out of scope look the same.
  // A subscriber credential naming another partner sees nothing, as on the usage routes.
  const bool foreign_claim = caller.role == Role::kSubscriber && caller.partner &&
                             row != (*churn)->rows.end() &&
                             *caller.partner != PartnerId(row->second.partner_id);
  if (row == (*churn)->rows.end() || foreign_claim ||
      !MaySee(caller, SubscriberId(id), PartnerId(row->second.partner_id))) {
    return JsonError(404, SubscriberNotFound(SubscriberId(id)));
  }
  TextBuffer out(1 << 13);
  out.Put("{\"subscriber_id\":");
  out.PutInt(id);
  out.Put(",\"churn_probability\":");
  PutNumber(out, row->second.prediction);
  out.Put(",\"ltv\":");
  const SubscriberScore* ltv_row = nullptr;
  if (*ltv) {
    auto it = (*ltv)->rows.find(id);
    if (it != (*ltv)->rows.end()) ltv_row = &it->second;
  }
  if (ltv_row) {
    PutNumber(out, ltv_row->prediction);
  } else {
    out.Put("null");
  }
  out.Put(",\"churn\":");
  PutExplanation(out, **churn, row->second, *churn_version, "probability");
  out.Put(",\"ltv_model\":");
  if (ltv_row) {
    PutExplanation(out, **ltv, *ltv_row, *ltv_version, "value");
  } else {
    out.Put("null");
  }
  out.Put('}');
  return JsonResponse(200, std::string(out.view()));
}

}  // namespace tally
