// `tally serve`: the long-running process. It owns the data directory, takes events over HTTP
// and from Kafka, and serves the API behind the gateway (api/gateway.h): API keys and embed
// tokens, roles, rate limits, the audit and access logs and Prometheus metrics.

#include <signal.h>

#include <iostream>
#include <map>

#include "api/access_log.h"
#include "api/audit_log.h"
#include "api/embed_token.h"
#include "api/gateway.h"
#include "api/graphql_api.h"
#include "api/http_server.h"
#include "api/ingest_api.h"
#include "api/insights_api.h"
#include "api/key_store.h"
#include "api/ledger_api.h"
#include "api/live_api.h"
#include "api/metrics_api.h"
#include "api/models_api.h"
#include "api/openapi.h"
#include "api/rate_limiter.h"
#include "api/responses.h"
#include "api/server_metrics.h"
#include "api/subscriber_api.h"
#include "cli/commands.h"
#include "cli/config_keys.h"
#include "cli/store_session.h"
#include "ingest/kafka_source.h"
#include "insights/kpis.h"
#include "sql/sql_endpoint.h"
#include "web/web_assets.h"

namespace tally {

namespace {

struct ServeFlags {
  std::string data;
  std::optional<int> port;
  std::optional<int> sql_port;
};

Result<std::optional<KafkaSourceOptions>> KafkaOptionsFrom(const Config& cfg) {
  TALLY_ASSIGN_OR_RETURN(std::string brokers, cfg.String("kafka.brokers"));
  if (brokers.empty()) return std::optional<KafkaSourceOptions>();
  KafkaSourceOptions o;
  o.brokers = brokers;
  TALLY_ASSIGN_OR_RETURN(o.group_id, cfg.String("kafka.group"));
  TALLY_ASSIGN_OR_RETURN(std::string topics, cfg.String("kafka.topics"));
  auto parsed = ParseKafkaTopics(topics);
  if (!parsed.ok())
    return parsed.status().WithContext("kafka.topics (from " + cfg.SourceOf("kafka.topics") + ")");
  o.topics = *parsed;
  return std::optional<KafkaSourceOptions>(o);
}

// The settings of the gateway and its parts, read from serve.*.
struct GatewaySettings {
  bool auth = true;
  RateLimiter::Options rate;
  double auth_failure_rate = 5;
  double auth_failure_burst = 20;
  std::chrono::milliseconds key_recheck{5000};
  EmbedTokens::Options embed;
  bool audit = true;
  std::string access_log;
};

Result<GatewaySettings> GatewaySettingsFrom(const Config& cfg) {
  GatewaySettings g;
  TALLY_ASSIGN_OR_RETURN(g.auth, cfg.Bool("serve.auth"));
  TALLY_ASSIGN_OR_RETURN(g.rate.rate_per_second, cfg.Double("serve.rate_per_key"));
  TALLY_ASSIGN_OR_RETURN(g.rate.burst, cfg.Double("serve.burst_per_key"));
  TALLY_ASSIGN_OR_RETURN(g.auth_failure_rate, cfg.Double("serve.auth_failure_rate"));
  TALLY_ASSIGN_OR_RETURN(g.auth_failure_burst, cfg.Double("serve.auth_failure_burst"));
  TALLY_ASSIGN_OR_RETURN(int64_t recheck, cfg.Int("serve.key_recheck_ms"));
  TALLY_ASSIGN_OR_RETURN(int64_t ttl, cfg.Int("serve.embed_max_ttl_s"));
  TALLY_ASSIGN_OR_RETURN(int64_t leeway, cfg.Int("serve.embed_leeway_s"));
  TALLY_ASSIGN_OR_RETURN(g.audit, cfg.Bool("serve.audit"));
  TALLY_ASSIGN_OR_RETURN(g.access_log, cfg.String("serve.access_log"));
  if (g.rate.rate_per_second <= 0 || g.rate.burst < 1 || g.auth_failure_rate <= 0 ||
      g.auth_failure_burst < 1) {
    return Status::InvalidArgument(
        "serve.rate_per_key and serve.auth_failure_rate must be > 0, serve.burst_per_key and "
        "serve.auth_failure_burst >= 1");
  }
  if (recheck < 0 || ttl < 1 || leeway < 0) {
    return Status::InvalidArgument(
        "serve.key_recheck_ms and serve.embed_leeway_s must be >= 0, serve.embed_max_ttl_s >= 1");
  }
  g.key_recheck = std::chrono::milliseconds(recheck);
  g.embed.max_lifetime = std::chrono::seconds(ttl);
  g.embed.leeway = std::chrono::seconds(leeway);
  return g;
}

// What the gateway needs, opened for one data directory; owns all of it.
struct GatewayParts {
  std::unique_ptr<KeyStore> keys;
  std::optional<EmbedTokens> tokens;
  std::unique_ptr<RateLimiter> limiter;
  std::unique_ptr<AuditLog> audit;
  std::unique_ptr<AccessLog> access;
  ServerMetrics metrics;

