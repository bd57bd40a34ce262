#include "ingest/quality_report.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <random>

#include "core/text_buffer.h"
#include "core/utf8.h"

namespace tally {

void QualityReport::AddRejects(const std::vector<RejectedRow>& rejects) {
  for (const RejectedRow& r : rejects) {
    ++rejected_by[{r.check, r.field}];
    if (samples.size() < kMaxSamples) {
      RejectedRow s = r;
      if (s.raw.size() > 256) {
        s.raw.resize(256);
        s.raw_truncated = true;
      }
      samples.push_back(std::move(s));
    }
  }
}

void QualityReport::Merge(const QualityReport& o) {
  counts += o.counts;
  unknown_subscribers_flagged += o.unknown_subscribers_flagged;
  for (const auto& [k, v] : o.rejected_by) rejected_by[k] += v;
  for (const RejectedRow& r : o.samples) {
    if (samples.size() < kMaxSamples) samples.push_back(r);
  }
  if (o.started.micros && (!started.micros || o.started < started)) started = o.started;
  if (o.finished > finished) finished = o.finished;
}

std::vector<QualityCheck> QualityReport::Checks() const {
  std::vector<QualityCheck> out;
  auto failures_of = [&](const std::string& check) {
    std::vector<std::pair<std::string, int64_t>> f;
    for (const auto& [k, v] : rejected_by) {
      if (k.first == check) f.push_back({k.second, v});
    }
    return f;
  };
  auto add_check = [&](const std::string& name, const std::string& all_pass_detail) {
    auto f = failures_of(name);
    if (f.empty()) {
      out.push_back({name, "", "pass", 0, all_pass_detail});
    }
    for (const auto& [field, n] : f) out.push_back({name, field, "fail", n, "rows rejected"});
  };
  add_check("format", "every line parsed");
  add_check("encoding", "every line is valid UTF-8");
  add_check("length", "no line or id over its limit");
  add_check("type", "every value has its field's type");
  add_check("not_null", "every required field present");
  add_check("accepted_values", "every enum value known");
  add_check("range", "times, durations and amounts in range");
  {
    QualityCheck u{"unique", "event_id", counts.duplicate ? "warn" : "pass", counts.duplicate,
                   counts.duplicate ? "duplicate rows dropped; stored rows are unique" : "no duplicates"};
    out.push_back(u);
  }
  {
    int64_t rejected = 0;
    for (const auto& [field, n] : failures_of("relationships")) rejected += n;
    const int64_t n = rejected + unknown_subscribers_flagged;
    std::string detail = n == 0 ? "every event's subscriber and partner are known"
                                : std::to_string(rejected) + " rejected, " +
                                      std::to_string(unknown_subscribers_flagged) + " stored and flagged";
    out.push_back({"relationships", "subscriber_id", n ? "fail" : "pass", n, detail});
  }
  const int64_t sum = counts.accepted + counts.late + counts.duplicate + counts.rejected;
  out.push_back({"reconciliation", "", sum == counts.read ? "pass" : "fail", counts.read - sum,
                 "read " + std::to_string(counts.read) + " = accepted " + std::to_string(counts.accepted) +
                     " + late " + std::to_string(counts.late) + " + duplicate " + std::to_string(counts.duplicate) +
                     " + rejected " + std::to_string(counts.rejected)});
  return out;
}

bool QualityReport::passed() const {
  for (const QualityCheck& c : Checks()) {
    if (c.status == "fail") return false;
  }
  return true;
}

std::string QualityReport::ToJson() const {
  TextBuffer out(4096);
  auto key = [&](std::string_view k) {
    out.PutJsonString(k);
    out.Put(":");
  };
  out.Put("{");
  key("load_id");
  out.PutJsonString(load_id);
  out.Put(",");
  key("source");
  out.PutJsonString(source);
  out.Put(",");
  key("table");
  out.PutJsonString(table);
  out.Put(",");
  key("started");
  out.PutJsonString(FormatTimestamp(started));
  out.Put(",");
  key("finished");
  out.PutJsonString(FormatTimestamp(finished));
  out.Put(",");
  key("counts");
  out.Put("{\"read\":");
  out.PutInt(counts.read);
  out.Put(",\"accepted\":");
  out.PutInt(counts.accepted);
  out.Put(",\"late\":");
  out.PutInt(counts.late);
  out.Put(",\"duplicate\":");
  out.PutInt(counts.duplicate);
  out.Put(",\"rejected\":");
  out.PutInt(counts.rejected);
  out.Put(",\"unknown_subscribers_flagged\":");
  out.PutInt(unknown_subscribers_flagged);
  out.Put("},");
  key("passed");
  out.Put(passed() ? "true" : "false");
  out.Put(",");
  key("checks");
  out.Put("[");
  bool first = true;
  for (const QualityCheck& c : Checks()) {
    if (!first) out.Put(",");
    first = false;
    out.Put("{\"name\":");
    out.PutJsonString(c.name);
    out.Put(",\"field\":");
    out.PutJsonString(c.field);
    out.Put(",\"status\":");
    out.PutJsonString(c.status);
    out.Put(",\"failures\":");
    out.PutInt(c.failures);
    out.Put(",\"detail\":");
    out.PutJsonString(c.detail);
    out.Put("}");
  }
  out.Put("],");
  key("rejected_samples");
  out.Put("[");
  first = true;
  for (const RejectedRow& r : samples) {
    if (!first) out.Put(",");
    first = false;
    out.Put("{\"line\":");
    out.PutInt(r.line);
    out.Put(",\"field\":");
    out.PutJsonString(r.field);
    out.Put(",\"check\":");
    out.PutJsonString(r.check);
    out.Put(",\"reason\":");
    out.PutJsonString(ValidUtf8OrEscaped(r.reason));
    out.Put("}");
  }
  out.Put("],");
  key("quarantine_file");
  out.PutJsonString(quarantine_file);
  out.Put("}");
  return std::string(out.view());
}

std::string QualityReport::ToText() const {
  const std::vector<QualityCheck> checks = Checks();
  int failed = 0, warned = 0;
  for (const QualityCheck& c : checks) {
    failed += c.status == "fail";
    warned += c.status == "warn";
  }
  std::string s = (failed ? "FAIL " : warned ? "WARN " : "ok   ") + table + "  " + source + ": read " +
                  std::to_string(counts.read) + ", accepted " + std::to_string(counts.accepted) + ", late " +
                  std::to_string(counts.late) + ", duplicate " + std::to_string(counts.duplicate) + ", rejected " +
                  std::to_string(counts.rejected) + "  (load " + load_id + ")\n";
  for (const QualityCheck& c : checks) {
    if (c.status == "pass") continue;
    char line[512];
    std::snprintf(line, sizeof line, "       %-4s %-16s %-16s %8lld  %s\n", c.status.c_str(), c.name.c_str(),
                  c.field.c_str(), static_cast<long long>(c.failures), c.detail.c_str());
    s += line;
  }
  for (const RejectedRow& r : samples) {
    s += "       line " + std::to_string(r.line) + (r.field.empty() ? "" : " field " + r.field) + ": " +
         ValidUtf8OrEscaped(r.reason).substr(0, 200) + "\n";
  }
  if (!quarantine_file.empty()) s += "       rejected rows copied to " + quarantine_file + "\n";
  return s;
}

LoadRecord QualityReport::ToRecord() const {
  LoadRecord r;
  r.load_id = load_id;
  r.source = source;
  r.started = started;
  r.finished = finished;
  r.family = table;
  r.read = counts.read;
  r.accepted = counts.accepted;
  r.late = counts.late;
  r.duplicate = counts.duplicate;
  r.rejected = counts.rejected;
  r.passed = passed();
  r.report_json = ToJson();
  return r;
}

std::string NewLoadId() {
  static std::atomic<uint64_t> counter{0};
  static const uint32_t salt = std::random_device{}();
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  const int64_t micros = std::chrono::duration_cast<std::chrono::microseconds>(now).count();
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s-%08x-%06llu", FormatTimestamp(Timestamp{micros - micros % kMicrosPerSecond}).c_str(),
                salt, static_cast<unsigned long long>(counter.fetch_add(1) % 1000000));
  std::string id = buf;
  for (char& c : id) {
    if (c == ':') c = '-';
  }
  return id;
}

}  // namespace tally
