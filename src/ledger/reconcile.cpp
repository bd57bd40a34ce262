#include "ledger/reconcile.h"

#include <map>
#include <sstream>

#include "core/text_buffer.h"

namespace tally {

namespace {

constexpr const char* kFigures[] = {"recharges",          "recharge_minor", "usage_charges",
                                    "usage_charge_minor", "fee_minor",      "refund_minor"};
constexpr int kFigureCount = 6;
using Figures = std::array<int64_t, kFigureCount>;

Figures FromLedger(const LedgerDayTotals& t) {
  return {t.recharges,          t.recharge_minor, t.usage_charges,
          t.usage_charge_minor, t.fee_minor,      t.compensation_minor};
}

// Per-day sums over one family's relation. The SQL is plain (CASE, CAST AS DATE, GROUP BY an
// alias), so it reads the same on DuckDB and ClickHouse (whose 18.16 reads `GROUP BY 1` as a
// constant).
Status SumByDay(EventStore& store, EventFamily family, const std::string& select,
                std::map<int32_t, std::vector<int64_t>>* out) {
  TimeRange all{Timestamp{int64_t{DaysFromCivil(1900, 1, 1)} * kMicrosPerDay},
                Timestamp{int64_t{DaysFromCivil(2200, 1, 1)} * kMicrosPerDay}};
  TALLY_ASSIGN_OR_RETURN(EventRelation rel, store.Relation(family, all));
  TALLY_ASSIGN_OR_RETURN(TextTable t,
                         store.Query("SELECT CAST(CAST(ts AS DATE) AS VARCHAR) AS day, " + select +
                                     " FROM (" + rel.sql + ") AS e GROUP BY day"));
  for (const auto& row : t.rows) {
    if (!row[0]) continue;
    TALLY_ASSIGN_OR_RETURN(Date d, ParseDate(*row[0]));
    std::vector<int64_t>& v = (*out)[d.days];
    for (size_t i = 1; i < row.size(); ++i) v.push_back(row[i] ? std::stoll(*row[i]) : 0);
  }
  return Status::Ok();
}

}  // namespace

Result<ReconcileReport> Reconcile(Ledger* ledger, IngestPipeline* pipeline) {
  ReconcileReport report;
  TALLY_ASSIGN_OR_RETURN(report.ledger, ledger->DayTotals());
  TALLY_ASSIGN_OR_RETURN(std::vector<OutboxBatch> pending, ledger->PendingOutbox(1 << 20));
  report.pending_outbox_batches = static_cast<int64_t>(pending.size());
  std::map<int32_t, std::vector<int64_t>> recharges, charges, usage;
  TALLY_RETURN_IF_ERROR(pipeline->RunExclusive([&](EventStore& store) -> Status {
    TALLY_RETURN_IF_ERROR(
        SumByDay(store, EventFamily::kRecharge,
                 "sum(CASE WHEN payment_status = 'succeeded' THEN 1 ELSE 0 END), "
                 "sum(CASE WHEN payment_status = 'succeeded' THEN amount_minor ELSE 0 END)",
                 &recharges));
    TALLY_RETURN_IF_ERROR(
        SumByDay(store, EventFamily::kCharge,
                 "sum(CASE WHEN entry = 'usage' AND plan_id IS NOT NULL THEN 1 ELSE 0 END), "
                 "sum(CASE WHEN entry = 'usage' THEN amount_minor ELSE 0 END), "
                 "sum(CASE WHEN entry IN ('plan_fee', 'proration') THEN amount_minor ELSE 0 END), "
                 "sum(CASE WHEN entry IN ('refund', 'reversal') THEN amount_minor ELSE 0 END), "
                 "sum(CASE WHEN entry = 'usage' THEN 1 ELSE 0 END)",
                 &charges));
    return SumByDay(store, EventFamily::kUsage, "count(*)", &usage);
  }));
  std::map<int32_t, Figures> store_figures;
  for (const auto& [day, v] : recharges) {
    store_figures[day][0] = v[0];
    store_figures[day][1] = v[1];
  }
  for (const auto& [day, v] : charges) {
    store_figures[day][2] = v[0];
    store_figures[day][3] = v[1];
    store_figures[day][4] = v[2];
    store_figures[day][5] = v[3];
  }
  for (const auto& [day, v] : usage) {
    auto c = charges.find(day);
    const int64_t charged = c == charges.end() ? 0 : c->second[4];
    if (v[0] > charged) report.unrated_usage += v[0] - charged;
  }
  std::map<int32_t, Figures> ledger_figures;
  for (const LedgerDayTotals& t : report.ledger) ledger_figures[t.day.days] = FromLedger(t);
  std::map<int32_t, bool> days;
  for (const auto& [d, f] : store_figures) days[d] = true;
  for (const auto& [d, f] : ledger_figures) days[d] = true;
  report.days = static_cast<int>(days.size());
  for (const auto& [d, unused] : days) {
    const Figures l = ledger_figures.count(d) ? ledger_figures[d] : Figures{};
    const Figures s = store_figures.count(d) ? store_figures[d] : Figures{};
    for (int i = 0; i < kFigureCount; ++i) {
      if (l[i] != s[i]) report.mismatches.push_back({Date{d}, kFigures[i], l[i], s[i]});
    }
  }
  return report;
}

std::string ReconcileReport::ToText() const {
  std::ostringstream out;
  out << "reconcile: " << days << " days, "
      << (ok() ? "ledger and store agree" : "DIFFERENCES FOUND") << "\n";
  int64_t recharge_minor = 0, usage_minor = 0, fee_minor = 0, refund_minor = 0;
  for (const LedgerDayTotals& t : ledger) {
    recharge_minor += t.recharge_minor;
    usage_minor += t.usage_charge_minor;
    fee_minor += t.fee_minor;
    refund_minor += t.compensation_minor;
  }
  out << "  ledger totals: recharges " << recharge_minor << ", usage charges " << usage_minor
      << ", fees " << fee_minor << ", refunds and reversals " << refund_minor << " (minor units)\n";
  for (const ReconcileLine& m : mismatches) {
    out << "  " << FormatDate(m.day) << " " << m.figure << ": ledger " << m.ledger << ", store "
        << m.store << " (difference " << (m.store - m.ledger) << ")\n";
  }
  if (pending_outbox_batches > 0) {
    out << "  " << pending_outbox_batches << " outbox batches were not delivered yet\n";
  }
  if (unrated_usage > 0) {
    out << "  " << unrated_usage
        << " usage records in the store have no charge (stored before the ledger had "
        << "accounts, or with ledger.rating = off)\n";
  }
  return out.str();
}

std::string ReconcileReport::ToJson() const {
  TextBuffer b(1024);
  b.Put("{\"ok\":");
  b.Put(ok() ? "true" : "false");
  b.Put(",\"days\":");
  b.PutInt(days);
  b.Put(",\"pending_outbox_batches\":");
  b.PutInt(pending_outbox_batches);
  b.Put(",\"unrated_usage\":");
  b.PutInt(unrated_usage);
  b.Put(",\"mismatches\":[");
  for (size_t i = 0; i < mismatches.size(); ++i) {
    const ReconcileLine& m = mismatches[i];
    if (i) b.Put(',');
    b.Put("{\"day\":\"");
    b.Put(FormatDate(m.day));
    b.Put("\",\"figure\":\"");
    b.Put(m.figure);
    b.Put("\",\"ledger\":");
    b.PutInt(m.ledger);
    b.Put(",\"store\":");
    b.PutInt(m.store);
    b.Put('}');
  }
  b.Put("]}\n");
  return std::string(b.view());
}

}  // namespace tally
