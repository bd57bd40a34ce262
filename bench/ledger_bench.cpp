// Benchmark: the ledger's durable idempotent recharges and its rating of usage, against plain
// SQLite on the same machine, in the same run, with the same durability (WAL, synchronous=FULL)
// and the same requests.
//
//   tally_group_commit   Ledger::Recharge from --clients threads. One writer thread takes every
//                        waiting call into one transaction (a savepoint each) and commits once, so
//                        one fsync serves the whole group; a call returns once it is durable.
//   sqlite_per_request   plain SQLite, one transaction per recharge (BEGIN IMMEDIATE; SELECT key;
//                        UPDATE balance; INSERT; COMMIT) on one connection shared by the same
//                        client threads under a mutex
//   sqlite_batched_N     the same SQL from one thread, N requests per transaction: what batching
//                        alone buys, without the ledger's bookkeeping
//   tally_rate           Ledger::RateUsage in batches of --rate-batch, durable on return
//   sqlite_rate          plain SQLite: the same rating arithmetic in C++, one INSERT per charge
//                        (idempotent by charge id) and one UPDATE per account touched, one
//                        transaction per batch
//   in_memory_rate       tally::RateUsage (src/model/tariff.h) in a loop with the same account
//                        state, no I/O: the upper bound
//   postgres_group_commit, postgres_rate
//                        the same ledger code on PostgreSQL (OpenPostgresLedger) with the same
//                        requests and batches, against a server started for the run in the scratch
//                        directory with fsync and synchronous_commit on (as durable as SQLite's
//                        synchronous=FULL). They run after every SQLite run, so those are measured
//                        exactly as before; --no-postgres leaves them out.
//
// Partners, plan versions, subscribers and usage come from a generated world (tally::Generate);
// --accounts of its prepaid subscribers get an account. Every recharge run is checked afterwards:
// each account's balance must equal its balance before plus the recharges acknowledged, and each
// retry must have replayed its original. The raters must agree on the total charged, and rating a
// batch again must charge nothing. A failed check fails the run.
//
// The disk of the machine this was written on throttles flushes after a burst (DiskUse), so each
// durable run first waits (up to --settle-seconds) for fast flushes and records what the device
// did; the two raters take turns batch by batch so both see the same disk.
//
//   ledger_bench [--out bench/results/ledger.json] [--accounts 10000] [--days 30] [--clients 32]
//                [--recharges 200000] [--seconds 20] [--rate-batch 100000] [--tmp /tmp]
//                [--tally-only] [--no-postgres] [--keep]

#include <duckdb.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/utsname.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <mutex>
#include <random>
#include <sstream>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "bench_support.h"
#include "generate/generator.h"
#include "ingest/batch_decoder.h"
#include "ledger/ledger.h"
#include "ledger/postgres_local_server.h"
#include "ledger/sqlite_db.h"
#include "model/tariff.h"

namespace fs = std::filesystem;
using namespace tally;
using namespace tally::bench;

namespace {

constexpr double kRechargeTarget = 20'000;
constexpr double kRatingTarget = 500'000;
constexpr int64_t kOpeningBalance = 10'000;  // minor units, every account
constexpr int32_t kAmounts[] = {500, 1000, 1000, 2000, 2000, 2500, 5000, 10000};

using Clock = std::chrono::steady_clock;

double Since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// ---- The world ---------------------------------------------------------------------------

//! What the benchmark takes from a generated world.
struct World {
  Date start;
  int64_t generated_subscribers = 0;
  std::vector<Partner> partners;
  std::vector<PlanVersion> plans;
  std::vector<Subscriber> accounts;              // prepaid subscribers given an account, by id
  std::vector<std::vector<UsageEvent>> batches;  // their usage in time order, cut into batches
  int64_t usage_events = 0;
};

Result<std::string> ReadWhole(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::IOError("cannot open " + path.string());
  std::string body(fs::file_size(path), '\0');
  in.read(body.data(), static_cast<std::streamsize>(body.size()));
  return body;
}

template <typename Rec>
Result<std::vector<Rec>> DecodeCsv(const std::string& body, const std::string& what) {
  BatchDecoder<Rec> decoder;
  DecodedBatch<Rec> batch;
  TALLY_RETURN_IF_ERROR(decoder.Decode(BodyFormat::kCsv, body, {}, &batch).WithContext(what));
  if (!batch.rejects.empty()) {
    return Status::InvalidArgument(what + ":" + std::to_string(batch.rejects.front().line) + ": " +
                                   batch.rejects.front().reason);
  }
  return std::move(batch.rows);
}

template <typename Rec>
Result<std::vector<Rec>> ReadCsv(const fs::path& path) {
  TALLY_ASSIGN_OR_RETURN(std::string body, ReadWhole(path));
  return DecodeCsv<Rec>(body, path.string());
}

std::vector<fs::path> PartFiles(const fs::path& dir) {
  std::vector<fs::path> parts;
  for (const auto& e : fs::directory_iterator(dir)) parts.push_back(e.path());
  std::sort(parts.begin(), parts.end());
  return parts;
}

//! The subscriber id of a usage CSV line (its fourth field), or -1.
int64_t SubscriberOfLine(std::string_view line) {
  size_t pos = 0;
  for (int i = 0; i < 3; ++i) {
    pos = line.find(',', pos);
    if (pos == std::string_view::npos) return -1;
    ++pos;
  }
  const size_t first = pos;
  int64_t v = 0;
  while (pos < line.size() && line[pos] >= '0' && line[pos] <= '9')
    v = v * 10 + (line[pos++] - '0');
  return pos > first ? v : -1;
}

Result<World> LoadWorld(const fs::path& dir, int64_t accounts, int32_t days, uint64_t seed,
                        size_t rate_batch) {
  GeneratorOptions g;
  g.out_dir = dir.string();
  g.subscribers = accounts * 5 / 2;  // about 45% of a world's subscribers are prepaid
  g.days = days;
  g.seed = seed;
  g.chunk_subscribers = 5000;
  g.quiet = true;
  TALLY_RETURN_IF_ERROR(Generate(g).status());
  World w;
  w.start = g.start;
  TALLY_ASSIGN_OR_RETURN(w.partners, ReadCsv<Partner>(dir / "partners.csv"));
  TALLY_ASSIGN_OR_RETURN(w.plans, ReadCsv<PlanVersion>(dir / "plans.csv"));
  for (const fs::path& part : PartFiles(dir / "subscribers")) {
    TALLY_ASSIGN_OR_RETURN(std::vector<Subscriber> subs, ReadCsv<Subscriber>(part));
    w.generated_subscribers += static_cast<int64_t>(subs.size());
    for (Subscriber& s : subs) {
      if (s.billing_type == BillingType::kPrepaid) w.accounts.push_back(std::move(s));
    }
  }
  std::sort(w.accounts.begin(), w.accounts.end(), [](const Subscriber& a, const Subscriber& b) {
    return a.subscriber_id.value() < b.subscriber_id.value();
  });
  if (static_cast<int64_t>(w.accounts.size()) < accounts) {
    return Status::InvalidArgument("the generated world has " + std::to_string(w.accounts.size()) +
                                   " prepaid subscribers, fewer than --accounts " +
                                   std::to_string(accounts));
  }
  w.accounts.resize(static_cast<size_t>(accounts));
  std::unordered_set<int64_t> chosen;
  for (const Subscriber& s : w.accounts) chosen.insert(s.subscriber_id.value());
  // Only the chosen subscribers' lines are decoded (the rest of the world is context).
  std::vector<UsageEvent> usage;
  for (const fs::path& part : PartFiles(dir / "usage")) {
    TALLY_ASSIGN_OR_RETURN(std::string body, ReadWhole(part));
    std::string kept;
    kept.reserve(body.size() / 2);
    size_t pos = 0;
    bool header = true;
    while (pos < body.size()) {
      size_t end = body.find('\n', pos);
      if (end == std::string::npos) end = body.size();
      std::string_view line(body.data() + pos, end - pos);
      pos = end + 1;
      if (header || chosen.count(SubscriberOfLine(line))) {
        kept.append(line);
        kept += '\n';
      }
      header = false;
    }
    body.clear();
    body.shrink_to_fit();
    TALLY_ASSIGN_OR_RETURN(std::vector<UsageEvent> rows,
                           DecodeCsv<UsageEvent>(kept, part.string()));
    for (UsageEvent& e : rows) {
      if (chosen.count(e.subscriber_id.value())) usage.push_back(std::move(e));
    }
  }
  // Rating sees usage as it happens: in time order.
  std::stable_sort(usage.begin(), usage.end(),
                   [](const UsageEvent& a, const UsageEvent& b) { return a.ts < b.ts; });
  w.usage_events = static_cast<int64_t>(usage.size());
  for (size_t i = 0; i < usage.size(); i += rate_batch) {
    const size_t end = std::min(usage.size(), i + rate_batch);
    w.batches.emplace_back(std::make_move_iterator(usage.begin() + static_cast<ptrdiff_t>(i)),
                           std::make_move_iterator(usage.begin() + static_cast<ptrdiff_t>(end)));
  }
  return w;
}

//! Account i opens on day 1 + i % 28 of the month before the world starts, so cycle days spread
//! over the month and every account renews its bundles once while its usage is rated.
Date ActivationDay(const World& w, size_t i) {
  CivilDate c = CivilFromDays(w.start.days);
  int y = c.year, m = c.month - 1;
  if (m == 0) {
    m = 12;
    --y;
  }
  return Date{DaysFromCivil(y, m, 1 + static_cast<int>(i % 28))};
}

//! Recharges happen on the last day before the world starts: inside every account's first cycle,
//! so no cycle opens (and no fee moves a balance) while they run.
Timestamp RechargeTime(const World& w) {
  return Timestamp{StartOfDay(Date{w.start.days - 1}).micros + 12 * 3'600'000'000LL};
}

// ---- The recharge workload ---------------------------------------------------------------

struct Call {
  int32_t account = 0;  // index into World::accounts
  int32_t amount = 0;
  RechargeChannel channel = RechargeChannel::kApp;
  PaymentStatus payment = PaymentStatus::kSucceeded;
  int32_t retry_of = -1;  // index of this client's earlier call it retries; -1: a new key
};

//! Every client's calls, in order. A retry repeats an earlier call of the same client exactly
//! (same key, same content), so its original has been acknowledged and it must replay.
struct Workload {
  std::vector<std::vector<Call>> clients;
  Timestamp ts;
  int64_t calls = 0;
};

Workload MakeWorkload(int clients, int64_t total, double retry_share, double failed_share,
                      size_t accounts, uint64_t seed, Timestamp ts) {
  Workload w;
  w.ts = ts;
  w.calls = total;
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0, 1);
  for (int c = 0; c < clients; ++c) {
    const int64_t n = total / clients + (c < total % clients ? 1 : 0);
    std::vector<Call> calls;
    calls.reserve(static_cast<size_t>(n));
    for (int64_t j = 0; j < n; ++j) {
      if (j > 0 && u(rng) < retry_share) {
        const auto pick = static_cast<int32_t>(rng() % static_cast<uint64_t>(j));
        Call retry = calls[static_cast<size_t>(pick)];
        if (retry.retry_of < 0) retry.retry_of = pick;
        calls.push_back(retry);
        continue;
      }
      Call call;
      call.account = static_cast<int32_t>(rng() % accounts);
      call.amount = kAmounts[rng() % std::size(kAmounts)];
      call.channel = static_cast<RechargeChannel>(rng() % 5);
      call.payment = u(rng) < failed_share ? PaymentStatus::kFailed : PaymentStatus::kSucceeded;
      calls.push_back(call);
    }
    w.clients.push_back(std::move(calls));
  }
  return w;
}

std::string KeyOf(int client, int32_t index) {
  return "bench-" + std::to_string(client) + "-" + std::to_string(index);
}

//! What one engine answered to one call.
struct Outcome {
  bool ok = false;
  bool replayed = false;
  int64_t recharge_id = 0;
  std::string error;
};

//! What the disk did during one run. This VM's disk throttles flushes after a burst (fdatasync
//! goes from ~0.2 ms to ~4 ms until it has been idle a while), so every durable run records the
//! state it started in and the device-level writes and flushes it caused.
struct DiskUse {
  double settle_seconds = 0;   // waited before the run for the disk to leave its throttled state
  double probe_before_ms = 0;  // median 4 KiB append + fdatasync right before the run
  double probe_after_ms = 0;   // and right after it
  int64_t flushes = 0;         // device flush requests completed during the run (/proc/diskstats)
  int64_t writes = 0;          // device write requests completed
  double mb_written = 0;       // 10^6 bytes
};

//! The measurements of one recharge run.
struct RechargeRun {
  std::string name, what;
  std::string error;  // empty when every call succeeded
  int64_t requests = 0, new_keys = 0, retries = 0, failed_payments = 0, transactions = 0;
  int batch = 0;  // requests per transaction (batched baselines)
  double seconds = 0, cpu_seconds = 0;
  std::vector<double> latency_us;  // per request, or per batch for the batched baselines
  bool latency_per_batch = false;
  std::vector<int64_t> credited;  // per account: the amounts acknowledged as credited
  int64_t credited_minor = 0;
  bool verified = false;
  std::string verification;
  DiskUse disk;
  bool ok() const { return error.empty() && verified; }
  double rate() const { return seconds > 0 ? static_cast<double>(requests) / seconds : 0; }
  double credited_rate() const {
    return seconds > 0 ? static_cast<double>(new_keys - failed_payments) / seconds : 0;
  }
};

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const auto rank = static_cast<size_t>(std::ceil(p * static_cast<double>(v.size())));
  return v[std::min(v.size() - 1, rank == 0 ? 0 : rank - 1)];
}

