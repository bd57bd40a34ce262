#pragma once
// API keys: created with a role and scope, stored hashed in DIR/keys.sqlite, verified on every
// request, revocable. docs/security.md describes the format and the storage.
//
// A key reads `tly_<id>_<secret>`: an 8-character key id and a 32-character secret, both base62
// (about 190 bits of secret). The id is not secret: it names the key in listings, revocations
// and the audit log. Only the SHA-256 of the whole key is stored, so the file does not let
// anyone recover a key; Create returns the plaintext exactly once.

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "api/auth.h"
#include "core/status.h"
#include "core/time.h"

namespace tally {

//! One stored key as listings show it. Never holds the secret or its hash.
struct KeyInfo {
  std::string key_id;
  Role role = Role::kAdmin;
  std::optional<PartnerId> partner;
  std::optional<SubscriberId> subscriber;
  std::string name;  // a label chosen by whoever created it
  Timestamp created_at;
  std::optional<Timestamp> revoked_at;
};

//! What a new key is for.
struct KeySpec {
  Role role = Role::kAdmin;
  std::optional<PartnerId> partner;
  std::optional<SubscriberId> subscriber;
  std::string name;
};

//! A key just created: the plaintext (shown once, never stored) and its listing.
struct NewKey {
  std::string key;
  KeyInfo info;
};

//! The API keys of one data directory.
//!
//! Thread safety: every method may be called concurrently. Verify is served from an in-memory
//! cache: a key is read from SQLite the first time it is seen and again once its cache entry is
//! older than Options::recheck_after. A revocation made through this object takes effect at once
//! (Verify calls that start after Revoke returns reject the key). A revocation made by another
//! process (say `tally keys revoke` while `tally serve` runs) takes effect within recheck_after,
//! or at the next start.
//!
//! Errors: every refusal of Verify (malformed key, unknown id, wrong secret, revoked key) is
//! InvalidArgument with a message that never repeats the secret; storage failures are IOError.
class KeyStore {
 public:
  struct Options {
    //! How old a cached key may get before Verify reads its row again.
    std::chrono::milliseconds recheck_after{5000};
    //! The monotonic clock the cache ages by; replaced in tests.
    std::function<std::chrono::steady_clock::time_point()> steady_now = [] {
      return std::chrono::steady_clock::now();
    };
  };

  //! Opens (creating) DIR/keys.sqlite; creates DIR if missing. The file is made mode 0600.
  static Result<std::unique_ptr<KeyStore>> Open(const std::string& dir, Options options);
  static Result<std::unique_ptr<KeyStore>> Open(const std::string& dir) {
    return Open(dir, Options());
  }

  KeyStore(const KeyStore&) = delete;
  KeyStore& operator=(const KeyStore&) = delete;
  ~KeyStore();

  //! Creates a key for `spec` (validated as a Principal: a partner key needs a partner id, and so
  //! on). The returned key is the only copy of the secret.
  Result<NewKey> Create(const KeySpec& spec, Timestamp now);

  //! The principal `key` stands for, or why it is refused.
  Result<Principal> Verify(std::string_view key);

  //! Every key, revoked ones included, in order of creation.
  Result<std::vector<KeyInfo>> List();

  //! Revokes a key by id; revoking a revoked key changes nothing and returns its first
  //! revocation. NotFound when no key has that id.
  Result<KeyInfo> Revoke(std::string_view key_id, Timestamp now);

 private:
  class Impl;
  explicit KeyStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

//! The parts of a well-formed key, or why it is malformed (the message never quotes the secret).
struct ParsedKey {
  std::string_view key_id;
  std::string_view secret;
};
Result<ParsedKey> ParseApiKey(std::string_view key);

//! `n` base62 characters from OpenSSL's RAND_bytes, each uniform (rejection sampling).
Result<std::string> RandomBase62(size_t n);

}  // namespace tally
