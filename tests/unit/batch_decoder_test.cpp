// Decoding and validation of request bodies: line numbers, the field at fault and the check it
// failed, for every kind of bad line; and the dedup index's exactness under memory pressure.

#include <gtest/gtest.h>

#include "ingest/batch_decoder.h"
#include "ingest/dedup_index.h"
#include "ingest/row_validator.h"
#include "store_fixture.h"

namespace tally::testing {
namespace {

const std::string kHeader = "event_id,ts,subscriber_id,partner_id,amount_minor,currency,channel,payment_status";

DecodedBatch<RechargeEvent> DecodeCsv(const std::string& body, DecodeOptions o = {}) {
  BatchDecoder<RechargeEvent> d;
  DecodedBatch<RechargeEvent> b;
  Status st = d.Decode(BodyFormat::kCsv, body, o, &b);
  EXPECT_TRUE(st.ok()) << st.ToString();
  return b;
}

TEST(BatchDecoder, LineNumbersCountTheHeaderBlankLinesAndCrlf) {
  auto b = DecodeCsv(kHeader + "\r\n" + "r1,2024-07-01T00:00:00Z,1,0,100,USD,app,succeeded\r\n\r\n" +
                     "r2,2024-07-01T00:00:00Z,1,0,100,USD,app,succeeded\n" +
                     "r3,2024-07-01T00:00:00Z,1,0,100,USD,app,succeeded");  // no final newline
  ASSERT_EQ(b.rows.size(), 3u);
  EXPECT_EQ(b.lines, (std::vector<int64_t>{2, 4, 5}));
  EXPECT_EQ(b.read, 3);
  EXPECT_EQ(b.rows[0].event_id, "r1");
}

TEST(BatchDecoder, EveryBadLineIsRejectedWithFieldCheckAndRaw) {
  const std::string body = kHeader + "\n" +
                           "ok1,2024-07-01T00:00:00Z,1,0,100,USD,app,succeeded\n" +
                           "b1,2024-07-01T00:00:00Z,one,0,100,USD,app,succeeded\n" +       // type
                           "b2,2024-07-01T00:00:00Z,1,0,100,USD,fax,succeeded\n" +         // enum
                           "b3,,1,0,100,USD,app,succeeded\n" +                             // not null
                           "b4,2024-07-01T00:00:00Z,1,0,100,USD,app\n" +                   // columns
                           "b5,2024-07-01T00:00:00Z,1,0,\"100,USD,app,succeeded\n" +       // quote
                           "b6\xC3\x28,2024-07-01T00:00:00Z,1,0,100,USD,app,succeeded\n" +  // UTF-8
                           "b7,2024-13-01T00:00:00Z,1,0,100,USD,app,succeeded\n" +         // time
                           "ok2,2024-07-01T00:00:00Z,1,0,100,USD,app,succeeded\n";
  auto b = DecodeCsv(body);
  ASSERT_EQ(b.rows.size(), 2u);
  EXPECT_EQ(b.lines, (std::vector<int64_t>{2, 10}));
  ASSERT_EQ(b.rejects.size(), 7u);
  struct Want {
    int64_t line;
    const char* field;
    const char* check;
  };
  const Want want[] = {{3, "subscriber_id", "type"}, {4, "channel", "accepted_values"}, {5, "ts", "not_null"},
                       {6, "", "format"},           {7, "", "format"},                 {8, "", "encoding"},
                       {9, "ts", "type"}};
  for (size_t i = 0; i < 7; ++i) {
    EXPECT_EQ(b.rejects[i].line, want[i].line) << i;
    EXPECT_EQ(b.rejects[i].field, want[i].field) << b.rejects[i].reason;
    EXPECT_EQ(b.rejects[i].check, want[i].check) << b.rejects[i].reason;
    EXPECT_FALSE(b.rejects[i].reason.empty());
  }
  EXPECT_EQ(b.rejects[0].raw, "b1,2024-07-01T00:00:00Z,one,0,100,USD,app,succeeded");
  EXPECT_EQ(b.read, 9);
}

TEST(BatchDecoder, OverlongLinesAreRejectedAndTheirRawTextIsCut) {
  DecodeOptions o;
  o.max_line_bytes = 1000;
  const std::string body = kHeader + "\n" + std::string(5000, 'x') + "\n" +
                           "ok,2024-07-01T00:00:00Z,1,0,100,USD,app,succeeded\n";
  auto b = DecodeCsv(body, o);
  ASSERT_EQ(b.rejects.size(), 1u);
  EXPECT_EQ(b.rejects[0].check, "length");
  EXPECT_EQ(b.rejects[0].line, 2);
  EXPECT_EQ(b.rows.size(), 1u);
  o.max_line_bytes = size_t{1} << 20;
  auto huge = DecodeCsv(kHeader + "\n" + std::string((1 << 20) + 10, 'y') + "\n", o);
  ASSERT_EQ(huge.rejects.size(), 1u);
  EXPECT_TRUE(huge.rejects[0].raw_truncated);
  EXPECT_EQ(huge.rejects[0].raw.size(), kMaxRawBytes);
}

TEST(BatchDecoder, ChunksCarryTheHeaderAndTheirFirstLineNumber) {
  DecodeOptions o;
  o.csv_header = kHeader;
  o.first_line = 101;
  auto b = DecodeCsv("r,2024-07-01T00:00:00Z,1,0,100,USD,app,succeeded\nbad\n", o);
  ASSERT_EQ(b.rows.size(), 1u);
  EXPECT_EQ(b.lines[0], 101);
  ASSERT_EQ(b.rejects.size(), 1u);
  EXPECT_EQ(b.rejects[0].line, 102);
}

TEST(BatchDecoder, UnusableHeadersFailTheWholeBodyNamingTheColumn) {
  BatchDecoder<RechargeEvent> d;
  DecodedBatch<RechargeEvent> b;
  Status st = d.Decode(BodyFormat::kCsv, "event_id,ts,mood\n", {}, &b);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("unknown column 'mood'"), std::string::npos) << st.message();
  st = d.Decode(BodyFormat::kCsv, "event_id,ts\n", {}, &b);
  EXPECT_NE(st.message().find("required column 'subscriber_id' is missing"), std::string::npos) << st.message();
  st = d.Decode(BodyFormat::kCsv, "", {}, &b);
  EXPECT_FALSE(st.ok());
}

TEST(BatchDecoder, JsonErrorsNameTheField) {
  BatchDecoder<UsageEvent> d;
  DecodedBatch<UsageEvent> b;
  ASSERT_TRUE(d.Decode(BodyFormat::kNdjson,
                       "{\"event_id\":\"a\",\"ts\":\"2024-07-01T00:00:00Z\",\"kind\":\"sms\",\"subscriber_id\":\"7\"}\n"
                       "{\"event_id\":\"a\",\"ts\":\"2024-07-01T00:00:00Z\",\"kind\":\"sms\",\"subscriber_id\":7,"
                       "\"partner_id\":0,\"roaming\":false,\"session_ref\":\"s\",\"colour\":1}\n"
                       "[1,2]\n",
                       {}, &b)
                  .ok());
  ASSERT_EQ(b.rejects.size(), 3u);
  EXPECT_EQ(b.rejects[0].field, "subscriber_id");
  EXPECT_EQ(b.rejects[0].check, "type");
  EXPECT_EQ(b.rejects[1].check, "format");
  EXPECT_NE(b.rejects[1].reason.find("unknown field 'colour'"), std::string::npos);
  EXPECT_EQ(b.rejects[2].check, "format");
}

TEST(RowValidator, RangesTimesAndSubscribers) {
  SubscriberDirectory dir;
  Subscriber s;
  s.subscriber_id = SubscriberId(5);
  s.partner_id = PartnerId(2);
  dir.Upsert(s);
  const Timestamp now = StartOfDay(Date{DaysFromCivil(2025, 1, 1)});
  ValidationOptions vo;
  RowValidator flag(vo, now, &dir);
  vo.unknown_subscribers = UnknownSubscriberPolicy::kReject;
  RowValidator reject(vo, now, &dir);
  UsageEvent e;
  e.event_id = "e";
  e.ts = StartOfDay(Date{DaysFromCivil(2024, 12, 31)});
  e.subscriber_id = SubscriberId(5);
  e.partner_id = PartnerId(2);
  EXPECT_TRUE(flag.Check(e).ok);
  e.partner_id = PartnerId(3);
  RowVerdict v = flag.Check(e);
  EXPECT_FALSE(v.ok) << "a partner mismatch would leak rows to the wrong tenant";
  EXPECT_EQ(v.field, "partner_id");
  e.partner_id = PartnerId(2);
  e.duration_s = -4;
  EXPECT_EQ(flag.Check(e).field, "duration_s");
  e.duration_s = 4;
  e.ts = Timestamp{now.micros + 2 * kMicrosPerDay};
  EXPECT_EQ(flag.Check(e).field, "ts");
  e.ts = now;
  e.subscriber_id = SubscriberId(99);
  v = flag.Check(e);
  EXPECT_TRUE(v.ok);
  EXPECT_TRUE(v.unknown_subscriber);
  v = reject.Check(e);
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.check, "relationships");
  e.event_id = std::string(200, 'i');
  EXPECT_EQ(flag.Check(e).check, "length");
}

