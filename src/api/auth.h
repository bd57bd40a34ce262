#pragma once
// Who is asking, and what they may see: roles, the principal a request runs as, and the masking
// of personal data (MSISDN, IMSI, names) by role. docs/security.md describes the policy.
//
// These are pure values and functions with no I/O. API keys (api/key_store.h) and embed tokens
// (api/embed_token.h) both end in a Principal; row-level security and masking start from one.

#include <array>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/ids.h"
#include "core/status.h"
#include "core/time.h"
#include "model/enums.h"

namespace tally {

//! What a caller is allowed to do and see. Internal roles (admin, analyst, agent) see every
//! tenant; partner and subscriber are scoped to one partner or one subscriber.
enum class Role : uint8_t { kAdmin, kAnalyst, kAgent, kPartner, kSubscriber };

//! Role names as they appear in keys, tokens, flags and the audit log. With this table,
//! Name(Role) and ParseEnum<Role> work as for the domain enums in model/enums.h.
template <>
struct EnumNames<Role> {
  static constexpr std::string_view kTypeName = "role";
  static constexpr std::array kNames =
      std::to_array<std::string_view>({"admin", "analyst", "agent", "partner", "subscriber"});
};

//! Parses a role by its exact name; the error quotes the value and lists the accepted names.
Result<Role> ParseRole(std::string_view text);

//! The pages `tally serve` serves (web/, docs/web.md). An embed token names the ones it opens,
//! and each API route an embed token may call names the pages that use it (ApiRoute::dashboards),
//! so a token for the subscriber page cannot read the funnel, say.
enum class Dashboard : uint8_t {
  kOverview,
  kRealtime,
  kFunnel,
  kPricing,
  kAbtest,
  kMl,
  kGeo,
  kSubscriber,
  kPartner,
  kAgent,
};

template <>
struct EnumNames<Dashboard> {
  static constexpr std::string_view kTypeName = "dashboard";
  static constexpr std::array kNames =
      std::to_array<std::string_view>({"overview", "realtime", "funnel", "pricing", "abtest", "ml",
                                       "geo", "subscriber", "partner", "agent"});
};

//! A set of dashboards, one bit per Dashboard.
using DashboardSet = uint16_t;
constexpr DashboardSet DashboardBit(Dashboard d) {
  return static_cast<DashboardSet>(1u << static_cast<unsigned>(d));
}

//! "Never expires": the expiry of an API key, which lives until it is revoked.
inline constexpr Timestamp kNeverExpires{std::numeric_limits<int64_t>::max()};

//! The caller a request runs as, after an API key or an embed token has been verified.
struct Principal {
  Role role = Role::kSubscriber;
  //! Required for role partner; optional for role subscriber (the subscriber's partner); absent
  //! otherwise.
  std::optional<PartnerId> partner;
  //! Required for role subscriber; absent otherwise.
  std::optional<SubscriberId> subscriber;
  //! The API key id, or the embed token's `jti`: what the audit log records.
  std::string key_id;
  //! The dashboards this principal may open. Empty means any (API keys); "*" in the list also
  //! means any (a token that allows every dashboard says so explicitly).
  std::vector<std::string> dashboards;
  //! When the credential stops being valid; kNeverExpires for API keys.
  Timestamp expires = kNeverExpires;

  //! True when `dashboard` is one this principal may open.
  bool AllowsDashboard(std::string_view dashboard) const;
  //! True when this principal may open one of `pages` (always, with an empty list or "*").
  //! Names that are not a Dashboard open nothing.
  bool OpensAny(DashboardSet pages) const;
  //! "partner:7", "subscriber:123" or the role name for internal roles: the tenant scope, as
  //! written in a token's `sub` claim and the audit log.
  std::string Scope() const;
};

//! What GET /v1/me answers: {"role", "partner", "subscriber", "dashboards", "expires", "via"}
//! (ids and expiry null when absent; `via` is "key" for API keys, which never expire, and
//! "token" for embed tokens). The pages use it to choose
//! what to show; the server enforces every limit regardless.
std::string PrincipalJson(const Principal& p);

//! Checks the invariants of a principal: role partner carries a valid partner id and no
//! subscriber; role subscriber carries a valid subscriber id (and may carry its partner); admin,
//! analyst and agent carry neither. Dashboard names must be non-empty. The error names the role
//! and the offending field.
Status ValidatePrincipal(const Principal& p);

// ---- Masking ----------------------------------------------------------------------------------
//
// The policy (docs/security.md has the table):
//   admin       sees everything;
//   analyst     MSISDN masked to its last 4 digits, IMSI to its first 5 (MCC+MNC), names to
//               initials;
//   agent       full MSISDN and name (a care agent must confirm who is calling), masked IMSI;
//   partner     masked like analyst;
//   subscriber  sees its own values in full. Row-level security restricts a subscriber to its
//               own rows before masking runs, so masking does not need to know whose row it is.
//
// Masking works on code points, never bytes, so a multi-byte UTF-8 character is kept or replaced
// whole. A value that is not valid UTF-8 is masked completely. A value too short for the partial
// rule (an MSISDN under 8 characters, an IMSI under 10) is masked completely too, because
// keeping 4 or 5 of its characters would reveal most of it.

//! A column that holds personal data.
enum class SensitiveField : uint8_t { kMsisdn, kImsi, kName };

//! True when `role` sees `field` in full; false when it sees the masked form. A later layer can
//! use this to decide, per column, whether to call Mask().
bool Sees(Role role, SensitiveField field);

//! `value` as `role` may see it.
std::string Mask(SensitiveField field, std::string_view value, Role role);

//! "+14155551234" -> "********1234" for roles that see masked MSISDNs.
std::string MaskMsisdn(std::string_view msisdn, Role role);
//! "310260123456789" -> "31026**********" for roles that see masked IMSIs.
std::string MaskImsi(std::string_view imsi, Role role);
//! "Ana María López" -> "A. M. L." for roles that see masked names.
std::string MaskName(std::string_view name, Role role);

}  // namespace tally
