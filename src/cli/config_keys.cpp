#include "cli/config_keys.h"

namespace tally {

const std::vector<ConfigKey>& AllConfigKeys() {
  static const std::vector<ConfigKey> keys = {
      {"generate.subscribers", "5000", "subscribers at the start date"},
      {"generate.days", "182", "days of history"},
      {"generate.start", "2024-07-01", "first day (UTC)"},
      {"generate.seed", "42", "random seed"},
      {"generate.format", "csv", "csv, ndjson or parquet"},
      {"generate.dirty", "0", "fraction of rows given a dirty companion"},
      {"generate.partners", "5", "MVNO and reseller brands besides the operator's own"},
      {"generate.visitors_per_day", "0", "funnel visitors a day (0: 5% of subscribers)"},
      {"generate.price_change_days", "61", "days between regional price changes"},
      {"generate.threads", "0", "worker threads (0: one per core)"},
      {"store.backend", "duckdb",
       "the event store: duckdb (embedded, in DIR) or clickhouse (the cluster store.cluster "
       "describes; docs/scale.md)"},
      {"store.cluster", "",
       "clickhouse: the directory of `tally cluster up --data DIR`, or a cluster.json file"},
      {"store.clickhouse_database", "tally", "clickhouse: the database on every shard"},
      {"store.clickhouse_timeout_s", "300", "clickhouse: longest time of one statement (seconds)"},
      {"store.memory_limit", "", "DuckDB memory limit, e.g. 4GB (empty: DuckDB's default, 80% of RAM)"},
      {"store.threads", "0", "DuckDB worker threads (0: one per core)"},
      {"store.read_connections", "2",
       "duckdb: queries run on this many connections of their own, beside ingest (0: on the "
       "writer thread)"},
      {"ingest.dedup_window_days", "7", "event ids are remembered in memory this many days behind the watermark"},
      {"ingest.dedup_memory_mb", "1024", "memory for dedup sets of days older than the window"},
      {"ingest.unknown_subscribers", "flag", "flag (store and report) or reject events of unknown subscribers"},
      {"ingest.max_future_hours", "24", "events further ahead of the clock are rejected"},
      {"ingest.max_line_bytes", "1048576", "longer lines are rejected"},
      {"ingest.group_rows", "1048576", "rows written by one group commit, at most"},
      {"ingest.compact_rows", "4000000", "staged rows that trigger compaction into day partitions"},
      {"ingest.compact_interval_s", "300", "compact staged rows at least this often (seconds)"},
      {"ledger.backend", "sqlite", "sqlite: DIR/ledger.sqlite; postgres: the database at ledger.postgres_url (docs/ledger.md)"},
      {"ledger.postgres_url", "", "libpq connection string or URI of the PostgreSQL ledger, e.g. host=127.0.0.1 dbname=tally user=tally"},
      {"ledger.rating", "auto", "auto: rate ingested usage in the ledger once it has accounts; off: never"},
      {"ledger.relay_interval_ms", "200", "how often the ledger's outbox is delivered to the store (milliseconds)"},
      {"serve.port", "8080", "HTTP port on 127.0.0.1"},
      {"serve.threads", "8", "HTTP worker threads"},
      {"serve.sql_port", "-1",
       "PostgreSQL-wire SQL port on 127.0.0.1 (docs/sql.md); -1 is off, 0 picks a free one"},
      {"serve.max_body_mb", "256", "largest accepted request body, after gunzip"},
      {"serve.auth", "true", "require an API key or embed token (false: every request is admin; development only)"},
      {"serve.rate_per_key", "200", "sustained requests per second per API key or token scope"},
      {"serve.burst_per_key", "400", "requests a rested key may make at once"},
      {"serve.auth_failure_rate", "5", "failed authentications per second per client address before 429"},
      {"serve.auth_failure_burst", "20", "failed authentications a client address may make at once"},
      {"serve.key_recheck_ms", "5000", "a revocation by another process takes effect within this time"},
      {"serve.embed_max_ttl_s", "86400", "longest lifetime of an embed token (seconds)"},
      {"serve.embed_leeway_s", "30", "clock skew tolerated on embed token times (seconds)"},
      {"serve.audit", "true", "write the audit log to DIR/audit/"},
      {"serve.subscriber_index_days", "400", "days of per-subscriber usage kept in memory for the usage API (0: off; queries go to the store)"},
      {"serve.query_timeout_ms", "10000", "a metrics query taking longer is stopped and answered 504 (0: no limit)"},
      {"serve.access_log", "stdout", "structured access log: stdout, off, or a file path"},
      {"insights.kpi_thresholds", "", "KPI status thresholds, kpi:green:amber;... (docs/insights.md)"},
      {"kafka.brokers", "", "bootstrap servers; empty disables the Kafka source"},
      {"kafka.group", "tally", "consumer group id"},
      {"kafka.topics", "", "family=topic pairs, e.g. usage=cdr.usage,recharge=billing.recharge"},
  };
  return keys;
}

}  // namespace tally
