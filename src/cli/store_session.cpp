#include "cli/store_session.h"

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
  TALLY_ASSIGN_OR_RETURN(o.compact_rows, IntIn(cfg, "ingest.compact_rows", 0, int64_t{1} << 40));
  TALLY_ASSIGN_OR_RETURN(int64_t interval, IntIn(cfg, "ingest.compact_interval_s", 0, 86400 * 365));
  o.compact_interval = std::chrono::seconds(interval);
  return o;
}

Result<StoreSession> OpenStoreSession(const std::string& data_dir, const Config& cfg,
                                      int32_t subscriber_index_days) {
  TALLY_ASSIGN_OR_RETURN(PipelineOptions popts, PipelineOptionsFrom(cfg));
  popts.subscriber_index_days = subscriber_index_days;
  DuckDbStoreOptions sopts;
  sopts.data_dir = data_dir;
  TALLY_ASSIGN_OR_RETURN(sopts.memory_limit, cfg.String("store.memory_limit"));
  TALLY_ASSIGN_OR_RETURN(int64_t threads, IntIn(cfg, "store.threads", 0, 1024));
  sopts.threads = static_cast<int>(threads);
  TALLY_ASSIGN_OR_RETURN(std::string rating, cfg.String("ledger.rating"));
  if (rating != "auto" && rating != "off") {
    return Status::InvalidArgument("ledger.rating (from " + cfg.SourceOf("ledger.rating") + ") '" +
                                   rating + "': expected auto or off");
  }
  TALLY_RETURN_IF_ERROR(CheckLedgerSettings(cfg));  // before the store is opened
  TALLY_ASSIGN_OR_RETURN(int64_t relay_ms, IntIn(cfg, "ledger.relay_interval_ms", 10, 3'600'000));
  StoreSession s;
  TALLY_ASSIGN_OR_RETURN(s.store, DuckDbEventStore::Open(sopts));
  TALLY_ASSIGN_OR_RETURN(s.ledger, OpenConfiguredLedger(cfg, s.store->data_dir()));
  if (rating == "auto") {
    // Usage is rated once the ledger has accounts; a store without a ledger just stores usage.
    Ledger* ledger = s.ledger.get();
    popts.rate_usage = [ledger](const std::vector<UsageEvent>& usage) -> Status {
      if (ledger->account_count() == 0) return Status::Ok();
      return ledger->RateUsage(usage).status();
    };
  }
  TALLY_ASSIGN_OR_RETURN(s.pipeline,
                         IngestPipeline::Start(s.store.get(), s.store->data_dir(), popts));
  s.relay =
      OutboxRelay::Start(s.ledger.get(), s.pipeline.get(), std::chrono::milliseconds(relay_ms));
  return s;
}

}  // namespace tally
