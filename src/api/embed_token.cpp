#include "api/embed_token.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <simdjson.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <set>

#include "core/text_buffer.h"
#include "core/utf8.h"

namespace tally {

namespace {

constexpr std::string_view kAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
constexpr size_t kMacBytes = 32;
// NumericDates beyond the year 9999 are refused, so seconds always fit in microseconds.
constexpr int64_t kMaxSeconds = 253402300799;

// "24h", "90m" or "45s": a duration as a person would write it.
std::string FormatSeconds(int64_t s) {
  if (s % 3600 == 0) return std::to_string(s / 3600) + "h";
  if (s % 60 == 0) return std::to_string(s / 60) + "m";
  return std::to_string(s) + "s";
}

std::string Quoted(std::string_view s) {
  return "'" + ValidUtf8OrEscaped(s.substr(0, 64)) + "'";
}

// ---- Reading claims ---------------------------------------------------------------------------

Status ClaimError(std::string_view claim, std::string_view problem) {
  return Status::InvalidArgument("claim '" + std::string(claim) + "' " + std::string(problem));
}

Result<Timestamp> NumericDate(std::string_view claim, simdjson::dom::element v) {
  int64_t s = 0;
  if (v.type() == simdjson::dom::element_type::INT64) {
    s = v.get_int64().value_unsafe();
  } else if (v.type() == simdjson::dom::element_type::UINT64) {
    s = kMaxSeconds + 1;
  } else {
    return ClaimError(claim, "must be an integer number of seconds since 1970");
  }
  if (s < 0 || s > kMaxSeconds) {
    return ClaimError(claim, "is out of range (" + std::string(simdjson::minify(v)) + ")");
  }
  return Timestamp::FromSeconds(s);
}

Result<std::optional<int64_t>> OptionalId(std::string_view claim, simdjson::dom::element v,
                                          int64_t min) {
  if (v.is_null()) return std::optional<int64_t>();
  if (v.type() != simdjson::dom::element_type::INT64) {
    return ClaimError(claim, "must be an integer id");
  }
  const int64_t id = v.get_int64().value_unsafe();
  if (id < min) {
    return ClaimError(
        claim, "is " + std::to_string(id) + ", expected " + std::to_string(min) + " or more");
  }
  return std::optional<int64_t>(id);
}

Result<std::string> StringClaim(std::string_view claim, simdjson::dom::element v) {
  std::string_view s;
  if (v.get_string().get(s) != simdjson::SUCCESS) return ClaimError(claim, "must be a string");
  return std::string(s);
}

Status ParseClaims(std::string_view json, EmbedClaims* c) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (auto err = parser.parse(json.data(), json.size()).get(doc)) {
    return Status::InvalidArgument(std::string("token payload is not valid JSON: ") +
                                   simdjson::error_message(err));
  }
  simdjson::dom::object obj;
  if (doc.get_object().get(obj) != simdjson::SUCCESS) {
    return Status::InvalidArgument("token payload is not a JSON object");
  }
  std::set<std::string_view> seen;
  bool has_role = false, has_exp = false, has_dashboards = false, has_sub = false;
  for (auto [key, value] : obj) {
    if (!seen.insert(key).second) return ClaimError(key, "appears twice");
    if (key == "sub") {
      TALLY_ASSIGN_OR_RETURN(c->sub, StringClaim(key, value));
      has_sub = true;
    } else if (key == "role") {
      TALLY_ASSIGN_OR_RETURN(std::string name, StringClaim(key, value));
      auto role = ParseRole(name);
      if (!role.ok()) return ClaimError(key, role.status().message());
      c->role = *role;
      has_role = true;
    } else if (key == "partner") {
      TALLY_ASSIGN_OR_RETURN(std::optional<int64_t> id, OptionalId(key, value, 0));
      if (id) c->partner = PartnerId(*id);
    } else if (key == "subscriber") {
      TALLY_ASSIGN_OR_RETURN(std::optional<int64_t> id, OptionalId(key, value, 1));
      if (id) c->subscriber = SubscriberId(*id);
    } else if (key == "dashboards") {
      simdjson::dom::array arr;
      if (value.get_array().get(arr) != simdjson::SUCCESS) {
        return ClaimError(key, "must be an array of dashboard names");
      }
      for (simdjson::dom::element d : arr) {
        std::string_view name;
        if (d.get_string().get(name) != simdjson::SUCCESS) {
          return ClaimError(key, "must be an array of dashboard names");
        }
        c->dashboards.emplace_back(name);
      }
      has_dashboards = true;
    } else if (key == "iat") {
      TALLY_ASSIGN_OR_RETURN(c->iat, NumericDate(key, value));
    } else if (key == "exp") {
      TALLY_ASSIGN_OR_RETURN(c->exp, NumericDate(key, value));
      has_exp = true;
    } else if (key == "nbf") {
      TALLY_ASSIGN_OR_RETURN(c->nbf, NumericDate(key, value));
    } else if (key == "jti") {
      TALLY_ASSIGN_OR_RETURN(c->jti, StringClaim(key, value));
    }
    // Other registered or private claims (iss, aud, ...) are the issuer's business: the
    // signature vouches for them and tally has no use for them.
  }
  if (!has_exp) return ClaimError("exp", "is missing");
  if (!has_sub) return ClaimError("sub", "is missing");
  if (!has_role) return ClaimError("role", "is missing");
  if (!has_dashboards) return ClaimError("dashboards", "is missing");
  return Status::Ok();
}

// The checks that need no clock: scope, subject, dashboards, and iat/exp order.
Status CheckClaims(const EmbedClaims& c, std::chrono::seconds max_lifetime) {
  if (c.role != Role::kPartner && c.role != Role::kSubscriber) {
    return ClaimError("role", "is '" + std::string(Name(c.role)) +
                                  "'; embed tokens are for role partner or subscriber");
  }
  TALLY_RETURN_IF_ERROR(ValidatePrincipal(c.ToPrincipal()));
  if (c.sub != c.ExpectedSubject()) {
    return ClaimError(
        "sub", "is " + Quoted(c.sub) + " but the token's scope is '" + c.ExpectedSubject() + "'");
  }
  if (c.dashboards.empty()) {
    return ClaimError("dashboards", "lists no dashboard (use [\"*\"] to allow every one)");
  }
  for (const std::string& d : c.dashboards) {
    if (d.empty()) return ClaimError("dashboards", "holds an empty name");
  }
  if (c.iat) {
    if (c.exp <= *c.iat) return ClaimError("exp", "is not after 'iat'");
    const int64_t lifetime = (c.exp.micros - c.iat->micros) / kMicrosPerSecond;
    if (lifetime > max_lifetime.count()) {
      return Status::InvalidArgument("token lifetime of " + FormatSeconds(lifetime) +
                                     " exceeds the maximum of " +
                                     FormatSeconds(max_lifetime.count()));
    }
  }
  return Status::Ok();
}

Status CheckHeader(std::string_view json) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  simdjson::dom::object obj;
  if (parser.parse(json.data(), json.size()).get(doc) != simdjson::SUCCESS ||
      doc.get_object().get(obj) != simdjson::SUCCESS) {
    return Status::InvalidArgument("token header is not a JSON object");
  }
  bool has_alg = false, has_typ = false;
  for (auto [key, value] : obj) {
    std::string_view text;
    if (key == "alg" && !has_alg) {
      if (value.get_string().get(text) != simdjson::SUCCESS) {
        return Status::InvalidArgument("token header 'alg' is not a string");
      }
      if (text != "HS256") {
        return Status::InvalidArgument("token algorithm " + Quoted(text) +
                                       " is not accepted (expected HS256)");
      }
      has_alg = true;
    } else if (key == "typ" && !has_typ) {
      if (value.get_string().get(text) != simdjson::SUCCESS || (text != "JWT" && text != "jwt")) {
        return Status::InvalidArgument("token header 'typ' is " + Quoted(simdjson::minify(value)) +
                                       ", expected \"JWT\"");
      }
      has_typ = true;
    } else if (key == "alg" || key == "typ") {
      return Status::InvalidArgument("token header has '" + std::string(key) + "' twice");
    } else {
      return Status::InvalidArgument("token header member " + Quoted(key) +
                                     " is not supported (only 'alg' and 'typ' are)");
    }
  }
  if (!has_alg) return Status::InvalidArgument("token header has no 'alg'");
  return Status::Ok();
}

