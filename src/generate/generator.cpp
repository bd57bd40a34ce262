#include "generate/generator.h"

#include <atomic>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <functional>
#include <sstream>
#include <thread>

#include "generate/catalogue.h"
#include "generate/funnel_sim.h"
#include "generate/subscriber_sim.h"

namespace tally {

namespace {

// Scratch file of the funnel's acquired subscribers; deleted when generation ends.
constexpr std::string_view kAcquiredScratch = ".acquired.tmp";

// Runs tasks on `threads` workers; returns the first failure.
Status RunParallel(std::vector<std::function<Status()>>& tasks, int threads) {
  std::atomic<size_t> next{0};
  std::vector<Status> results(tasks.size());
  auto worker = [&] {
    for (size_t i = next++; i < tasks.size(); i = next++) results[i] = tasks[i]();
  };
  std::vector<std::thread> pool;
  int n = std::max(1, std::min<int>(threads, static_cast<int>(tasks.size())));
  for (int t = 1; t < n; ++t) pool.emplace_back(worker);
  worker();
  for (auto& t : pool) t.join();
  for (auto& r : results) {
    if (!r.ok()) return r;
  }
  return Status::Ok();
}

std::string PartName(int64_t chunk) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%05lld", static_cast<long long>(chunk));
  return buf;
}

template <typename Rec>
Status WriteTable(const GeneratorOptions& o, const std::string& name, const std::vector<Rec>& rows) {
  RecordWriter<Rec> w(o.format, name + "." + std::string(Extension(o.format)), nullptr);
  TALLY_RETURN_IF_ERROR(w.Open(o.out_dir));
  for (const auto& r : rows) w.Write(r);
  TALLY_RETURN_IF_ERROR(w.Close());
  if (o.format == OutputFormat::kParquet) {
    return ConvertToParquet(o.out_dir + "/" + w.StagingPath(), o.out_dir + "/" + w.rel_path(),
                            DescribeFields<Rec>());
  }
  return Status::Ok();
}

Status WriteText(const std::string& path, std::string_view text) {
  LineFile f;
  TALLY_RETURN_IF_ERROR(f.Open(path));
  f.buffer().Put(text);
  f.Commit(0);
  return f.Close();
}

std::string Fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

Status WriteReferenceAndTruth(const Catalogue& cat) {
  const GeneratorOptions& o = cat.options();
  std::vector<Partner> partners = cat.partners();
  TALLY_RETURN_IF_ERROR(WriteTable(o, "partners", partners));
  TALLY_RETURN_IF_ERROR(WriteTable(o, "plans", cat.plan_versions()));
  std::vector<CityRow> cities;
  for (const City& c : Cities()) {
    cities.push_back(CityRow{c.city_id, std::string(c.name), std::string(c.country), c.region,
                             c.latitude, c.longitude});
  }
  TALLY_RETURN_IF_ERROR(WriteTable(o, "cities", cities));
  std::vector<Tower> towers;
  TextBuffer t;
  t.Put("tower_id,city_id,drop_rate,degraded\n");
  for (const auto& tt : cat.towers()) {
    towers.push_back(tt.tower);
    t.PutInt(tt.tower.tower_id.value());
    t.Put(',');
    t.PutInt(tt.tower.city_id.value());
    t.Put(',' + Fixed(tt.drop_rate, 5) + ',' + (tt.degraded ? "true" : "false") + '\n');
  }
  TALLY_RETURN_IF_ERROR(WriteTable(o, "towers", towers));
  TALLY_RETURN_IF_ERROR(WriteText(o.out_dir + "/truth/towers.csv", t.view()));

  t.Clear();
  t.Put("tier,region,year,elasticity,base_conversion\n");
  for (const auto& e : cat.elasticities()) {
    t.Put(std::string(Name(e.tier)) + ',' + std::string(Name(e.region)) + ',' + std::to_string(e.year) +
          ',' + Fixed(e.elasticity, 3) + ',' + Fixed(e.base_conversion, 3) + '\n');
  }
  TALLY_RETURN_IF_ERROR(WriteText(o.out_dir + "/truth/elasticity.csv", t.view()));

  t.Clear();
  t.Put("experiment,unit,metric,start,end,allocation,relative_lift,treatment_exposure_loss,srm\n");
  for (const auto& x : cat.experiments()) {
    t.Put(x.key + ',' + std::string(Name(x.unit)) + ',' + x.metric + ',' + FormatDate(x.start) + ',' +
          FormatDate(x.end) + ",0.5," + Fixed(x.relative_lift, 3) + ',' + Fixed(x.treatment_loss, 3) +
          ',' + (x.treatment_loss > 0 ? "true" : "false") + '\n');
  }
  TALLY_RETURN_IF_ERROR(WriteText(o.out_dir + "/truth/experiments.csv", t.view()));

  t.Clear();
  t.Put("tier,region,step,probability\n");
  for (int tier = 0; tier < kTierCount; ++tier) {
    for (int r = 0; r < kRegionCount; ++r) {
      std::string prefix = std::string(Name(static_cast<Tier>(tier))) + ',' +
                           std::string(Name(static_cast<Region>(r))) + ',';
      t.Put(prefix + "signup," + Fixed(Catalogue::kSignupRate[tier] * Catalogue::kRegionSignup[r], 4) + '\n');
      t.Put(prefix + "trial," + Fixed(Catalogue::kTrialRate[tier], 4) + '\n');
    }
  }
  return WriteText(o.out_dir + "/truth/funnel_rates.csv", t.view());
}

constexpr std::array<std::string_view, 4> kStepNames = {"Visitor", "Signup", "Trial", "Paid"};

Status WriteSeedFiles(const Catalogue& cat, const FunnelCounts& counts) {
  const GeneratorOptions& o = cat.options();
  TextBuffer t;
  t.Put("step,count,step_order,region,plan,year\n");
  // Cohorts by (region, tier, year), steps in order.
  std::map<std::tuple<int, int, int>, std::array<int64_t, 4>> cohorts;
  for (const auto& [k, n] : counts.steps) {
    auto [step, region, tier, year] = k;
    cohorts[{region, tier, year}][step] = n;
  }
  for (const auto& [k, steps] : cohorts) {
    auto [region, tier, year] = k;
    for (int s = 0; s < 4; ++s) {
      t.Put(std::string(kStepNames[s]) + ',' + std::to_string(steps[s]) + ',' + std::to_string(s + 1) +
            ',' + std::string(Name(static_cast<Region>(region))) + ',' +
            std::string(Name(static_cast<Tier>(tier))) + ',' + std::to_string(year) + '\n');
    }
  }
  TALLY_RETURN_IF_ERROR(WriteText(o.out_dir + "/seed/funnel_data.csv", t.view()));

  t.Clear();
  t.Put("plan,region,year,elasticity,conversion_rate\n");
  for (const auto& e : cat.elasticities()) {
    auto it = counts.trials_paid.find({int(e.tier), int(e.region), e.year});
    if (it == counts.trials_paid.end() || it->second.first == 0) continue;
    double rate = static_cast<double>(it->second.second) / it->second.first;
    t.Put(std::string(Name(e.tier)) + ',' + std::string(Name(e.region)) + ',' + std::to_string(e.year) +
          ',' + Fixed(e.elasticity, 3) + ',' + Fixed(rate, 4) + '\n');
  }
  return WriteText(o.out_dir + "/seed/pricing_elasticity.csv", t.view());
}

Status WriteManifest(const GeneratorOptions& o, const GenerateReport& r) {
  TextBuffer t;
  t.Put("{\n  \"generator\": \"tally generate\",\n  \"format_version\": 1,\n");
  t.Put("  \"options\": {\"subscribers\": " + std::to_string(o.subscribers) + ", \"days\": " +
        std::to_string(o.days) + ", \"start\": \"" + FormatDate(o.start) + "\", \"seed\": " +
        std::to_string(o.seed) + ", \"format\": \"" + std::string(Extension(o.format)) +
        "\", \"dirty\": " + Fixed(o.dirty, 6) + ", \"partners\": " + std::to_string(o.partners) +
        ", \"visitors_per_day\": " + std::to_string(o.VisitorsPerDay()) + ", \"price_change_days\": " +
        std::to_string(o.price_change_days) + ", \"chunk_subscribers\": " +
        std::to_string(o.chunk_subscribers) + "},\n");
  t.Put("  \"end\": \"" + FormatDate(o.end()) + "\",\n");
  t.Put("  \"subscribers\": {\"base\": " + std::to_string(r.base_subscribers) + ", \"acquired\": " +
        std::to_string(r.acquired_subscribers) + ", \"churned\": " + std::to_string(r.stats.churners) + "},\n");
  t.Put("  \"visitors\": " + std::to_string(r.visitors) + ",\n");
  t.Put("  \"plan_versions\": " + std::to_string(r.plan_versions) + ",\n");
  t.Put("  \"towers\": " + std::to_string(r.towers) + ",\n");
  t.Put("  \"events\": {");
  for (int f = 0; f < kGeneratedFamilyCount; ++f) {
    if (f) t.Put(", ");
    t.Put("\"" + std::string(Name(static_cast<EventFamily>(f))) + "\": " + std::to_string(r.stats.family_rows[f]));
  }
  t.Put("},\n  \"total_events\": " + std::to_string(r.total_events()) + ",\n");
  t.Put("  \"anomalies\": {\"roaming_bill_shock\": " + std::to_string(r.stats.roaming_shocks) +
        ", \"premium_sms_fraud\": " + std::to_string(r.stats.premium_fraud) + ", \"double_charge\": " +
        std::to_string(r.stats.double_charges) + "},\n");
  t.Put("  \"dirty_rows\": " + std::to_string(r.stats.dirty_rows) + "\n}\n");
  return WriteText(o.out_dir + "/manifest.json", t.view());
}

// An output directory must be new, empty, or an earlier `tally generate` output, whose files are
// removed first so no part file of an older world survives next to the new one.
Status PrepareOutputDir(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::exists(dir, ec) || fs::is_empty(dir, ec)) return Status::Ok();
  if (!fs::exists(fs::path(dir) / "manifest.json")) {
    return Status::InvalidArgument("--out " + dir + ": the directory is not empty and holds no manifest.json; "
                                   "choose an empty directory");
  }
  std::vector<std::string> generated = {"manifest.json", "subscribers", "truth", "seed",
                                        std::string(kAcquiredScratch)};
  for (int f = 0; f < kGeneratedFamilyCount; ++f) generated.emplace_back(Name(static_cast<EventFamily>(f)));
  for (const char* table : {"partners", "plans", "cities", "towers"}) {
    for (const char* ext : {".csv", ".ndjson", ".parquet"}) generated.push_back(std::string(table) + ext);
  }
  for (const auto& name : generated) {
    fs::remove_all(fs::path(dir) / name, ec);
    if (ec) return Status::IOError("cannot remove " + (fs::path(dir) / name).string() + ": " + ec.message());
  }
  return Status::Ok();
}

}  // namespace