using RechargeFn = std::function<Outcome(int client, const Call& call, const std::string& key)>;

//! Runs every client's calls on its own thread until all are done or `seconds` have passed, and
//! checks each answer: a new key must not replay, a retry must replay its original's id.
RechargeRun RunClients(const Workload& w, size_t accounts, double seconds, const RechargeFn& fn) {
  RechargeRun run;
  const int clients = static_cast<int>(w.clients.size());
  std::vector<std::vector<double>> latencies(static_cast<size_t>(clients));
  std::vector<std::vector<int64_t>> credited(static_cast<size_t>(clients),
                                             std::vector<int64_t>(accounts, 0));
  std::vector<std::array<int64_t, 3>> counts(static_cast<size_t>(clients),
                                             {0, 0, 0});  // new, retries, failed
  std::atomic<bool> stop{false};
  std::mutex mu;
  auto fail = [&](const std::string& message) {
    std::lock_guard<std::mutex> lock(mu);
    if (run.error.empty()) run.error = message;
    stop = true;
  };
  const double cpu0 = CpuSeconds();
  const auto t0 = Clock::now();
  const auto deadline =
      t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      const std::vector<Call>& calls = w.clients[static_cast<size_t>(c)];
      std::vector<int64_t> ids(calls.size(), 0);
      auto& lat = latencies[static_cast<size_t>(c)];
      auto& mine = credited[static_cast<size_t>(c)];
      auto& n = counts[static_cast<size_t>(c)];
      lat.reserve(calls.size());
      for (size_t j = 0; j < calls.size() && !stop; ++j) {
        const Call& call = calls[j];
        const bool retry = call.retry_of >= 0;
        const std::string key = KeyOf(c, retry ? call.retry_of : static_cast<int32_t>(j));
        const auto s = Clock::now();
        if (s >= deadline) break;
        Outcome o = fn(c, call, key);
        lat.push_back(std::chrono::duration<double, std::micro>(Clock::now() - s).count());
        if (!o.ok) return fail("key " + key + ": " + o.error);
        if (o.replayed != retry) {
          return fail("key " + key +
                      (retry ? " was retried but did not replay" : " is new but replayed"));
        }
        if (retry) {
          if (o.recharge_id != ids[static_cast<size_t>(call.retry_of)]) {
            return fail("key " + key + " replayed recharge " + std::to_string(o.recharge_id) +
                        ", not its original " +
                        std::to_string(ids[static_cast<size_t>(call.retry_of)]));
          }
          ++n[1];
          continue;
        }
        ids[j] = o.recharge_id;
        ++n[0];
        if (call.payment == PaymentStatus::kSucceeded) {
          mine[static_cast<size_t>(call.account)] += call.amount;
        } else {
          ++n[2];
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  run.seconds = Since(t0);
  run.cpu_seconds = CpuSeconds() - cpu0;
  run.credited.assign(accounts, 0);
  for (int c = 0; c < clients; ++c) {
    const auto& n = counts[static_cast<size_t>(c)];
    run.new_keys += n[0];
    run.retries += n[1];
    run.failed_payments += n[2];
    for (size_t a = 0; a < accounts; ++a) run.credited[a] += credited[static_cast<size_t>(c)][a];
    run.latency_us.insert(run.latency_us.end(), latencies[static_cast<size_t>(c)].begin(),
                          latencies[static_cast<size_t>(c)].end());
  }
  run.requests = run.new_keys + run.retries;
  for (int64_t v : run.credited) run.credited_minor += v;
  return run;
}

//! Checks balances[i] == before[i] + credited[i] for every account; fills run.verified.
void VerifyBalances(RechargeRun& run, const std::vector<int64_t>& before,
                    const std::vector<int64_t>& after, const std::vector<Subscriber>& accounts) {
  int64_t wrong = 0;
  std::string first;
  for (size_t i = 0; i < before.size(); ++i) {
    const int64_t expected = before[i] + run.credited[i];
    if (after[i] != expected) {
      if (wrong++ == 0) {
        first = "subscriber " + std::to_string(accounts[i].subscriber_id.value()) + " has " +
                std::to_string(after[i]) + ", expected " + std::to_string(expected);
      }
    }
  }
  run.verified = run.error.empty() && wrong == 0;
  run.verification =
      wrong == 0
          ? "all " + std::to_string(before.size()) +
                " balances equal their balance before plus the recharges acknowledged; every "
                "retry replayed its original"
          : std::to_string(wrong) + " balances are wrong, e.g. " + first;
}

// ---- Machine -----------------------------------------------------------------------------

//! Median milliseconds of `n` 4 KiB appends + fdatasync in `dir`: the floor under every durable
//! commit on this disk.
double FdatasyncMillis(const fs::path& dir, int n) {
  const fs::path p = dir / "fsync-probe";
  int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return -1;
  std::vector<double> ms;
  char buf[4096];
  std::memset(buf, 'x', sizeof buf);
  for (int i = 0; i < n; ++i) {
    const auto t0 = Clock::now();
    if (::write(fd, buf, sizeof buf) != static_cast<ssize_t>(sizeof buf) || ::fdatasync(fd) != 0)
      break;
    ms.push_back(Since(t0) * 1000);
  }
  ::close(fd);
  std::error_code ec;
  fs::remove(p, ec);
  return Percentile(ms, 0.5);
}

//! Device counters of the block device holding a directory, from /proc/diskstats.
class DiskWatch {
 public:
  DiskWatch(fs::path dir, double settle_max_seconds)
      : dir_(std::move(dir)), settle_max_(settle_max_seconds) {
    struct stat st {};
    if (::stat(dir_.c_str(), &st) == 0) {
      major_ = static_cast<int>(major(st.st_dev));
      minor_ = static_cast<int>(minor(st.st_dev));
    }
  }

  //! Flushes what earlier runs left dirty and waits (up to the limit) until fdatasync is fast
  //! again; returns the wait and the last probe.
  DiskUse Settle() const {
    ::sync();
    DiskUse use;
    const auto t0 = Clock::now();
    double ms = Probe();
    while (ms > kFastMillis && Since(t0) < settle_max_) {
      std::this_thread::sleep_for(std::chrono::seconds(2));
      ms = Probe();
    }
    use.settle_seconds = Since(t0);
    use.probe_before_ms = ms;
    return use;
  }

  //! Settles, then starts counting for one run.
  void Begin() {
    use_ = Settle();
    start_ = Read();
  }

  DiskUse End() {
    Add(&use_, start_, Read());
    use_.probe_after_ms = Probe();
    return use_;
  }

  double Probe() const { return FdatasyncMillis(dir_, 20); }

  std::string device() const { return std::to_string(major_) + ":" + std::to_string(minor_); }

  struct Counters {
    int64_t writes = 0, sectors = 0, flushes = 0;
  };
  //! Adds what the device did between two readings to `use`.
  static void Add(DiskUse* use, const Counters& from, const Counters& to) {
    use->flushes += to.flushes - from.flushes;
    use->writes += to.writes - from.writes;
    use->mb_written += static_cast<double>(to.sectors - from.sectors) * 512 / 1e6;
  }
  Counters Read() const {
    std::ifstream in("/proc/diskstats");
    std::string line;
    while (std::getline(in, line)) {
      std::istringstream f(line);
      int maj = -1, min = -1;
      std::string name;
      f >> maj >> min >> name;
      if (maj != major_ || min != minor_) continue;
      std::vector<int64_t> v;
      int64_t x = 0;
      while (f >> x) v.push_back(x);
      Counters c;
      if (v.size() >= 7) {
        c.writes = v[4];
        c.sectors = v[6];
      }
      if (v.size() >= 16) c.flushes = v[15];
      return c;
    }
    return {};
  }

 private:
  static constexpr double kFastMillis = 1.0;
  fs::path dir_;
  double settle_max_;
  int major_ = -1, minor_ = -1;
  DiskUse use_;
  Counters start_;
};

// ---- The ledger --------------------------------------------------------------------------

Status SetUpLedger(Ledger& ledger, const World& w, int clients, double* activation_seconds) {
  TALLY_RETURN_IF_ERROR(ledger.UpsertPartners(w.partners));
  TALLY_RETURN_IF_ERROR(ledger.AddPlanVersions(w.plans));
  // Activations from concurrent clients, as a sign-up front end would send them.
  std::atomic<size_t> next{0};
  std::mutex mu;
  Status first = Status::Ok();
  const auto t0 = Clock::now();
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&] {
      for (size_t i = next++; i < w.accounts.size(); i = next++) {
        const Subscriber& s = w.accounts[i];
        ActivateRequest r;
        r.subscriber_id = s.subscriber_id;
        r.partner_id = s.partner_id;
        r.plan_id = s.plan_id;
        r.region = s.region;
        r.ts = StartOfDay(ActivationDay(w, i));
        r.opening_balance_minor = kOpeningBalance;
        r.profile = s;
        auto view = ledger.Activate(r);
        if (!view.ok()) {
          std::lock_guard<std::mutex> lock(mu);
          if (first.ok())
            first = view.status().WithContext("activating subscriber " +
                                              std::to_string(s.subscriber_id.value()));
          next = w.accounts.size();
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  *activation_seconds = Since(t0);
  return first;
}

Result<std::vector<int64_t>> LedgerBalances(Ledger& ledger, const World& w) {
  std::vector<int64_t> out;
  out.reserve(w.accounts.size());
  for (const Subscriber& s : w.accounts) {
    TALLY_ASSIGN_OR_RETURN(AccountView v, ledger.Account(s.subscriber_id));
    out.push_back(v.balance_minor);
  }
  return out;
}

RechargeRun TallyRecharges(Ledger& ledger, const World& w, const Workload& load, double seconds) {
  auto before = LedgerBalances(ledger, w);
  if (!before.ok()) {
    RechargeRun r;
    r.error = before.status().ToString();
    return r;
  }
  ::sync();
  RechargeRun run = RunClients(
      load, w.accounts.size(), seconds, [&](int, const Call& call, const std::string& key) {
        RechargeRequest r;
        r.idempotency_key = key;
        r.subscriber_id = w.accounts[static_cast<size_t>(call.account)].subscriber_id;
        r.amount_minor = call.amount;
        r.channel = call.channel;
        r.payment_status = call.payment;
        r.ts = load.ts;
        auto res = ledger.Recharge(r);
        if (!res.ok()) return Outcome{false, false, 0, res.status().ToString()};
        const RechargeState want = call.payment == PaymentStatus::kSucceeded
                                       ? RechargeState::kSucceeded
                                       : RechargeState::kFailed;
        if (res->state != want)
          return Outcome{false, false, 0, "the recharge's state is not the payment's"};
        return Outcome{true, res->replayed, res->recharge_id, {}};
      });
  run.name = "tally_group_commit";
  run.what =
      "Ledger::Recharge from concurrent clients; one writer groups every waiting call into one "
      "transaction "
      "(savepoint each) and one fsync; a call returns once durable";
  auto after = LedgerBalances(ledger, w);
  if (!after.ok()) {
    if (run.error.empty()) run.error = after.status().ToString();
    return run;
  }
  VerifyBalances(run, *before, *after, w.accounts);
  // The ledger's own per-day totals must count each credited recharge once.
  auto totals = ledger.DayTotals();
  if (run.verified && totals.ok()) {
    int64_t n = 0, minor = 0;
    for (const LedgerDayTotals& t : *totals) {
      if (t.day == load.ts.date()) {
        n = t.recharges;
        minor = t.recharge_minor;
      }
    }
    const int64_t want_n = run.new_keys - run.failed_payments;
    if (n != want_n || minor != run.credited_minor) {
      run.verified = false;
      run.verification = "day totals say " + std::to_string(n) + " recharges of " +
                         std::to_string(minor) + "; acknowledged " + std::to_string(want_n) +
                         " of " + std::to_string(run.credited_minor);
    } else {
      run.verification += "; the ledger's day totals count each credited recharge once";
    }
  }
  return run;
}

// ---- Plain SQLite recharges --------------------------------------------------------------

//! The baseline's recharge store: accounts(balance) and recharges(idempotency_key UNIQUE), on one
//! connection (tally's SqliteDb, so the same pragmas: WAL, synchronous=FULL, the same cache).
//! Not thread-safe: callers serialize.
class PlainRecharges {
 public:
  static Result<std::unique_ptr<PlainRecharges>> Open(const fs::path& dir, const World& w) {
    fs::create_directories(dir);
    TALLY_ASSIGN_OR_RETURN(std::unique_ptr<SqliteDb> db,
                           SqliteDb::Open((dir / "plain.sqlite").string()));
    TALLY_RETURN_IF_ERROR(db->Exec(
        "CREATE TABLE accounts (subscriber_id INTEGER PRIMARY KEY, balance_minor INTEGER NOT NULL);"
        "CREATE TABLE recharges (recharge_id INTEGER PRIMARY KEY, idempotency_key TEXT NOT NULL "
        "UNIQUE, "
        "subscriber_id INTEGER NOT NULL, amount_minor INTEGER NOT NULL, channel TEXT NOT NULL, "
        "state TEXT NOT NULL, "
        "ts_us INTEGER NOT NULL, balance_after INTEGER NOT NULL);"));
    auto p = std::unique_ptr<PlainRecharges>(new PlainRecharges(std::move(db)));
    TALLY_ASSIGN_OR_RETURN(p->find_,
                           p->db_->Prepare("SELECT recharge_id, subscriber_id, amount_minor FROM "
                                           "recharges WHERE idempotency_key = ?"));
    TALLY_ASSIGN_OR_RETURN(p->credit_,
                           p->db_->Prepare("UPDATE accounts SET balance_minor = balance_minor + ? "
                                           "WHERE subscriber_id = ? RETURNING balance_minor"));
    TALLY_ASSIGN_OR_RETURN(
        p->balance_, p->db_->Prepare("SELECT balance_minor FROM accounts WHERE subscriber_id = ?"));
    TALLY_ASSIGN_OR_RETURN(p->insert_,
                           p->db_->Prepare("INSERT INTO recharges (idempotency_key, subscriber_id, "
                                           "amount_minor, channel, state, ts_us, balance_after) "
                                           "VALUES (?, ?, ?, ?, ?, ?, ?)"));
    TALLY_RETURN_IF_ERROR(p->db_->Exec("BEGIN"));
    TALLY_ASSIGN_OR_RETURN(SqliteStmt add, p->db_->Prepare("INSERT INTO accounts VALUES (?, ?)"));
    for (const Subscriber& s : w.accounts)
      TALLY_RETURN_IF_ERROR(add.Bind(s.subscriber_id.value(), kOpeningBalance).Run());
    TALLY_RETURN_IF_ERROR(p->db_->Exec("COMMIT"));
    return p;
  }

  Status Begin() { return db_->Exec("BEGIN IMMEDIATE"); }
  Status Commit() { return db_->Exec("COMMIT"); }
  void Rollback() { (void)db_->Exec("ROLLBACK"); }

  //! One recharge inside the open transaction: the original's result when the key was seen.
  Result<Outcome> Apply(const Call& call, int64_t subscriber, const std::string& key,
                        Timestamp ts) {
    find_.Bind(key);
    TALLY_ASSIGN_OR_RETURN(bool seen, find_.Step());
    if (seen) {
      if (find_.Int(1) != subscriber || find_.Int(2) != call.amount) {
        return Status::AlreadyExists("key " + key + " was used for a different recharge");
      }
      Outcome o{true, true, find_.Int(0), {}};
      TALLY_RETURN_IF_ERROR(find_.Run());
      return o;
    }
    const bool ok = call.payment == PaymentStatus::kSucceeded;
    SqliteStmt& read =
        ok ? credit_.Bind(int64_t{call.amount}, subscriber) : balance_.Bind(subscriber);
    TALLY_ASSIGN_OR_RETURN(bool row, read.Step());
    if (!row)
      return Status::NotFound("subscriber " + std::to_string(subscriber) + " has no account");
    const int64_t balance = read.Int(0);
    TALLY_RETURN_IF_ERROR(read.Run());
    TALLY_RETURN_IF_ERROR(insert_
                              .Bind(key, subscriber, int64_t{call.amount}, Name(call.channel),
                                    ok ? "succeeded" : "failed", ts.micros, balance)
                              .Run());
    return Outcome{true, false, db_->LastInsertRowid(), {}};
  }

  Result<std::vector<int64_t>> Balances(const World& w) {
    std::vector<int64_t> out;
    for (const Subscriber& s : w.accounts) {
      balance_.Bind(s.subscriber_id.value());
      TALLY_ASSIGN_OR_RETURN(bool row, balance_.Step());
      out.push_back(row ? balance_.Int(0) : -1);
      TALLY_RETURN_IF_ERROR(balance_.Run());
    }
    return out;
  }

 private:
  explicit PlainRecharges(std::unique_ptr<SqliteDb> db) : db_(std::move(db)) {}
  std::unique_ptr<SqliteDb> db_;
  SqliteStmt find_, credit_, balance_, insert_;
};

RechargeRun Failed(const std::string& name, const std::string& error) {
  RechargeRun r;
  r.name = name;
  r.error = error;
  return r;
}

RechargeRun SqlitePerRequest(const fs::path& dir, const World& w, const Workload& load,
                             double seconds) {
  auto store = PlainRecharges::Open(dir, w);
  if (!store.ok()) return Failed("sqlite_per_request", store.status().ToString());
  PlainRecharges& s = **store;
  std::mutex mu;
  ::sync();
  RechargeRun run = RunClients(
      load, w.accounts.size(), seconds, [&](int, const Call& call, const std::string& key) {
        std::lock_guard<std::mutex> lock(mu);
        if (Status st = s.Begin(); !st.ok()) return Outcome{false, false, 0, st.ToString()};
        auto o = s.Apply(call, w.accounts[static_cast<size_t>(call.account)].subscriber_id.value(),
                         key, load.ts);
        if (!o.ok()) {
          s.Rollback();
          return Outcome{false, false, 0, o.status().ToString()};
        }
        if (Status st = s.Commit(); !st.ok()) return Outcome{false, false, 0, st.ToString()};
        return *o;
      });
  run.name = "sqlite_per_request";
  run.what =
      "plain SQLite, one transaction per recharge (BEGIN IMMEDIATE; SELECT key; UPDATE balance "
      "RETURNING; "
      "INSERT; COMMIT) on one connection shared by the client threads under a mutex";
  run.transactions = run.requests;
  run.batch = 1;
  auto after = s.Balances(w);
  if (!after.ok()) {
    if (run.error.empty()) run.error = after.status().ToString();
    return run;
  }
  VerifyBalances(run, std::vector<int64_t>(w.accounts.size(), kOpeningBalance), *after, w.accounts);
  return run;
}

//! The same calls from one thread, `batch` to a transaction, the clients' calls interleaved.
RechargeRun SqliteBatched(const fs::path& dir, const World& w, const Workload& load, int batch,
                          double seconds) {
  const std::string name = "sqlite_batched_" + std::to_string(batch);
  auto store = PlainRecharges::Open(dir, w);
  if (!store.ok()) return Failed(name, store.status().ToString());
  PlainRecharges& s = **store;
  std::vector<std::pair<int, int32_t>> order;  // (client, call)
  size_t longest = 0;
  for (const auto& c : load.clients) longest = std::max(longest, c.size());
  for (size_t j = 0; j < longest; ++j) {
    for (size_t c = 0; c < load.clients.size(); ++c) {
      if (j < load.clients[c].size())
        order.emplace_back(static_cast<int>(c), static_cast<int32_t>(j));
    }
  }
  std::vector<std::vector<int64_t>> ids;
  for (const auto& c : load.clients) ids.emplace_back(c.size(), 0);
  RechargeRun run;
  run.name = name;
  run.what = "plain SQLite from one thread, " + std::to_string(batch) +
             " recharges per transaction (the same SQL as sqlite_per_request), the clients' calls "
             "interleaved";
  run.batch = batch;
  run.latency_per_batch = true;
  run.credited.assign(w.accounts.size(), 0);
  ::sync();
  const double cpu0 = CpuSeconds();
  const auto t0 = Clock::now();
  const auto deadline =
      t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  for (size_t i = 0; i < order.size() && run.error.empty(); i += static_cast<size_t>(batch)) {
    const auto b0 = Clock::now();
    if (b0 >= deadline) break;
    if (Status st = s.Begin(); !st.ok()) {
      run.error = st.ToString();
      break;
    }
    const size_t end = std::min(order.size(), i + static_cast<size_t>(batch));
    std::vector<const Call*> done;
    for (size_t k = i; k < end; ++k) {
      const auto [c, j] = order[k];
      const Call& call = load.clients[static_cast<size_t>(c)][static_cast<size_t>(j)];
      const bool retry = call.retry_of >= 0;
      const std::string key = KeyOf(c, retry ? call.retry_of : j);
      auto o = s.Apply(call, w.accounts[static_cast<size_t>(call.account)].subscriber_id.value(),
                       key, load.ts);
      if (!o.ok()) {
        run.error = o.status().ToString();
        break;
      }
      if (o->replayed != retry) {
        run.error =
            "key " + key + (retry ? " was retried but did not replay" : " is new but replayed");
        break;
      }
      if (retry &&
          o->recharge_id != ids[static_cast<size_t>(c)][static_cast<size_t>(call.retry_of)]) {
        run.error = "key " + key + " replayed another recharge";
        break;
      }
      // Known at once, for a retry later in this batch; acknowledged below, after COMMIT.
      if (!retry) ids[static_cast<size_t>(c)][static_cast<size_t>(j)] = o->recharge_id;
      done.push_back(&call);
    }
    if (!run.error.empty()) {
      s.Rollback();
      break;
    }
    if (Status st = s.Commit(); !st.ok()) {
      run.error = st.ToString();
      break;
    }
    ++run.transactions;
    run.latency_us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - b0).count());
    for (const Call* call : done) {  // acknowledged only now, after COMMIT
      if (call->retry_of >= 0) {
        ++run.retries;
        continue;
      }
      ++run.new_keys;
      if (call->payment == PaymentStatus::kSucceeded) {
        run.credited[static_cast<size_t>(call->account)] += call->amount;
      } else {
        ++run.failed_payments;
      }
    }
  }
  run.seconds = Since(t0);
  run.cpu_seconds = CpuSeconds() - cpu0;
  run.requests = run.new_keys + run.retries;
  for (int64_t v : run.credited) run.credited_minor += v;
  auto after = s.Balances(w);
  if (!after.ok()) {
    if (run.error.empty()) run.error = after.status().ToString();
    return run;
  }
  VerifyBalances(run, std::vector<int64_t>(w.accounts.size(), kOpeningBalance), *after, w.accounts);
  return run;
}

// ---- Rating ------------------------------------------------------------------------------

//! Plan versions by (plan, region), in effective order.
class PlanBook {
 public:
  explicit PlanBook(const std::vector<PlanVersion>& plans) {
    for (const PlanVersion& v : plans)
      by_[{v.plan_id.value(), static_cast<int>(v.region)}].push_back(v);
    for (auto& [k, list] : by_) {
      std::sort(list.begin(), list.end(), [](const PlanVersion& a, const PlanVersion& b) {
        return a.effective_from < b.effective_from;
      });
    }
  }
  const PlanVersion* On(PlanId plan, Region region, Date d) const {
    auto it = by_.find({plan.value(), static_cast<int>(region)});
    if (it == by_.end()) return nullptr;
    const PlanVersion* out = nullptr;
    for (const PlanVersion& v : it->second) {
      if (v.EffectiveOn(d)) out = &v;
    }
    return out;
  }

 private:
  std::map<std::pair<int64_t, int>, std::vector<PlanVersion>> by_;
};

//! The rating arithmetic of the ledger's model, in memory: billing cycles from the activation day,
//! the cycle's bundles renewed (and its fee taken) as time passes, each record rated on the plan
//! version of its own day (docs/ledger.md). The baselines share it so they do the same work.
class Rater {
 public:
  struct Account {
    PlanId plan;
    Region region = Region::kNorthAmerica;
    int cycle_day = 1;
    Date cycle_end;
    BundleState left;
    int64_t balance = 0;
    bool touched = false;  // in the current batch (for the SQLite baseline)
  };

  Rater(const PlanBook& book, const World& w) : book_(book) {
    accounts_.reserve(w.accounts.size() * 2);
    for (size_t i = 0; i < w.accounts.size(); ++i) {
      const Subscriber& s = w.accounts[i];
      Account a;
      a.plan = s.plan_id;
      a.region = s.region;
      const Date start = ActivationDay(w, i);
      a.cycle_day = CivilFromDays(start.days).day;
      a.balance = kOpeningBalance;
      Open(a, start);
      accounts_[s.subscriber_id.value()] = a;
    }
  }

  Account* Find(SubscriberId id) {
    auto it = accounts_.find(id.value());
    return it == accounts_.end() ? nullptr : &it->second;
  }

  //! Rates one record for `a`, renewing its cycle first when the record is past its end.
  Charge Rate(Account& a, const UsageEvent& e) {
    const Date d = e.ts.date();
    while (a.cycle_end <= d) Open(a, a.cycle_end);
    const PlanVersion* pv = book_.On(a.plan, a.region, d);
    if (!pv) {
      ++no_terms_;
      return {};
    }
    const Charge c = tally::RateUsage(*pv, e, &a.left);
    a.balance -= c.minor;
    return c;
  }

  std::unordered_map<int64_t, Account>& accounts() { return accounts_; }
  int64_t no_terms() const { return no_terms_; }

 private:
  void Open(Account& a, Date start) {
    CivilDate c = CivilFromDays(start.days);
    int y = c.year, m = c.month + 1;
    if (m == 13) {
      m = 1;
      ++y;
    }
    a.cycle_end = Date{DaysFromCivil(y, m, a.cycle_day)};
    const PlanVersion* pv = book_.On(a.plan, a.region, start);
    if (!pv) return;
    a.left = BundleState::For(*pv);
    a.balance -= pv->monthly_price_minor;
  }

  const PlanBook& book_;
  std::unordered_map<int64_t, Account> accounts_;
  int64_t no_terms_ = 0;
};

struct RateRun {
  std::string name, what, error;
  int64_t events = 0, rated = 0, already_rated = 0, no_account = 0, insufficient = 0, too_old = 0;
  int64_t charged_minor = 0;
  double seconds = 0, cpu_seconds = 0;
  std::vector<double> batch_seconds;
  double replay_seconds = 0;  // rating the first batch again (every record already rated)
  int64_t replay_events = 0;
  DiskUse disk;
  bool ok() const { return error.empty(); }
  double rate() const { return seconds > 0 ? static_cast<double>(events) / seconds : 0; }
};

//! One engine that rates batches: the ledger or the plain SQLite baseline.
class BatchRater {
 public:
  virtual ~BatchRater() = default;
  //! Rates one batch durably; adds what it did to run().
  virtual Status Rate(const std::vector<UsageEvent>& batch) = 0;
  //! Rates a batch that was rated before; every record must be skipped.
  virtual Status Replay(const std::vector<UsageEvent>& batch) = 0;
  RateRun& run() { return run_; }

 protected:
  RateRun run_;
};

class TallyRater final : public BatchRater {
 public:
  explicit TallyRater(Ledger& ledger) : ledger_(ledger) {
    run_.name = "tally_rate";
    run_.what =
        "Ledger::RateUsage per batch (time order): the plan of the record's time, the cycle's "
        "bundles, the "
        "balance, a charge entry per record to the outbox, the rated ids; one durable transaction "
        "per batch";
  }

  Status Rate(const std::vector<UsageEvent>& batch) override {
    TALLY_ASSIGN_OR_RETURN(RatingSummary s, ledger_.RateUsage(batch));
    run_.events += static_cast<int64_t>(batch.size());
    run_.rated += s.rated;
    run_.already_rated += s.already_rated;
    run_.no_account += s.no_account;
    run_.insufficient += s.insufficient;
    run_.too_old += s.too_old;
    run_.charged_minor += s.charged_minor;
    if (s.rated != static_cast<int64_t>(batch.size())) {
      return Status::Internal(
          "the ledger rated " + std::to_string(s.rated) + " of " + std::to_string(batch.size()) +
          " records (already rated " + std::to_string(s.already_rated) + ", no account " +
          std::to_string(s.no_account) + ", too old " + std::to_string(s.too_old) + ")");
    }
    return Status::Ok();
  }

  Status Replay(const std::vector<UsageEvent>& batch) override {
    TALLY_ASSIGN_OR_RETURN(RatingSummary s, ledger_.RateUsage(batch));
    if (s.rated != 0 || s.already_rated != static_cast<int64_t>(batch.size())) {
      return Status::Internal("rating a batch again rated " + std::to_string(s.rated) + " records");
    }
    return Status::Ok();
  }

 private:
  Ledger& ledger_;
};

//! The plain SQLite rating baseline: the Rater's arithmetic, a charges row per record (idempotent
//! by its primary key) and one UPDATE per account touched, one transaction per batch.
class SqliteRater final : public BatchRater {
 public:
  static Result<std::unique_ptr<SqliteRater>> Open(const fs::path& dir, const World& w,
                                                   const PlanBook& book) {
    fs::create_directories(dir);
    TALLY_ASSIGN_OR_RETURN(std::unique_ptr<SqliteDb> db,
                           SqliteDb::Open((dir / "plain_rating.sqlite").string()));
    auto r = std::unique_ptr<SqliteRater>(new SqliteRater(std::move(db), book, w));
    TALLY_RETURN_IF_ERROR(r->db_->Exec(
        "CREATE TABLE accounts (subscriber_id INTEGER PRIMARY KEY, balance_minor INTEGER NOT NULL, "
        "data_mb_left INTEGER NOT NULL, voice_min_left INTEGER NOT NULL, sms_left INTEGER NOT "
        "NULL, "
        "cycle_end_day INTEGER NOT NULL);"
        "CREATE TABLE charges (charge_id TEXT PRIMARY KEY, subscriber_id INTEGER NOT NULL, ts_us "
        "INTEGER NOT NULL, "
        "kind TEXT NOT NULL, amount_minor INTEGER NOT NULL, balance_after INTEGER NOT NULL) "
        "WITHOUT ROWID;"
        "BEGIN"));
    TALLY_ASSIGN_OR_RETURN(SqliteStmt add,
                           r->db_->Prepare("INSERT INTO accounts VALUES (?, ?, ?, ?, ?, ?)"));
    for (const auto& [id, a] : r->rater_.accounts()) {
      TALLY_RETURN_IF_ERROR(add.Bind(id, a.balance, a.left.data_mb_left, a.left.voice_min_left,
                                     a.left.sms_left, int64_t{a.cycle_end.days})
                                .Run());
    }
    TALLY_RETURN_IF_ERROR(r->db_->Exec("COMMIT"));
    TALLY_ASSIGN_OR_RETURN(
        r->insert_,
        r->db_->Prepare("INSERT INTO charges VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"));
    TALLY_ASSIGN_OR_RETURN(r->update_,
                           r->db_->Prepare("UPDATE accounts SET balance_minor = ?, data_mb_left = "
                                           "?, voice_min_left = ?, sms_left = ?, "
                                           "cycle_end_day = ? WHERE subscriber_id = ?"));
    return r;
  }

  Status Rate(const std::vector<UsageEvent>& batch) override {
    int64_t already = 0;
    TALLY_RETURN_IF_ERROR(RateBatch(batch, &already));
    run_.events += static_cast<int64_t>(batch.size());
    run_.already_rated += already;
    if (already != 0)
      return Status::Internal(std::to_string(already) + " new records were taken as rated before");
    return Status::Ok();
  }

  Status Replay(const std::vector<UsageEvent>& batch) override {
    const int64_t rated = run_.rated;
    int64_t already = 0;
    TALLY_RETURN_IF_ERROR(RateBatch(batch, &already));
    if (run_.rated != rated || already != static_cast<int64_t>(batch.size())) {
      return Status::Internal("rating a batch again rated " + std::to_string(run_.rated - rated) +
                              " records");
    }
    return Status::Ok();
  }

 private:
  SqliteRater(std::unique_ptr<SqliteDb> db, const PlanBook& book, const World& w)
      : db_(std::move(db)), rater_(book, w) {
    run_.name = "sqlite_rate";
    run_.what =
        "plain SQLite: the same rating arithmetic in C++ on in-memory account state; per record "
        "INSERT INTO "
        "charges (charge_id PRIMARY KEY, WITHOUT ROWID) ON CONFLICT DO NOTHING, applied only when "
        "inserted; per batch one UPDATE per account touched (balance, bundles) and one COMMIT";
  }

  Status RateBatch(const std::vector<UsageEvent>& batch, int64_t* already) {
    TALLY_RETURN_IF_ERROR(db_->Exec("BEGIN IMMEDIATE"));
    Status st = RateInTransaction(batch, already);
    if (!st.ok()) {
      (void)db_->Exec("ROLLBACK");
      return st;
    }
    return db_->Exec("COMMIT");
  }

  Status RateInTransaction(const std::vector<UsageEvent>& batch, int64_t* already) {
    touched_.clear();
    for (const UsageEvent& e : batch) {
      Rater::Account* a = rater_.Find(e.subscriber_id);
      if (!a) {
        ++run_.no_account;
        continue;
      }
      Rater::Account next = *a;  // applied only when the charge row is new
      const Charge c = rater_.Rate(next, e);
      charge_id_.assign("c:").append(e.event_id);
      TALLY_RETURN_IF_ERROR(insert_
                                .Bind(charge_id_, e.subscriber_id.value(), e.ts.micros,
                                      Name(c.kind), c.minor, next.balance)
                                .Run());
      if (db_->Changes() == 0) {
        ++*already;
        continue;
      }
      *a = next;
      if (!a->touched) {
        a->touched = true;
        touched_.emplace_back(e.subscriber_id.value(), a);
      }
      ++run_.rated;
      run_.charged_minor += c.minor;
      if (a->balance < 0 && c.minor > 0) ++run_.insufficient;
    }
    for (auto& [id, a] : touched_) {
      a->touched = false;
      TALLY_RETURN_IF_ERROR(update_
                                .Bind(a->balance, a->left.data_mb_left, a->left.voice_min_left,
                                      a->left.sms_left, int64_t{a->cycle_end.days}, id)
                                .Run());
    }
    return Status::Ok();
  }

  std::unique_ptr<SqliteDb> db_;
  Rater rater_;
  SqliteStmt insert_, update_;
  std::vector<std::pair<int64_t, Rater::Account*>> touched_;
  std::string charge_id_;
};

//! Rates every batch with each engine in turn, alternating which goes first, so that a disk whose
//! speed drifts during the phase (see DiskUse) weighs on all of them alike. Time, CPU and device
//! counters are kept per engine, around its own calls.
void RateInterleaved(const World& w, DiskWatch& watch, const std::vector<BatchRater*>& engines) {
  const DiskUse settled = watch.Settle();
  for (BatchRater* e : engines) e->run().disk = settled;
  for (size_t i = 0; i < w.batches.size(); ++i) {
    for (size_t k = 0; k < engines.size(); ++k) {
      BatchRater* e = engines[i % 2 == 0 ? k : engines.size() - 1 - k];
      RateRun& run = e->run();
      if (!run.error.empty()) continue;
      const DiskWatch::Counters c0 = watch.Read();
      const double cpu0 = CpuSeconds();
      const auto t0 = Clock::now();
      Status st = e->Rate(w.batches[i]);
      const double secs = Since(t0);
      run.cpu_seconds += CpuSeconds() - cpu0;
      DiskWatch::Add(&run.disk, c0, watch.Read());
      if (!st.ok()) {
        run.error = "batch " + std::to_string(i) + ": " + st.ToString();
        continue;
      }
      run.seconds += secs;
      run.batch_seconds.push_back(secs);
    }
  }
  for (BatchRater* e : engines) {
    RateRun& run = e->run();
    if (!run.error.empty() || w.batches.empty()) continue;
    const auto t0 = Clock::now();
    Status st = e->Replay(w.batches.front());
    run.replay_seconds = Since(t0);
    run.replay_events = static_cast<int64_t>(w.batches.front().size());
    if (!st.ok()) run.error = "replaying the first batch: " + st.ToString();
  }
  const double after = watch.Probe();
  for (BatchRater* e : engines) e->run().disk.probe_after_ms = after;
}

// ---- The ledger on PostgreSQL ------------------------------------------------------------

//! The PostgreSQL ledger's runs.
struct PostgresRuns {
  RechargeRun recharge;
  RateRun rate;
  double activation_seconds = 0;
  std::string server_version;
};

std::string ServerVersion(const std::string& conninfo) {
  PGconn* c = PQconnectdb(conninfo.c_str());
  std::string v;
  if (PQstatus(c) == CONNECTION_OK) {
    if (const char* text = PQparameterStatus(c, "server_version")) v = text;
  }
  PQfinish(c);
  return v;
}

//! Starts a PostgreSQL server in `dir` (fsync on), opens the ledger in a new database and runs the
//! recharge workload and the rating batches on it, as TallyRecharges and TallyRater do on SQLite.
PostgresRuns RunPostgres(const fs::path& dir, const World& w, const Workload& load, int clients,
                         double seconds, DiskWatch& watch) {
  PostgresRuns out;
  out.rate.name = "postgres_rate";
  const auto fail = [&](const Status& st) {
    out.recharge = Failed("postgres_group_commit", st.ToString());
    out.rate.error = st.ToString();
    return out;
  };
  PostgresLocalServer::Options o;
  o.dir = dir.string();
  auto server = PostgresLocalServer::Start(o);
  if (!server.ok()) return fail(server.status());
  if (Status st = (*server)->CreateDatabase("ledger_bench"); !st.ok()) return fail(st);
  const std::string conninfo = (*server)->ConnInfo("ledger_bench");
  out.server_version = ServerVersion(conninfo);
  auto ledger = OpenPostgresLedger(conninfo);
  if (!ledger.ok()) return fail(ledger.status());
  if (Status st = SetUpLedger(**ledger, w, clients, &out.activation_seconds); !st.ok()) {
    return fail(st);
  }
  watch.Begin();
  out.recharge = TallyRecharges(**ledger, w, load, seconds);
  out.recharge.disk = watch.End();
  out.recharge.name = "postgres_group_commit";
  out.recharge.what =
      "the same Ledger::Recharge calls on the PostgreSQL ledger (one libpq connection in pipeline "
      "mode; group commit; a call returns once COMMIT returned with synchronous_commit=on, fsync "
      "on)";
  TallyRater rater(**ledger);
  rater.run().name = "postgres_rate";
  rater.run().what =
      "the same Ledger::RateUsage batches on the PostgreSQL ledger; one durable transaction per "
      "batch";
  RateInterleaved(w, watch, {&rater});
  out.rate = rater.run();
  ledger->reset();
  if (Status st = (*server)->Stop(); !st.ok() && out.recharge.error.empty()) {
    out.recharge.error = st.ToString();
  }
  return out;
}

RateRun InMemoryRate(const World& w, const PlanBook& book) {
  RateRun run;
  run.name = "in_memory_rate";
  run.what =
      "tally::RateUsage (src/model/tariff.h) in a loop with the same account state (hash lookup, "
      "cycle "
      "renewal, plan version of the day, balance); no I/O, no idempotency: the upper bound";
  Rater rater(book, w);
  const double cpu0 = CpuSeconds();
  const auto t0 = Clock::now();
  for (const auto& batch : w.batches) {
    for (const UsageEvent& e : batch) {
      Rater::Account* a = rater.Find(e.subscriber_id);
      if (!a) {
        ++run.no_account;
        continue;
      }
      run.charged_minor += rater.Rate(*a, e).minor;
      ++run.rated;
    }
    run.events += static_cast<int64_t>(batch.size());
  }
  run.seconds = Since(t0);
  run.cpu_seconds = CpuSeconds() - cpu0;
  return run;
}

// ---- Output ------------------------------------------------------------------------------

void WriteDisk(JsonWriter& w, const DiskUse& d) {
  Key(w, "disk");
  w.StartObject();
  JsonField(w, "settle_seconds", Round(d.settle_seconds, 1));
  JsonField(w, "fdatasync_ms_before", Round(d.probe_before_ms, 3));
  JsonField(w, "fdatasync_ms_after", Round(d.probe_after_ms, 3));
  JsonField(w, "device_flushes", d.flushes);
  JsonField(w, "device_writes", d.writes);
  JsonField(w, "device_mb_written", Round(d.mb_written, 1));
  w.EndObject();
}

void WriteRecharge(JsonWriter& w, const RechargeRun& r) {
  Key(w, r.name.c_str());
  w.StartObject();
  JsonField(w, "what", r.what);
  JsonField(w, "ok", r.ok());
  if (!r.error.empty()) JsonField(w, "error", r.error);
  JsonField(w, "requests", r.requests);
  JsonField(w, "new_keys", r.new_keys);
  JsonField(w, "retries_replayed", r.retries);
  JsonField(w, "failed_payments", r.failed_payments);
  JsonField(w, "seconds", Round(r.seconds, 3));
  JsonField(w, "requests_per_second", static_cast<int64_t>(std::llround(r.rate())));
  JsonField(w, "credited_recharges_per_second",
            static_cast<int64_t>(std::llround(r.credited_rate())));
  if (r.batch > 0) JsonField(w, "requests_per_transaction", static_cast<int64_t>(r.batch));
  if (r.transactions > 0) JsonField(w, "transactions", r.transactions);
  JsonField(w, "cpu_seconds", Round(r.cpu_seconds, 3));
  Key(w, r.latency_per_batch ? "batch_latency_ms" : "latency_ms");
  w.StartObject();
  JsonField(w, "p50", Round(Percentile(r.latency_us, 0.5) / 1000, 3));
  JsonField(w, "p99", Round(Percentile(r.latency_us, 0.99) / 1000, 3));
  JsonField(w, "p999", Round(Percentile(r.latency_us, 0.999) / 1000, 3));
  JsonField(w, "max", Round(Percentile(r.latency_us, 1.0) / 1000, 3));
  w.EndObject();
  JsonField(w, "credited_minor", r.credited_minor);
  JsonField(w, "verified", r.verified);
  JsonField(w, "verification", r.verification);
  if (r.requests > 0) {
    JsonField(
        w, "device_flushes_per_1000_requests",
        Round(static_cast<double>(r.disk.flushes) * 1000 / static_cast<double>(r.requests), 1));
    JsonField(w, "device_kb_written_per_request",
              Round(r.disk.mb_written * 1000 / static_cast<double>(r.requests), 2));
  }
  WriteDisk(w, r.disk);
  w.EndObject();
}

void WriteRate(JsonWriter& w, const RateRun& r) {
  Key(w, r.name.c_str());
  w.StartObject();
  JsonField(w, "what", r.what);
  JsonField(w, "ok", r.ok());
  if (!r.error.empty()) JsonField(w, "error", r.error);
  JsonField(w, "events", r.events);
  JsonField(w, "rated", r.rated);
  JsonField(w, "seconds", Round(r.seconds, 3));
  JsonField(w, "events_per_second", static_cast<int64_t>(std::llround(r.rate())));
  JsonField(w, "cpu_seconds", Round(r.cpu_seconds, 3));
  if (!r.batch_seconds.empty()) {
    JsonField(w, "batches", static_cast<int64_t>(r.batch_seconds.size()));
    JsonField(w, "batch_seconds_p50", Round(Percentile(r.batch_seconds, 0.5), 3));
    JsonField(w, "batch_seconds_max", Round(Percentile(r.batch_seconds, 1.0), 3));
  }
  JsonField(w, "charged_minor", r.charged_minor);
  JsonField(w, "insufficient_balance", r.insufficient);
  if (r.replay_events > 0) {
    JsonField(w, "replayed_batch_events", r.replay_events);
    JsonField(w, "replayed_batch_events_per_second",
              static_cast<int64_t>(std::llround(static_cast<double>(r.replay_events) /
                                                std::max(1e-9, r.replay_seconds))));
  }
  if (r.events > 0 && r.disk.mb_written > 0) {
    JsonField(w, "device_bytes_written_per_event",
              Round(r.disk.mb_written * 1e6 / static_cast<double>(r.events), 1));
  }
  if (r.name != "in_memory_rate") WriteDisk(w, r.disk);
  w.EndObject();
}

}  // namespace

int main(int argc, char** argv) {
  std::string out = "bench/results/ledger.json", tmp = "/tmp";
  int64_t accounts = 10000, recharges = 200000;
  int32_t days = 30;
  int clients = 32, baseline_batch = 1000;
  size_t rate_batch = 100000;
  double seconds = 20, per_request_seconds = 10, retry_share = 0.1, failed_share = 0.02,
         settle_seconds = 10;
  uint64_t seed = 42;
  bool keep = false, tally_only = false, postgres = true;
  std::string notes =
      "The VM's disk throttles flushes after a burst: fdatasync goes "
      "from ~0.2 ms to ~4 ms (about 250 flushes/s) until the disk has been idle for a while. Each "
      "durable run waits up to settle_seconds for fast flushes and records the state it ran in "
      "(disk.fdatasync_ms_before/after); the raters alternate batch by batch.";
  CLI::App app{
      "tally ledger benchmark: durable idempotent recharges and usage rating against plain SQLite"};
  app.add_option("--out", out)->capture_default_str();
  app.add_option("--tmp", tmp, "Scratch directory (the disk under test)")->capture_default_str();
  app.add_option("--accounts", accounts, "Prepaid accounts activated")->capture_default_str();
  app.add_option("--days", days,
                 "Days of generated usage to rate (at most the ledger's 35-day window)")
      ->capture_default_str();
  app.add_option("--clients", clients, "Concurrent recharge clients")->capture_default_str();
  app.add_option("--recharges", recharges, "Recharge requests per run, retries included")
      ->capture_default_str();
  app.add_option("--seconds", seconds, "Time limit of each recharge run")->capture_default_str();
  app.add_option("--per-request-seconds", per_request_seconds,
                 "Time limit of the one-transaction-per-recharge baseline (one fsync per request)")
      ->capture_default_str();
  app.add_option("--retry-share", retry_share,
                 "Share of requests that retry a key already acknowledged")
      ->capture_default_str();
  app.add_option("--failed-share", failed_share, "Share of new recharges whose payment failed")
      ->capture_default_str();
  app.add_option("--baseline-batch", baseline_batch,
                 "Requests per transaction of the large batched baseline")
      ->capture_default_str();
  app.add_option("--rate-batch", rate_batch, "Usage records per RateUsage call")
      ->capture_default_str();
  app.add_option("--settle-seconds", settle_seconds,
                 "Longest wait before a durable run for the disk to leave its throttled state")
      ->capture_default_str();
  app.add_option("--seed", seed)->capture_default_str();
  app.add_option("--notes", notes, "Free text stored with the results")->capture_default_str();
  app.add_flag("--keep", keep, "Keep the scratch directory");
  app.add_flag("--tally-only", tally_only,
               "Run the ledger only, not the baselines (for profiling)");
  app.add_flag("--postgres,!--no-postgres", postgres,
               "Also run the ledger on PostgreSQL (a server started for the run) [on]");
  CLI11_PARSE(app, argc, argv);
  if (clients < 1 || accounts < 1 || rate_batch < 1 || baseline_batch < 1) {
    std::fprintf(stderr,
                 "ledger_bench: --clients, --accounts, --rate-batch and --baseline-batch must be "
                 "positive\n");
    return 2;
  }

  std::string tmpl = tmp + "/tally-ledger-bench-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (!mkdtemp(buf.data())) {
    std::fprintf(stderr, "ledger_bench: cannot create a scratch directory under %s\n", tmp.c_str());
    return 1;
  }
  const fs::path scratch(buf.data());
  auto cleanup = [&] {
    std::error_code ec;
    if (!keep) fs::remove_all(scratch, ec);
  };
  const double fsync_ms = FdatasyncMillis(scratch, 100);

  const auto g0 = Clock::now();
  auto world = LoadWorld(scratch / "world", accounts, days, seed, rate_batch);
  if (!world.ok()) {
    std::fprintf(stderr, "ledger_bench: %s\n", world.status().ToString().c_str());
    cleanup();
    return 1;
  }
  World& w = *world;
  {
    std::error_code ec;
    fs::remove_all(scratch / "world", ec);
  }
  int64_t kinds[3] = {0, 0, 0}, roaming = 0;
  for (const auto& b : w.batches) {
    for (const UsageEvent& e : b) {
      ++kinds[static_cast<int>(e.kind)];
      roaming += e.roaming;
    }
  }
  std::printf(
      "ledger_bench: %s prepaid accounts, %s usage events (a generated world of %s subscribers x "
      "%d days, "
      "%.1f s to generate and read); fdatasync %.2f ms\n",
      Grouped(static_cast<double>(accounts)).c_str(),
      Grouped(static_cast<double>(w.usage_events)).c_str(),
      Grouped(static_cast<double>(w.generated_subscribers)).c_str(), days, Since(g0), fsync_ms);

  const Workload load = MakeWorkload(clients, recharges, retry_share, failed_share,
                                     w.accounts.size(), seed, RechargeTime(w));
  PlanBook book(w.plans);

  // The ledger is set up once; its recharges run first and its rating last, on the same accounts.
  // Between them, the recharge baselines. Every durable run starts after DiskWatch::Begin.
  DiskWatch watch(scratch, settle_seconds);
  double activation_seconds = 0;
  auto ledger = OpenSqliteLedger((scratch / "ledger").string());
  if (!ledger.ok()) {
    std::fprintf(stderr, "ledger_bench: %s\n", ledger.status().ToString().c_str());
    cleanup();
    return 1;
  }
  if (Status st = SetUpLedger(**ledger, w, clients, &activation_seconds); !st.ok()) {
    std::fprintf(stderr, "ledger_bench: %s\n", st.ToString().c_str());
    cleanup();
    return 1;
  }
  std::printf("  activated %s accounts in %.2f s\n", Grouped(static_cast<double>(accounts)).c_str(),
              activation_seconds);
  auto report = [](const char* what, double secs, const DiskUse& d) {
    std::printf(
        "  %-36s %6.1f s (waited %.0f s for the disk; fdatasync %.2f ms before, %.2f ms after)\n",
        what, secs, d.settle_seconds, d.probe_before_ms, d.probe_after_ms);
  };
  watch.Begin();
  RechargeRun tally_recharge = TallyRecharges(**ledger, w, load, seconds);
  tally_recharge.disk = watch.End();
  report("tally recharges", tally_recharge.seconds, tally_recharge.disk);
  RechargeRun batched_clients, batched_large, per_request;
  if (!tally_only) {
    watch.Begin();
    batched_clients = SqliteBatched(scratch / "sqlite-b1", w, load, clients, seconds);
    batched_clients.disk = watch.End();
    report(("sqlite batched " + std::to_string(clients)).c_str(), batched_clients.seconds,
           batched_clients.disk);
    watch.Begin();
    batched_large = SqliteBatched(scratch / "sqlite-b2", w, load, baseline_batch, seconds);
    batched_large.disk = watch.End();
    report(("sqlite batched " + std::to_string(baseline_batch)).c_str(), batched_large.seconds,
           batched_large.disk);
    watch.Begin();
    per_request = SqlitePerRequest(scratch / "sqlite-a", w, load, per_request_seconds);
    per_request.disk = watch.End();
    report("sqlite per request", per_request.seconds, per_request.disk);
  }
  // Rating: the ledger and the baseline take turns batch by batch (RateInterleaved).
  TallyRater tally_rater(**ledger);
  std::unique_ptr<SqliteRater> sqlite_rater;
  std::vector<BatchRater*> raters = {&tally_rater};
  RateRun sqlite_open_failed;
  if (!tally_only) {
    auto opened = SqliteRater::Open(scratch / "sqlite-rate", w, book);
    if (opened.ok()) {
      sqlite_rater = std::move(*opened);
      raters.push_back(sqlite_rater.get());
    } else {
      sqlite_open_failed.name = "sqlite_rate";
      sqlite_open_failed.error = opened.status().ToString();
    }
  }
  RateInterleaved(w, watch, raters);
  const RateRun& tally_rate = tally_rater.run();
  const RateRun& sqlite_rate = sqlite_rater ? sqlite_rater->run() : sqlite_open_failed;
  report("tally rating", tally_rate.seconds, tally_rate.disk);
  if (sqlite_rater) report("sqlite rating", sqlite_rate.seconds, sqlite_rate.disk);
  ledger->reset();
  if (tally_only) {
    std::printf("ledger_bench: tally only: %s recharges/s, %s events rated/s; no results written\n",
                Grouped(tally_recharge.rate()).c_str(), Grouped(tally_rate.rate()).c_str());
    cleanup();
    return tally_recharge.ok() && tally_rate.ok() ? 0 : 1;
  }
  // The PostgreSQL ledger, after every SQLite run.
  PostgresRuns pg;
  if (postgres) {
    // PostgreSQL does not run as root; the user it runs as must be able to enter the scratch dir.
    fs::permissions(scratch, fs::perms::others_exec, fs::perm_options::add);
    pg = RunPostgres(scratch / "postgres", w, load, clients, seconds, watch);
    report("postgres recharges", pg.recharge.seconds, pg.recharge.disk);
    report("postgres rating", pg.rate.seconds, pg.rate.disk);
  }
  const RateRun memory_rate = InMemoryRate(w, book);

  // The three raters must agree on what the usage cost.
  const bool same_charges = tally_rate.ok() && sqlite_rate.ok() &&
                            tally_rate.charged_minor == memory_rate.charged_minor &&
                            sqlite_rate.charged_minor == memory_rate.charged_minor;
  const bool pg_same_charges =
      !postgres || (pg.rate.ok() && pg.rate.charged_minor == memory_rate.charged_minor);

  const bool recharge_met = tally_recharge.ok() && tally_recharge.rate() >= kRechargeTarget;
  const bool rating_met = tally_rate.ok() && tally_rate.rate() >= kRatingTarget;

  std::printf(
      "\n  recharges: %d clients, %.0f%% retries, durable on ack      req/s   credited/s   p50 ms  "
      " p99 ms  "
      "verified\n",
      clients, retry_share * 100);
  std::vector<const RechargeRun*> recharge_runs = {&tally_recharge, &per_request, &batched_clients,
                                                   &batched_large};
  std::vector<const RateRun*> rate_runs = {&tally_rate, &sqlite_rate, &memory_rate};
  if (postgres) {
    recharge_runs.push_back(&pg.recharge);
    rate_runs.push_back(&pg.rate);
  }
  for (const RechargeRun* r : recharge_runs) {
    if (!r->error.empty()) {
      std::printf("  %-52s failed: %s\n", r->name.c_str(), r->error.c_str());
      continue;
    }
    std::printf("  %-52s %9s  %11s  %7.2f  %7.2f  %s%s\n", r->name.c_str(),
                Grouped(r->rate()).c_str(), Grouped(r->credited_rate()).c_str(),
                Percentile(r->latency_us, 0.5) / 1000, Percentile(r->latency_us, 0.99) / 1000,
                r->verified ? "yes" : "NO", r->latency_per_batch ? " (latency per batch)" : "");
  }
  std::printf(
      "\n  rating: batches of %s, durable per batch                     events/s   seconds\n",
      Grouped(static_cast<double>(rate_batch)).c_str());
  for (const RateRun* r : rate_runs) {
    if (!r->ok()) {
      std::printf("  %-52s failed: %s\n", r->name.c_str(), r->error.c_str());
      continue;
    }
    std::printf("  %-52s %9s  %8.2f\n", r->name.c_str(), Grouped(r->rate()).c_str(), r->seconds);
  }
  std::printf(
      "\n  targets: recharges >= %s/s %s (%s/s); rating >= %s/s %s (%s/s); charges agree: %s\n",
      Grouped(kRechargeTarget).c_str(), recharge_met ? "MET" : "NOT MET",
      Grouped(tally_recharge.rate()).c_str(), Grouped(kRatingTarget).c_str(),
      rating_met ? "MET" : "NOT MET", Grouped(tally_rate.rate()).c_str(),
      same_charges && pg_same_charges ? "yes" : "NO");
  if (postgres && tally_recharge.rate() > 0 && tally_rate.rate() > 0) {
    std::printf("  postgres vs sqlite ledger: recharges %.2fx, rating %.2fx (PostgreSQL %s)\n",
                pg.recharge.rate() / tally_recharge.rate(), pg.rate.rate() / tally_rate.rate(),
                pg.server_version.c_str());
  }

  rapidjson::StringBuffer sb;
  JsonWriter j(sb);
  j.StartObject();
  JsonField(j, "benchmark", std::string("ledger"));
  JsonField(j, "date", UtcNow());
  Key(j, "machine");
  j.StartObject();
  WriteMachineFields(j);
  JsonField(j, "sqlite", std::string(sqlite3_libversion()));
  if (postgres) JsonField(j, "postgres", pg.server_version);
  JsonField(j, "fdatasync_ms_p50", Round(fsync_ms, 3));
  JsonField(j, "device", watch.device());
  j.EndObject();
  JsonField(j, "notes", notes);
  Key(j, "parameters");
  j.StartObject();
  JsonField(j, "accounts", accounts);
  JsonField(j, "days", static_cast<int64_t>(days));
  JsonField(j, "clients", static_cast<int64_t>(clients));
  JsonField(j, "recharges", recharges);
  JsonField(j, "seconds_limit", seconds);
  JsonField(j, "per_request_seconds_limit", per_request_seconds);
  JsonField(j, "retry_share", retry_share);
  JsonField(j, "failed_share", failed_share);
  JsonField(j, "baseline_batch", static_cast<int64_t>(baseline_batch));
  JsonField(j, "rate_batch", static_cast<int64_t>(rate_batch));
  JsonField(j, "settle_seconds", settle_seconds);
  JsonField(j, "seed", static_cast<int64_t>(seed));
  JsonField(j, "tmp", tmp);
  JsonField(j, "postgres", postgres);
  j.EndObject();
  Key(j, "workload");
  j.StartObject();
  JsonField(j, "world",
            "generated: " + Grouped(static_cast<double>(w.generated_subscribers)) +
                " subscribers x " + std::to_string(days) + " days; the first " +
                std::to_string(accounts) +
                " prepaid subscribers get accounts on their plan, partner and region");
  JsonField(j, "opening_balance_minor", kOpeningBalance);
  JsonField(j, "activation",
            std::string("day 1 + i % 28 of the month before the world starts, so cycles renew "
                        "during the rated month"));
  JsonField(j, "activation_seconds", Round(activation_seconds, 3));
  if (postgres) JsonField(j, "postgres_activation_seconds", Round(pg.activation_seconds, 3));
  JsonField(j, "activations_per_second",
            static_cast<int64_t>(
                std::llround(static_cast<double>(accounts) / std::max(1e-9, activation_seconds))));
  JsonField(j, "recharge_time", FormatTimestamp(load.ts));
  JsonField(j, "usage_events", w.usage_events);
  JsonField(j, "voice", kinds[0]);
  JsonField(j, "sms", kinds[1]);
  JsonField(j, "data", kinds[2]);
  JsonField(j, "roaming_share",
            Round(static_cast<double>(roaming) / std::max<double>(1, w.usage_events), 4));
  j.EndObject();
  Key(j, "recharges");
  j.StartObject();
  for (const RechargeRun* r : recharge_runs) WriteRecharge(j, *r);
  j.EndObject();
  Key(j, "rating");
  j.StartObject();
  for (const RateRun* r : rate_runs) WriteRate(j, *r);
  JsonField(j, "charges_agree", same_charges);
  if (postgres) JsonField(j, "postgres_charges_agree", pg_same_charges);
  j.EndObject();
  Key(j, "targets");
  j.StartObject();
  JsonField(j, "recharges_per_second", kRechargeTarget);
  JsonField(j, "recharges_measured", static_cast<int64_t>(std::llround(tally_recharge.rate())));
  JsonField(j, "recharges_met", recharge_met);
  JsonField(j, "rated_events_per_second", kRatingTarget);
  JsonField(j, "rated_measured", static_cast<int64_t>(std::llround(tally_rate.rate())));
  JsonField(j, "rating_met", rating_met);
  j.EndObject();
  Key(j, "ratios");
  j.StartObject();
  if (per_request.rate() > 0) {
    JsonField(j, "tally_recharges_vs_sqlite_per_request",
              Round(tally_recharge.rate() / per_request.rate(), 2));
  }
  if (batched_clients.rate() > 0) {
    JsonField(j, "tally_recharges_vs_sqlite_batched_clients",
              Round(tally_recharge.rate() / batched_clients.rate(), 3));
  }
  if (sqlite_rate.rate() > 0)
    JsonField(j, "tally_rating_vs_sqlite", Round(tally_rate.rate() / sqlite_rate.rate(), 3));
  if (memory_rate.rate() > 0)
    JsonField(j, "tally_rating_vs_in_memory", Round(tally_rate.rate() / memory_rate.rate(), 4));
  if (postgres && tally_recharge.rate() > 0) {
    JsonField(j, "postgres_recharges_vs_sqlite_ledger",
              Round(pg.recharge.rate() / tally_recharge.rate(), 3));
  }
  if (postgres && tally_rate.rate() > 0)
    JsonField(j, "postgres_rating_vs_sqlite_ledger", Round(pg.rate.rate() / tally_rate.rate(), 3));
  j.EndObject();
  j.EndObject();
  std::ofstream(out) << sb.GetString() << "\n";
  std::printf("ledger_bench: wrote %s\n", out.c_str());
  cleanup();

  const bool pg_ok = !postgres || (pg.recharge.ok() && pg.rate.ok() && pg_same_charges);
  const bool all_ok = tally_recharge.ok() && per_request.ok() && batched_clients.ok() &&
                      batched_large.ok() && tally_rate.ok() && sqlite_rate.ok() && same_charges &&
                      pg_ok;
  if (!all_ok) {
    std::fprintf(stderr,
                 "ledger_bench: FAILED: a run failed or its verification did not hold (see %s)\n",
                 out.c_str());
    for (const RechargeRun* r : recharge_runs) {
      if (!r->ok())
        std::fprintf(stderr, "  %s: %s\n", r->name.c_str(),
                     r->error.empty() ? r->verification.c_str() : r->error.c_str());
    }
    for (const RateRun* r : rate_runs) {
      if (!r->ok()) std::fprintf(stderr, "  %s: %s\n", r->name.c_str(), r->error.c_str());
    }
    if (!pg_same_charges) {
      std::fprintf(stderr, "  postgres charged %lld, in memory %lld\n",
                   static_cast<long long>(pg.rate.charged_minor),
                   static_cast<long long>(memory_rate.charged_minor));
    }
    if (!same_charges) {
      std::fprintf(stderr, "  charges differ: tally %lld, sqlite %lld, in memory %lld\n",
                   static_cast<long long>(tally_rate.charged_minor),
                   static_cast<long long>(sqlite_rate.charged_minor),
                   static_cast<long long>(memory_rate.charged_minor));
    }
    return 1;
  }
  return 0;
}
