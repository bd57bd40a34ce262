#include "api/key_store.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <shared_mutex>

#include "core/utf8.h"
#include "ledger/sqlite_db.h"

namespace tally {

namespace {

constexpr std::string_view kPrefix = "tly_";
constexpr size_t kIdLength = 8;
constexpr size_t kSecretLength = 32;
constexpr size_t kKeyLength = kPrefix.size() + kIdLength + 1 + kSecretLength;
constexpr size_t kMaxNameBytes = 256;
constexpr std::string_view kBase62 =
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

using Digest = std::array<unsigned char, 32>;

bool IsBase62(char c) {
  return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

Result<Digest> Sha256(std::string_view text) {
  Digest d{};
  unsigned int len = 0;
  if (EVP_Digest(text.data(), text.size(), d.data(), &len, EVP_sha256(), nullptr) != 1 ||
      len != d.size()) {
    return Status::Internal("SHA-256 failed in OpenSSL");
  }
  return d;
}

std::string_view AsBytes(const Digest& d) {
  return {reinterpret_cast<const char*>(d.data()), d.size()};
}

constexpr std::string_view kSchema = R"sql(
CREATE TABLE IF NOT EXISTS api_keys (
  key_id        TEXT PRIMARY KEY,
  key_sha256    BLOB NOT NULL,     -- SHA-256 of the whole key; the key itself is never stored
  role          TEXT NOT NULL,
  partner_id    INTEGER,
  subscriber_id INTEGER,
  name          TEXT NOT NULL,
  created_at    INTEGER NOT NULL,  -- UTC microseconds
  revoked_at    INTEGER            -- UTC microseconds; NULL while the key is valid
);)sql";

constexpr std::string_view kColumns =
    "key_id, key_sha256, role, partner_id, subscriber_id, name, created_at, revoked_at";

// One row, with the stored hash alongside its listing.
struct Row {
  KeyInfo info;
  Digest hash{};
};

Result<Row> ReadRow(const SqliteStmt& s) {
  Row r;
  r.info.key_id = std::string(s.Text(0));
  const std::string_view hash = s.Blob(1);
  if (hash.size() != r.hash.size()) {
    return Status::Corruption("keys.sqlite: key " + r.info.key_id + " has a hash of " +
                              std::to_string(hash.size()) + " bytes, expected 32");
  }
  std::memcpy(r.hash.data(), hash.data(), hash.size());
  auto role = ParseRole(s.Text(2));
  if (!role.ok())
    return Status::Corruption("keys.sqlite: key " + r.info.key_id + ": " + role.status().message());
  r.info.role = *role;
  if (!s.IsNull(3)) r.info.partner = PartnerId(s.Int(3));
  if (!s.IsNull(4)) r.info.subscriber = SubscriberId(s.Int(4));
  r.info.name = std::string(s.Text(5));
  r.info.created_at = Timestamp{s.Int(6)};
  if (!s.IsNull(7)) r.info.revoked_at = Timestamp{s.Int(7)};
  return r;
}

Principal PrincipalOf(const KeyInfo& info) {
  Principal p;
  p.role = info.role;
  p.partner = info.partner;
  p.subscriber = info.subscriber;
  p.key_id = info.key_id;
  p.expires = kNeverExpires;
  return p;
}

std::optional<int64_t> IdValue(const auto& id) {
  if (!id) return std::nullopt;
  return id->value();
}

// Creates an empty file with mode 0600 unless it exists, so the database never exists with a
// wider mode. (An empty file is a valid, empty SQLite database.)
Status CreatePrivateFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    if (errno == EEXIST) return Status::Ok();
    return Status::IOError("cannot create " + path + ": " + std::strerror(errno));
  }
  ::close(fd);
  return Status::Ok();
}

}  // namespace

Result<std::string> RandomBase62(size_t n) {
  std::string out;
  out.reserve(n);
  std::array<unsigned char, 64> buf;
  while (out.size() < n) {
    if (RAND_bytes(buf.data(), static_cast<int>(buf.size())) != 1) {
      return Status::Internal("OpenSSL RAND_bytes failed");
    }
    for (unsigned char b : buf) {
      // 248 = 4 * 62: bytes from 248 up would make the first 8 characters likelier; skip them.
      if (b >= 248) continue;
      out += kBase62[b % 62];
      if (out.size() == n) break;
    }
  }
  return out;
}

