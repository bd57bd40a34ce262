#pragma once
// Opening a data directory for a command: the embedded store and the ingest pipeline on top of
// it, configured from settings (store.*, ingest.*).

#include <memory>
#include <string>

#include "core/config.h"
#include "ingest/pipeline.h"
#include "store/duckdb/duckdb_event_store.h"

namespace tally {

//! A data directory opened for writing. Destroy the pipeline before the store (the member order
//! does that).
struct StoreSession {
  std::unique_ptr<DuckDbEventStore> store;
  std::unique_ptr<IngestPipeline> pipeline;
};

//! Reads store.* and ingest.* settings into options; errors name the setting and its source.
Result<PipelineOptions> PipelineOptionsFrom(const Config& cfg);

//! Opens `data_dir` (creating it if needed) and starts its ingest pipeline.
Result<StoreSession> OpenStoreSession(const std::string& data_dir, const Config& cfg);

}  // namespace tally
