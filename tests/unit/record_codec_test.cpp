// Schemas round-trip: every record encodes to CSV and NDJSON and decodes back equal, and bad
// input is rejected with a message that names the field.

#include <gtest/gtest.h>

#include "model/events.h"
#include "model/partner.h"
#include "model/plan.h"
#include "model/record_json.h"
#include "model/subscriber.h"

namespace tally {
namespace {

template <typename Rec>
void ExpectRoundTrip(const Rec& rec) {
  TextBuffer csv;
  WriteCsvHeader<Rec>(csv);
  size_t header_end = csv.size();
  WriteCsvRow(csv, rec);
  std::string header(csv.view().substr(0, header_end - 1));
  std::string row(csv.view().substr(header_end, csv.size() - header_end - 1));
  CsvRecordReader<Rec> reader;
  ASSERT_TRUE(reader.ReadHeader(header).ok());
  auto back = reader.Parse(row);
  ASSERT_TRUE(back.ok()) << back.status().ToString() << "\n" << row;
  EXPECT_TRUE(*back == rec) << row;

  TextBuffer json;
  WriteJsonRow(json, rec);
  std::string line(json.view().substr(0, json.size() - 1));
  JsonRecordReader<Rec> jr;
  auto jback = jr.Parse(line);
  ASSERT_TRUE(jback.ok()) << jback.status().ToString() << "\n" << line;
  EXPECT_TRUE(*jback == rec) << line;
}

UsageEvent SampleUsage() {
  UsageEvent u;
  u.event_id = "u1x2";
  u.ts = *ParseTimestamp("2024-07-01T12:34:56Z");
  u.kind = UsageKind::kVoiceCall;
  u.subscriber_id = SubscriberId(17);
  u.partner_id = PartnerId(0);
  u.tower_id = TowerId(3);
  u.duration_s = 95;
  u.counterparty = "+12125550123";
  u.destination = Destination::kOffNet;
  u.session_ref = "s1x2";
  return u;
}

TEST(RecordCodec, EveryFamilyRoundTripsWithAndWithoutNulls) {
  UsageEvent u = SampleUsage();
  ExpectRoundTrip(u);
  u.kind = UsageKind::kDataSession;
  u.counterparty.reset();
  u.destination.reset();
  u.tower_id.reset();
  u.bytes = 123456789;
  u.roaming = true;
  u.roaming_country = "FR";
  ExpectRoundTrip(u);

  RechargeEvent r;
  r.event_id = "r9";
  r.ts = Timestamp::FromSeconds(1719800000);
  r.subscriber_id = SubscriberId(1);
  r.partner_id = PartnerId(2);
  r.amount_minor = 2000;
  r.currency = *Currency::Parse("EUR");
  r.payment_status = PaymentStatus::kFailed;
  ExpectRoundTrip(r);

  LifecycleEvent l;
  l.event_id = "l1";
  l.ts = Timestamp::FromSeconds(1719800000);
  l.kind = LifecycleKind::kPlanChange;
  l.subscriber_id = SubscriberId(5);
  l.partner_id = PartnerId(1);
  l.plan_id = PlanId(3);
  l.from_plan_id = PlanId(1);
  l.reason = LifecycleReason::kUpgrade;
  ExpectRoundTrip(l);

  NetworkEvent n;
  n.event_id = "n1";
  n.ts = Timestamp::FromSeconds(1719800001);
  n.kind = NetworkKind::kCallDrop;
  n.subscriber_id = SubscriberId(5);
  n.partner_id = PartnerId(0);
  n.tower_id = TowerId(8);
  n.cause = DropCause::kCongestion;
  n.session_ref = "s5x1";
  ExpectRoundTrip(n);

  RoamingEvent m{"m1", Timestamp::FromSeconds(1719800002), RoamingKind::kRoamingEnd, SubscriberId(5),
                 PartnerId(0), "JP"};
  ExpectRoundTrip(m);

  ComplaintEvent c;
  c.event_id = "c1";
  c.ts = Timestamp::FromSeconds(1719800003);
  c.subscriber_id = SubscriberId(5);
  c.partner_id = PartnerId(0);
  c.case_id = CaseId(99);
  c.resolution_hours = 12;
  ExpectRoundTrip(c);

  AppEvent a;
  a.event_id = "v1x3";
  a.ts = Timestamp::FromSeconds(1719800004);
  a.kind = AppKind::kPaidConversion;
  a.visitor_id = VisitorId(1);
  a.subscriber_id = SubscriberId(6001);
  a.partner_id = PartnerId(3);
  a.region = Region::kLatam;
  a.city = "Sao Paulo";
  a.plan_id = PlanId(4);
  a.amount_minor = 2699;
  a.currency = Currency();
  ExpectRoundTrip(a);

  ExperimentEvent x;
  x.event_id = "x1";
  x.ts = Timestamp::FromSeconds(1719800005);
  x.kind = ExperimentKind::kConversion;
  x.experiment = "button_colour";
  x.variant = "treatment";
  x.unit_id = 42;
  x.partner_id = PartnerId(0);
  x.metric = "signup";
  ExpectRoundTrip(x);
}

TEST(RecordCodec, ReferenceTablesRoundTripIncludingQuotedText) {
  Partner p{PartnerId(0), "Tally \"Mobile\", Inc.", PartnerKind::kOwnBrand, Region::kEurope,
            Date{DaysFromCivil(2005, 1, 1)}, 0.25};
  ExpectRoundTrip(p);
  PlanVersion v;
  v.plan_id = PlanId(1);
  v.name = "Basic Prepaid";
  v.data_mb = kUnlimited;
  v.effective_from = Date{DaysFromCivil(2024, 1, 1)};
  v.effective_to = Date{DaysFromCivil(2024, 3, 1)};
  ExpectRoundTrip(v);
  Subscriber s;
  s.subscriber_id = SubscriberId(1);
  s.msisdn = "+12125550123";
  s.imsi = "310011234567890";
  s.name = "Ava O'Brien";
  s.partner_id = PartnerId(0);
  s.plan_id = PlanId(2);
  s.country = "US";
  s.city = "New York";
  s.latitude = 40.713;
  s.longitude = -74.006;
  s.activation_date = Date{DaysFromCivil(2020, 5, 17)};
  s.status = SubscriberStatus::kChurned;
  s.status_date = Date{DaysFromCivil(2024, 9, 2)};
  ExpectRoundTrip(s);
}

Status CsvError(const std::string& header, const std::string& row) {
  CsvRecordReader<UsageEvent> r;
  Status h = r.ReadHeader(header);
  if (!h.ok()) return h;
  auto rec = r.Parse(row);
  return rec.ok() ? Status::Ok() : rec.status();
}

const char* kHeader =
    "event_id,ts,kind,subscriber_id,partner_id,tower_id,duration_s,bytes,counterparty,destination,"
    "roaming,roaming_country,session_ref";

TEST(RecordCodec, CsvErrorsNameTheField) {
  auto msg = [](const Status& s) { return s.message(); };
  EXPECT_NE(msg(CsvError(kHeader, "u1,2024-07-01T00:00:00Z,voice_call,abc,0,1,5,,,,false,,s1")).find("subscriber_id"),
            std::string::npos);
  Status bad_enum = CsvError(kHeader, "u1,2024-07-01T00:00:00Z,hologram_call,1,0,1,5,,,,false,,s1");
  EXPECT_NE(msg(bad_enum).find("field 'kind'"), std::string::npos) << msg(bad_enum);
  EXPECT_NE(msg(bad_enum).find("voice_call"), std::string::npos) << "lists the accepted values";
  EXPECT_NE(msg(CsvError(kHeader, "u1,2024-13-01T00:00:00Z,sms,1,0,1,,,,,false,,s1")).find("field 'ts'"),
            std::string::npos);
  EXPECT_NE(msg(CsvError(kHeader, "u1,,sms,1,0,1,,,,,false,,s1")).find("'ts' is required"), std::string::npos);
  EXPECT_NE(msg(CsvError(kHeader, "u1,2024-07-01T00:00:00Z,sms,1,0")).find("expected 13 fields, found 5"),
            std::string::npos);
  EXPECT_NE(msg(CsvError(kHeader, "u1,\"2024-07-01T00:00:00Z,sms,1,0,1,,,,,false,,s1")).find("unterminated"),
            std::string::npos);
  EXPECT_NE(msg(CsvError(std::string(kHeader) + ",extra", "")).find("unknown column 'extra'"), std::string::npos);
  EXPECT_NE(msg(CsvError("event_id,ts", "")).find("required column 'kind'"), std::string::npos);
  EXPECT_NE(msg(CsvError(kHeader, "u1,2024-07-01T00:00:00Z,sms,1,0,99999999999999999999,,,,,false,,s1"))
                .find("out of range"),
            std::string::npos);
}

TEST(RecordCodec, CsvColumnsMayComeInAnyOrder) {
  CsvRecordReader<RoamingEvent> r;
  ASSERT_TRUE(r.ReadHeader("country,kind,event_id,ts,subscriber_id,partner_id").ok());
  auto rec = r.Parse("ES,roaming_start,m1,2024-07-01T00:00:00Z,5,0");
  ASSERT_TRUE(rec.ok()) << rec.status().ToString();
  EXPECT_EQ(rec->country, "ES");
  EXPECT_EQ(rec->subscriber_id, SubscriberId(5));
}

TEST(RecordCodec, JsonErrorsNameTheField) {
  JsonRecordReader<RoamingEvent> r;
  auto wrong_type = r.Parse(R"({"event_id":"m1","ts":"2024-07-01T00:00:00Z","kind":"roaming_start","subscriber_id":"5","partner_id":0,"country":"ES"})");
  ASSERT_FALSE(wrong_type.ok());
  EXPECT_NE(wrong_type.status().message().find("field 'subscriber_id': expected a JSON number"), std::string::npos)
      << wrong_type.status().message();
  auto missing = r.Parse(R"({"event_id":"m1","kind":"roaming_start","subscriber_id":5,"partner_id":0,"country":"ES"})");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("'ts' is required"), std::string::npos);
  auto unknown = r.Parse(R"({"event_id":"m1","bogus":1})");
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("unknown field 'bogus'"), std::string::npos);
  EXPECT_FALSE(r.Parse(R"({"event_id":"m1","ts":"2024-07-01T00:00:00Z")").ok());
  EXPECT_FALSE(r.Parse("[1,2]").ok());
  EXPECT_FALSE(r.Parse(R"({"event_id":"m1"} trailing)").ok());
  auto negative_id = r.Parse(R"({"event_id":"m1","ts":"2024-07-01T00:00:00Z","kind":"roaming_start","subscriber_id":-4,"partner_id":0,"country":"ES"})");
  ASSERT_FALSE(negative_id.ok());
  EXPECT_NE(negative_id.status().message().find("subscriber_id"), std::string::npos);
}

TEST(RecordCodec, JsonNullIsNullForOptionalFields) {
  JsonRecordReader<NetworkEvent> r;
  auto rec = r.Parse(R"({"event_id":"n1","ts":"2024-07-01T00:00:00Z","kind":"call_drop","subscriber_id":5,"partner_id":0,"tower_id":3,"to_tower_id":null,"cause":"congestion","session_ref":"s"})");
  ASSERT_TRUE(rec.ok()) << rec.status().ToString();
  EXPECT_FALSE(rec->to_tower_id.has_value());
  EXPECT_EQ(rec->cause, DropCause::kCongestion);
}

}  // namespace
}  // namespace tally