  ApiGateway::Parts View() {
    return {keys.get(), tokens ? &*tokens : nullptr, limiter.get(), audit.get(), access.get(),
            &metrics};
  }
};

Status OpenGatewayParts(const std::string& dir, const GatewaySettings& g, GatewayParts* parts) {
  KeyStore::Options ko;
  ko.recheck_after = g.key_recheck;
  TALLY_ASSIGN_OR_RETURN(parts->keys, KeyStore::Open(dir, ko));
  TALLY_ASSIGN_OR_RETURN(std::string secret, LoadOrCreateEmbedSecret(dir));
  TALLY_ASSIGN_OR_RETURN(EmbedTokens tokens, EmbedTokens::Create(std::move(secret), g.embed));
  parts->tokens.emplace(std::move(tokens));
  TALLY_ASSIGN_OR_RETURN(parts->limiter, RateLimiter::Create(g.rate));
  if (g.audit) {
    TALLY_ASSIGN_OR_RETURN(parts->audit, AuditLog::Open(dir));
  }
  if (g.access_log != "off" && !g.access_log.empty()) {
    TALLY_ASSIGN_OR_RETURN(parts->access, AccessLog::Open(g.access_log));
  }
  return Status::Ok();
}

// GET /readyz: 200 when the store and the ledger answer a query now, 503 otherwise.
HttpResponse Readiness(StoreSession& session) {
  Status store =
      session.pipeline->RunExclusive([](EventStore& s) { return s.Query("SELECT 1").status(); });
  Status ledger = Status::Ok();
  if (session.ledger) {
    auto probe = session.ledger->Account(SubscriberId(0));
    if (!probe.ok() && probe.status().code() != Status::Code::kNotFound) ledger = probe.status();
  }
  if (store.ok() && ledger.ok()) return JsonResponse(200, "{\"ready\":true}");
  return JsonError(503, !store.ok() ? "store: " + store.message() : "ledger: " + ledger.message());
}

}  // namespace

CommandFn RegisterServe(CLI::App& app, CliContext& ctx) {
  auto f = std::make_shared<ServeFlags>();
  app.add_option("--data", f->data, "Data directory (created if missing)")->required();
  app.add_option("--port", f->port, "HTTP port on 127.0.0.1; 0 picks a free one [8080]");
  app.add_option("--sql-port", f->sql_port,
                 "PostgreSQL-wire SQL port on 127.0.0.1 for psql and BI tools (docs/sql.md); 0 "
                 "picks a free one [off]");
  return [f, &ctx]() {
    auto cfg = Config::Load(ctx.config_path, AllConfigKeys(), ctx.env);
    if (!cfg.ok()) {
      std::cerr << "tally serve: " << cfg.status().message() << "\n";
      return 2;
    }
    if (f->port) cfg->Override("serve.port", std::to_string(*f->port), "flag --port");
    if (f->sql_port) {
      cfg->Override("serve.sql_port", std::to_string(*f->sql_port), "flag --sql-port");
    }
    auto port = cfg->Int("serve.port");
    auto sql_port = cfg->Int("serve.sql_port");
    auto threads = cfg->Int("serve.threads");
    auto max_body = cfg->Int("serve.max_body_mb");
    auto kafka = KafkaOptionsFrom(*cfg);
    auto gateway_settings = GatewaySettingsFrom(*cfg);
    auto query_timeout = cfg->Int("serve.query_timeout_ms");
    auto index_days = cfg->Int("serve.subscriber_index_days");
    auto kpi_thresholds = cfg->String("insights.kpi_thresholds");
    Status kpi_check = kpi_thresholds.status();
    if (kpi_check.ok()) {
      std::map<std::string, KpiThreshold> t(DefaultKpiThresholds().begin(),
                                            DefaultKpiThresholds().end());
      kpi_check = ParseKpiThresholds(*kpi_thresholds, &t)
                      .WithContext("insights.kpi_thresholds (from " +
                                   cfg->SourceOf("insights.kpi_thresholds") + ")");
    }
    for (const Status& st :
         {port.status(), sql_port.status(), threads.status(), max_body.status(), kafka.status(),
          gateway_settings.status(), query_timeout.status(), index_days.status(), kpi_check}) {
      if (!st.ok()) {
        std::cerr << "tally serve: " << st.message() << "\n";
        return 2;
      }
    }
    if (*port < 0 || *port > 65535 || *sql_port < -1 || *sql_port > 65535 || *threads < 1 ||
        *threads > 1024 || *max_body < 1 || *query_timeout < 0 || *index_days < 0 ||
        *index_days > 100000) {
      std::cerr << "tally serve: serve.port must be 0..65535, serve.sql_port -1..65535, "
                   "serve.threads 1..1024, "
                   "serve.max_body_mb >= 1, serve.query_timeout_ms >= 0, "
                   "serve.subscriber_index_days 0..100000\n";
      return 2;
    }
    if (Status st = CheckStoreSettings(*cfg); !st.ok()) {
      std::cerr << "tally serve: " << st.message() << "\n";
      return 2;
    }
    // The SQL endpoint runs the caller's SQL as DuckDB SQL (its guard parses it with DuckDB's
    // parser, and psql's catalog is DuckDB's): it cannot run on a ClickHouse store.
    if (*sql_port >= 0 && *cfg->String("store.backend") != "duckdb") {
      std::cerr << "tally serve: serve.sql_port (from " << cfg->SourceOf("serve.sql_port")
                << ") turns on the SQL endpoint, which runs DuckDB's SQL on the embedded store "
                   "only, and store.backend (from "
                << cfg->SourceOf("store.backend")
                << ") is clickhouse; set serve.sql_port = -1 (docs/sql.md, docs/scale.md)\n";
      return 2;
    }
    // Signals are taken by sigwait below; block them before any thread starts.
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);

    auto session = OpenStoreSession(f->data, *cfg, static_cast<int32_t>(*index_days));
    if (!session.ok()) {
      std::cerr << "tally serve: " << session.status().message() << "\n";
      return SessionExitCode(session.status());
    }
    GatewayParts parts;
    if (Status st = OpenGatewayParts(f->data, *gateway_settings, &parts); !st.ok()) {
      std::cerr << "tally serve: " << st.message() << "\n";
      return 1;
    }
    IngestApi ingest(session->pipeline.get());
    LedgerApi ledger_api(session->ledger.get());
    MetricsEngineOptions mo;
    mo.query_timeout = std::chrono::milliseconds(*query_timeout);
    MetricsEngine metrics(MetricCatalogue::Builtin(), session->pipeline.get(), mo);
    MetricsApi metrics_api(&metrics, session->pipeline.get());
    InsightsApi insights_api(&metrics, session->pipeline.get(), *kpi_thresholds);
    ModelsApi models_api(f->data);
    SubscriberApi subscriber_api(session->pipeline.get());
    GraphQLApi graphql_api(&metrics, session->pipeline.get(), session->ledger.get());
    LiveApi live_api(&metrics, session->pipeline.get());
    parts.metrics.AddGauge("tally_metrics_cache_hits", "Semantic queries answered from the cache",
                           [&metrics] { return static_cast<double>(metrics.cache_hits()); });
    parts.metrics.AddGauge("tally_metrics_cache_misses", "Semantic queries run on the store",
                           [&metrics] { return static_cast<double>(metrics.cache_misses()); });
    parts.metrics.AddGauge(
        "tally_store_data_version", "Grows with every change to stored rows",
        [&session] { return static_cast<double>(session->pipeline->data_version()); });

    ApiGateway::Options go;
    go.require_auth = gateway_settings->auth;
    go.auth_failures_per_second = gateway_settings->auth_failure_rate;
    go.auth_failure_burst = gateway_settings->auth_failure_burst;
    ApiGateway gateway(
        parts.View(), go,
        [&](const HttpRequest& req, const Principal* who) -> std::optional<HttpResponse> {
          if (who == nullptr) {  // the public routes
            if (req.path == "/readyz") return Readiness(*session);
            if (req.path == "/openapi.json") return JsonResponse(200, std::string(OpenApiJson()));
            if (req.path == "/metrics") {
              HttpResponse r;
              r.content_type = "text/plain; version=0.0.4; charset=utf-8";
              r.body = parts.metrics.Render();
              return r;
            }
            if (auto page = ServeWebAsset(req)) return page;
            return ingest.Handle(req);  // /healthz
          }
          if (req.path == "/v1/me") return JsonResponse(200, PrincipalJson(*who));
          if (auto r = ingest.Handle(req)) return r;
          if (auto r = metrics_api.Handle(req, *who)) return r;
          if (auto r = models_api.Handle(req, *who)) return r;
          if (auto r = insights_api.Handle(req, *who)) return r;
          if (auto r = live_api.Handle(req, *who)) return r;
          if (auto r = subscriber_api.Handle(req, *who)) return r;
          if (auto r = graphql_api.Handle(req, *who)) return r;
          return ledger_api.Handle(req, *who);
        });
    HttpServer::Options ho;
    ho.port = static_cast<uint16_t>(*port);
    ho.threads = static_cast<int>(*threads);
    ho.max_body_bytes = static_cast<size_t>(*max_body) << 20;
    auto server =
        HttpServer::Start(ho, [&gateway](const HttpRequest& req) { return gateway.Handle(req); });
    if (!server.ok()) {
      std::cerr << "tally serve: " << server.status().message() << "\n";
      return 1;
    }
    // The SQL endpoint: an API key as the password; every query through the guard and the
    // governed relations, as the key's role and tenant see them; audited like the HTTP API.
    std::unique_ptr<SqlEndpoint> sql_server;
    if (*sql_port >= 0) {
      PgWireServer::Options so;
      so.port = static_cast<uint16_t>(*sql_port);
      SqlEndpoint::Parts sp;
      sp.keys = parts.keys.get();
      sp.audit = parts.audit.get();
      sp.pipeline = session->pipeline.get();
      sp.failures.rate_per_second = gateway_settings->auth_failure_rate;
      sp.failures.burst = gateway_settings->auth_failure_burst;
      sp.query_timeout = std::chrono::milliseconds(*query_timeout);
      auto started = SqlEndpoint::Start(so, sp);
      if (!started.ok()) {
        std::cerr << "tally serve: " << started.status().message() << "\n";
        return 1;
      }
      sql_server = std::move(*started);
    }
    std::unique_ptr<KafkaSource> consumer;
    if (*kafka) {
      auto k = KafkaSource::Start(**kafka, session->pipeline.get());
      if (!k.ok()) {
        std::cerr << "tally serve: kafka: " << k.status().message() << "\n";
        return 1;
      }
      consumer = std::move(*k);
    }
    if (!gateway_settings->auth) {
      std::cerr << "tally serve: WARNING serve.auth is false: every request runs as admin\n";
    } else if (auto listed = parts.keys->List(); listed.ok() && listed->empty()) {
      std::cerr << "tally serve: no API keys yet; create one with: tally keys create --data "
                << f->data << " --role admin\n";
    }
    std::cerr << "tally serve: listening on http://127.0.0.1:" << (*server)->port()
              << " with data in " << f->data << ", events in " << session->description
              << (consumer ? " and consuming Kafka" : "") << std::endl;
    if (sql_server) {
      std::cerr << "tally serve: SQL (PostgreSQL wire) on 127.0.0.1:" << sql_server->port()
                << std::endl;
    }
    int sig = 0;
    sigwait(&signals, &sig);
    std::cerr << "tally serve: stopping (signal " << sig << ")" << std::endl;
    // Stop taking input first, then let the pipeline finish what it acknowledged.
    if (consumer) consumer->Stop();
    if (sql_server) sql_server->Stop();
    (*server)->Stop();
    if (parts.audit) {
      if (Status st = parts.audit->Close(); !st.ok()) {
        std::cerr << "tally serve: audit log: " << st.message() << "\n";
      }
    }
    if (parts.access) parts.access->Flush();
    session->Close();
    return 0;
  };
}

}  // namespace tally