void PutMember(TextBuffer& out, std::string_view name) {
  if (out.view().back() != '{') out.Put(',');
  out.PutJsonString(name);
  out.Put(':');
}

}  // namespace

// ---- Base64url --------------------------------------------------------------------------------

std::string Base64UrlEncode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() * 4 + 2) / 3);
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const uint32_t v = (uint32_t{p[i]} << 16) | (uint32_t{p[i + 1]} << 8) | p[i + 2];
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  const size_t rest = bytes.size() - i;
  if (rest == 1) {
    const uint32_t v = uint32_t{p[i]} << 16;
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
  } else if (rest == 2) {
    const uint32_t v = (uint32_t{p[i]} << 16) | (uint32_t{p[i + 1]} << 8);
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
  }
  return out;
}

Result<std::string> Base64UrlDecode(std::string_view text, std::string_view what) {
  static const std::array<int8_t, 256> kValue = [] {
    std::array<int8_t, 256> t{};
    t.fill(-1);
    for (size_t i = 0; i < kAlphabet.size(); ++i) {
      t[static_cast<unsigned char>(kAlphabet[i])] = static_cast<int8_t>(i);
    }
    return t;
  }();
  const std::string part(what);
  for (size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (kValue[c] >= 0) continue;
    if (c == '=') {
      return Status::InvalidArgument(part + " is padded with '='; tokens use unpadded base64url");
    }
    const std::string shown =
        c > 0x20 && c < 0x7F ? "'" + std::string(1, text[i]) + "'" : "byte " + std::to_string(c);
    return Status::InvalidArgument(part + " has " + shown + " at offset " + std::to_string(i) +
                                   ", which is not base64url");
  }
  if (text.size() % 4 == 1) {
    return Status::InvalidArgument(part + " has " + std::to_string(text.size()) +
                                   " characters, an impossible base64url length");
  }
  std::string out;
  out.reserve(text.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  for (char ch : text) {
    acc = (acc << 6) | static_cast<uint32_t>(kValue[static_cast<unsigned char>(ch)]);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xFF);
    }
  }
  // The bits left over must be zero, or two different texts would decode to the same bytes.
  if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) {
    return Status::InvalidArgument(part +
                                   " is not canonical base64url (its last character "
                                   "has stray bits)");
  }
  return out;
}

