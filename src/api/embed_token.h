#pragma once
// Signed embed tokens: compact JWS (RFC 7515) JSON Web Tokens (RFC 7519) signed with HS256, that
// let an operator's app open a tally dashboard for one partner or one subscriber.
//
// The operator's backend mints a token with the shared secret (any JWT library will do, or
// `tally keys token`), and the page passes it to tally, which verifies it here. A token names
// its scope (one partner or one subscriber), the dashboards it opens and when it expires; its
// lifetime is capped, so a leaked token is useful for hours, not forever.
//
// Verification is strict, because lenient JWT parsers are how tokens get forged: the header
// must be exactly {"alg":"HS256"} with an optional "typ":"JWT" (so "none", other algorithms and
// headers such as "jku" or "crit" are refused); base64url must be unpadded and canonical; the
// signature is compared in constant time before any claim is read.

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "api/auth.h"
#include "core/status.h"
#include "core/time.h"

namespace tally {

//! The claims of an embed token. Times are whole seconds (JWT NumericDate).
struct EmbedClaims {
  std::string sub;  // "partner:7" or "subscriber:123": must match role, partner and subscriber
  Role role = Role::kPartner;  // partner or subscriber only
  std::optional<PartnerId> partner;
  std::optional<SubscriberId> subscriber;
  std::vector<std::string> dashboards;  // at least one; "*" allows every dashboard
  std::optional<Timestamp> iat;         // issued at
  Timestamp exp;                        // expiry (required)
  std::optional<Timestamp> nbf;         // not before
  std::string jti;                      // token id, recorded in the audit log; may be empty

  //! The principal the token stands for.
  Principal ToPrincipal() const;
  //! The `sub` a token with this role and scope must carry.
  std::string ExpectedSubject() const;
};

//! Signs and verifies embed tokens with one secret. Immutable after construction, so any number
//! of threads may use one instance.
class EmbedTokens {
 public:
  struct Options {
    //! Clock skew tolerated on exp, nbf and iat.
    std::chrono::seconds leeway{0};
    //! Longest lifetime (exp minus iat, or minus now without iat) a token may have.
    std::chrono::seconds max_lifetime{24 * 3600};
  };
  //! The shortest secret accepted, in bytes.
  static constexpr size_t kMinSecretBytes = 32;
  //! Longer tokens are refused before any parsing.
  static constexpr size_t kMaxTokenBytes = 8192;

  //! InvalidArgument when the secret is shorter than kMinSecretBytes or an option is negative.
  static Result<EmbedTokens> Create(std::string secret, Options options);
  static Result<EmbedTokens> Create(std::string secret) {
    return Create(std::move(secret), Options());
  }

  //! A signed token for `claims` (validated as Verify would, except for time against a clock).
  Result<std::string> Sign(const EmbedClaims& claims) const;

  //! The claims of `token` if it is genuine and valid at `now`; otherwise an InvalidArgument
  //! that names the problem ("signature does not match", "token expired at ...",
  //! "claim 'exp' is missing", ...).
  Result<EmbedClaims> Verify(std::string_view token, Timestamp now) const;

  const Options& options() const { return options_; }

 private:
  EmbedTokens(std::string secret, Options options)
      : secret_(std::move(secret)), options_(options) {}
  Result<std::string> Mac(std::string_view signing_input) const;

  std::string secret_;
  Options options_;
};

//! The secret in DIR/embed.secret, created (mode 0600, 43 base64url characters from 32 random
//! bytes) when missing. The secret is the file's text without a trailing newline, so an app's
//! JWT library can use the same string. Refuses a file that group or others may read, or one
//! shorter than EmbedTokens::kMinSecretBytes.
Result<std::string> LoadOrCreateEmbedSecret(const std::string& dir);

//! Unpadded base64url (RFC 4648 section 5).
std::string Base64UrlEncode(std::string_view bytes);
//! Decodes unpadded, canonical base64url; refuses '=', characters outside the alphabet, a length
//! of 1 mod 4 and non-zero unused bits. `what` names the part in errors ("token header").
Result<std::string> Base64UrlDecode(std::string_view text, std::string_view what);

}  // namespace tally
