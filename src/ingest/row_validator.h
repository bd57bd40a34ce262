#pragma once
// Semantic checks of decoded events, beyond what the decoder's types enforce: ranges, times,
// id lengths, and the event's subscriber and partner against the subscriber directory.

#include <cstdint>
#include <string>

#include "core/time.h"
#include "ingest/subscriber_directory.h"
#include "model/events.h"

namespace tally {

//! What happens to an event whose subscriber_id the store does not know.
enum class UnknownSubscriberPolicy : uint8_t {
  kFlag,    // store it and count it in the report's relationships check
  kReject,  // quarantine it
};

struct ValidationOptions {
  int64_t max_future_micros = kMicrosPerDay;  // ts may run this far ahead of the clock
  Timestamp min_ts = StartOfDay(Date{DaysFromCivil(1990, 1, 1)});
  size_t max_id_bytes = 128;                  // event_id length limit
  UnknownSubscriberPolicy unknown_subscribers = UnknownSubscriberPolicy::kFlag;
};

//! The outcome for one row: ok (perhaps flagged), or the field, check and reason of a rejection.
struct RowVerdict {
  bool ok = true;
  bool unknown_subscriber = false;
  std::string field;
  std::string check;
  std::string reason;
};

//! Validates rows of any event family. Cheap to copy; `now` is fixed per batch.
class RowValidator {
 public:
  RowValidator(ValidationOptions options, Timestamp now, const SubscriberDirectory* subscribers)
      : options_(options), now_(now), subscribers_(subscribers) {}

  template <typename Rec>
  RowVerdict Check(const Rec& r) const {
    RowVerdict v;
    if (r.event_id.empty()) return Fail("event_id", "not_null", "event_id is empty");
    if (r.event_id.size() > options_.max_id_bytes) {
      return Fail("event_id", "length", "event_id is " + std::to_string(r.event_id.size()) +
                                            " bytes, longer than " + std::to_string(options_.max_id_bytes));
    }
    if (r.ts < options_.min_ts) return Fail("ts", "range", "ts " + FormatTimestamp(r.ts) + " is before 1990");
    if (r.ts.micros > now_.micros + options_.max_future_micros) {
      return Fail("ts", "range", "ts " + FormatTimestamp(r.ts) + " is in the future (now " + FormatTimestamp(now_) + ")");
    }
    if constexpr (requires { r.duration_s; }) {
      if (r.duration_s && *r.duration_s < 0) {
        return Fail("duration_s", "range", "duration_s " + std::to_string(*r.duration_s) + " is negative");
      }
    }
    if constexpr (requires { r.bytes; }) {
      if (r.bytes && *r.bytes < 0) return Fail("bytes", "range", "bytes " + std::to_string(*r.bytes) + " is negative");
    }
    if constexpr (std::is_same_v<Rec, RechargeEvent>) {
      if (r.amount_minor <= 0) {
        return Fail("amount_minor", "range", "amount_minor " + std::to_string(r.amount_minor) + " is not positive");
      }
    }
    if constexpr (requires { r.resolution_hours; }) {
      if (r.resolution_hours && *r.resolution_hours < 0) {
        return Fail("resolution_hours", "range", "resolution_hours is negative");
      }
    }
    if constexpr (requires { r.value_minor; }) {
      if (r.value_minor && *r.value_minor < 0) return Fail("value_minor", "range", "value_minor is negative");
    }
    if constexpr (requires { r.subscriber_id; }) {
      if constexpr (std::is_same_v<std::decay_t<decltype(r.subscriber_id)>, SubscriberId>) {
        return CheckSubscriber(r.subscriber_id, r.partner_id);
      } else {
        if (r.subscriber_id) return CheckSubscriber(*r.subscriber_id, r.partner_id);
      }
    }
    return v;
  }

 private:
  static RowVerdict Fail(std::string field, std::string check, std::string reason) {
    return RowVerdict{false, false, std::move(field), std::move(check), std::move(reason)};
  }
  RowVerdict CheckSubscriber(SubscriberId id, PartnerId partner) const {
    const SubscriberInfo* info = subscribers_ ? subscribers_->Find(id) : nullptr;
    if (!info) {
      if (options_.unknown_subscribers == UnknownSubscriberPolicy::kReject) {
        return Fail("subscriber_id", "relationships",
                    "subscriber " + std::to_string(id.value()) + " is not a known subscriber");
      }
      RowVerdict v;
      v.unknown_subscriber = true;
      return v;
    }
    if (info->partner_id != partner) {
      return Fail("partner_id", "relationships",
                  "subscriber " + std::to_string(id.value()) + " belongs to partner " +
                      std::to_string(info->partner_id.value()) + ", not " + std::to_string(partner.value()));
    }
    return RowVerdict{};
  }

  ValidationOptions options_;
  Timestamp now_;
  const SubscriberDirectory* subscribers_;
};

}  // namespace tally
