#include "generate/summary.h"

#include <filesystem>
#include <sstream>

#include "store/duckdb/duckdb_handle.h"

namespace tally {

namespace {

// The DuckDB table function that reads `what` in this world's format: a single table file
// (`plans.csv`) or a folder of part files (`usage/part-*.csv`).
Result<std::string> Reader(const std::string& dir, const std::string& what) {
  namespace fs = std::filesystem;
  for (std::string ext : {"csv", "ndjson", "parquet"}) {
    std::string path;
    if (fs::exists(dir + "/" + what + "." + ext)) {
      path = dir + "/" + what + "." + ext;
    } else if (fs::exists(dir + "/" + what + "/part-00000." + ext)) {
      path = dir + "/" + what + "/part-*." + ext;
    } else {
      continue;
    }
    std::string q = SqlQuote(path);
    if (ext == "csv") return "read_csv(" + q + ", header=true, union_by_name=true)";
    if (ext == "ndjson") return "read_json(" + q + ", format='newline_delimited', union_by_name=true)";
    return "read_parquet(" + q + ", union_by_name=true)";
  }
  return Status::NotFound(dir + ": no files for '" + what + "' (is this a `tally generate` output?)");
}

void Table(std::ostringstream& out, const TextTable& t) {
  std::vector<size_t> w(t.columns.size());
  for (size_t c = 0; c < t.columns.size(); ++c) w[c] = t.columns[c].size();
  for (const auto& r : t.rows) {
    for (size_t c = 0; c < r.size(); ++c) w[c] = std::max(w[c], r[c] ? r[c]->size() : 1);
  }
  auto line = [&](auto get) {
    out << "  ";
    for (size_t c = 0; c < w.size(); ++c) {
      std::string v = get(c);
      out << v << std::string(w[c] - v.size() + 2, ' ');
    }
    out << "\n";
  };
  line([&](size_t c) { return t.columns[c]; });
  for (const auto& r : t.rows) line([&](size_t c) { return r[c] ? *r[c] : std::string("-"); });
}

}  // namespace

Result<std::string> SummarizeWorld(const std::string& dir) {
  if (!std::filesystem::exists(dir + "/manifest.json")) {
    return Status::NotFound(dir + "/manifest.json: not found; run `tally generate --out " + dir + "` first");
  }
  TALLY_ASSIGN_OR_RETURN(DuckDb db, DuckDb::Open(":memory:"));
  TALLY_RETURN_IF_ERROR(db.Execute("SET TimeZone='UTC'"));
  TALLY_ASSIGN_OR_RETURN(std::string subs, Reader(dir, "subscribers"));
  TALLY_ASSIGN_OR_RETURN(std::string plans, Reader(dir, "plans"));
  TALLY_ASSIGN_OR_RETURN(std::string usage, Reader(dir, "usage"));
  TALLY_ASSIGN_OR_RETURN(std::string recharge, Reader(dir, "recharge"));
  TALLY_ASSIGN_OR_RETURN(std::string partners, Reader(dir, "partners"));
  std::ostringstream out;
  out << "World in " << dir << "\n\n";

  auto section = [&](const std::string& title, const std::string& sql) -> Status {
    TALLY_ASSIGN_OR_RETURN(TextTable t, db.Query(sql));
    out << title << "\n";
    Table(out, t);
    out << "\n";
    return Status::Ok();
  };
  TALLY_RETURN_IF_ERROR(section(
      "Subscribers by region and billing type (status at the end of the data)",
      "SELECT region, billing_type, count(*) AS subscribers, "
      "count(*) FILTER (WHERE status = 'churned') AS churned, "
      "round(100.0 * count(*) FILTER (WHERE status = 'churned') / count(*), 1) AS churn_pct "
      "FROM " + subs + " GROUP BY ALL ORDER BY region, billing_type"));
  TALLY_RETURN_IF_ERROR(section(
      "Subscribers by partner",
      "SELECT p.partner_id, p.name, p.kind, count(s.subscriber_id) AS subscribers FROM " + partners +
          " p LEFT JOIN " + subs + " s USING (partner_id) GROUP BY ALL ORDER BY p.partner_id"));
  TALLY_RETURN_IF_ERROR(section(
      "Usage by kind",
      "SELECT kind, count(*) AS records, round(sum(duration_s) / 60.0) AS minutes, "
      "round(sum(bytes) / 1e9, 1) AS data_gb, count(*) FILTER (WHERE roaming) AS roaming, "
      "count(*) FILTER (WHERE destination = 'premium') AS premium "
      "FROM " + usage + " GROUP BY ALL ORDER BY kind"));
  TALLY_RETURN_IF_ERROR(section(
      "Recharges by month",
      "SELECT strftime(date_trunc('month', ts::TIMESTAMP), '%Y-%m') AS month, "
      "count(*) FILTER (WHERE payment_status = 'succeeded') AS succeeded, "
      "count(*) FILTER (WHERE payment_status = 'failed') AS failed, "
      "round(sum(amount_minor) FILTER (WHERE payment_status = 'succeeded') / 100.0, 2) AS amount_usd "
      "FROM " + recharge + " GROUP BY ALL ORDER BY month"));
  TALLY_RETURN_IF_ERROR(section(
      "Current plan prices (USD per month)",
      "SELECT name, region, monthly_price_minor / 100.0 AS price FROM " + plans +
          " WHERE effective_to IS NULL ORDER BY plan_id, region"));
  TALLY_RETURN_IF_ERROR(section(
      "Funnel (seed/funnel_data.csv, all cohorts)",
      "SELECT step, sum(count) AS count FROM read_csv(" + SqlQuote(dir + "/seed/funnel_data.csv") +
          ", header=true) GROUP BY step, step_order ORDER BY step_order"));
  TALLY_RETURN_IF_ERROR(section(
      "Ground truth: labelled billing anomalies",
      "SELECT kind, count(*) AS cases, sum(events) AS records, round(sum(charge_minor) / 100.0, 2) AS charges_usd "
      "FROM read_csv(" + SqlQuote(dir + "/truth/anomalies/part-*.csv") + ", header=true, "
      "columns={'subscriber_id':'BIGINT','kind':'VARCHAR','start_ts':'VARCHAR','end_ts':'VARCHAR',"
      "'events':'BIGINT','charge_minor':'BIGINT','event_id':'VARCHAR','original_event_id':'VARCHAR',"
      "'country':'VARCHAR'}) GROUP BY ALL ORDER BY kind"));
  TALLY_RETURN_IF_ERROR(section(
      "Ground truth: churn drivers",
      "SELECT main_driver, count(*) AS churners FROM read_csv(" +
          SqlQuote(dir + "/truth/churn/part-*.csv") + ", header=true) GROUP BY ALL ORDER BY churners DESC"));
  TALLY_RETURN_IF_ERROR(section(
      "Ground truth: experiments",
      "SELECT experiment, metric, relative_lift, srm FROM read_csv(" +
          SqlQuote(dir + "/truth/experiments.csv") + ", header=true)"));
  return out.str();
}

}  // namespace tally
