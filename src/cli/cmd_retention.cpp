// `tally retention`: drop whole days of history older than a horizon.

#include <iostream>

#include "cli/commands.h"
#include "cli/config_keys.h"
#include "cli/store_session.h"

namespace tally {

namespace {

struct RetentionFlags {
  std::string data;
  std::string keep;
  std::string as_of;
};

//! "400d" or "400" -> 400 days.
Result<int> ParseDays(const std::string& text) {
  std::string digits = text;
  if (!digits.empty() && digits.back() == 'd') digits.pop_back();
  int days = 0;
  auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), days);
  if (digits.empty() || ec != std::errc() || p != digits.data() + digits.size() || days < 1) {
    return Status::InvalidArgument("--keep '" + text + "': expected a number of days such as 400d");
  }
  return days;
}

}  // namespace

CommandFn RegisterRetention(CLI::App& app, CliContext& ctx) {
  auto f = std::make_shared<RetentionFlags>();
  app.add_option("--data", f->data, "Data directory")->required();
  app.add_option("--keep", f->keep, "How many days to keep, e.g. 400d")->required();
  app.add_option("--as-of", f->as_of,
                 "Count back from this day (YYYY-MM-DD) [the day of the newest event stored]");
  return [f, &ctx]() {
    auto days = ParseDays(f->keep);
    if (!days.ok()) {
      std::cerr << "tally retention: " << days.status().message() << "\n";
      return 2;
    }
    auto cfg = Config::Load(ctx.config_path, AllConfigKeys(), ctx.env);
    if (!cfg.ok()) {
      std::cerr << "tally retention: " << cfg.status().message() << "\n";
      return 2;
    }
    auto session = OpenStoreSession(f->data, *cfg);
    if (!session.ok()) {
      std::cerr << "tally retention: " << session.status().message() << "\n";
      return SessionExitCode(session.status());
    }
    Date as_of;
    if (!f->as_of.empty()) {
      auto d = ParseDate(f->as_of);
      if (!d.ok()) {
        std::cerr << "tally retention: --as-of: " << d.status().message() << "\n";
        return 2;
      }
      as_of = *d;
    } else if (auto w = session->pipeline->watermark()) {
      as_of = w->date();
    } else {
      std::cout << "nothing stored; nothing to drop\n";
      return 0;
    }
    // Keeping N days keeps as_of and the N-1 days before it.
    const Date cutoff{as_of.days - *days + 1};
    auto report = session->pipeline->DropDaysBefore(cutoff);
    if (!report.ok()) {
      std::cerr << "tally retention: " << report.status().message() << "\n";
      return 1;
    }
    std::cout << "kept " << *days << " days up to " << FormatDate(as_of) << ": dropped " << report->days_dropped
              << " days before " << FormatDate(cutoff) << " (" << report->partitions_dropped << " partition files, "
              << report->rows_dropped << " rows)\n";
    return 0;
  };
}

}  // namespace tally
