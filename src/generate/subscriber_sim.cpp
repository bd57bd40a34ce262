#include "generate/subscriber_sim.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>

#include "model/tariff.h"

namespace tally {

namespace {

constexpr std::array<std::string_view, 32> kFirstNames = {
    "Ava", "Liam", "Mia", "Noah", "Sofia", "Lucas", "Emma", "Mateo", "Olivia", "Arjun",
    "Yuki", "Hana", "Chen", "Priya", "Diego", "Lena", "Jonas", "Amara", "Kofi", "Ines",
    "Marta", "Pedro", "Aisha", "Omar", "Sara", "Ethan", "Chloe", "Ravi", "Min-jun", "Zoe",
    "Camila", "Felix"};
constexpr std::array<std::string_view, 32> kLastNames = {
    "Smith", "Garcia", "Mueller", "Rossi", "Martin", "Kowalski", "Silva", "Tanaka", "Kim",
    "Nguyen", "Patel", "Lopez", "Johnson", "Brown", "Dubois", "Jensen", "Santos", "Costa",
    "Wang", "Sato", "Hernandez", "Novak", "Andersson", "Murphy", "Okafor", "Reyes", "Fischer",
    "Romero", "Singh", "Lee", "Torres", "Moreau"};

// Relative intensity by hour of day (UTC-agnostic local pattern): quiet nights, a lunch bump and an
// evening peak.
constexpr std::array<double, 24> kVoiceHours = {0.2, 0.1, 0.05, 0.05, 0.05, 0.1, 0.3, 0.7,
                                               1.0, 1.2, 1.3, 1.3, 1.4, 1.3, 1.2, 1.2,
                                               1.3, 1.5, 1.6, 1.5, 1.3, 1.0, 0.7, 0.4};
constexpr std::array<double, 24> kDataHours = {0.5, 0.3, 0.2, 0.15, 0.15, 0.2, 0.4, 0.8,
                                              1.0, 1.0, 1.0, 1.0, 1.2, 1.1, 1.0, 1.0,
                                              1.1, 1.3, 1.5, 1.7, 1.8, 1.7, 1.3, 0.9};
// Monday..Sunday.
constexpr std::array<double, 7> kVoiceWeek = {1.0, 1.0, 1.0, 1.0, 1.05, 0.85, 0.75};
constexpr std::array<double, 7> kDataWeek = {1.0, 1.0, 1.0, 1.0, 1.05, 1.15, 1.15};

constexpr std::array<double, kTierCount> kTierActivity = {1.0, 1.4, 2.0};
constexpr std::array<double, kTierCount> kSessionMb = {15, 30, 50};
constexpr std::array<double, kTierCount> kTripsPerYear = {0.8, 1.5, 3.0};
constexpr std::array<double, kTierCount> kTierShare = {0.55, 0.33, 0.12};
constexpr std::array<double, 5> kDeviceShare = {0.55, 0.33, 0.06, 0.03, 0.03};
constexpr std::array<double, kTierCount> kTierChurn = {1.0, 0.85, 0.6};

// Daily churn hazard of a baseline subscriber (about 1.2% a month before any driver).
constexpr double kBaseHazard = 0.0004;
constexpr double kDoubleChargeRate = 2e-5;    // per usage record
constexpr double kPremiumFraudRate = 2.5e-5;  // per subscriber-day, android x3
constexpr double kShockTripShare = 0.05;      // trips where the traveller forgets data roaming

// Writes "<letter><hex a>x<hex b>" into a std::string without allocation for short ids.
void MakeId(std::string* out, char letter, uint64_t a, uint64_t b) {
  char buf[40];
  char* p = buf;
  *p++ = letter;
  auto hex = [&](uint64_t v) {
    int digits = v ? (std::bit_width(v) + 3) / 4 : 1;
    for (int i = digits - 1; i >= 0; --i) {
      p[i] = "0123456789abcdef"[v & 15];
      v >>= 4;
    }
    p += digits;
  };
  hex(a);
  *p++ = 'x';
  hex(b);
  out->assign(buf, p - buf);
}

// A record's session reference: its event id with 's' for 'u' (same subscriber and counter).
void SessionRefOf(const std::string& event_id, std::string* out) {
  *out = event_id;
  (*out)[0] = 's';
}

// A bijection on [0, 10^digits): affine map with a multiplier coprime to 10.
uint64_t Permute(uint64_t x, int digits, uint64_t mult, uint64_t add) {
  uint64_t mod = 1;
  for (int i = 0; i < digits; ++i) mod *= 10;
  return static_cast<uint64_t>((static_cast<__uint128_t>(x % mod) * mult + add) % mod);
}

void PutDigits(std::string* s, uint64_t v, int digits) {
  char tmp[24];
  for (int i = digits - 1; i >= 0; --i) {
    tmp[i] = static_cast<char>('0' + v % 10);
    v /= 10;
  }
  s->append(tmp, digits);
}

// A time on `day` following an hourly profile: the hour from the top bits of one draw, the second
// within it from the low 32 bits.
Timestamp AtHour(Date day, Rng& rng, const TablePicker& hours) {
  uint64_t bits = rng.Next();
  int64_t hour = static_cast<int64_t>(hours.Pick(bits));
  int64_t second = static_cast<int64_t>(((bits & 0xffffffffULL) * 3600) >> 32);
  return Timestamp{StartOfDay(day).micros + hour * kMicrosPerHour + second * kMicrosPerSecond};
}

// A rolling count over the last N days.
template <int N>
struct Window {
  std::array<int32_t, N> days{};
  int32_t sum = 0;
  void Roll(int day_index) {
    int slot = day_index % N;
    sum -= days[slot];
    days[slot] = 0;
  }
  void Add(int day_index, int32_t v) {
    days[day_index % N] += v;
    sum += v;
  }
};

}  // namespace

std::string MsisdnOf(SubscriberId id, const City& city) {
  // Cities never change country: look each city's country and digit count up once.
  struct Plan {
    std::string_view dial_code;
    int digits;       // national digits after the leading one
    uint64_t modulus;  // 10^digits
  };
  static const std::vector<Plan> kPlans = [] {
    std::vector<Plan> v(Cities().size() + 1);
    for (const City& c : Cities()) {
      const Country* country = FindCountry(c.country);
      Plan& p = v[c.city_id.value()];
      p.dial_code = country->dial_code;
      p.digits = country->national_digits - 1;
      p.modulus = 1;
      for (int i = 0; i < p.digits; ++i) p.modulus *= 10;
    }
    return v;
  }();
  const Plan& plan = kPlans[city.city_id.value()];
  char buf[24];
  char* p = buf;
  *p++ = '+';
  for (char ch : plan.dial_code) *p++ = ch;
  // A leading digit 2-9 from the city, then the id under an affine bijection of [0, 10^digits)
  // (the multiplier is coprime to 10): distinct ids below 10^digits give distinct numbers. The
  // product stays below 2^63 for the at most 10 digits used.
  *p++ = static_cast<char>('2' + city.city_id.value() % 8);
  uint64_t v = (static_cast<uint64_t>(id.value()) % plan.modulus * 7'654'321 + 1'234'567) % plan.modulus;
  for (int i = plan.digits - 1; i >= 0; --i) {
    p[i] = static_cast<char>('0' + v % 10);
    v /= 10;
  }
  p += plan.digits;
  return std::string(buf, p);
}

SubscriberSimulator::Home SubscriberSimulator::HomeOf(SubscriberId id) const {
  static const std::vector<double> kRegionCum = Cumulative(Catalogue::kRegionShare);
  // A stream of its own, so anyone can work out where a base subscriber lives (and so their
  // number) without simulating them.
  Rng rng(MixKeys(cat_.options().seed, static_cast<uint64_t>(id.value()), 0x4011E));
  Home h;
  h.partner = cat_.partners()[rng.Pick(cat_.partner_cumulative())].partner_id;
  const Partner& partner = cat_.partners()[h.partner.value()];
  h.region = h.partner.value() != 0 && rng.Bernoulli(0.7) ? partner.home_region
                                                          : static_cast<Region>(rng.Pick(kRegionCum));
  h.city = cat_.CitiesOf(h.region)[rng.Pick(cat_.CityCumulative(h.region))];
  return h;
}

void SubscriberSimulator::Simulate(SubscriberId id, const AcquiredSubscriber* acquired) {
  const GeneratorOptions& o = cat_.options();
  Rng rng(MixKeys(o.seed, static_cast<uint64_t>(id.value()), 0x5B5C));
  static const TablePicker kVoiceHourPicker(kVoiceHours);
  // Per-event durations and volumes come from quantile tables: no exp/log on the hot path.
  static const LogNormalTable kSigma10(1.0);
  static const LogNormalTable kSigma11(1.1);
  static const TablePicker kDataHourPicker(kDataHours);
  static const std::vector<double> kTierCum = Cumulative(kTierShare);
  static const std::vector<double> kDeviceCum = Cumulative(kDeviceShare);

  // ---- Who they are ------------------------------------------------------------------------
  Subscriber sub;
  sub.subscriber_id = id;
  Tier tier;
  const City* city;
  Timestamp activation;
  if (acquired) {
    sub.partner_id = acquired->partner;
    sub.region = acquired->region;
    city = &Cities()[acquired->city.value() - 1];
    tier = TierOf(acquired->plan);
    sub.billing_type = BillingOf(acquired->plan);
    sub.device_type = acquired->device;
    activation = acquired->activation;
  } else {
    const Home home = HomeOf(id);
    sub.partner_id = home.partner;
    sub.region = home.region;
    city = home.city;
    tier = static_cast<Tier>(rng.Pick(kTierCum));
    sub.billing_type = rng.Bernoulli(Catalogue::PrepaidShare(sub.region, tier)) ? BillingType::kPrepaid
                                                                                 : BillingType::kPostpaid;
    sub.device_type = static_cast<DeviceType>(rng.Pick(kDeviceCum));
    double tenure_days = std::min(3650.0, rng.Exponential(700));
    activation = Timestamp{StartOfDay(o.start).micros -
                           static_cast<int64_t>(tenure_days * kMicrosPerDay) - 1};
  }
  PlanId plan = PlanIdOf(tier, sub.billing_type);
  const Country* country = FindCountry(city->country);
  sub.country = std::string(city->country);
  sub.city = std::string(city->name);
  // Home within ~10 km of the centre, rounded to ~100 m so locations are not pinpoints.
  sub.latitude = std::round((city->latitude + rng.Normal(0, 0.05)) * 1000) / 1000;
  sub.longitude = std::round((city->longitude + rng.Normal(0, 0.05)) * 1000) / 1000;
  sub.msisdn = MsisdnOf(id, *city);
  sub.imsi = std::string(country->mcc) + "01";
  PutDigits(&sub.imsi, Permute(static_cast<uint64_t>(id.value()), 10, 3'333'333'331, 987'654'321), 10);
  sub.name = std::string(kFirstNames[rng.Below(kFirstNames.size())]) + " " +
             std::string(kLastNames[rng.Below(kLastNames.size())]);
  sub.activation_date = activation.date();

  auto [tower_first, tower_last] = cat_.TowersOf(city->city_id);
  const TowerTruth& home_tower = cat_.towers()[tower_first + rng.Below(tower_last - tower_first)];
  const TowerTruth& work_tower = cat_.towers()[tower_first + rng.Below(tower_last - tower_first)];

  // Behaviour: heavy-tailed intensity, a chance of drifting away, travel habits, app use.
  const double activity = rng.LogNormal(-0.3, 0.8) * kTierActivity[int(tier)];
  const bool disengages = rng.Bernoulli(0.12);
  const int32_t disengage_start = o.start.days + static_cast<int32_t>(rng.Below(std::max(1, o.days)));
  const double disengage_tau = rng.Uniform(20, 60);
  const double trips_per_day = kTripsPerYear[int(tier)] * rng.LogNormal(0, 0.5) / 365.0;
  const bool smartphone = sub.device_type == DeviceType::kAndroid || sub.device_type == DeviceType::kIos;
  const bool app_user = smartphone || sub.device_type == DeviceType::kTablet;
  const double app_rate = app_user ? 0.5 * rng.LogNormal(0, 0.6) : 0.0;
  const bool premium_habit = rng.Bernoulli(0.15);  // occasionally votes or donates by SMS
  const int64_t habit_amount = std::array<int64_t, 4>{1000, 2000, 2500, 5000}[rng.Below(4)];
  const bool cta_treated = HashUnit(MixKeys(o.seed, 0xC7A, static_cast<uint64_t>(id.value()))) < 0.5;
  const ExperimentSpec* cta = cat_.FindExperiment("cta_recharge");

  const int cycle_day = std::min(28, CivilFromDays(sub.activation_date.days).day);
  const Date first_day{std::max(o.start.days, activation.date().days)};
  const Date end = o.end();

  // The other party of a call or SMS: an on-net number is a real subscriber of the base; off-net
  // numbers are in the home country, international ones in a popular destination abroad.
  auto counterparty_for = [&](Destination d) {
    if (d == Destination::kOnNet) {
      SubscriberId callee(1 + static_cast<int64_t>(rng.Below(o.subscribers)));
      return MsisdnOf(callee, *HomeOf(callee).city);
    }
    const Country* cc = country;
    if (d == Destination::kInternational) {
      auto dests = RoamingDestinations(sub.region);
      size_t pick = rng.Below(dests.size());
      if (dests[pick] == country->iso2) pick = (pick + 1) % dests.size();
      cc = FindCountry(dests[pick]);
    }
    std::string num = "+" + std::string(cc->dial_code);
    PutDigits(&num, 2'000'000'000ULL + rng.Below(7'000'000'000ULL), cc->national_digits);
    return num;
  };

  // ---- State -------------------------------------------------------------------------------
  uint64_t seq = 0;  // per-subscriber event counter: ids are unique by construction
  const uint64_t uid = static_cast<uint64_t>(id.value());
  const PlanVersion* pv = &cat_.PlanOn(plan, sub.region, first_day);
  BundleState bundles = BundleState::For(*pv);
  int64_t balance = static_cast<int64_t>(pv->monthly_price_minor * rng.Uniform(0.5, 1.5));
  int64_t cycle_extra = 0;     // overage + roaming + premium charges this cycle
  int64_t cycle_overage = 0;
  int64_t data_used_mb = 0;
  int32_t last_shock_day = -100000;
  int32_t last_rise_day = -100000;
  double last_rise_frac = 0;
  Window<30> drops30, complaints30;
  // Trip state.
  int32_t trip_end_day = -1;
  bool shock_trip = false;
  std::string trip_country;
  AnomalyTruth trip_truth;
  // Premium-SMS fraud state.
  int32_t fraud_end_day = -1;
  AnomalyTruth fraud_truth;
  std::string fraud_code;
  // Experiment state.
  bool cta_exposed = false, cta_converted = false;
  bool churned = false;

  // ---- Emitters ----------------------------------------------------------------------------
  UsageEvent u;
  u.subscriber_id = id;
  u.partner_id = sub.partner_id;
  NetworkEvent ne;
  ne.subscriber_id = id;
  ne.partner_id = sub.partner_id;

  auto recharge = [&](Timestamp ts, int64_t amount, RechargeChannel channel) {
    RechargeEvent r;
    r.subscriber_id = id;
    r.partner_id = sub.partner_id;
    r.amount_minor = amount;
    r.channel = channel;
    // Card payments fail now and then; the subscriber retries a little later.
    for (int attempt = 0; attempt < 3; ++attempt) {
      MakeId(&r.event_id, 'r', uid, ++seq);
      r.ts = ts;
      bool failed = rng.Bernoulli(attempt == 0 ? 0.04 : 0.10);
      r.payment_status = failed ? PaymentStatus::kFailed : PaymentStatus::kSucceeded;
      if (r.ts.date() >= end) return false;
      files_->recharge().Write(r);
      if (!failed) {
        balance += amount;
        return true;
      }
      ts = Timestamp{ts.micros + (10 + static_cast<int64_t>(rng.Below(110))) * kMicrosPerMinute};
    }
    return false;
  };
  auto top_up = [&](Timestamp ts, int64_t needed) {
    int64_t amount = habit_amount;
    while (amount < needed) amount += habit_amount;
    RechargeChannel ch = static_cast<RechargeChannel>(rng.Below(EnumCount<RechargeChannel>()));
    recharge(ts, amount, ch);
  };
  // Rates and writes the record in `u`, keeping the cycle's bill, the prepaid balance and the
  // current trip's truth up to date. Returns the charge.
  int64_t trip_charge_today = 0;
  auto rate_and_write = [&]() {
    Charge c = RateUsage(*pv, u, &bundles);
    files_->usage().Write(u);
    if (c.kind == ChargeKind::kOverage) cycle_overage += c.minor;
    if (c.kind != ChargeKind::kBundle) cycle_extra += c.minor;
    if (u.kind == UsageKind::kDataSession && !u.roaming) data_used_mb += DataMegabytes(*u.bytes);
    if (sub.billing_type == BillingType::kPrepaid) balance -= c.minor;
    if (u.roaming) {
      trip_charge_today += c.minor;
      trip_truth.start_ts = std::min(trip_truth.start_ts, u.ts);
      trip_truth.end_ts = std::max(trip_truth.end_ts, u.ts);
      trip_truth.charge_minor += c.minor;
      ++trip_truth.events;
    }
    return c.minor;
  };
  // Emits one usage record; a billing glitch now and then emits the same CDR (same session_ref)
  // a second time under a new id: a labelled double charge. Returns what the record(s) cost.
  auto emit_usage = [&]() {
    int64_t charge = rate_and_write();
    if (rng.Bernoulli(kDoubleChargeRate)) {
      AnomalyTruth t;
      t.subscriber_id = id;
      t.kind = "double_charge";
      t.start_ts = t.end_ts = u.ts;
      t.events = 1;
      t.original_event_id = u.event_id;
      MakeId(&u.event_id, 'u', uid, ++seq);
      t.event_id = u.event_id;
      t.charge_minor = rate_and_write();
      charge += t.charge_minor;
      files_->anomaly_truth().Write(t);
      ++stats_->double_charges;
    }
    return charge;
  };
  // A handover of the session in `u` from `from` to the subscriber's other usual cell, if any.
  auto maybe_handover = [&](const TowerTruth& from, int32_t duration_s, double p) {
    const TowerTruth& to = &from == &home_tower ? work_tower : home_tower;
    if (&to == &from || !rng.Bernoulli(p)) return;
    MakeId(&ne.event_id, 'n', uid, ++seq);
    ne.ts = Timestamp{u.ts.micros + static_cast<int64_t>(rng.Below(duration_s)) * kMicrosPerSecond};
    ne.kind = NetworkKind::kTowerHandover;
    ne.tower_id = from.tower.tower_id;
    ne.to_tower_id = to.tower.tower_id;
    ne.cause.reset();
    ne.session_ref = u.session_ref;
    files_->network().Write(ne);
  };

  if (acquired) {
    LifecycleEvent le;
    MakeId(&le.event_id, 'l', uid, ++seq);
    le.ts = activation;
    le.kind = LifecycleKind::kActivation;
    le.subscriber_id = id;
    le.partner_id = sub.partner_id;
    le.plan_id = plan;
    le.reason = LifecycleReason::kNew;
    files_->lifecycle().Write(le);
  }

  // ---- Day by day --------------------------------------------------------------------------
  int32_t last_day = first_day.days;
  for (Date day = first_day; day < end && !churned; day = Date{day.days + 1}) {
    last_day = day.days;
    const int di = day.days - o.start.days;
    drops30.Roll(di);
    complaints30.Roll(di);
    const int dow = Weekday(day);
    const CivilDate cd = CivilFromDays(day.days);
    const Timestamp day_start = StartOfDay(day);
    const bool activation_day = day == activation.date();

    // Price changes: a new version of the plan takes effect for everyone on it.
    const PlanVersion* today = &cat_.PlanOn(plan, sub.region, day);
    if (today != pv) {
      if (today->monthly_price_minor > pv->monthly_price_minor) {
        last_rise_day = day.days;
        last_rise_frac = static_cast<double>(today->monthly_price_minor) / pv->monthly_price_minor - 1;
      }
      pv = today;
    }

    // Billing cycle: close the old one (bill shock?), maybe change plan, renew bundles.
    if (cd.day == cycle_day && !activation_day) {
      if (cycle_extra > std::max<int64_t>(pv->monthly_price_minor, 1500)) last_shock_day = day.days;
      // Heavy overage pushes people up a tier; light use pulls a few down.
      double use = pv->data_mb > 0 ? static_cast<double>(data_used_mb) / pv->data_mb : 0;
      int t = int(tier);
      int new_t = t;
      if (t < 2 && (cycle_overage > pv->monthly_price_minor / 2 ? rng.Bernoulli(0.25) : rng.Bernoulli(0.004))) {
        new_t = t + 1;
      } else if (t > 0 && use < 0.25 && rng.Bernoulli(0.05)) {
        new_t = t - 1;
      }
      if (new_t != t) {
        PlanId from = plan;
        tier = static_cast<Tier>(new_t);
        plan = PlanIdOf(tier, sub.billing_type);
        pv = &cat_.PlanOn(plan, sub.region, day);
        LifecycleEvent le;
        MakeId(&le.event_id, 'l', uid, ++seq);
        le.ts = Timestamp{day_start.micros + static_cast<int64_t>(rng.Below(6 * 3600)) * kMicrosPerSecond};
        le.kind = LifecycleKind::kPlanChange;
        le.subscriber_id = id;
        le.partner_id = sub.partner_id;
        le.plan_id = plan;
        le.from_plan_id = from;
        le.reason = new_t > t ? LifecycleReason::kUpgrade : LifecycleReason::kDowngrade;
        files_->lifecycle().Write(le);
      }
      bundles = BundleState::For(*pv);
      cycle_extra = cycle_overage = data_used_mb = 0;
      if (sub.billing_type == BillingType::kPrepaid) {
        Timestamp ts{day_start.micros + static_cast<int64_t>(rng.Below(8 * 3600)) * kMicrosPerSecond};
        if (balance < pv->monthly_price_minor) top_up(ts, pv->monthly_price_minor - balance);
        balance -= pv->monthly_price_minor;
      }
    }

    // Intensity today.
    double usage_ratio = 1.0;
    if (disengages && day.days > disengage_start) {
      usage_ratio = std::max(0.05, std::exp(-(day.days - disengage_start) / disengage_tau));
    }
    const double act = activity * usage_ratio;

    // Travel.
    const bool roaming_today = day.days <= trip_end_day;
    if (!roaming_today && trip_end_day < day.days && rng.Bernoulli(trips_per_day)) {
      auto dests = RoamingDestinations(sub.region);
      size_t pick = rng.Below(dests.size());
      if (dests[pick] == city->country) pick = (pick + 1) % dests.size();  // never the home country
      std::string_view dest = dests[pick];
      trip_country = std::string(dest);
      trip_end_day = day.days + 1 + static_cast<int32_t>(rng.Below(13));
      shock_trip = smartphone && rng.Bernoulli(kShockTripShare);
      RoamingEvent re;
      MakeId(&re.event_id, 'm', uid, ++seq);
      // Travellers land overnight: the stay starts before the day's usage.
      re.ts = Timestamp{day_start.micros + static_cast<int64_t>(rng.Below(6 * 3600)) * kMicrosPerSecond};
      re.kind = RoamingKind::kRoamingStart;
      re.subscriber_id = id;
      re.partner_id = sub.partner_id;
      re.country = trip_country;
      files_->roaming().Write(re);
      trip_truth = AnomalyTruth{};
      trip_truth.subscriber_id = id;
      trip_truth.kind = "roaming_bill_shock";
      trip_truth.country = trip_country;
      trip_truth.start_ts = Timestamp{INT64_MAX};
    }
    const bool abroad = day.days <= trip_end_day;

    // Premium-SMS fraud starts on an infected phone.
    if (fraud_end_day < day.days && smartphone &&
        rng.Bernoulli(kPremiumFraudRate * (sub.device_type == DeviceType::kAndroid ? 3 : 0.3))) {
      fraud_end_day = day.days + 1 + static_cast<int32_t>(rng.Below(9));
      fraud_code = "88" + std::to_string(100 + rng.Below(900));
      fraud_truth = AnomalyTruth{};
      fraud_truth.subscriber_id = id;
      fraud_truth.kind = "premium_sms_fraud";
      fraud_truth.start_ts = Timestamp{INT64_MAX};
    }

    int drops_today = 0;
    trip_charge_today = 0;
    const double vday = act * kVoiceWeek[dow];
    const double dday = act * kDataWeek[dow];

    u.roaming = abroad;
    if (abroad) {
      u.tower_id.reset();
      u.roaming_country = trip_country;
    } else {
      u.roaming_country.reset();
    }

    // Voice calls.
    int64_t n_voice = rng.Poisson(2.5 * vday * (abroad ? 0.4 : 1.0));
    for (int64_t k = 0; k < n_voice; ++k) {
      u.kind = UsageKind::kVoiceCall;
      MakeId(&u.event_id, 'u', uid, ++seq);
      SessionRefOf(u.event_id, &u.session_ref);
      u.ts = AtHour(day, rng, kVoiceHourPicker);
      const TowerTruth& tw = rng.Bernoulli(0.65) ? home_tower : work_tower;
      if (!abroad) u.tower_id = tw.tower.tower_id;
      int32_t dur = static_cast<int32_t>(std::min(10800.0, kSigma10.Sample(rng.Next(), 90)));
      double r = rng.Uniform();
      u.destination = r < 0.45 ? Destination::kOnNet : r < 0.92 ? Destination::kOffNet : Destination::kInternational;
      u.counterparty = counterparty_for(*u.destination);
      u.bytes.reset();
      bool dropped = !abroad && rng.Bernoulli(tw.drop_rate);
      if (dropped) dur = 5 + static_cast<int32_t>(rng.Below(std::max(1, dur)));
      u.duration_s = dur;
      emit_usage();
      if (dropped) {
        ++drops_today;
        MakeId(&ne.event_id, 'n', uid, ++seq);
        ne.ts = Timestamp{u.ts.micros + int64_t{dur} * kMicrosPerSecond};
        ne.kind = NetworkKind::kCallDrop;
        ne.tower_id = tw.tower.tower_id;
        ne.to_tower_id.reset();
        ne.cause = static_cast<DropCause>(rng.Below(3));
        ne.session_ref = u.session_ref;
        files_->network().Write(ne);
      } else if (!abroad && dur > 120) {
        maybe_handover(tw, dur, 0.25);
      }
    }

    // SMS, including the odd premium-rate message and any fraud burst.
    int64_t n_sms = rng.Poisson(1.5 * vday * (abroad ? 0.6 : 1.0));
    bool fraud_today = day.days <= fraud_end_day;
    int64_t n_fraud = fraud_today ? 15 + rng.Below(46) : 0;
    int64_t n_premium = premium_habit && rng.Bernoulli(0.05) ? 1 : 0;
    u.duration_s.reset();
    u.bytes.reset();
    for (int64_t k = 0; k < n_sms + n_fraud + n_premium; ++k) {
      u.kind = UsageKind::kSms;
      MakeId(&u.event_id, 'u', uid, ++seq);
      SessionRefOf(u.event_id, &u.session_ref);
      bool fraud = k >= n_sms && k < n_sms + n_fraud;
      bool premium = k >= n_sms + n_fraud;
      // Malware sends at any hour, evenly; people follow the daily cycle.
      u.ts = fraud ? Timestamp{day_start.micros + static_cast<int64_t>(rng.Below(86400)) * kMicrosPerSecond}
                   : AtHour(day, rng, kVoiceHourPicker);
      if (!abroad) u.tower_id = (rng.Bernoulli(0.65) ? home_tower : work_tower).tower.tower_id;
      if (fraud || premium) {
        u.destination = Destination::kPremium;
        u.counterparty = fraud ? fraud_code : "4" + std::to_string(1000 + rng.Below(9000));
      } else {
        double r = rng.Uniform();
        u.destination = r < 0.5 ? Destination::kOnNet : r < 0.95 ? Destination::kOffNet : Destination::kInternational;
        u.counterparty = counterparty_for(*u.destination);
      }
      int64_t charge = emit_usage();
      if (fraud) {
        fraud_truth.start_ts = std::min(fraud_truth.start_ts, u.ts);
        fraud_truth.end_ts = std::max(fraud_truth.end_ts, u.ts);
        ++fraud_truth.events;
        fraud_truth.charge_minor += charge;
      }
    }

    // Data sessions. Careful travellers barely use data abroad; a shock trip uses it freely.
    double data_scale = abroad ? (shock_trip ? 0.8 : 0.05) : 1.0;
    int64_t n_data = sub.device_type != DeviceType::kFeaturePhone ? rng.Poisson(4.0 * dday * data_scale) : 0;
    u.destination.reset();
    u.counterparty.reset();
    for (int64_t k = 0; k < n_data; ++k) {
      u.kind = UsageKind::kDataSession;
      MakeId(&u.event_id, 'u', uid, ++seq);
      SessionRefOf(u.event_id, &u.session_ref);
      u.ts = AtHour(day, rng, kDataHourPicker);
      const TowerTruth& tw = rng.Bernoulli(0.6) ? home_tower : work_tower;
      if (!abroad) u.tower_id = tw.tower.tower_id;
      int32_t dur = static_cast<int32_t>(std::min(14400.0, kSigma10.Sample(rng.Next(), 600)));
      u.duration_s = dur;
      double mb = kSigma11.Sample(rng.Next(), kSessionMb[int(tier)]);
      u.bytes = static_cast<int64_t>(mb * 1e6) + 1;
      emit_usage();
      if (!abroad && dur > 300) maybe_handover(tw, dur, 0.1);
    }

    // Trip ends.
    if (abroad && day.days == trip_end_day) {
      RoamingEvent re;
      MakeId(&re.event_id, 'm', uid, ++seq);
      re.ts = Timestamp{day_start.micros + (86400 - 1 - static_cast<int64_t>(rng.Below(3600))) * kMicrosPerSecond};
      re.kind = RoamingKind::kRoamingEnd;
      re.subscriber_id = id;
      re.partner_id = sub.partner_id;
      re.country = trip_country;
      files_->roaming().Write(re);
      if (shock_trip && trip_truth.events > 0) {
        files_->anomaly_truth().Write(trip_truth);
        ++stats_->roaming_shocks;
      }
      trip_truth.events = 0;
    }
    if (fraud_today && day.days == fraud_end_day && fraud_truth.events > 0) {
      files_->anomaly_truth().Write(fraud_truth);
      ++stats_->premium_fraud;
      fraud_truth.events = 0;
    }

    // App sessions and errors; the in-app recharge CTA experiment.
    int64_t n_app = app_rate > 0 ? rng.Poisson(app_rate * std::max(usage_ratio, 0.2)) : 0;
    for (int64_t k = 0; k < n_app; ++k) {
      AppEvent a;
      MakeId(&a.event_id, 'a', uid, ++seq);
      a.ts = AtHour(day, rng, kDataHourPicker);
      a.kind = AppKind::kSession;
      a.subscriber_id = id;
      a.partner_id = sub.partner_id;
      a.region = sub.region;
      a.city = sub.city;
      a.plan_id = plan;
      a.device_type = sub.device_type;
      a.duration_s = static_cast<int32_t>(rng.LogNormal(std::log(120), 0.8));
      files_->app().Write(a);
      if (rng.Bernoulli(0.015)) {
        AppEvent err = a;
        MakeId(&err.event_id, 'a', uid, ++seq);
        err.kind = AppKind::kError;
        err.ts = Timestamp{a.ts.micros + static_cast<int64_t>(rng.Below(*a.duration_s + 1)) * kMicrosPerSecond};
        err.duration_s.reset();
        static constexpr std::array<std::string_view, 5> kCodes = {"E500", "E502", "E504", "E401", "E429"};
        err.error_code = std::string(kCodes[rng.Below(kCodes.size())]);
        files_->app().Write(err);
      }
      if (cta && !cta_exposed && sub.billing_type == BillingType::kPrepaid && cta->start <= day &&
          day < cta->end) {
        cta_exposed = true;
        ExperimentEvent x;
        MakeId(&x.event_id, 'x', uid, ++seq);
        x.ts = a.ts;
        x.kind = ExperimentKind::kExposure;
        x.experiment = cta->key;
        x.variant = cta_treated ? "treatment" : "control";
        x.unit = ExperimentUnit::kSubscriber;
        x.unit_id = id.value();
        x.partner_id = sub.partner_id;
        files_->experiment().Write(x);
      }
    }
    // Exposed subscribers may tap the CTA any day while the experiment runs.
    if (cta_exposed && !cta_converted && day < cta->end &&
        rng.Bernoulli(0.004 * (cta_treated ? 1 + cta->relative_lift : 1.0))) {
      cta_converted = true;
      Timestamp ts = AtHour(day, rng, kDataHourPicker);
      if (recharge(ts, habit_amount, RechargeChannel::kApp)) {
        ExperimentEvent x;
        MakeId(&x.event_id, 'x', uid, ++seq);
        x.ts = ts;
        x.kind = ExperimentKind::kConversion;
        x.experiment = cta->key;
        x.variant = cta_treated ? "treatment" : "control";
        x.unit = ExperimentUnit::kSubscriber;
        x.unit_id = id.value();
        x.partner_id = sub.partner_id;
        x.metric = "recharge";
        x.value_minor = habit_amount;
        files_->experiment().Write(x);
      }
    }

    // Prepaid balances below zero get topped up; some people top up on a whim.
    if (sub.billing_type == BillingType::kPrepaid) {
      if (balance < 0 || rng.Bernoulli(0.01)) {
        top_up(Timestamp{day_start.micros + (20 * 3600 + static_cast<int64_t>(rng.Below(3 * 3600))) * kMicrosPerSecond},
               std::max<int64_t>(0, -balance));
      }
    }
    // An expensive trip is a bill shock as soon as it shows on the balance or the bill.
    if (trip_charge_today > std::max<int64_t>(pv->monthly_price_minor / 2, 1000)) last_shock_day = day.days;

    // Complaints follow trouble.
    double p_complain = 0.0006 + 0.03 * drops_today + (day.days - last_shock_day < 2 ? 0.25 : 0) +
                        (fraud_today ? 0.05 : 0);
    if (rng.Bernoulli(std::min(0.9, p_complain))) {
      ComplaintEvent ce;
      MakeId(&ce.event_id, 'c', uid, ++seq);
      ce.ts = AtHour(day, rng, kVoiceHourPicker);
      ce.subscriber_id = id;
      ce.partner_id = sub.partner_id;
      ce.case_id = CaseId(static_cast<int64_t>(uid << 20 | seq));
      ce.category = drops_today ? ComplaintCategory::kNetwork
                    : day.days - last_shock_day < 2 ? (abroad ? ComplaintCategory::kRoaming : ComplaintCategory::kBilling)
                    : fraud_today ? ComplaintCategory::kBilling
                                  : static_cast<ComplaintCategory>(rng.Below(EnumCount<ComplaintCategory>()));
      ce.channel = static_cast<ComplaintChannel>(rng.Below(EnumCount<ComplaintChannel>()));
      ce.priority = ce.category == ComplaintCategory::kBilling ? Priority::kHigh
                                                                : static_cast<Priority>(rng.Below(3));
      if (rng.Bernoulli(0.9)) ce.resolution_hours = static_cast<int32_t>(1 + rng.LogNormal(std::log(20), 1.0));
      files_->complaint().Write(ce);
      complaints30.Add(di, 1);
    }
    drops30.Add(di, drops_today);

    // Churn: a proportional hazard over the signals above.
    const int32_t tenure = day.days - activation.date().days;
    struct Factor { const char* name; double log_mult; };
    std::array<Factor, 6> f = {{
        {"drops", 0.12 * std::min(drops30.sum, 15)},
        {"complaints", 0.5 * std::min(complaints30.sum, 4)},
        {"bill_shock", day.days - last_shock_day <= 60 ? std::log(2.5) : 0.0},
        {"price_rise", day.days - last_rise_day <= 60 ? 4.0 * last_rise_frac : 0.0},
        {"falling_usage", 2.0 * (1 - usage_ratio)},
        {"early_tenure", tenure < 90 ? std::log(1.8) : tenure < 365 ? std::log(1.2) : 0.0},
    }};
    double log_h = std::log(kBaseHazard * kTierChurn[int(tier)] *
                            (sub.billing_type == BillingType::kPrepaid ? 1.4 : 0.7));
    const Factor* top = nullptr;
    for (const auto& x : f) {
      log_h += x.log_mult;
      if (x.log_mult > 0.05 && (!top || x.log_mult > top->log_mult)) top = &x;
    }
    if (day.days + 1 < end.days && !activation_day && rng.Bernoulli(std::min(0.5, std::exp(log_h)))) {
      churned = true;
      LifecycleEvent le;
      MakeId(&le.event_id, 'l', uid, ++seq);
      // Next morning, after anything still running from today (late calls, payment retries).
      le.ts = Timestamp{StartOfDay(Date{day.days + 1}).micros +
                        (6 * 3600 + static_cast<int64_t>(rng.Below(6 * 3600))) * kMicrosPerSecond};
      le.kind = LifecycleKind::kDeactivation;
      le.subscriber_id = id;
      le.partner_id = sub.partner_id;
      le.plan_id = plan;
      le.reason = sub.billing_type == BillingType::kPrepaid && balance < 0 ? LifecycleReason::kNonPayment
                  : rng.Bernoulli(0.25) ? LifecycleReason::kPortOut
                                        : LifecycleReason::kVoluntary;
      files_->lifecycle().Write(le);
      ChurnTruth ct;
      ct.subscriber_id = id;
      ct.churn_ts = le.ts;
      ct.reason = le.reason;
      ct.hazard_multiplier = std::round(std::exp(log_h) / kBaseHazard * 1000) / 1000;
      ct.main_driver = top ? top->name : "baseline";
      ct.drops_30d = drops30.sum;
      ct.complaints_30d = complaints30.sum;
      ct.bill_shock_60d = day.days - last_shock_day <= 60;
      ct.price_rise_60d = day.days - last_rise_day <= 60;
      ct.usage_ratio = std::round(usage_ratio * 1000) / 1000;
      ct.tenure_days = tenure + 1;
      files_->churn_truth().Write(ct);
      sub.status = SubscriberStatus::kChurned;
      sub.status_date = le.ts.date();
    }
  }

  // A shock trip or fraud burst cut short by churn or by the end of the data is still reported,
  // with what happened so far.
  if (trip_end_day >= last_day && shock_trip && trip_truth.events > 0) {
    files_->anomaly_truth().Write(trip_truth);
    ++stats_->roaming_shocks;
  }
  if (fraud_end_day >= last_day && fraud_truth.events > 0) {
    files_->anomaly_truth().Write(fraud_truth);
    ++stats_->premium_fraud;
  }
  sub.plan_id = plan;
  files_->subscribers().Write(sub);
}

}  // namespace tally
