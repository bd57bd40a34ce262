#include "cli/store_session.h"

#include <cctype>
#include <filesystem>

#include "store/clickhouse/clickhouse_event_store.h"
#include "store/duckdb/duckdb_event_store.h"

namespace tally {

namespace {

Result<int64_t> IntIn(const Config& cfg, const std::string& key, int64_t lo, int64_t hi) {
  TALLY_ASSIGN_OR_RETURN(int64_t v, cfg.Int(key));
  if (v < lo || v > hi) {
    return Status::InvalidArgument(key + " (from " + cfg.SourceOf(key) + ") " + std::to_string(v) +
                                   ": must be " + std::to_string(lo) + " to " + std::to_string(hi));
  }
  return v;
}

}  // namespace

Status CheckLedgerSettings(const Config& cfg) {
  TALLY_ASSIGN_OR_RETURN(std::string backend, cfg.String("ledger.backend"));
  TALLY_ASSIGN_OR_RETURN(std::string url, cfg.String("ledger.postgres_url"));
  if (backend != "sqlite" && backend != "postgres") {
    return Status::InvalidArgument("ledger.backend (from " + cfg.SourceOf("ledger.backend") +
                                   ") '" + backend + "': expected sqlite or postgres");
  }
  if (backend == "postgres" && url.empty()) {
    return Status::InvalidArgument(
        "ledger.backend (from " + cfg.SourceOf("ledger.backend") +
        ") is postgres but ledger.postgres_url is empty: set it to a libpq connection string, "
        "e.g. \"host=127.0.0.1 port=5432 dbname=tally user=tally\"");
  }
  return Status::Ok();
}

Status CheckStoreSettings(const Config& cfg) {
  TALLY_ASSIGN_OR_RETURN(std::string backend, cfg.String("store.backend"));
  if (backend != "duckdb" && backend != "clickhouse") {
    return Status::InvalidArgument("store.backend (from " + cfg.SourceOf("store.backend") + ") '" +
                                   backend + "': expected duckdb or clickhouse");
  }
  if (backend != "clickhouse") return Status::Ok();
  TALLY_ASSIGN_OR_RETURN(std::string cluster, cfg.String("store.cluster"));
  if (cluster.empty()) {
    return Status::InvalidArgument(
        "store.backend (from " + cfg.SourceOf("store.backend") +
        ") is clickhouse but store.cluster is empty: set it to the directory of `tally cluster up "
        "--data DIR`, or to a cluster.json file that lists the shards (docs/scale.md)");
  }
  TALLY_ASSIGN_OR_RETURN(std::string database, cfg.String("store.clickhouse_database"));
  bool valid = !database.empty();
  for (size_t i = 0; i < database.size(); ++i) {
    const auto c = static_cast<unsigned char>(database[i]);
    valid &= (std::isalnum(c) != 0 && (i > 0 || std::isdigit(c) == 0)) || c == '_';
  }
  if (!valid) {
    return Status::InvalidArgument("store.clickhouse_database (from " +
                                   cfg.SourceOf("store.clickhouse_database") + ") '" + database +
                                   "': expected a name of letters, digits and _ that does not "
                                   "start with a digit");
  }
  return IntIn(cfg, "store.clickhouse_timeout_s", 1, 86400).status();
}

Result<std::unique_ptr<EventStore>> OpenConfiguredStore(const Config& cfg,
                                                        const std::string& data_dir,
                                                        std::string* description) {
  TALLY_RETURN_IF_ERROR(CheckStoreSettings(cfg));
  TALLY_ASSIGN_OR_RETURN(std::string backend, cfg.String("store.backend"));
  if (backend == "clickhouse") {
    TALLY_ASSIGN_OR_RETURN(std::string cluster, cfg.String("store.cluster"));
    const std::string setting = "store.cluster (from " + cfg.SourceOf("store.cluster") + ")";
    auto spec = ReadClusterSpec(cluster);
    if (!spec.ok()) return Status::InvalidArgument(setting + ": " + spec.status().message());
    ClickHouseStoreOptions o;
    o.cluster = *spec;
    TALLY_ASSIGN_OR_RETURN(o.database, cfg.String("store.clickhouse_database"));
    TALLY_ASSIGN_OR_RETURN(int64_t timeout, cfg.Int("store.clickhouse_timeout_s"));
    o.timeout = std::chrono::seconds(timeout);
    auto store = ClickHouseEventStore::Open(o);
    if (!store.ok()) return store.status().WithContext("ClickHouse event store of " + setting);
    if (description != nullptr) {
      *description = "ClickHouse cluster '" + o.cluster.name + "' (" +
                     std::to_string(o.cluster.shards.size()) + " shard(s), " + cluster +
                     "), database " + o.database;
    }
    return std::unique_ptr<EventStore>(std::move(*store));
  }
  DuckDbStoreOptions o;
  o.data_dir = data_dir;
  TALLY_ASSIGN_OR_RETURN(o.memory_limit, cfg.String("store.memory_limit"));
  TALLY_ASSIGN_OR_RETURN(int64_t threads, IntIn(cfg, "store.threads", 0, 1024));
  o.threads = static_cast<int>(threads);
  TALLY_ASSIGN_OR_RETURN(std::unique_ptr<DuckDbEventStore> store, DuckDbEventStore::Open(o));
  if (description != nullptr) *description = "DuckDB in " + data_dir;
  return std::unique_ptr<EventStore>(std::move(store));
}

Result<std::unique_ptr<Ledger>> OpenConfiguredLedger(const Config& cfg,
                                                     const std::string& data_dir) {
  TALLY_RETURN_IF_ERROR(CheckLedgerSettings(cfg));
  TALLY_ASSIGN_OR_RETURN(std::string backend, cfg.String("ledger.backend"));
  if (backend == "postgres") {
    TALLY_ASSIGN_OR_RETURN(std::string url, cfg.String("ledger.postgres_url"));
    return OpenPostgresLedger(url);
  }
  return OpenSqliteLedger(data_dir);
}

Result<PipelineOptions> PipelineOptionsFrom(const Config& cfg) {
  PipelineOptions o;
  TALLY_ASSIGN_OR_RETURN(int64_t window_days, IntIn(cfg, "ingest.dedup_window_days", 1, 3660));
  o.dedup.window_micros = window_days * kMicrosPerDay;
  TALLY_ASSIGN_OR_RETURN(int64_t mb, IntIn(cfg, "ingest.dedup_memory_mb", 16, 1 << 20));
  o.dedup.memory_budget_bytes = static_cast<size_t>(mb) << 20;
  TALLY_ASSIGN_OR_RETURN(std::string unknown, cfg.String("ingest.unknown_subscribers"));
  if (unknown == "flag") {
    o.validation.unknown_subscribers = UnknownSubscriberPolicy::kFlag;
  } else if (unknown == "reject") {
    o.validation.unknown_subscribers = UnknownSubscriberPolicy::kReject;
  } else {
    return Status::InvalidArgument("ingest.unknown_subscribers (from " +
                                   cfg.SourceOf("ingest.unknown_subscribers") + ") '" + unknown +
                                   "': expected flag or reject");
  }
  TALLY_ASSIGN_OR_RETURN(int64_t hours, IntIn(cfg, "ingest.max_future_hours", 0, 24 * 3660));
  o.validation.max_future_micros = hours * kMicrosPerHour;
  TALLY_ASSIGN_OR_RETURN(int64_t line, IntIn(cfg, "ingest.max_line_bytes", 1024, int64_t{1} << 30));
  o.max_line_bytes = static_cast<size_t>(line);
  TALLY_ASSIGN_OR_RETURN(int64_t group, IntIn(cfg, "ingest.group_rows", 1, int64_t{1} << 30));
  o.max_group_rows = static_cast<size_t>(group);
  TALLY_ASSIGN_OR_RETURN(int64_t readers, IntIn(cfg, "store.read_connections", 0, 256));
  o.read_connections = static_cast<int>(readers);
  TALLY_ASSIGN_OR_RETURN(o.compact_rows, IntIn(cfg, "ingest.compact_rows", 0, int64_t{1} << 40));
  TALLY_ASSIGN_OR_RETURN(int64_t interval, IntIn(cfg, "ingest.compact_interval_s", 0, 86400 * 365));
  o.compact_interval = std::chrono::seconds(interval);
  return o;
}

Result<StoreSession> OpenStoreSession(const std::string& data_dir, const Config& cfg,
                                      int32_t subscriber_index_days) {
  TALLY_ASSIGN_OR_RETURN(PipelineOptions popts, PipelineOptionsFrom(cfg));
  popts.subscriber_index_days = subscriber_index_days;
  TALLY_ASSIGN_OR_RETURN(std::string rating, cfg.String("ledger.rating"));
  if (rating != "auto" && rating != "off") {
    return Status::InvalidArgument("ledger.rating (from " + cfg.SourceOf("ledger.rating") + ") '" +
                                   rating + "': expected auto or off");
  }
  // Every setting is checked before anything is opened.
  TALLY_RETURN_IF_ERROR(CheckStoreSettings(cfg));
  TALLY_RETURN_IF_ERROR(CheckLedgerSettings(cfg));
  TALLY_ASSIGN_OR_RETURN(int64_t relay_ms, IntIn(cfg, "ledger.relay_interval_ms", 10, 3'600'000));
  StoreSession s;
  s.data_dir = data_dir;
  std::error_code ec;
  std::filesystem::create_directories(data_dir, ec);
  if (ec) return Status::IOError("cannot create " + data_dir + ": " + ec.message());
  // The ledger first: its lock (a file lock in DIR, or PostgreSQL's advisory lock) makes this
  // process the only one on the data directory before the store opens. Opening a ClickHouse
  // store purges the rows of commits that never finished, which must never be the commit that a
  // live `tally serve` on the same directory is writing.
  TALLY_ASSIGN_OR_RETURN(s.ledger, OpenConfiguredLedger(cfg, data_dir));
  TALLY_ASSIGN_OR_RETURN(s.store, OpenConfiguredStore(cfg, data_dir, &s.description));
  if (rating == "auto") {
    // Usage is rated once the ledger has accounts; a store without a ledger just stores usage.
    Ledger* ledger = s.ledger.get();
    popts.rate_usage = [ledger](const std::vector<UsageEvent>& usage) -> Status {
      if (ledger->account_count() == 0) return Status::Ok();
      return ledger->RateUsage(usage).status();
    };
  }
  TALLY_ASSIGN_OR_RETURN(s.pipeline, IngestPipeline::Start(s.store.get(), data_dir, popts));
  s.relay =
      OutboxRelay::Start(s.ledger.get(), s.pipeline.get(), std::chrono::milliseconds(relay_ms));
  return s;
}

}  // namespace tally
