#pragma once
// Opening a data directory for a command: the embedded store, the ledger, the ingest pipeline on
// top of them (rating usage in the ledger) and the relay of the ledger's outbox into the store,
// configured from settings (store.*, ingest.*, ledger.*).

#include <memory>
#include <string>

#include "core/config.h"
#include "ingest/pipeline.h"
#include "ledger/ledger.h"
#include "ledger/outbox_relay.h"
#include "store/duckdb/duckdb_event_store.h"

namespace tally {

//! A data directory opened for writing. Members are destroyed in reverse order: the relay delivers
//! what is pending and stops, then the pipeline finishes its queue, then the ledger and the store
//! close. Close() does the same early.
struct StoreSession {
  std::unique_ptr<DuckDbEventStore> store;
  std::unique_ptr<Ledger> ledger;
  std::unique_ptr<IngestPipeline> pipeline;
  std::unique_ptr<OutboxRelay> relay;

  void Close() {
    relay.reset();
    pipeline.reset();
    ledger.reset();
    store.reset();
  }
};

//! Checks ledger.backend and ledger.postgres_url; errors (InvalidArgument) name the setting and
//! its source.
Status CheckLedgerSettings(const Config& cfg);

//! The ledger that ledger.backend names: SQLite in `data_dir` (the default), or PostgreSQL at
//! ledger.postgres_url.
Result<std::unique_ptr<Ledger>> OpenConfiguredLedger(const Config& cfg,
                                                     const std::string& data_dir);

//! Reads store.* and ingest.* settings into options; errors name the setting and its source.
Result<PipelineOptions> PipelineOptionsFrom(const Config& cfg);

//! Opens `data_dir` (creating it if needed) and starts its ingest pipeline.
//! `subscriber_index_days` > 0 keeps the per-subscriber usage index (`tally serve`).
Result<StoreSession> OpenStoreSession(const std::string& data_dir, const Config& cfg,
                                      int32_t subscriber_index_days = 0);

}  // namespace tally
