#pragma once
// Template part of DirtyInjector (included from output.h).

#include <string>
#include <concepts>
#include <type_traits>

namespace tally {

//! Column index of field `name` in Rec, or -1.
template <typename Rec>
int FieldIndex(std::string_view name) {
  int i = 0, found = -1;
  ForEachField<Rec>([&](const auto& f) {
    if (f.name == name) found = i;
    ++i;
  });
  return found;
}

template <typename Rec>
void DirtyInjector::AfterRow(const Rec& rec, std::string_view clean, LineFile* file,
                             const std::string& rel_path) {
  if (recent_.size() < 64) {
    recent_.emplace_back(clean);
  } else {
    recent_[rng_.Below(64)].assign(clean);
  }
  if (!rng_.Bernoulli(fraction_)) return;

  constexpr bool kHasDuration = requires(Rec r) { r.duration_s.reset(); };
  constexpr bool kHasSubscriber = requires(Rec r) {
    { r.subscriber_id } -> std::same_as<SubscriberId&>;
  };
  Defect d = PickDefect(kHasDuration, kHasSubscriber);
  if (d == Defect::kOverlongLine) {
    if (overlong_done_) d = Defect::kDuplicate;
    overlong_done_ = true;
  }

  TextBuffer tmp(256);
  auto encode = [&](const Rec& r) {
    tmp.Clear();
    if (format_ == OutputFormat::kNdjson) WriteJsonRow(tmp, r); else WriteCsvRow(tmp, r);
    return std::string(tmp.view());
  };
  Rec copy = rec;
  copy.event_id += "-d" + std::to_string(++serial_);
  std::string text;
  std::string source_id = rec.event_id;
  switch (d) {
    case Defect::kDuplicate: {
      // Redeliver one of the recent clean rows, byte for byte.
      text = recent_[rng_.Below(recent_.size())];
      // Its event id: the first CSV column, or the "event_id" JSON member.
      if (format_ == OutputFormat::kNdjson) {
        size_t p = text.find("\"event_id\":\"");
        size_t q = p == std::string::npos ? p : text.find('"', p + 12);
        source_id = p == std::string::npos ? "" : text.substr(p + 12, q - p - 12);
      } else {
        source_id = text.substr(0, text.find(','));
      }
      break;
    }
    case Defect::kFutureTimestamp:
      copy.ts = Timestamp{copy.ts.micros + 75LL * 365 * kMicrosPerDay};
      text = encode(copy);
      break;
    case Defect::kNegativeDuration:
      if constexpr (kHasDuration) copy.duration_s = -1 - static_cast<int32_t>(rng_.Below(600));
      text = encode(copy);
      break;
    case Defect::kUnknownSubscriber:
      if constexpr (kHasSubscriber) copy.subscriber_id = SubscriberId(9'000'000'000 + serial_);
      text = encode(copy);
      break;
    case Defect::kUnknownEnum: {
      int idx = FieldIndex<Rec>("kind");
      std::string_view name = idx >= 0 ? "kind" : "channel";
      if (idx < 0) idx = FieldIndex<Rec>("channel");
      text = ReplaceValue(encode(copy), idx, name, "hologram_call", "\"hologram_call\"");
      break;
    }
    case Defect::kWrongType:
      text = ReplaceValue(encode(copy), FieldIndex<Rec>("partner_id"), "partner_id", "twelve",
                          "\"twelve\"");
      break;
    case Defect::kMalformed: {
      text = encode(copy);
      if (format_ == OutputFormat::kNdjson) {
        text = text.substr(0, text.size() / 2) + "\n";  // cut mid-object
      } else {
        size_t comma = text.find(',');
        text.insert(comma + 1, "\"");  // an opening quote that never closes
      }
      break;
    }
    case Defect::kInvalidUtf8:
      copy.event_id += "\xC3\x28";  // a two-byte lead followed by a non-continuation byte
      text = encode(copy);
      break;
    case Defect::kMissingField:
      text = DropValue(encode(copy), "ts");
      break;
    case Defect::kOverlongLine:
      copy.event_id += std::string((1 << 20) + 4096, 'x');
      text = encode(copy);
      break;
  }
  file->buffer().Put(text);
  file->Commit(1);
  Record(rel_path, file->lines(), d, source_id);
}

}  // namespace tally