TEST(FingerprintSet, FindsWhatWasInsertedAcrossGrowth) {
  FingerprintSet set;
  for (int i = 0; i < 100000; ++i) EXPECT_TRUE(set.Insert(FingerprintOf("id" + std::to_string(i))));
  for (int i = 0; i < 100000; ++i) EXPECT_FALSE(set.Insert(FingerprintOf("id" + std::to_string(i))));
  EXPECT_FALSE(set.Contains(FingerprintOf("id100000")));
  EXPECT_EQ(set.size(), 100000u);
}

// With a budget far too small to hold the old days, evicted days are rebuilt from the store and
// dedup stays exact.
TEST(DedupIndex, StaysExactWhenItsMemoryBudgetEvictsDays) {
  const std::string dir = TempDir("dedup_budget");
  PipelineOptions po;
  po.dedup.memory_budget_bytes = 1;  // every day outside the window is evicted after each batch
  po.dedup.window_micros = kMicrosPerDay;
  StoreFixture s(dir, po);
  auto line = [](int day, int i) {
    return "{\"event_id\":\"d" + std::to_string(day) + "-" + std::to_string(i) + "\",\"ts\":\"2024-07-" +
           (day < 10 ? "0" : "") + std::to_string(day) +
           "T01:00:00Z\",\"kind\":\"sms\",\"subscriber_id\":1,\"partner_id\":0,\"roaming\":false,\"session_ref\":\"s\"}\n";
  };
  std::string all;
  for (int day = 1; day <= 20; ++day) {
    for (int i = 0; i < 50; ++i) all += line(day, i);
  }
  auto first = s.Ingest(EventFamily::kUsage, BodyFormat::kNdjson, all);
  EXPECT_EQ(first.ack.counts.accepted, 1000);
  for (int day = 1; day <= 20; day += 3) {
    auto again = s.Ingest(EventFamily::kUsage, BodyFormat::kNdjson, line(day, 7) + line(day, 70));
    EXPECT_EQ(again.ack.counts.duplicate, 1) << day;
    EXPECT_EQ(again.ack.counts.accepted + again.ack.counts.late, 1) << day;
    EXPECT_EQ(again.ack.counts.late, day < 19 ? 1 : 0) << "window is one day before 2024-07-20";
  }
  EXPECT_EQ(s.Rows(EventFamily::kUsage), 1007);
  EXPECT_LT(s.pipeline().dedup_memory_bytes(), size_t{1} << 20);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace tally::testing