// ---- Claims -----------------------------------------------------------------------------------

Principal EmbedClaims::ToPrincipal() const {
  Principal p;
  p.role = role;
  p.partner = partner;
  p.subscriber = subscriber;
  p.key_id = jti;
  p.dashboards = dashboards;
  p.expires = exp;
  return p;
}

std::string EmbedClaims::ExpectedSubject() const {
  return ToPrincipal().Scope();
}

// ---- EmbedTokens ------------------------------------------------------------------------------

Result<EmbedTokens> EmbedTokens::Create(std::string secret, Options options) {
  if (secret.size() < kMinSecretBytes) {
    return Status::InvalidArgument("embed secret has " + std::to_string(secret.size()) +
                                   " bytes; at least " + std::to_string(kMinSecretBytes) +
                                   " are required");
  }
  if (options.leeway.count() < 0 || options.max_lifetime.count() <= 0) {
    return Status::InvalidArgument(
        "embed token leeway must be 0 or more and the maximum lifetime more than 0");
  }
  return EmbedTokens(std::move(secret), options);
}

Result<std::string> EmbedTokens::Mac(std::string_view signing_input) const {
  std::array<unsigned char, EVP_MAX_MD_SIZE> mac{};
  unsigned int len = 0;
  if (HMAC(EVP_sha256(), secret_.data(), static_cast<int>(secret_.size()),
           reinterpret_cast<const unsigned char*>(signing_input.data()), signing_input.size(),
           mac.data(), &len) == nullptr ||
      len != kMacBytes) {
    return Status::Internal("HMAC-SHA256 failed in OpenSSL");
  }
  return std::string(reinterpret_cast<const char*>(mac.data()), len);
}