Result<ParsedKey> ParseApiKey(std::string_view key) {
  if (key.substr(0, kPrefix.size()) != kPrefix) {
    return Status::InvalidArgument("API key does not start with 'tly_'");
  }
  if (key.size() != kKeyLength) {
    return Status::InvalidArgument("API key has " + std::to_string(key.size()) +
                                   " characters, expected " + std::to_string(kKeyLength));
  }
  const std::string_view id = key.substr(kPrefix.size(), kIdLength);
  const std::string_view secret = key.substr(kPrefix.size() + kIdLength + 1);
  if (key[kPrefix.size() + kIdLength] != '_') {
    return Status::InvalidArgument("API key has no '_' after its 8-character id");
  }
  if (!std::all_of(id.begin(), id.end(), IsBase62)) {
    return Status::InvalidArgument("API key id has a character outside 0-9, A-Z, a-z");
  }
  if (!std::all_of(secret.begin(), secret.end(), IsBase62)) {
    return Status::InvalidArgument("API key " + std::string(id) +
                                   ": its secret has a character outside 0-9, A-Z, a-z");
  }
  return ParsedKey{id, secret};
}

// ---- KeyStore ---------------------------------------------------------------------------------

class KeyStore::Impl {
 public:
  Impl(std::unique_ptr<SqliteDb> db, Options options)
      : db_(std::move(db)), options_(std::move(options)) {}

  Result<NewKey> Create(const KeySpec& spec, Timestamp now);
  Result<Principal> Verify(std::string_view key);
  Result<std::vector<KeyInfo>> List();
  Result<KeyInfo> Revoke(std::string_view key_id, Timestamp now);

 private:
  struct CacheEntry {
    Row row;
    std::chrono::steady_clock::time_point checked;
  };

  // The row of `key_id`, or nullopt. Called with db_mu_ held.
  Result<std::optional<Row>> Lookup(std::string_view key_id);
  // The verdict on a key whose id matched `entry`.
  static Result<Principal> Decide(const Row& row, const Digest& presented);

  // Serializes every use of the connection (opened without SQLite's own mutex), and orders cache
  // refreshes with revocations: both update the cache while holding it.
  std::mutex db_mu_;
  std::unique_ptr<SqliteDb> db_;
  Options options_;

  std::shared_mutex cache_mu_;
  std::map<std::string, CacheEntry, std::less<>> cache_;
};

Result<std::optional<Row>> KeyStore::Impl::Lookup(std::string_view key_id) {
  TALLY_ASSIGN_OR_RETURN(SqliteStmt s, db_->Prepare("SELECT " + std::string(kColumns) +
                                                    " FROM api_keys WHERE key_id = ?"));
  s.Bind(key_id);
  TALLY_ASSIGN_OR_RETURN(bool found, s.Step());
  if (!found) return std::optional<Row>();
  TALLY_ASSIGN_OR_RETURN(Row row, ReadRow(s));
  return std::optional<Row>(std::move(row));
}

Result<Principal> KeyStore::Impl::Decide(const Row& row, const Digest& presented) {
  if (CRYPTO_memcmp(row.hash.data(), presented.data(), presented.size()) != 0) {
    return Status::InvalidArgument("API key " + row.info.key_id + ": the secret does not match");
  }
  if (row.info.revoked_at) {
    return Status::InvalidArgument("API key " + row.info.key_id + " was revoked at " +
                                   FormatTimestamp(*row.info.revoked_at));
  }
  return PrincipalOf(row.info);
}

Result<NewKey> KeyStore::Impl::Create(const KeySpec& spec, Timestamp now) {
  Principal p;
  p.role = spec.role;
  p.partner = spec.partner;
  p.subscriber = spec.subscriber;
  TALLY_RETURN_IF_ERROR(ValidatePrincipal(p));
  if (spec.name.size() > kMaxNameBytes) {
    return Status::InvalidArgument("key name has " + std::to_string(spec.name.size()) +
                                   " bytes, at most " + std::to_string(kMaxNameBytes) +
                                   " are allowed");
  }
  if (FindInvalidUtf8(spec.name) != std::string_view::npos) {
    return Status::InvalidArgument("key name is not valid UTF-8");
  }

  std::lock_guard lock(db_mu_);
  TALLY_ASSIGN_OR_RETURN(SqliteStmt insert,
                         db_->Prepare("INSERT OR IGNORE INTO api_keys (" + std::string(kColumns) +
                                      ") VALUES (?, ?, ?, ?, ?, ?, ?, NULL)"));
  // 62^8 ids make a collision rare; a few tries make a failure from one practically impossible.
  for (int attempt = 0; attempt < 8; ++attempt) {
    TALLY_ASSIGN_OR_RETURN(std::string id, RandomBase62(kIdLength));
    TALLY_ASSIGN_OR_RETURN(std::string secret, RandomBase62(kSecretLength));
    std::string key(kPrefix);
    key.append(id).append("_").append(secret);
    TALLY_ASSIGN_OR_RETURN(Digest hash, Sha256(key));
    insert.Bind(id, std::string_view(), std::string(Name(spec.role)), IdValue(spec.partner),
                IdValue(spec.subscriber), spec.name, now.micros);
    insert.BindBlob(2, AsBytes(hash));
    TALLY_RETURN_IF_ERROR(insert.Run());
    if (db_->Changes() == 0) continue;  // the id exists: draw another
    NewKey out;
    out.key = std::move(key);
    out.info.key_id = std::move(id);
    out.info.role = spec.role;
    out.info.partner = spec.partner;
    out.info.subscriber = spec.subscriber;
    out.info.name = spec.name;
    out.info.created_at = now;
    return out;
  }
  return Status::Internal("could not draw an unused key id in 8 attempts");
}

