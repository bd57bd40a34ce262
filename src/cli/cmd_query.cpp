// `tally query`: runs a semantic query (docs/metrics.md) on a data directory, and `tally metrics`:
// prints the metric catalogue.

#include <fstream>
#include <iostream>
#include <sstream>

#include "cli/commands.h"
#include "cli/config_keys.h"
#include "cli/store_session.h"
#include "metrics/metrics_engine.h"

namespace tally {

namespace {

struct QueryFlags {
  std::string data;
  std::string query;
  std::string format = "json";
  bool raw = false;
  bool explain = false;
  std::optional<int64_t> partner, subscriber;
};

}  // namespace

CommandFn RegisterQuery(CLI::App& app, CliContext& ctx) {
  auto f = std::make_shared<QueryFlags>();
  app.add_option("--data", f->data, "Data directory")->required()->check(CLI::ExistingDirectory);
  app.add_option("query", f->query, "The query as JSON, or @FILE to read it from a file")
      ->required();
  app.add_option("--format", f->format, "json or csv")
      ->check(CLI::IsMember({"json", "csv"}))
      ->capture_default_str();
  app.add_flag("--raw", f->raw, "Read raw events even where a rollup answers");
  app.add_flag("--explain", f->explain, "Print the SQL and its bound values instead of running it");
  app.add_option("--partner", f->partner,
                 "Answer as this partner would see it (row-level security)");
  app.add_option("--subscriber", f->subscriber, "Answer as this subscriber would see it");
  return [f, &ctx]() {
    std::string text = f->query;
    if (!text.empty() && text[0] == '@') {
      std::ifstream in(text.substr(1), std::ios::binary);
      if (!in) {
        std::cerr << "tally query: cannot read " << text.substr(1) << "\n";
        return 2;
      }
      std::stringstream ss;
      ss << in.rdbuf();
      text = ss.str();
    }
    auto query = ParseSemanticQuery(text);
    if (!query.ok()) {
      std::cerr << "tally query: " << query.status().message() << "\n";
      return 2;
    }
    auto cfg = Config::Load(ctx.config_path, AllConfigKeys(), ctx.env);
    if (!cfg.ok()) {
      std::cerr << "tally query: " << cfg.status().message() << "\n";
      return 2;
    }
    auto session = OpenStoreSession(f->data, *cfg);
    if (!session.ok()) {
      std::cerr << "tally query: " << session.status().message() << "\n";
      return SessionExitCode(session.status());
    }
    MetricsEngine engine(MetricCatalogue::Builtin(), session->pipeline.get());
    const SecurityScope scope{f->partner, f->subscriber};
    const CompileOptions options{f->raw};
    if (f->explain) {
      auto compiled = engine.Explain(*query, scope, options);
      if (!compiled.ok()) {
        std::cerr << "tally query: " << compiled.status().message() << "\n";
        return 2;
      }
      std::cout << "-- source: " << compiled->source << "\n" << compiled->sql << "\n";
      for (size_t i = 0; i < compiled->params.size(); ++i) {
        std::cout << "-- $" << i + 1 << " = ";
        std::visit(
            [](const auto& v) {
              using T = std::decay_t<decltype(v)>;
              if constexpr (std::is_same_v<T, Timestamp>) {
                std::cout << FormatTimestamp(v);
              } else if constexpr (std::is_same_v<T, Date>) {
                std::cout << FormatDate(v);
              } else {
                std::cout << v;
              }
            },
            compiled->params[i]);
        std::cout << "\n";
      }
      return 0;
    }
    auto result = engine.Run(*query, scope, options);
    if (!result.ok()) {
      std::cerr << "tally query: " << result.status().message() << "\n";
      return result.status().code() == Status::Code::kInvalidArgument ? 2 : 1;
    }
    std::cout << (f->format == "csv" ? result->ToCsv() : result->ToJson() + "\n");
    return 0;
  };
}

CommandFn RegisterMetrics(CLI::App&, CliContext&) {
  return []() {
    std::cout << MetricCatalogue::Builtin().ToJson() << "\n";
    return 0;
  };
}

}  // namespace tally