Result<std::string> EmbedTokens::Sign(const EmbedClaims& claims) const {
  EmbedClaims c = claims;
  if (c.sub.empty()) c.sub = c.ExpectedSubject();
  TALLY_RETURN_IF_ERROR(CheckClaims(c, options_.max_lifetime));
  for (std::string_view s : {std::string_view(c.jti), std::string_view(c.sub)}) {
    if (FindInvalidUtf8(s) != std::string_view::npos) {
      return Status::InvalidArgument("token claims must be valid UTF-8");
    }
  }
  TextBuffer json(512);
  json.Put('{');
  PutMember(json, "sub");
  json.PutJsonString(c.sub);
  PutMember(json, "role");
  json.PutJsonString(Name(c.role));
  if (c.partner) {
    PutMember(json, "partner");
    json.PutInt(c.partner->value());
  }
  if (c.subscriber) {
    PutMember(json, "subscriber");
    json.PutInt(c.subscriber->value());
  }
  PutMember(json, "dashboards");
  json.Put('[');
  for (size_t i = 0; i < c.dashboards.size(); ++i) {
    if (FindInvalidUtf8(c.dashboards[i]) != std::string_view::npos) {
      return Status::InvalidArgument("dashboard names must be valid UTF-8");
    }
    if (i) json.Put(',');
    json.PutJsonString(c.dashboards[i]);
  }
  json.Put(']');
  if (c.iat) {
    PutMember(json, "iat");
    json.PutInt(c.iat->seconds());
  }
  PutMember(json, "exp");
  json.PutInt(c.exp.seconds());
  if (c.nbf) {
    PutMember(json, "nbf");
    json.PutInt(c.nbf->seconds());
  }
  if (!c.jti.empty()) {
    PutMember(json, "jti");
    json.PutJsonString(c.jti);
  }
  json.Put('}');

  std::string token = Base64UrlEncode(R"({"alg":"HS256","typ":"JWT"})");
  token += '.';
  token += Base64UrlEncode(json.view());
  TALLY_ASSIGN_OR_RETURN(std::string mac, Mac(token));
  token += '.';
  token += Base64UrlEncode(mac);
  return token;
}

