// `tally serve`: the long-running process. It owns the data directory, takes events over HTTP
// and from Kafka, and (in later issues) serves the API and the dashboards.

#include <signal.h>

#include <iostream>

#include "api/http_server.h"
#include "api/ingest_api.h"
#include "api/ledger_api.h"
#include "api/metrics_api.h"
#include "api/responses.h"
#include "cli/commands.h"
#include "cli/config_keys.h"
#include "cli/store_session.h"
#include "ingest/kafka_source.h"

namespace tally {

namespace {

struct ServeFlags {
  std::string data;
  std::optional<int> port;
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

}  // namespace

CommandFn RegisterServe(CLI::App& app, CliContext& ctx) {
  auto f = std::make_shared<ServeFlags>();
  app.add_option("--data", f->data, "Data directory (created if missing)")->required();
  app.add_option("--port", f->port, "HTTP port on 127.0.0.1; 0 picks a free one [8080]");
  return [f, &ctx]() {
    auto cfg = Config::Load(ctx.config_path, AllConfigKeys(), ctx.env);
    if (!cfg.ok()) {
      std::cerr << "tally serve: " << cfg.status().message() << "\n";
      return 2;
    }
    if (f->port) cfg->Override("serve.port", std::to_string(*f->port), "flag --port");
    auto port = cfg->Int("serve.port");
    auto threads = cfg->Int("serve.threads");
    auto max_body = cfg->Int("serve.max_body_mb");
    auto kafka = KafkaOptionsFrom(*cfg);
    for (const Status& st : {port.status(), threads.status(), max_body.status(), kafka.status()}) {
      if (!st.ok()) {
        std::cerr << "tally serve: " << st.message() << "\n";
        return 2;
      }
    }
    if (*port < 0 || *port > 65535 || *threads < 1 || *threads > 1024 || *max_body < 1) {
      std::cerr << "tally serve: serve.port must be 0..65535, serve.threads 1..1024, "
                   "serve.max_body_mb >= 1\n";
      return 2;
    }
    // Signals are taken by sigwait below; block them before any thread starts.
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);

    auto session = OpenStoreSession(f->data, *cfg);
    if (!session.ok()) {
      std::cerr << "tally serve: " << session.status().message() << "\n";
      return 1;
    }
    IngestApi ingest(session->pipeline.get());
    LedgerApi ledger_api(session->ledger.get());
    MetricsEngine metrics(MetricCatalogue::Builtin(), session->pipeline.get());
    MetricsApi metrics_api(&metrics);
    HttpServer::Options ho;
    ho.port = static_cast<uint16_t>(*port);
    ho.threads = static_cast<int>(*threads);
    ho.max_body_bytes = static_cast<size_t>(*max_body) << 20;
    auto server = HttpServer::Start(ho, [&](const HttpRequest& req) {
      if (auto r = ingest.Handle(req)) return *r;
      // Auth is not in front of the server yet (docs/security.md): every caller sees every row.
      if (auto r = metrics_api.Handle(req, SecurityScope{})) return *r;
      if (auto r = ledger_api.Handle(req)) return *r;  // after metrics: /v1/subscribers/{id}/usage
      return JsonError(404, "no route for " + req.method + " " + req.path);
    });
    if (!server.ok()) {
      std::cerr << "tally serve: " << server.status().message() << "\n";
      return 1;
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
    std::cout << "tally serve: listening on http://127.0.0.1:" << (*server)->port()
              << " with data in " << session->store->data_dir()
              << (consumer ? " and consuming Kafka" : "") << std::endl;
    int sig = 0;
    sigwait(&signals, &sig);
    std::cout << "tally serve: stopping (signal " << sig << ")" << std::endl;
    // Stop taking input first, then let the pipeline finish what it acknowledged.
    if (consumer) consumer->Stop();
    (*server)->Stop();
    session->Close();
    return 0;
  };
}

}  // namespace tally
