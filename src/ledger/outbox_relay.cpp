#include "ledger/outbox_relay.h"

#include "model/families.h"
#include "model/record_codec.h"

namespace tally {

Result<RelayStats> OutboxRelay::DrainOnce(Ledger* ledger, IngestPipeline* pipeline) {
  RelayStats stats;
  for (;;) {
    TALLY_ASSIGN_OR_RETURN(std::vector<OutboxBatch> batches, ledger->PendingOutbox(64));
    if (batches.empty()) return stats;
    for (OutboxBatch& b : batches) {
      const std::string source = "ledger-outbox:" + std::to_string(b.seq);
      std::future<IngestResult> done;
      std::string_view table = b.table;
      const bool csv = table.size() > 4 && table.substr(table.size() - 4) == ".csv";
      if (csv) table.remove_suffix(4);
      if (auto family = ParseEnum<EventFamily>(table); family.ok()) {
        IngestRequest r;
        r.family = *family;
        if (csv) {
          // Headerless rows in the family's column order: the decoder gets the header in front.
          TextBuffer header(256);
          VisitFamily(*family, [&](auto t) { WriteCsvHeader<typename decltype(t)::type>(header); });
          r.format = BodyFormat::kCsv;
          r.body.reserve(header.view().size() + b.body.size());
          r.body.append(header.view());
          r.body.append(b.body);
          b.body = std::string();
        } else {
          r.format = BodyFormat::kNdjson;
          r.body = std::move(b.body);
        }
        r.source = source;
        done = pipeline->Submit(std::move(r), {});
      } else if (auto ref = csv ? std::nullopt : ReferenceTableNamed(b.table)) {
        done = pipeline->SubmitReference(*ref, BodyFormat::kNdjson, std::move(b.body), source, {});
      } else {
        return Status::Corruption("ledger outbox batch " + std::to_string(b.seq) +
                                  " is for an unknown table '" + b.table + "'");
      }
      IngestResult res = done.get();
      if (!res.ack.status.ok()) return res.ack.status.WithContext("delivering " + source);
      TALLY_RETURN_IF_ERROR(ledger->MarkDelivered(b.seq));
      ++stats.batches;
      stats.rows += res.ack.counts.read;
      stats.duplicates += res.ack.counts.duplicate;
      stats.rejected += res.ack.counts.rejected;
    }
  }
}

std::unique_ptr<OutboxRelay> OutboxRelay::Start(Ledger* ledger, IngestPipeline* pipeline,
                                                std::chrono::milliseconds interval) {
  std::unique_ptr<OutboxRelay> relay(new OutboxRelay(ledger, pipeline, interval));
  relay->thread_ = std::thread([r = relay.get()] { r->Loop(); });
  return relay;
}

OutboxRelay::OutboxRelay(Ledger* ledger, IngestPipeline* pipeline,
                         std::chrono::milliseconds interval)
    : ledger_(ledger), pipeline_(pipeline), interval_(interval) {}

OutboxRelay::~OutboxRelay() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void OutboxRelay::Nudge() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    nudged_ = true;
  }
  cv_.notify_all();
}

RelayStats OutboxRelay::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

Status OutboxRelay::last_error() const {
  std::lock_guard<std::mutex> lock(mu_);
  return last_error_;
}

void OutboxRelay::Loop() {
  for (;;) {
    bool stopping;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_for(lock, interval_, [&] { return stopping_ || nudged_; });
      nudged_ = false;
      stopping = stopping_;
    }
    auto r = DrainOnce(ledger_, pipeline_);
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (r.ok()) {
        stats_.batches += r->batches;
        stats_.rows += r->rows;
        stats_.duplicates += r->duplicates;
        stats_.rejected += r->rejected;
        last_error_ = Status::Ok();
      } else {
        last_error_ = r.status();
      }
    }
    if (stopping) return;
  }
}

}  // namespace tally
