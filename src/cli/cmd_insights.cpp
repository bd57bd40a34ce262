// `tally insights`: the insights engine from the command line (docs/insights.md).
//
//   tally insights funnel      --data DIR [steps=visit,signup,...] [segments=region,tier,year]
//   tally insights pricing     --data DIR [trial_days=14] [confidence=0.95]
//   tally insights experiments --data DIR
//   tally insights experiment  --data DIR experiment=KEY [alpha=0.05] [metrics=...] ...
//   tally insights anomalies   --data DIR [subscriber=ID] [from=DATE] [to=DATE] ...
//   tally insights power       mde=0.05 baseline=0.1 [alpha=0.05] [power=0.8] [n=...]
//   tally insights funnel  --seed-file funnel_data.csv [segments=...]     (no data directory)
//   tally insights pricing --seed-file pricing_elasticity.csv
//
// Parameters are key=value, the same as the HTTP routes' query parameters; format=csv prints CSV.
// A bad parameter is a usage error (exit 2) that names it; a failed query exits 1.

#include <iostream>
#include <memory>

#include "cli/commands.h"
#include "cli/config_keys.h"
#include "cli/store_session.h"
#include "insights/funnel.h"
#include "insights/insight_request.h"
#include "insights/pricing.h"
#include "metrics/metrics_engine.h"

namespace tally {

namespace {

struct InsightsFlags {
  std::string insight;
  std::vector<std::string> params;
  std::string data;
  std::string seed_file;
  std::optional<int64_t> partner;
};

int Fail(const Status& st, int code) {
  std::cerr << "tally insights: " << st.message() << "\n";
  return code;
}

int Print(const std::string& body, bool csv) {
  std::cout << body << (csv ? "" : "\n");
  return 0;
}

// funnel or pricing straight from one of the dashboard seed's CSV files.
int FromSeedFile(const InsightsFlags& f, InsightParams params) {
  const auto format = params.extract("format");
  const bool csv = format && format.mapped() == "csv";
  if (format && !csv && format.mapped() != "json") {
    return Fail(Status::InvalidArgument("format: '" + format.mapped() + "' is not json or csv"), 2);
  }
  if (f.insight == "funnel") {
    std::vector<std::string> segments;
    if (auto s = params.extract("segments")) {
      const std::string& v = s.mapped();
      for (size_t at = 0; at <= v.size();) {
        size_t comma = v.find(',', at);
        if (comma == std::string::npos) comma = v.size();
        if (comma > at) segments.push_back(v.substr(at, comma - at));
        at = comma + 1;
      }
    }
    if (!params.empty()) {
      return Fail(Status::InvalidArgument("unknown parameter '" + params.begin()->first +
                                          "' with --seed-file (segments, format)"),
                  2);
    }
    auto r = FunnelFromSeedCsv(f.seed_file, segments);
    if (!r.ok()) return Fail(r.status(), 2);
    return Print(csv ? r->ToCsv() : r->ToJson(), csv);
  }
  if (f.insight == "pricing") {
    if (!params.empty()) {
      return Fail(Status::InvalidArgument("unknown parameter '" + params.begin()->first +
                                          "' with --seed-file (format)"),
                  2);
    }
    auto r = PricingFromSeedCsv(f.seed_file);
    if (!r.ok()) return Fail(r.status(), 2);
    return Print(csv ? r->ToCsv() : r->ToJson(), csv);
  }
  return Fail(Status::InvalidArgument("--seed-file: only the funnel and pricing insights read "
                                      "the seed's files"),
              2);
}

}  // namespace

CommandFn RegisterInsights(CLI::App& app, CliContext& ctx) {
  auto f = std::make_shared<InsightsFlags>();
  app.add_option("insight", f->insight,
                 "funnel, pricing, experiments, experiment, anomalies or power")
      ->required();
  app.add_option("params", f->params, "Parameters as key=value (docs/insights.md)");
  app.add_option("--data", f->data, "Data directory");
  app.add_option("--seed-file", f->seed_file,
                 "funnel or pricing from the dashboard seed's CSV file instead of the store");
  app.add_option("--partner", f->partner,
                 "Answer as this partner would see it (row-level security)");
  return [f, &ctx]() {
    InsightParams params;
    for (const std::string& kv : f->params) {
      const size_t eq = kv.find('=');
      if (eq == std::string::npos || eq == 0) {
        return Fail(Status::InvalidArgument("'" + kv + "' is not key=value"), 2);
      }
      if (!params.emplace(kv.substr(0, eq), kv.substr(eq + 1)).second) {
        return Fail(Status::InvalidArgument(kv.substr(0, eq) + ": given twice"), 2);
      }
    }
    if (!f->seed_file.empty()) return FromSeedFile(*f, std::move(params));
    const auto& names = InsightNames();
    if (std::find(names.begin(), names.end(), f->insight) == names.end()) {
      return Fail(
          Status::InvalidArgument("no insight '" + f->insight +
                                  "' (funnel, pricing, experiments, experiment, anomalies, power)"),
          2);
    }
    const SecurityScope scope{f->partner, std::nullopt};
    if (f->data.empty() && f->insight != "power") {
      return Fail(Status::InvalidArgument("--data is required for the " + f->insight + " insight"),
                  2);
    }
    std::unique_ptr<StoreSession> session;
    std::unique_ptr<MetricsEngine> engine;
    if (!f->data.empty()) {
      auto cfg = Config::Load(ctx.config_path, AllConfigKeys(), ctx.env);
      if (!cfg.ok()) return Fail(cfg.status(), 2);
      auto opened = OpenStoreSession(f->data, *cfg);
      if (!opened.ok()) return Fail(opened.status(), SessionExitCode(opened.status()));
      session = std::make_unique<StoreSession>(std::move(*opened));
      engine = std::make_unique<MetricsEngine>(MetricCatalogue::Builtin(), session->pipeline.get());
    }
    Result<InsightOutput> out = Status::Internal("not run");
    if (engine) {
      out = RunInsight(*engine, f->insight, params, scope);
    } else {
      // The power calculator reads no data; an engine without a store is never asked for any.
      MetricsEngine offline(MetricCatalogue::Builtin(), nullptr);
      out = RunInsight(offline, f->insight, params, scope);
    }
    if (!out.ok()) {
      const bool usage = out.status().code() == Status::Code::kInvalidArgument ||
                         out.status().code() == Status::Code::kNotFound;
      return Fail(out.status(), usage ? 2 : 1);
    }
    return Print(out->body, out->csv);
  };
}

}  // namespace tally
