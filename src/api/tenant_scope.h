#pragma once
// Row-level security at the API's edge: which subscribers a principal may see. The metrics layer
// adds the same scope to every query it compiles (metrics/compiler.h); these helpers serve the
// routes that read or change one subscriber by id, so that an id outside the caller's scope is
// answered exactly as an id that does not exist (404), without revealing that it does.

#include <charconv>
#include <optional>
#include <string>
#include <string_view>

#include "api/auth.h"
#include "ingest/pipeline.h"
#include "metrics/compiler.h"

namespace tally {

//! True when `p` may see subscriber `id`, which belongs to `partner`.
inline bool MaySee(const Principal& p, SubscriberId id, PartnerId partner) {
  switch (p.role) {
    case Role::kPartner:
      return p.partner.has_value() && *p.partner == partner;
    case Role::kSubscriber:
      return p.subscriber.has_value() && *p.subscriber == id;
    default:
      return true;
  }
}

//! True when `p` sees every tenant (admin, analyst, agent).
inline bool SeesAllTenants(const Principal& p) {
  return p.role != Role::kPartner && p.role != Role::kSubscriber;
}

//! A partner id no row carries: the scope of a caller that must see nothing.
inline constexpr int64_t kNoPartner = -1;

//! The metrics layer's scope for `p`: its partner or its subscriber, nothing for internal roles.
inline SecurityScope ScopeOf(const Principal& p) {
  SecurityScope s;
  if (p.role == Role::kPartner && p.partner) s.partner = p.partner->value();
  if (p.role == Role::kSubscriber && p.subscriber) {
    s.subscriber = p.subscriber->value();
    if (p.partner) s.partner = p.partner->value();
  }
  // A tenant principal without its id (ValidatePrincipal refuses that) must see nothing.
  if (p.role == Role::kPartner && !p.partner) s.partner = kNoPartner;
  if (p.role == Role::kSubscriber && !p.subscriber) s.subscriber = -1;
  return s;
}

//! `scope` narrowed by the dashboards' partner filter (`?partner=ID`), as a partner credential
//! narrows it: a scope without a partner becomes that partner's; naming the scope's own partner
//! changes nothing; naming another partner leaves a scope that matches no row, as a semantic
//! query's partner filter would find nothing. Empty `text`: no filter. InvalidArgument when
//! `text` is not an id >= 0.
inline Result<SecurityScope> NarrowToPartner(SecurityScope scope, std::string_view text) {
  if (text.empty()) return scope;
  int64_t id = -1;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
  if (ec != std::errc() || end != text.data() + text.size() || id < 0) {
    return Status::InvalidArgument("partner: '" + std::string(text.substr(0, 32)) +
                                   "' is not a partner id (expected an integer >= 0)");
  }
  scope.partner = !scope.partner || *scope.partner == id ? id : kNoPartner;
  return scope;
}

//! True when `p` may see subscriber `id`, looked up in the pipeline's subscriber table. A
//! subscriber sees itself (even before its profile is stored), unless its credential names a
//! partner the subscriber does not belong to.
inline bool MaySeeSubscriber(const Principal& p, SubscriberId id, const IngestPipeline& pipeline) {
  if (SeesAllTenants(p)) return true;
  std::optional<SubscriberInfo> info = pipeline.FindSubscriber(id);
  if (p.role == Role::kSubscriber) {
    return MaySee(p, id, PartnerId()) && (!p.partner || (info && info->partner_id == *p.partner));
  }
  return info && MaySee(p, id, info->partner_id);
}

//! The 404 body for a subscriber the caller may not see (or that does not exist).
inline std::string SubscriberNotFound(SubscriberId id) {
  return "subscriber " + std::to_string(id.value()) + " not found";
}

}  // namespace tally
