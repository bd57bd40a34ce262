#pragma once
// Opening a data directory for a command: the event store that store.backend names (DuckDB in the
// directory, or a ClickHouse cluster), the ledger, the ingest pipeline on top of them (rating usage
// in the ledger) and the relay of the ledger's outbox into the store, configured from settings
// (store.*, ingest.*, ledger.*).
//
// The data directory is opened for both backends: whatever is local to one tally process lives
// there whichever store holds the events (the SQLite ledger and its lock, quarantined rows, API
// keys, the audit log, trained models, file loads' scratch files).

#include <memory>
#include <string>

#include "core/config.h"
#include "ingest/pipeline.h"
#include "ledger/ledger.h"
#include "ledger/outbox_relay.h"
#include "store/event_store.h"

namespace tally {

//! A data directory opened for writing. Members are destroyed in reverse order: the relay delivers
//! what is pending and stops, then the pipeline finishes its queue, then the ledger and the store
//! close. Close() does the same early.
struct StoreSession {
  std::string data_dir;     // the local data directory (--data)
  std::string description;  // where the events are, for messages ("DuckDB in DIR", ...)
  std::unique_ptr<EventStore> store;
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

//! Checks store.backend, store.cluster, store.clickhouse_database and
//! store.clickhouse_timeout_s; errors (InvalidArgument) name the setting and its source.
Status CheckStoreSettings(const Config& cfg);

//! The event store that store.backend names, with a description for messages: DuckDB in
//! `data_dir` (the default), or the ClickHouse cluster that store.cluster describes (database
//! store.clickhouse_database). A setting that is wrong, or a cluster file that cannot be read, is
//! InvalidArgument naming the setting; a cluster that does not answer is another error.
Result<std::unique_ptr<EventStore>> OpenConfiguredStore(const Config& cfg,
                                                        const std::string& data_dir,
                                                        std::string* description = nullptr);

//! Reads store.* and ingest.* settings into options; errors name the setting and its source.
Result<PipelineOptions> PipelineOptionsFrom(const Config& cfg);

//! Opens `data_dir` (creating it if needed) and the configured event store, and starts the
//! ingest pipeline. `subscriber_index_days` > 0 keeps the per-subscriber usage index
//! (`tally serve`).
Result<StoreSession> OpenStoreSession(const std::string& data_dir, const Config& cfg,
                                      int32_t subscriber_index_days = 0);

//! The exit status of a command that could not open its session: 2 for a settings error
//! (InvalidArgument), 1 otherwise (a store or ledger that fails).
inline int SessionExitCode(const Status& st) {
  return st.code() == Status::Code::kInvalidArgument ? 2 : 1;
}

}  // namespace tally