Result<EmbedClaims> EmbedTokens::Verify(std::string_view token, Timestamp now) const {
  if (token.size() > kMaxTokenBytes) {
    return Status::InvalidArgument("token has " + std::to_string(token.size()) +
                                   " bytes, more than the " + std::to_string(kMaxTokenBytes) +
                                   " accepted");
  }
  const size_t dot1 = token.find('.');
  const size_t dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos) {
    const auto parts = std::count(token.begin(), token.end(), '.') + 1;
    return Status::InvalidArgument("token has " + std::to_string(parts) +
                                   " parts separated by '.', expected 3");
  }
  const std::string_view header_b64 = token.substr(0, dot1);
  const std::string_view payload_b64 = token.substr(dot1 + 1, dot2 - dot1 - 1);
  const std::string_view signature_b64 = token.substr(dot2 + 1);

  // The header first: it decides how the rest may be read.
  TALLY_ASSIGN_OR_RETURN(std::string header, Base64UrlDecode(header_b64, "token header"));
  TALLY_RETURN_IF_ERROR(CheckHeader(header));

  // Then the signature, before any claim is trusted.
  TALLY_ASSIGN_OR_RETURN(std::string signature, Base64UrlDecode(signature_b64, "token signature"));
  TALLY_ASSIGN_OR_RETURN(std::string expected, Mac(token.substr(0, dot2)));
  if (signature.size() != expected.size() ||
      CRYPTO_memcmp(signature.data(), expected.data(), expected.size()) != 0) {
    return Status::InvalidArgument("signature does not match");
  }

  TALLY_ASSIGN_OR_RETURN(std::string payload, Base64UrlDecode(payload_b64, "token payload"));
  EmbedClaims c;
  TALLY_RETURN_IF_ERROR(ParseClaims(payload, &c));
  TALLY_RETURN_IF_ERROR(CheckClaims(c, options_.max_lifetime));

  const int64_t leeway = options_.leeway.count() * kMicrosPerSecond;
  if (now.micros >= c.exp.micros + leeway) {
    return Status::InvalidArgument("token expired at " + FormatTimestamp(c.exp));
  }
  if (c.nbf && now.micros + leeway < c.nbf->micros) {
    return Status::InvalidArgument("token is not valid before " + FormatTimestamp(*c.nbf));
  }
  if (c.iat && now.micros + leeway < c.iat->micros) {
    return Status::InvalidArgument("token was issued in the future, at " + FormatTimestamp(*c.iat));
  }
  // Without iat the lifetime is measured from now: the token must not outlive the maximum.
  const int64_t remaining = (c.exp.micros - now.micros) / kMicrosPerSecond;
  if (!c.iat && remaining > options_.max_lifetime.count()) {
    return Status::InvalidArgument("token lifetime of " + FormatSeconds(remaining) +
                                   " from now exceeds the maximum of " +
                                   FormatSeconds(options_.max_lifetime.count()));
  }
  return c;
}

// ---- The secret file --------------------------------------------------------------------------

Result<std::string> LoadOrCreateEmbedSecret(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::IOError("cannot create directory " + dir + ": " + ec.message());
  const std::string path = (std::filesystem::path(dir) / "embed.secret").string();

  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd >= 0) {
    std::array<unsigned char, 32> raw{};
    if (RAND_bytes(raw.data(), static_cast<int>(raw.size())) != 1) {
      ::close(fd);
      ::unlink(path.c_str());
      return Status::Internal("OpenSSL RAND_bytes failed");
    }
    const std::string text =
        Base64UrlEncode({reinterpret_cast<const char*>(raw.data()), raw.size()}) + "\n";
    const bool written =
        ::write(fd, text.data(), text.size()) == ssize_t(text.size()) && ::fsync(fd) == 0;
    const int err = errno;
    ::close(fd);
    if (!written) {
      ::unlink(path.c_str());
      return Status::IOError("cannot write " + path + ": " + std::strerror(err));
    }
  } else if (errno != EEXIST) {
    return Status::IOError("cannot create " + path + ": " + std::strerror(errno));
  }

  fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return Status::IOError("cannot open " + path + ": " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return Status::IOError(path + " is not a regular file");
  }
  if ((st.st_mode & 077) != 0) {
    ::close(fd);
    char mode[8];
    std::snprintf(mode, sizeof(mode), "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return Status::InvalidArgument(path + " may be read by group or others (mode " + mode +
                                   "); run chmod 600 on it");
  }
  std::string text;
  std::array<char, 4096> buf;
  for (;;) {
    const ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      return Status::IOError("cannot read " + path + ": " + std::strerror(err));
    }
    if (n == 0) break;
    text.append(buf.data(), static_cast<size_t>(n));
  }
  ::close(fd);
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  if (text.size() < EmbedTokens::kMinSecretBytes) {
    return Status::InvalidArgument(path + " holds " + std::to_string(text.size()) +
                                   " bytes; an embed secret needs at least " +
                                   std::to_string(EmbedTokens::kMinSecretBytes));
  }
  return text;
}

}  // namespace tally
