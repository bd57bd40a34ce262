// `tally generate` and `tally summary`.

#include <limits>
#include <iostream>

#include "cli/commands.h"
#include "cli/config_keys.h"
#include "generate/generator.h"
#include "generate/summary.h"

namespace tally {

namespace {

struct GenerateFlags {
  std::string out;
  std::optional<int64_t> subscribers, visitors_per_day;
  std::optional<int32_t> days, partners, price_change_days, threads;
  std::optional<std::string> start, format;
  std::optional<int64_t> seed;
  std::optional<double> dirty;
  bool quiet = false;
};

template <typename T>
void Apply(Config& cfg, const char* key, const std::optional<T>& flag, const char* name) {
  if (!flag) return;
  std::ostringstream os;
  os << *flag;
  cfg.Override(key, os.str(), std::string("flag ") + name);
}

Result<GeneratorOptions> Resolve(const GenerateFlags& f, const CliContext& ctx) {
  TALLY_ASSIGN_OR_RETURN(Config cfg, Config::Load(ctx.config_path, AllConfigKeys(), ctx.env));
  Apply(cfg, "generate.subscribers", f.subscribers, "--subscribers");
  Apply(cfg, "generate.days", f.days, "--days");
  Apply(cfg, "generate.start", f.start, "--start");
  Apply(cfg, "generate.seed", f.seed, "--seed");
  Apply(cfg, "generate.format", f.format, "--format");
  Apply(cfg, "generate.dirty", f.dirty, "--dirty");
  Apply(cfg, "generate.partners", f.partners, "--partners");
  Apply(cfg, "generate.visitors_per_day", f.visitors_per_day, "--visitors-per-day");
  Apply(cfg, "generate.price_change_days", f.price_change_days, "--price-change-days");
  Apply(cfg, "generate.threads", f.threads, "--threads");

  // Settings name their source in errors: "generate.days (from env TALLY_GENERATE_DAYS)".
  auto label = [&](std::string_view setting) {
    std::string key = "generate." + std::string(setting);
    return key + " (from " + cfg.SourceOf(key) + ")";
  };
  // Reads an integer setting into a field of type T; ranges are checked by ValidateOptions, but a
  // value too large for the field must not wrap around on the way there.
  auto narrow = [&]<typename T>(std::string_view setting, T* out) -> Status {
    std::string key = "generate." + std::string(setting);
    TALLY_ASSIGN_OR_RETURN(int64_t v, cfg.Int(key));
    if (v < std::numeric_limits<T>::min() || v > std::numeric_limits<T>::max()) {
      return Status::InvalidArgument(label(setting) + " " + std::to_string(v) + ": out of range");
    }
    *out = static_cast<T>(v);
    return Status::Ok();
  };
  GeneratorOptions o;
  o.out_dir = f.out;
  o.quiet = f.quiet;
  TALLY_RETURN_IF_ERROR(narrow("subscribers", &o.subscribers));
  TALLY_RETURN_IF_ERROR(narrow("days", &o.days));
  TALLY_ASSIGN_OR_RETURN(std::string start, cfg.String("generate.start"));
  auto d = ParseDate(start);
  if (!d.ok()) return d.status().WithContext(label("start"));
  o.start = *d;
  int64_t seed = 0;
  TALLY_RETURN_IF_ERROR(narrow("seed", &seed));
  if (seed < 0) return Status::InvalidArgument(label("seed") + " " + std::to_string(seed) + ": must be >= 0");
  o.seed = static_cast<uint64_t>(seed);
  TALLY_ASSIGN_OR_RETURN(std::string format, cfg.String("generate.format"));
  if (format == "csv") o.format = OutputFormat::kCsv;
  else if (format == "ndjson") o.format = OutputFormat::kNdjson;
  else if (format == "parquet") o.format = OutputFormat::kParquet;
  else return Status::InvalidArgument(label("format") + " '" + format + "': expected csv, ndjson or parquet");
  TALLY_ASSIGN_OR_RETURN(o.dirty, cfg.Double("generate.dirty"));
  TALLY_RETURN_IF_ERROR(narrow("partners", &o.partners));
  TALLY_RETURN_IF_ERROR(narrow("visitors_per_day", &o.visitors_per_day));
  TALLY_RETURN_IF_ERROR(narrow("price_change_days", &o.price_change_days));
  TALLY_RETURN_IF_ERROR(narrow("threads", &o.threads));
  TALLY_RETURN_IF_ERROR(ValidateOptions(o, label));
  return o;
}

}  // namespace

CommandFn RegisterGenerate(CLI::App& app, CliContext& ctx) {
  auto f = std::make_shared<GenerateFlags>();
  app.add_option("--out", f->out, "Output directory")->required();
  app.add_option("--subscribers", f->subscribers, "Subscribers at the start date [5000]");
  app.add_option("--days", f->days, "Days of history [182]");
  app.add_option("--start", f->start, "First day, YYYY-MM-DD [2024-07-01]");
  app.add_option("--seed", f->seed, "Random seed; the same seed gives the same bytes [42]");
  app.add_option("--format", f->format, "csv, ndjson or parquet [csv]");
  app.add_option("--dirty", f->dirty, "Fraction of rows that get a dirty companion row (duplicates, malformed rows) [0]");
  app.add_option("--partners", f->partners, "MVNO/reseller brands besides the operator's own [5]");
  app.add_option("--visitors-per-day", f->visitors_per_day, "Funnel visitors a day [5% of subscribers]");
  app.add_option("--price-change-days", f->price_change_days, "Days between regional price changes [61]");
  app.add_option("--threads", f->threads, "Worker threads; output does not depend on it [cores]");
  app.add_flag("--quiet", f->quiet, "Print nothing on success");
  return [f, &ctx]() {
    auto o = Resolve(*f, ctx);
    if (!o.ok()) {
      std::cerr << "tally generate: " << o.status().message() << "\n";
      return 2;
    }
    auto r = Generate(*o);
    if (!r.ok()) {
      std::cerr << "tally generate: " << r.status().ToString() << "\n";
      return 1;
    }
    if (!o->quiet) {
      std::cout << "Generated " << r->total_events() << " events for " << r->base_subscribers << " + "
                << r->acquired_subscribers << " subscribers (" << r->stats.churners << " churned) and "
                << r->visitors << " visitors in " << r->seconds << " s ("
                << static_cast<int64_t>(r->total_events() / std::max(r->seconds, 1e-9)) << " events/s) into "
                << o->out_dir << "\n";
    }
    return 0;
  };
}

CommandFn RegisterSummary(CLI::App& app, CliContext& /*ctx*/) {
  auto dir = std::make_shared<std::string>();
  app.add_option("--data", *dir, "A directory written by `tally generate`")->required();
  return [dir]() {
    auto s = SummarizeWorld(*dir);
    if (!s.ok()) {
      std::cerr << "tally summary: " << s.status().message() << "\n";
      return 1;
    }
    std::cout << *s;
    return 0;
  };
}

}  // namespace tally