Result<Principal> KeyStore::Impl::Verify(std::string_view key) {
  TALLY_ASSIGN_OR_RETURN(ParsedKey parsed, ParseApiKey(key));
  TALLY_ASSIGN_OR_RETURN(Digest presented, Sha256(key));
  const auto now = options_.steady_now();
  {
    std::shared_lock lock(cache_mu_);
    auto it = cache_.find(parsed.key_id);
    if (it != cache_.end() && now - it->second.checked < options_.recheck_after) {
      return Decide(it->second.row, presented);
    }
  }
  // Not cached, or cached too long ago: read the row (a revocation by another process shows up
  // here), and refresh the cache while still holding db_mu_ so that a concurrent Revoke cannot
  // be overwritten by the older row read here.
  std::lock_guard db_lock(db_mu_);
  TALLY_ASSIGN_OR_RETURN(std::optional<Row> row, Lookup(parsed.key_id));
  std::unique_lock lock(cache_mu_);
  if (!row) {
    if (auto it = cache_.find(parsed.key_id); it != cache_.end()) cache_.erase(it);
    return Status::InvalidArgument("no API key has id '" + std::string(parsed.key_id) + "'");
  }
  CacheEntry& entry = cache_[std::string(parsed.key_id)];
  entry.row = std::move(*row);
  entry.checked = now;
  return Decide(entry.row, presented);
}

Result<std::vector<KeyInfo>> KeyStore::Impl::List() {
  std::lock_guard lock(db_mu_);
  TALLY_ASSIGN_OR_RETURN(SqliteStmt s, db_->Prepare("SELECT " + std::string(kColumns) +
                                                    " FROM api_keys ORDER BY rowid"));
  std::vector<KeyInfo> out;
  for (;;) {
    TALLY_ASSIGN_OR_RETURN(bool more, s.Step());
    if (!more) break;
    TALLY_ASSIGN_OR_RETURN(Row row, ReadRow(s));
    out.push_back(std::move(row.info));
  }
  return out;
}

Result<KeyInfo> KeyStore::Impl::Revoke(std::string_view key_id, Timestamp now) {
  std::lock_guard db_lock(db_mu_);
  TALLY_ASSIGN_OR_RETURN(
      SqliteStmt s,
      db_->Prepare("UPDATE api_keys SET revoked_at = ? WHERE key_id = ? AND revoked_at IS NULL"));
  s.Bind(now.micros, key_id);
  TALLY_RETURN_IF_ERROR(s.Run());
  TALLY_ASSIGN_OR_RETURN(std::optional<Row> row, Lookup(key_id));
  if (!row) return Status::NotFound("no API key has id '" + std::string(key_id) + "'");
  // Drop the cached entry: the next Verify of this key reads the revoked row.
  std::unique_lock lock(cache_mu_);
  if (auto it = cache_.find(key_id); it != cache_.end()) cache_.erase(it);
  return row->info;
}

// ---- Construction -----------------------------------------------------------------------------

Result<std::unique_ptr<KeyStore>> KeyStore::Open(const std::string& dir, Options options) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::IOError("cannot create directory " + dir + ": " + ec.message());
  const std::string path = (std::filesystem::path(dir) / "keys.sqlite").string();
  TALLY_RETURN_IF_ERROR(CreatePrivateFile(path));
  TALLY_ASSIGN_OR_RETURN(std::unique_ptr<SqliteDb> db, SqliteDb::Open(path));
  TALLY_RETURN_IF_ERROR(db->Exec(kSchema));
  return std::unique_ptr<KeyStore>(
      new KeyStore(std::make_unique<Impl>(std::move(db), std::move(options))));
}

KeyStore::KeyStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
KeyStore::~KeyStore() = default;

Result<NewKey> KeyStore::Create(const KeySpec& spec, Timestamp now) {
  return impl_->Create(spec, now);
}
Result<Principal> KeyStore::Verify(std::string_view key) {
  return impl_->Verify(key);
}
Result<std::vector<KeyInfo>> KeyStore::List() {
  return impl_->List();
}
Result<KeyInfo> KeyStore::Revoke(std::string_view key_id, Timestamp now) {
  return impl_->Revoke(key_id, now);
}

}  // namespace tally
