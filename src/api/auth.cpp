#include "api/auth.h"

#include <algorithm>

#include "core/text_buffer.h"
#include "core/utf8.h"

namespace tally {

Result<Role> ParseRole(std::string_view text) {
  return ParseEnum<Role>(text);
}

bool Principal::AllowsDashboard(std::string_view dashboard) const {
  if (dashboards.empty()) return true;
  return std::any_of(dashboards.begin(), dashboards.end(),
                     [&](const std::string& d) { return d == "*" || d == dashboard; });
}

bool Principal::OpensAny(DashboardSet pages) const {
  if (dashboards.empty()) return true;
  for (const std::string& d : dashboards) {
    if (d == "*") return true;
    auto parsed = ParseEnum<Dashboard>(d);
    if (parsed.ok() && (pages & DashboardBit(*parsed))) return true;
  }
  return false;
}

std::string Principal::Scope() const {
  switch (role) {
    case Role::kPartner:
      return partner ? "partner:" + std::to_string(partner->value()) : "partner:?";
    case Role::kSubscriber:
      return subscriber ? "subscriber:" + std::to_string(subscriber->value()) : "subscriber:?";
    default:
      return std::string(Name(role));
  }
}

std::string PrincipalJson(const Principal& p) {
  TextBuffer out(256);
  out.Put("{\"role\":");
  out.PutJsonString(Name(p.role));
  out.Put(",\"partner\":");
  if (p.partner) {
    out.PutInt(p.partner->value());
  } else {
    out.Put("null");
  }
  out.Put(",\"subscriber\":");
  if (p.subscriber) {
    out.PutInt(p.subscriber->value());
  } else {
    out.Put("null");
  }
  out.Put(",\"dashboards\":[");
  for (size_t i = 0; i < p.dashboards.size(); ++i) {
    if (i) out.Put(',');
    out.PutJsonString(p.dashboards[i]);
  }
  out.Put("],\"expires\":");
  if (p.expires == kNeverExpires) {
    out.Put("null");
  } else {
    out.Put('"');
    out.PutTimestamp(p.expires);
    out.Put('"');
  }
  out.Put(",\"via\":");
  out.PutJsonString(p.expires == kNeverExpires ? "key" : "token");
  out.Put('}');
  return std::string(out.view());
}

Status ValidatePrincipal(const Principal& p) {
  const std::string role = "role '" + std::string(Name(p.role)) + "'";
  if (p.partner && !p.partner->valid()) {
    return Status::InvalidArgument(role + ": partner id " + std::to_string(p.partner->value()) +
                                   " is not valid (expected 0 or more)");
  }
  if (p.subscriber && !p.subscriber->valid()) {
    return Status::InvalidArgument(role + ": subscriber id " +
                                   std::to_string(p.subscriber->value()) +
                                   " is not valid (expected 1 or more)");
  }
  switch (p.role) {
    case Role::kPartner:
      if (!p.partner) return Status::InvalidArgument(role + " requires a partner id");
      if (p.subscriber) {
        return Status::InvalidArgument(role + " must not carry a subscriber id (use role " +
                                       "'subscriber' for one subscriber)");
      }
      break;
    case Role::kSubscriber:
      if (!p.subscriber) return Status::InvalidArgument(role + " requires a subscriber id");
      break;
    case Role::kAdmin:
    case Role::kAnalyst:
    case Role::kAgent:
      if (p.partner || p.subscriber) {
        return Status::InvalidArgument(role + " sees every tenant and must not carry a " +
                                       (p.partner ? "partner" : "subscriber") + " id");
      }
      break;
  }
  for (const std::string& d : p.dashboards) {
    if (d.empty()) return Status::InvalidArgument(role + ": a dashboard name is empty");
  }
  return Status::Ok();
}

// ---- Masking ----------------------------------------------------------------------------------

namespace {

constexpr bool kSees[5][3] = {
    // msisdn, imsi, name
    {true, true, true},     // admin
    {false, false, false},  // analyst
    {true, false, true},    // agent
    {false, false, false},  // partner
    {true, true, true},     // subscriber (its own rows only; see auth.h)
};

// Byte length of the UTF-8 sequence that starts with `lead`; the text is known to be valid.
size_t SequenceLength(unsigned char lead) {
  if (lead < 0x80) return 1;
  if (lead < 0xE0) return 2;
  if (lead < 0xF0) return 3;
  return 4;
}

// The byte offsets at which the code points of valid UTF-8 `s` start.
std::vector<size_t> CodePointStarts(std::string_view s) {
  std::vector<size_t> starts;
  for (size_t i = 0; i < s.size(); i += SequenceLength(static_cast<unsigned char>(s[i]))) {
    starts.push_back(i);
  }
  return starts;
}

// Keeps `keep_front` code points at the start and `keep_back` at the end and writes '*' for
// every other one, provided at least `min_length` code points are there to mask; otherwise (and
// for invalid UTF-8) every code point becomes '*'.
std::string KeepEnds(std::string_view s, size_t keep_front, size_t keep_back, size_t min_length) {
  if (FindInvalidUtf8(s) != std::string_view::npos) return std::string(s.size(), '*');
  const std::vector<size_t> starts = CodePointStarts(s);
  const size_t n = starts.size();
  if (n < min_length) return std::string(n, '*');
  std::string out(s.substr(0, keep_front == 0 ? 0 : starts[keep_front]));
  out.append(n - keep_front - keep_back, '*');
  if (keep_back > 0) out.append(s.substr(starts[n - keep_back]));
  return out;
}

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

}  // namespace

bool Sees(Role role, SensitiveField field) {
  return kSees[static_cast<size_t>(role)][static_cast<size_t>(field)];
}

std::string MaskMsisdn(std::string_view msisdn, Role role) {
  if (Sees(role, SensitiveField::kMsisdn)) return std::string(msisdn);
  return KeepEnds(msisdn, 0, 4, 8);
}

std::string MaskImsi(std::string_view imsi, Role role) {
  if (Sees(role, SensitiveField::kImsi)) return std::string(imsi);
  return KeepEnds(imsi, 5, 0, 10);
}

std::string MaskName(std::string_view name, Role role) {
  if (Sees(role, SensitiveField::kName)) return std::string(name);
  if (FindInvalidUtf8(name) != std::string_view::npos) return "*";
  // The first code point of every word, followed by '.', words joined by one space.
  std::string out;
  size_t i = 0;
  while (i < name.size()) {
    if (IsSpace(name[i])) {
      ++i;
      continue;
    }
    if (!out.empty()) out += ' ';
    const size_t len = SequenceLength(static_cast<unsigned char>(name[i]));
    out.append(name.substr(i, len));
    out += '.';
    i += len;
    while (i < name.size() && !IsSpace(name[i])) ++i;
  }
  return out;
}

std::string Mask(SensitiveField field, std::string_view value, Role role) {
  switch (field) {
    case SensitiveField::kMsisdn:
      return MaskMsisdn(value, role);
    case SensitiveField::kImsi:
      return MaskImsi(value, role);
    case SensitiveField::kName:
      return MaskName(value, role);
  }
  return std::string(value.size(), '*');
}

}  // namespace tally