std::string FlagLabel(std::string_view setting) {
  std::string flag = "--";
  for (char c : setting) flag += c == '_' ? '-' : c;
  return flag;
}

Status ValidateOptions(const GeneratorOptions& o, const OptionLabel& label) {
  auto name = [&](std::string_view setting) { return label ? label(setting) : FlagLabel(setting); };
  auto range = [&](std::string_view setting, auto v, auto lo, auto hi) {
    if (v >= lo && v <= hi) return Status::Ok();
    std::ostringstream msg;
    msg << name(setting) << " " << v << ": must be " << lo << " .. " << hi;
    return Status::InvalidArgument(msg.str());
  };
  if (o.out_dir.empty()) return Status::InvalidArgument(name("out") + ": an output directory is required");
  TALLY_RETURN_IF_ERROR(range("subscribers", o.subscribers, int64_t{1}, int64_t{1'000'000'000}));
  TALLY_RETURN_IF_ERROR(range("days", o.days, 1, 3660));
  TALLY_RETURN_IF_ERROR(range("dirty", o.dirty, 0.0, 0.5));
  TALLY_RETURN_IF_ERROR(range("partners", o.partners, 0, 100));
  TALLY_RETURN_IF_ERROR(range("visitors_per_day", o.visitors_per_day, int64_t{0}, int64_t{1'000'000'000}));
  TALLY_RETURN_IF_ERROR(range("price_change_days", o.price_change_days, 7, 3660));
  TALLY_RETURN_IF_ERROR(range("threads", o.threads, 0, 1024));
  TALLY_RETURN_IF_ERROR(range("chunk_subscribers", o.chunk_subscribers, int64_t{1}, int64_t{1'000'000'000}));
  int y = CivilFromDays(o.start.days).year;
  if (y < 1990 || y > 2100) {
    return Status::InvalidArgument(name("start") + " " + FormatDate(o.start) + ": the year must be 1990 .. 2100");
  }
  return Status::Ok();
}

Result<GenerateReport> Generate(const GeneratorOptions& options) {
  TALLY_RETURN_IF_ERROR(ValidateOptions(options));
  auto t0 = std::chrono::steady_clock::now();
  GeneratorOptions o = options;
  TALLY_RETURN_IF_ERROR(PrepareOutputDir(o.out_dir));
  if (o.threads <= 0) o.threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  for (std::string dir : {"", "/subscribers", "/truth/churn", "/truth/anomalies", "/seed"}) {
    TALLY_RETURN_IF_ERROR(MakeDirs(o.out_dir + dir));
  }
  if (o.dirty > 0) TALLY_RETURN_IF_ERROR(MakeDirs(o.out_dir + "/truth/dirty"));
  for (int f = 0; f < kGeneratedFamilyCount; ++f) {
    TALLY_RETURN_IF_ERROR(MakeDirs(o.out_dir + "/" + std::string(Name(static_cast<EventFamily>(f)))));
  }

  const Catalogue cat = Catalogue::Build(o);
  TALLY_RETURN_IF_ERROR(WriteReferenceAndTruth(cat));

  GenerateReport report;
  report.base_subscribers = o.subscribers;
  report.plan_versions = static_cast<int64_t>(cat.plan_versions().size());
  report.towers = static_cast<int64_t>(cat.towers().size());

  // One writer thread for every file: formatting threads never wait for the disk.
  IoQueue io;

  // Phase 1: the funnel and the starting base run side by side.
  const int64_t base_chunks = (o.subscribers + o.chunk_subscribers - 1) / o.chunk_subscribers;
  AcquiredStore acquired;
  TALLY_RETURN_IF_ERROR(acquired.Create(o.out_dir + "/" + std::string(kAcquiredScratch)));
  FunnelCounts counts;
  ChunkStats funnel_stats;
  std::vector<ChunkStats> chunk_stats(base_chunks);
  std::vector<std::function<Status()>> tasks;
  tasks.push_back([&]() -> Status {
    ChunkFiles files(o, "funnel", MixKeys(o.seed, 0xF0), true, &io);
    TALLY_RETURN_IF_ERROR(files.Open());
    SimulateFunnel(cat, o.subscribers + 1, &files, &acquired, &counts);
    TALLY_RETURN_IF_ERROR(acquired.FinishWriting());
    return files.Close(&funnel_stats);
  });
  auto chunk_task = [&](int64_t chunk, int64_t first, int64_t last, ChunkStats* stats) {
    return [&, chunk, first, last, stats]() -> Status {
      ChunkFiles files(o, PartName(chunk), MixKeys(o.seed, 0xC4, static_cast<uint64_t>(chunk)), false, &io);
      TALLY_RETURN_IF_ERROR(files.Open());
      SubscriberSimulator sim(cat, &files, stats);
      // Acquired subscribers come from the funnel's scratch file, one chunk's worth at a time.
      std::vector<AcquiredSubscriber> seeds;
      if (last > o.subscribers) {
        TALLY_RETURN_IF_ERROR(acquired.Read(first - o.subscribers - 1, last - first + 1, &seeds));
      }
      for (int64_t id = first; id <= last; ++id) {
        sim.Simulate(SubscriberId(id), id > o.subscribers ? &seeds[id - first] : nullptr);
      }
      return files.Close(stats);
    };
  };
  for (int64_t c = 0; c < base_chunks; ++c) {
    int64_t first = c * o.chunk_subscribers + 1;
    tasks.push_back(chunk_task(c, first, std::min(o.subscribers, first + o.chunk_subscribers - 1),
                               &chunk_stats[c]));
  }
  TALLY_RETURN_IF_ERROR(RunParallel(tasks, o.threads));

  // Phase 2: everyone the funnel acquired.
  const int64_t n_acq = acquired.size();
  const int64_t acq_chunks = (n_acq + o.chunk_subscribers - 1) / o.chunk_subscribers;
  std::vector<ChunkStats> acq_stats(acq_chunks);
  tasks.clear();
  for (int64_t c = 0; c < acq_chunks; ++c) {
    int64_t first = o.subscribers + 1 + c * o.chunk_subscribers;
    tasks.push_back(chunk_task(base_chunks + c, first,
                               std::min(o.subscribers + n_acq, first + o.chunk_subscribers - 1), &acq_stats[c]));
  }
  TALLY_RETURN_IF_ERROR(RunParallel(tasks, o.threads));

  report.stats = funnel_stats;
  for (const auto& s : chunk_stats) report.stats.Add(s);
  for (const auto& s : acq_stats) report.stats.Add(s);
  report.acquired_subscribers = n_acq;
  for (const auto& [k, n] : counts.steps) {
    if (std::get<0>(k) == 0) report.visitors += n;
  }
  TALLY_RETURN_IF_ERROR(WriteSeedFiles(cat, counts));
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  TALLY_RETURN_IF_ERROR(WriteManifest(o, report));
  return report;
}

}  // namespace tally
