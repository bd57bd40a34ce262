// The security primitives: roles and principals, masking by role, API keys (hashed, revocable,
// cached), HS256 embed tokens (strict verification, cross-checked against PyJWT), per-key rate
// limits with an injected clock, the audit log, and `tally keys` as a user runs it.

#include "api/auth.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <simdjson.h>
#include <sys/stat.h>

#include <atomic>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "api/audit_log.h"
#include "api/embed_token.h"
#include "api/key_store.h"
#include "api/rate_limiter.h"
#include "core/utf8.h"
#include "world_fixture.h"

namespace tally {
namespace {

using testing::ReadFile;
using testing::RunTally;
using testing::TempDir;

bool Contains(const std::string& haystack, std::string_view needle) {
  return haystack.find(needle) != std::string::npos;
}

int FileMode(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return -1;
  return static_cast<int>(st.st_mode & 0777);
}

// ---- Roles and principals ---------------------------------------------------------------------

TEST(AuthRole, ParsesEveryRoleAndNamesAnUnknownOne) {
  for (Role r : {Role::kAdmin, Role::kAnalyst, Role::kAgent, Role::kPartner, Role::kSubscriber}) {
    auto parsed = ParseRole(Name(r));
    ASSERT_TRUE(parsed.ok()) << Name(r);
    EXPECT_EQ(*parsed, r);
  }
  auto bad = ParseRole("superuser");
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(Contains(bad.status().message(), "'superuser'")) << bad.status().message();
  EXPECT_TRUE(Contains(bad.status().message(), "partner")) << bad.status().message();
  EXPECT_FALSE(ParseRole("Admin").ok());  // names are exact
  EXPECT_FALSE(ParseRole("").ok());
}

Principal Make(Role role, std::optional<int64_t> partner, std::optional<int64_t> subscriber) {
  Principal p;
  p.role = role;
  if (partner) p.partner = PartnerId(*partner);
  if (subscriber) p.subscriber = SubscriberId(*subscriber);
  return p;
}

TEST(AuthRole, PrincipalInvariantsHoldForEveryRole) {
  EXPECT_TRUE(ValidatePrincipal(Make(Role::kPartner, 7, {})).ok());
  EXPECT_TRUE(ValidatePrincipal(Make(Role::kPartner, 0, {})).ok());  // the operator's own brand
  EXPECT_TRUE(ValidatePrincipal(Make(Role::kSubscriber, {}, 123)).ok());
  EXPECT_TRUE(ValidatePrincipal(Make(Role::kSubscriber, 7, 123)).ok());
  for (Role r : {Role::kAdmin, Role::kAnalyst, Role::kAgent}) {
    EXPECT_TRUE(ValidatePrincipal(Make(r, {}, {})).ok()) << Name(r);
    EXPECT_FALSE(ValidatePrincipal(Make(r, 7, {})).ok()) << Name(r);
    EXPECT_FALSE(ValidatePrincipal(Make(r, {}, 1)).ok()) << Name(r);
  }
  Status no_partner = ValidatePrincipal(Make(Role::kPartner, {}, {}));
  EXPECT_FALSE(no_partner.ok());
  EXPECT_TRUE(Contains(no_partner.message(), "requires a partner id")) << no_partner.message();
  EXPECT_FALSE(ValidatePrincipal(Make(Role::kPartner, 7, 123)).ok());
  Status no_subscriber = ValidatePrincipal(Make(Role::kSubscriber, 7, {}));
  EXPECT_TRUE(Contains(no_subscriber.message(), "requires a subscriber id"))
      << no_subscriber.message();
  EXPECT_FALSE(ValidatePrincipal(Make(Role::kPartner, -1, {})).ok());
  EXPECT_FALSE(ValidatePrincipal(Make(Role::kSubscriber, {}, 0)).ok());
  Principal empty_dashboard = Make(Role::kPartner, 7, {});
  empty_dashboard.dashboards = {"usage", ""};
  EXPECT_FALSE(ValidatePrincipal(empty_dashboard).ok());
}

TEST(AuthRole, ScopeAndDashboards) {
  EXPECT_EQ(Make(Role::kPartner, 7, {}).Scope(), "partner:7");
  EXPECT_EQ(Make(Role::kSubscriber, 7, 123).Scope(), "subscriber:123");
  EXPECT_EQ(Make(Role::kAnalyst, {}, {}).Scope(), "analyst");
  Principal p = Make(Role::kPartner, 7, {});
  EXPECT_TRUE(p.AllowsDashboard("anything"));  // empty list: an API key, any dashboard
  p.dashboards = {"usage", "billing"};
  EXPECT_TRUE(p.AllowsDashboard("usage"));
  EXPECT_FALSE(p.AllowsDashboard("funnel"));
  p.dashboards = {"*"};
  EXPECT_TRUE(p.AllowsDashboard("funnel"));
}

// ---- Masking ----------------------------------------------------------------------------------

TEST(AuthMask, WhoSeesWhatMatchesThePolicyTable) {
  // role -> {msisdn, imsi, name} in full?
  const std::map<Role, std::array<bool, 3>> table = {
      {Role::kAdmin, {true, true, true}},      {Role::kAnalyst, {false, false, false}},
      {Role::kAgent, {true, false, true}},     {Role::kPartner, {false, false, false}},
      {Role::kSubscriber, {true, true, true}},
  };
  for (const auto& [role, sees] : table) {
    EXPECT_EQ(Sees(role, SensitiveField::kMsisdn), sees[0]) << Name(role);
    EXPECT_EQ(Sees(role, SensitiveField::kImsi), sees[1]) << Name(role);
    EXPECT_EQ(Sees(role, SensitiveField::kName), sees[2]) << Name(role);
  }
}

TEST(AuthMask, MaskedValuesPerRole) {
  const std::string msisdn = "12025551234", imsi = "310260123456789", name = "Ana María López";
  struct Row {
    Role role;
    std::string msisdn, imsi, name;
  };
  const std::vector<Row> rows = {
      {Role::kAdmin, msisdn, imsi, name},
      {Role::kAnalyst, "*******1234", "31026**********", "A. M. L."},
      {Role::kAgent, msisdn, "31026**********", name},
      {Role::kPartner, "*******1234", "31026**********", "A. M. L."},
      {Role::kSubscriber, msisdn, imsi, name},
  };
  for (const Row& r : rows) {
    EXPECT_EQ(MaskMsisdn(msisdn, r.role), r.msisdn) << Name(r.role);
    EXPECT_EQ(MaskImsi(imsi, r.role), r.imsi) << Name(r.role);
    EXPECT_EQ(MaskName(name, r.role), r.name) << Name(r.role);
    EXPECT_EQ(Mask(SensitiveField::kMsisdn, msisdn, r.role), r.msisdn);
    EXPECT_EQ(Mask(SensitiveField::kImsi, imsi, r.role), r.imsi);
    EXPECT_EQ(Mask(SensitiveField::kName, name, r.role), r.name);
  }
  EXPECT_EQ(MaskMsisdn("+14155551234", Role::kAnalyst), "********1234");
}

TEST(AuthMask, ShortEmptyAndUtf8ValuesAreMaskedSafely) {
  const Role r = Role::kAnalyst;
  EXPECT_EQ(MaskMsisdn("", r), "");
  EXPECT_EQ(MaskMsisdn("1234", r), "****");        // keeping 4 would show all of it
  EXPECT_EQ(MaskMsisdn("1234567", r), "*******");  // under 8: masked completely
  EXPECT_EQ(MaskImsi("31026", r), "*****");
  EXPECT_EQ(MaskImsi("", r), "");
  EXPECT_EQ(MaskName("", r), "");
  EXPECT_EQ(MaskName("   ", r), "");
  EXPECT_EQ(MaskName("  jean   paul ", r), "j. p.");
  EXPECT_EQ(MaskName("Émile Zola", r), "É. Z.");
  EXPECT_EQ(MaskName("张伟", r), "张.");
  EXPECT_EQ(MaskName("\xF0\x9F\x98\x80 Smith", r), "\xF0\x9F\x98\x80. S.");
  EXPECT_EQ(MaskName("\xFF\xFE", r), "*");  // invalid UTF-8: nothing of it is shown
  EXPECT_EQ(MaskMsisdn("1202555\xC3", r), "********");
  // Arabic-Indic digits take two bytes each: the last four are kept whole.
  const std::string arabic = "\xD9\xA1\xD9\xA2\xD9\xA3\xD9\xA4\xD9\xA5\xD9\xA6\xD9\xA7\xD9\xA8";
  const std::string masked = MaskMsisdn(arabic, r);
  EXPECT_EQ(masked, "****\xD9\xA5\xD9\xA6\xD9\xA7\xD9\xA8");
  for (const std::string& s : {masked, MaskName("Łukasz Żółć", r), MaskImsi(arabic + arabic, r)}) {
    EXPECT_EQ(FindInvalidUtf8(s), std::string_view::npos) << s;
  }
}

// ---- API keys ---------------------------------------------------------------------------------

// A steady clock the test moves by hand.
struct FakeSteadyClock {
  std::shared_ptr<std::atomic<int64_t>> ms = std::make_shared<std::atomic<int64_t>>(1'000'000);
  std::function<std::chrono::steady_clock::time_point()> Fn() const {
    auto p = ms;
    return [p] { return std::chrono::steady_clock::time_point(std::chrono::milliseconds(*p)); };
  }
  void Advance(std::chrono::milliseconds d) { *ms += d.count(); }
};

std::unique_ptr<KeyStore> MustOpen(const std::string& dir, KeyStore::Options o = {}) {
  auto s = KeyStore::Open(dir, std::move(o));
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return s.ok() ? std::move(*s) : nullptr;
}

NewKey MustCreate(KeyStore& store, KeySpec spec) {
  auto k = store.Create(spec, Timestamp::FromSeconds(1'760'000'000));
  EXPECT_TRUE(k.ok()) << k.status().ToString();
  return k.ok() ? *k : NewKey{};
}

// A key's shape: tly_ + 8 base62 + _ + 32 base62. (No std::regex: GCC 12 warns inside it at -O1.)
bool IsKeyShape(std::string_view k) {
  if (k.size() != 45 || k.substr(0, 4) != "tly_" || k[12] != '_') return false;
  for (size_t i = 4; i < k.size(); ++i) {
    if (i != 12 && !std::isalnum(static_cast<unsigned char>(k[i]))) return false;
  }
  return true;
}

// The first key-shaped run in `text`, or "".
std::string FindKey(std::string_view text) {
  for (size_t at = text.find("tly_"); at != std::string_view::npos;
       at = text.find("tly_", at + 1)) {
    if (IsKeyShape(text.substr(at, 45))) return std::string(text.substr(at, 45));
  }
  return "";
}

// The first run that looks like a JWT ("eyJ" then base64url characters and dots), or "".
std::string FindToken(std::string_view text) {
  const size_t at = text.find("eyJ");
  if (at == std::string_view::npos) return "";
  size_t end = at;
  while (end < text.size() && (std::isalnum(static_cast<unsigned char>(text[end])) ||
                               text[end] == '_' || text[end] == '-' || text[end] == '.')) {
    ++end;
  }
  return std::string(text.substr(at, end - at));
}

const KeySpec kPartner7{Role::kPartner, PartnerId(7), std::nullopt, "acme app"};

TEST(AuthKeys, CreatedKeyHasTheFormatAndVerifiesToItsPrincipal) {
  auto store = MustOpen(TempDir("keys_create"));
  NewKey k = MustCreate(*store, kPartner7);
  EXPECT_TRUE(IsKeyShape(k.key)) << k.key;
  EXPECT_EQ(k.key.substr(4, 8), k.info.key_id);
  auto p = store->Verify(k.key);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->role, Role::kPartner);
  EXPECT_EQ(p->partner, PartnerId(7));
  EXPECT_FALSE(p->subscriber.has_value());
  EXPECT_EQ(p->key_id, k.info.key_id);
  EXPECT_EQ(p->expires, kNeverExpires);
  EXPECT_TRUE(p->dashboards.empty());
  // Twice, so the second answer comes from the cache.
  EXPECT_TRUE(store->Verify(k.key).ok());

  NewKey sub = MustCreate(*store, {Role::kSubscriber, PartnerId(7), SubscriberId(123), ""});
  auto ps = store->Verify(sub.key);
  ASSERT_TRUE(ps.ok());
  EXPECT_EQ(ps->subscriber, SubscriberId(123));
  EXPECT_EQ(ps->partner, PartnerId(7));
  EXPECT_NE(sub.info.key_id, k.info.key_id);
}

TEST(AuthKeys, CreateRefusesAnInvalidScope) {
  auto store = MustOpen(TempDir("keys_scope"));
  auto no_partner = store->Create({Role::kPartner, std::nullopt, std::nullopt, ""}, Timestamp{});
  ASSERT_FALSE(no_partner.ok());
  EXPECT_TRUE(Contains(no_partner.status().message(), "partner id"));
  EXPECT_FALSE(store->Create({Role::kAnalyst, PartnerId(1), std::nullopt, ""}, Timestamp{}).ok());
  EXPECT_FALSE(store->Create({Role::kAdmin, std::nullopt, std::nullopt, "\xFF"}, Timestamp{}).ok());
  EXPECT_TRUE(store->List()->empty());
}

TEST(AuthKeys, TamperedWrongPrefixUnknownAndMalformedKeysAreRefused) {
  auto store = MustOpen(TempDir("keys_refuse"));
  NewKey k = MustCreate(*store, kPartner7);
  const std::string secret = k.key.substr(13);

  auto expect_refused = [&](const std::string& key, std::string_view why) {
    auto p = store->Verify(key);
    ASSERT_FALSE(p.ok()) << key;
    EXPECT_EQ(p.status().code(), Status::Code::kInvalidArgument);
    EXPECT_TRUE(Contains(p.status().message(), why)) << p.status().message();
    EXPECT_FALSE(Contains(p.status().message(), secret)) << "the secret leaked into an error";
  };
  std::string tampered = k.key;
  tampered.back() = tampered.back() == 'a' ? 'b' : 'a';
  expect_refused(tampered, "does not match");
  std::string tampered_first = k.key;
  tampered_first[13] = tampered_first[13] == 'a' ? 'b' : 'a';
  expect_refused(tampered_first, "does not match");
  expect_refused("tlx_" + k.key.substr(4), "'tly_'");
  expect_refused("TLY_" + k.key.substr(4), "'tly_'");
  expect_refused("tly_ZZZZZZZZ_" + secret, "no API key has id 'ZZZZZZZZ'");
  expect_refused(k.key.substr(0, 44), "44 characters");
  expect_refused(k.key + "x", "46 characters");
  expect_refused("", "'tly_'");
  std::string bad_char = k.key;
  bad_char[20] = '-';
  expect_refused(bad_char, "outside");
  std::string no_sep = k.key;
  no_sep[12] = 'x';
  expect_refused(no_sep, "'_'");
  // The genuine key still works after all that.
  EXPECT_TRUE(store->Verify(k.key).ok());
}

TEST(AuthKeys, RevokedKeysAreRefusedAndListedWithTheirRevocation) {
  auto store = MustOpen(TempDir("keys_revoke"));
  NewKey a = MustCreate(*store, kPartner7);
  NewKey b = MustCreate(*store, {Role::kAnalyst, std::nullopt, std::nullopt, "bi"});
  ASSERT_TRUE(store->Verify(a.key).ok());  // cached before the revocation

  const Timestamp at = Timestamp::FromSeconds(1'760'000'100);
  auto revoked = store->Revoke(a.info.key_id, at);
  ASSERT_TRUE(revoked.ok()) << revoked.status().ToString();
  EXPECT_EQ(revoked->revoked_at, at);
  auto refused = store->Verify(a.key);
  ASSERT_FALSE(refused.ok());
  EXPECT_TRUE(Contains(refused.status().message(), "revoked at " + FormatTimestamp(at)))
      << refused.status().message();
  EXPECT_TRUE(store->Verify(b.key).ok());

  // Revoking again changes nothing and reports the first revocation.
  auto again = store->Revoke(a.info.key_id, Timestamp::FromSeconds(1'760'000'200));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->revoked_at, at);
  auto unknown = store->Revoke("ZZZZZZZZ", at);
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().code(), Status::Code::kNotFound);

  auto list = store->List();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].key_id, a.info.key_id);
  EXPECT_EQ((*list)[0].revoked_at, at);
  EXPECT_EQ((*list)[0].partner, PartnerId(7));
  EXPECT_EQ((*list)[0].name, "acme app");
  EXPECT_EQ((*list)[1].key_id, b.info.key_id);
  EXPECT_FALSE((*list)[1].revoked_at.has_value());
  EXPECT_EQ((*list)[1].role, Role::kAnalyst);
}

TEST(AuthKeys, RevocationSurvivesARestart) {
  const std::string dir = TempDir("keys_restart");
  NewKey k;
  {
    auto store = MustOpen(dir);
    k = MustCreate(*store, kPartner7);
    ASSERT_TRUE(store->Revoke(k.info.key_id, Timestamp::FromSeconds(1)).ok());
  }
  auto store = MustOpen(dir);
  EXPECT_FALSE(store->Verify(k.key).ok());
}

TEST(AuthKeys, TheSecretIsNeverStoredOnlyItsHash) {
  const std::string dir = TempDir("keys_secret");
  std::vector<NewKey> keys;
  {
    auto store = MustOpen(dir);
    for (int i = 0; i < 5; ++i) keys.push_back(MustCreate(*store, kPartner7));
    ASSERT_TRUE(store->Verify(keys[0].key).ok());
    ASSERT_TRUE(store->Revoke(keys[1].info.key_id, Timestamp::FromSeconds(5)).ok());
    // Read the files while the connection is open too (the WAL still holds the pages then).
    std::string bytes;
    for (const auto& e : std::filesystem::directory_iterator(dir)) {
      bytes += ReadFile(e.path().string());
    }
    for (const NewKey& k : keys) {
      EXPECT_FALSE(Contains(bytes, k.key.substr(13))) << "secret of " << k.info.key_id;
    }
  }
  std::string bytes;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    bytes += ReadFile(e.path().string());
  }
  ASSERT_FALSE(bytes.empty());
  for (const NewKey& k : keys) {
    EXPECT_FALSE(Contains(bytes, k.key)) << k.info.key_id;
    EXPECT_FALSE(Contains(bytes, k.key.substr(13))) << "secret of " << k.info.key_id;
    EXPECT_TRUE(Contains(bytes, k.info.key_id));
    // What is stored instead: the SHA-256 of the whole key.
    unsigned char d[32];
    unsigned int n = 0;
    ASSERT_EQ(EVP_Digest(k.key.data(), k.key.size(), d, &n, EVP_sha256(), nullptr), 1);
    EXPECT_TRUE(Contains(bytes, std::string_view(reinterpret_cast<char*>(d), n)));
  }
  EXPECT_EQ(FileMode(dir + "/keys.sqlite"), 0600);
}

TEST(AuthKeys, RevocationByAnotherProcessIsSeenOnceTheCacheEntryIsOld) {
  const std::string dir = TempDir("keys_recheck");
  FakeSteadyClock clock;
  KeyStore::Options o;
  o.recheck_after = std::chrono::seconds(5);
  o.steady_now = clock.Fn();
  auto server = MustOpen(dir, o);  // stands for `tally serve`
  auto cli = MustOpen(dir);        // stands for `tally keys revoke` in another process
  NewKey k = MustCreate(*cli, kPartner7);
  ASSERT_TRUE(server->Verify(k.key).ok());
  ASSERT_TRUE(cli->Revoke(k.info.key_id, Timestamp::FromSeconds(9)).ok());
  clock.Advance(std::chrono::milliseconds(4900));
  EXPECT_TRUE(server->Verify(k.key).ok()) << "within recheck_after the cached row is used";
  clock.Advance(std::chrono::milliseconds(100));
  EXPECT_FALSE(server->Verify(k.key).ok()) << "after recheck_after the row is read again";
  // A key created by the other process is usable at once (unknown ids are never cached).
  NewKey fresh = MustCreate(*cli, kPartner7);
  EXPECT_TRUE(server->Verify(fresh.key).ok());
}

TEST(AuthKeys, ConcurrentVerifiersNeverAcceptAKeyAfterItsRevocationReturns) {
  auto store = MustOpen(TempDir("keys_concurrent"));
  NewKey victim = MustCreate(*store, kPartner7);
  NewKey other = MustCreate(*store, kPartner7);
  std::atomic<bool> revoked{false}, stop{false};
  std::atomic<int64_t> accepted_after{0}, other_refused{0}, verified{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      while (!stop) {
        const bool was_revoked = revoked.load();
        if (store->Verify(victim.key).ok() && was_revoked) ++accepted_after;
        if (!store->Verify(other.key).ok()) ++other_refused;
        ++verified;
      }
    });
  }
  while (verified < 2000) std::this_thread::yield();
  ASSERT_TRUE(store->Revoke(victim.info.key_id, Timestamp::FromSeconds(1)).ok());
  revoked = true;
  const int64_t at_revoke = verified;
  while (verified < at_revoke + 2000) std::this_thread::yield();
  stop = true;
  for (auto& t : threads) t.join();
  EXPECT_EQ(accepted_after, 0);
  EXPECT_EQ(other_refused, 0);
}

TEST(AuthKeys, RandomBase62IsUniformEnough) {
  auto s = RandomBase62(62 * 1000);
  ASSERT_TRUE(s.ok());
  std::map<char, int> counts;
  for (char c : *s) ++counts[c];
  ASSERT_EQ(counts.size(), 62u);
  for (auto [c, n] : counts) {
    // Expected 1000 each, standard deviation about 31: 6 sigma either way.
    EXPECT_GT(n, 810) << c;
    EXPECT_LT(n, 1190) << c;
  }
}

// ---- Embed tokens -----------------------------------------------------------------------------

const std::string kSecret = "0123456789abcdefghijklmnopqrstuvwxyzABCD";  // 40 bytes
const Timestamp kNow = Timestamp::FromSeconds(1'760'000'000);

EmbedTokens MustTokens(EmbedTokens::Options o = {}) {
  auto t = EmbedTokens::Create(kSecret, o);
  EXPECT_TRUE(t.ok()) << t.status().ToString();
  return std::move(*t);
}

EmbedClaims PartnerClaims() {
  EmbedClaims c;
  c.role = Role::kPartner;
  c.partner = PartnerId(7);
  c.dashboards = {"usage", "billing"};
  c.iat = kNow;
  c.exp = Timestamp::FromSeconds(kNow.seconds() + 3600);
  c.jti = "tok-1";
  return c;
}

std::string MustSign(const EmbedTokens& t, const EmbedClaims& c) {
  auto s = t.Sign(c);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return s.ok() ? *s : "";
}

// A token with any header and payload text, signed with HMAC-SHA256 as an attacker with the
// secret (or a careless issuer) could.
std::string ForgeEncoded(const std::string& header_b64, const std::string& payload_b64,
                         const std::string& secret = kSecret) {
  std::string input = header_b64 + "." + payload_b64;
  unsigned char mac[32];
  unsigned int n = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &n);
  return input + "." + Base64UrlEncode({reinterpret_cast<char*>(mac), n});
}
std::string Forge(std::string_view header, std::string_view payload,
                  const std::string& secret = kSecret) {
  return ForgeEncoded(Base64UrlEncode(header), Base64UrlEncode(payload), secret);
}

constexpr std::string_view kHeader = R"({"alg":"HS256","typ":"JWT"})";

std::string PayloadJson(const std::string& extra_or_replacement) {
  return R"({"sub":"partner:7","role":"partner","partner":7,"dashboards":["usage"],)" +
         extra_or_replacement + "}";
}
std::string Times(int64_t iat, int64_t exp) {
  return "\"iat\":" + std::to_string(iat) + ",\"exp\":" + std::to_string(exp);
}

void ExpectRefused(const EmbedTokens& t, const std::string& token, std::string_view why,
                   Timestamp now = kNow) {
  auto c = t.Verify(token, now);
  ASSERT_FALSE(c.ok()) << token;
  EXPECT_EQ(c.status().code(), Status::Code::kInvalidArgument);
  EXPECT_TRUE(Contains(c.status().message(), why)) << c.status().message();
}

TEST(AuthJwt, SignedTokenRoundTripsWithEveryClaim) {
  EmbedTokens t = MustTokens();
  EmbedClaims in = PartnerClaims();
  in.nbf = kNow;
  const std::string token = MustSign(t, in);
  EXPECT_EQ(std::count(token.begin(), token.end(), '.'), 2);
  EXPECT_EQ(token.find('='), std::string::npos);
  auto out = t.Verify(token, kNow);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(out->sub, "partner:7");
  EXPECT_EQ(out->role, Role::kPartner);
  EXPECT_EQ(out->partner, PartnerId(7));
  EXPECT_FALSE(out->subscriber.has_value());
  EXPECT_EQ(out->dashboards, (std::vector<std::string>{"usage", "billing"}));
  EXPECT_EQ(out->iat, in.iat);
  EXPECT_EQ(out->exp, in.exp);
  EXPECT_EQ(out->nbf, in.nbf);
  EXPECT_EQ(out->jti, "tok-1");
  Principal p = out->ToPrincipal();
  EXPECT_TRUE(ValidatePrincipal(p).ok());
  EXPECT_EQ(p.key_id, "tok-1");
  EXPECT_EQ(p.expires, in.exp);
  EXPECT_TRUE(p.AllowsDashboard("billing"));
  EXPECT_FALSE(p.AllowsDashboard("funnel"));

  EmbedClaims sub;
  sub.role = Role::kSubscriber;
  sub.partner = PartnerId(0);
  sub.subscriber = SubscriberId(123);
  sub.dashboards = {"*"};
  sub.exp = Timestamp::FromSeconds(kNow.seconds() + 60);
  auto sub_out = t.Verify(MustSign(t, sub), kNow);
  ASSERT_TRUE(sub_out.ok()) << sub_out.status().ToString();
  EXPECT_EQ(sub_out->sub, "subscriber:123");
  EXPECT_EQ(sub_out->subscriber, SubscriberId(123));
  EXPECT_EQ(sub_out->partner, PartnerId(0));
  EXPECT_FALSE(sub_out->iat.has_value());
}

TEST(AuthJwt, TamperedPayloadOrSignatureDoesNotMatch) {
  EmbedTokens t = MustTokens();
  const std::string token = MustSign(t, PartnerClaims());
  const size_t d1 = token.find('.'), d2 = token.rfind('.');
  // Another partner's id in an otherwise identical payload.
  std::string payload = *Base64UrlDecode(token.substr(d1 + 1, d2 - d1 - 1), "payload");
  const size_t at = payload.find("\"partner\":7");
  ASSERT_NE(at, std::string::npos) << payload;
  payload.replace(at, 11, "\"partner\":8");
  const size_t sub_at = payload.find("partner:7");
  payload.replace(sub_at, 9, "partner:8");
  ExpectRefused(t, token.substr(0, d1 + 1) + Base64UrlEncode(payload) + token.substr(d2),
                "signature does not match");
  // One character of the signature changed.
  std::string sig = token;
  char& c = sig[d2 + 5];
  c = c == 'A' ? 'B' : 'A';
  ExpectRefused(t, sig, "signature does not match");
  ExpectRefused(t, token.substr(0, d2 + 1), "signature");  // no signature at all
  // Signed with another secret.
  auto other = EmbedTokens::Create(kSecret + "x");
  ExpectRefused(t, MustSign(*other, PartnerClaims()), "signature does not match");
}

TEST(AuthJwt, OnlyTheHs256HeaderIsAccepted) {
  EmbedTokens t = MustTokens();
  const std::string payload = PayloadJson(Times(kNow.seconds(), kNow.seconds() + 60));
  // alg none with an empty signature: the classic forgery.
  const std::string none =
      Base64UrlEncode(R"({"alg":"none","typ":"JWT"})") + "." + Base64UrlEncode(payload) + ".";
  ExpectRefused(t, none, "algorithm 'none' is not accepted");
  ExpectRefused(t, Forge(R"({"alg":"none"})", payload), "algorithm 'none'");
  ExpectRefused(t, Forge(R"({"alg":"HS512","typ":"JWT"})", payload), "algorithm 'HS512'");
  ExpectRefused(t, Forge(R"({"alg":"RS256","typ":"JWT"})", payload), "algorithm 'RS256'");
  ExpectRefused(t, Forge(R"({"alg":"hs256"})", payload), "algorithm 'hs256'");
  ExpectRefused(t, Forge(R"({"typ":"JWT"})", payload), "no 'alg'");
  ExpectRefused(t, Forge(R"({"alg":"HS256","typ":"JWS"})", payload), "'typ'");
  ExpectRefused(t, Forge(R"({"alg":"HS256","kid":"k1"})", payload), "'kid' is not supported");
  ExpectRefused(t, Forge(R"({"alg":"HS256","crit":["exp"]})", payload), "'crit'");
  ExpectRefused(t, Forge(R"({"alg":"HS256","alg":"none"})", payload), "twice");
  ExpectRefused(t, Forge(R"(["HS256"])", payload), "not a JSON object");
  // Without typ it is still a JWT.
  EXPECT_TRUE(t.Verify(Forge(R"({"alg":"HS256"})", payload), kNow).ok());
}

TEST(AuthJwt, RequiredClaimsAndTheirTypes) {
  EmbedTokens t = MustTokens();
  const int64_t n = kNow.seconds();
  ExpectRefused(t,
                Forge(kHeader, R"({"sub":"partner:7","role":"partner","partner":7,)"
                               R"("dashboards":["usage"],"iat":)" +
                                   std::to_string(n) + "}"),
                "claim 'exp' is missing");
  ExpectRefused(t, Forge(kHeader, PayloadJson(R"("iat":1,"exp":"tomorrow")")),
                "claim 'exp' must be an integer");
  ExpectRefused(t, Forge(kHeader, PayloadJson("\"exp\":" + std::to_string(n + 60) + ".5")),
                "claim 'exp' must be an integer");
  ExpectRefused(t,
                Forge(kHeader, R"({"role":"partner","partner":7,"dashboards":["u"],"exp":)" +
                                   std::to_string(n + 60) + "}"),
                "claim 'sub' is missing");
  ExpectRefused(t,
                Forge(kHeader, R"({"sub":"partner:7","role":"partner","partner":7,"exp":)" +
                                   std::to_string(n + 60) + "}"),
                "claim 'dashboards' is missing");
  ExpectRefused(t,
                Forge(kHeader, R"({"sub":"partner:7","role":"partner","partner":7,)"
                               R"("dashboards":[],"exp":)" +
                                   std::to_string(n + 60) + "}"),
                "lists no dashboard");
  ExpectRefused(t,
                Forge(kHeader, R"({"sub":"partner:8","role":"partner","partner":7,)"
                               R"("dashboards":["u"],"exp":)" +
                                   std::to_string(n + 60) + "}"),
                "claim 'sub' is 'partner:8' but the token's scope is 'partner:7'");
  ExpectRefused(t,
                Forge(kHeader, R"({"sub":"admin","role":"admin","dashboards":["u"],"exp":)" +
                                   std::to_string(n + 60) + "}"),
                "embed tokens are for role partner or subscriber");
  ExpectRefused(t,
                Forge(kHeader, R"({"sub":"partner:?","role":"partner","dashboards":["u"],"exp":)" +
                                   std::to_string(n + 60) + "}"),
                "requires a partner id");
  ExpectRefused(t,
                Forge(kHeader, R"({"sub":"partner:7","role":"partner","partner":"7",)"
                               R"("dashboards":["u"],"exp":)" +
                                   std::to_string(n + 60) + "}"),
                "claim 'partner' must be an integer");
  ExpectRefused(t, Forge(kHeader, PayloadJson("\"exp\":1,\"exp\":2")), "appears twice");
  ExpectRefused(t, Forge(kHeader, "not json"), "not valid JSON");
  // Unknown claims (iss, aud, ...) are the issuer's business and do not refuse a token.
  EXPECT_TRUE(
      t.Verify(Forge(kHeader, PayloadJson(Times(n, n + 60) + R"(,"iss":"app","aud":"x")")), kNow)
          .ok());
}

TEST(AuthJwt, ExpiryNotBeforeAndLeeway) {
  EmbedTokens t = MustTokens();
  EmbedClaims c = PartnerClaims();
  const std::string token = MustSign(t, c);
  EXPECT_TRUE(t.Verify(token, Timestamp{c.exp.micros - 1}).ok());
  ExpectRefused(t, token, "token expired at " + FormatTimestamp(c.exp), c.exp);
  ExpectRefused(t, token, "token expired at", Timestamp::FromSeconds(c.exp.seconds() + 3));

  EmbedTokens::Options lenient;
  lenient.leeway = std::chrono::seconds(5);
  EmbedTokens t5 = MustTokens(lenient);
  EXPECT_TRUE(t5.Verify(token, Timestamp::FromSeconds(c.exp.seconds() + 3)).ok());
  ExpectRefused(t5, token, "expired", Timestamp::FromSeconds(c.exp.seconds() + 5));

  EmbedClaims later = PartnerClaims();
  later.nbf = Timestamp::FromSeconds(kNow.seconds() + 600);
  const std::string not_yet = MustSign(t, later);
  ExpectRefused(t, not_yet, "not valid before " + FormatTimestamp(*later.nbf));
  EXPECT_TRUE(t.Verify(not_yet, *later.nbf).ok());
  EXPECT_TRUE(t5.Verify(not_yet, Timestamp::FromSeconds(later.nbf->seconds() - 5)).ok());

  EmbedClaims future = PartnerClaims();
  future.iat = Timestamp::FromSeconds(kNow.seconds() + 600);
  future.exp = Timestamp::FromSeconds(kNow.seconds() + 1200);
  ExpectRefused(t, MustSign(t, future), "issued in the future");
}

TEST(AuthJwt, LifetimeOverTheMaximumIsRefused) {
  EmbedTokens t = MustTokens();
  const int64_t n = kNow.seconds();
  EmbedClaims c = PartnerClaims();
  c.exp = Timestamp::FromSeconds(n + 25 * 3600);
  auto signed_long = t.Sign(c);
  ASSERT_FALSE(signed_long.ok());
  EXPECT_TRUE(Contains(signed_long.status().message(), "exceeds the maximum of 24h"));
  ExpectRefused(t, Forge(kHeader, PayloadJson(Times(n, n + 25 * 3600))),
                "token lifetime of 25h exceeds the maximum of 24h");
  EXPECT_TRUE(t.Verify(Forge(kHeader, PayloadJson(Times(n, n + 24 * 3600))), kNow).ok());
  // Without iat the lifetime counts from now.
  ExpectRefused(t, Forge(kHeader, PayloadJson("\"exp\":" + std::to_string(n + 30 * 3600))),
                "exceeds the maximum");
  EXPECT_TRUE(
      t.Verify(Forge(kHeader, PayloadJson("\"exp\":" + std::to_string(n + 3600))), kNow).ok());
  // A shorter configured maximum.
  EmbedTokens::Options short_lived;
  short_lived.max_lifetime = std::chrono::minutes(15);
  ExpectRefused(MustTokens(short_lived), MustSign(t, PartnerClaims()),
                "token lifetime of 1h exceeds the maximum of 15m");
}

TEST(AuthJwt, MalformedBase64urlAndStructureAreRefused) {
  EmbedTokens t = MustTokens();
  const std::string token = MustSign(t, PartnerClaims());
  const size_t d1 = token.find('.'), d2 = token.rfind('.');
  ExpectRefused(t, token.substr(0, d1) + "=" + token.substr(d1), "padded with '='");
  ExpectRefused(t, token + "=", "padded with '='");
  std::string plus = token;
  plus[3] = '+';
  ExpectRefused(t, plus, "token header has '+' at offset 3");
  // A payload that is signed but not base64url: refused for its encoding, not its signature.
  const std::string payload = token.substr(d1 + 1, d2 - d1 - 1);
  std::string bad_payload = payload;
  bad_payload[2] = '+';
  ExpectRefused(t, ForgeEncoded(token.substr(0, d1), bad_payload), "token payload has '+'");
  ExpectRefused(t, ForgeEncoded(token.substr(0, d1), payload + "=="), "token payload is padded");
  std::string slash = token;
  slash[1] = '/';
  ExpectRefused(t, slash, "not base64url");
  std::string space = token;
  space[d2 + 2] = ' ';
  ExpectRefused(t, space, "byte 32");
  ExpectRefused(t, "abc", "1 parts");
  ExpectRefused(t, token + ".x", "4 parts");
  ExpectRefused(t, std::string(EmbedTokens::kMaxTokenBytes + 1, 'a'), "bytes, more than");
  // A header of 1 mod 4 characters cannot be base64url.
  ExpectRefused(t, "eyJhb" + token.substr(d1), "impossible base64url length");
  // Non-canonical: "eyJ" + ... decoded fine, but a last character with stray low bits is not.
  auto canonical = Base64UrlDecode("YQ", "x");  // "a"
  ASSERT_TRUE(canonical.ok());
  EXPECT_EQ(*canonical, "a");
  auto stray = Base64UrlDecode("YR", "x");  // also "a" if the low bits were ignored
  ASSERT_FALSE(stray.ok());
  EXPECT_TRUE(Contains(stray.status().message(), "not canonical"));
}

TEST(AuthJwt, Base64urlRoundTripsEveryLength) {
  for (size_t n = 0; n < 64; ++n) {
    std::string bytes;
    for (size_t i = 0; i < n; ++i) bytes += static_cast<char>((i * 97 + n * 31) & 0xFF);
    const std::string enc = Base64UrlEncode(bytes);
    EXPECT_EQ(enc.find_first_of("+/="), std::string::npos);
    auto dec = Base64UrlDecode(enc, "x");
    ASSERT_TRUE(dec.ok()) << n << ": " << dec.status().ToString();
    EXPECT_EQ(*dec, bytes) << n;
  }
}

TEST(AuthJwt, SecretMustBeLongAndItsFilePrivate) {
  auto short_secret = EmbedTokens::Create("too short");
  ASSERT_FALSE(short_secret.ok());
  EXPECT_TRUE(Contains(short_secret.status().message(), "at least 32"));

  const std::string dir = TempDir("embed_secret");
  auto first = LoadOrCreateEmbedSecret(dir);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first->size(), 43u);
  EXPECT_EQ(FileMode(dir + "/embed.secret"), 0600);
  auto second = LoadOrCreateEmbedSecret(dir);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(*first, *second);
  EXPECT_NE(*first, *LoadOrCreateEmbedSecret(TempDir("embed_secret_2")));

  ::chmod((dir + "/embed.secret").c_str(), 0644);
  auto open = LoadOrCreateEmbedSecret(dir);
  ASSERT_FALSE(open.ok());
  EXPECT_TRUE(Contains(open.status().message(), "mode 0644")) << open.status().message();

  const std::string short_dir = TempDir("embed_secret_short");
  std::filesystem::create_directories(short_dir);
  std::ofstream(short_dir + "/embed.secret") << "hunter2\n";
  ::chmod((short_dir + "/embed.secret").c_str(), 0600);
  auto weak = LoadOrCreateEmbedSecret(short_dir);
  ASSERT_FALSE(weak.ok());
  EXPECT_TRUE(Contains(weak.status().message(), "at least 32")) << weak.status().message();
}

// ---- Cross-check with PyJWT (the reference implementation) ------------------------------------

// A python3 that can `import jwt`: $TALLY_PYTHON, the one on PATH, or Debian's (python3-jwt
// installs into Debian's python, which a pyenv or venv python on PATH does not see).
std::string PythonWithJwt() {
  std::vector<std::string> candidates;
  if (const char* env = std::getenv("TALLY_PYTHON")) candidates.emplace_back(env);
  candidates.emplace_back("python3");
  candidates.emplace_back("/usr/bin/python3");
  for (const std::string& py : candidates) {
    if (std::system((py + " -c 'import jwt' >/dev/null 2>&1").c_str()) == 0) return py;
  }
  return "";
}

// Runs a Python script with `args`, returning what it printed (stdout and stderr).
testing::TallyRun RunPython(const std::string& python, const std::string& script,
                            const std::string& args) {
  const std::string path = TempDir("pyjwt") + ".py";
  std::ofstream(path) << script;
  FILE* p = popen((python + " " + path + " " + args + " 2>&1").c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  const int status = pclose(p);
  std::filesystem::remove(path);
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

TEST(AuthJwt, TallyTokensVerifyInPyJwtAndPyJwtTokensVerifyInTally) {
  const std::string python = PythonWithJwt();
  if (python.empty()) GTEST_SKIP() << "python3 with the jwt module (Debian python3-jwt) not found";
  EmbedTokens t = MustTokens();
  const Timestamp now = Timestamp::FromSeconds(WallClock().seconds());

  // tally signs, PyJWT verifies and prints the claims it read.
  EmbedClaims c;
  c.role = Role::kSubscriber;
  c.partner = PartnerId(3);
  c.subscriber = SubscriberId(123);
  c.dashboards = {"usage", "bill"};
  c.iat = now;
  c.nbf = now;
  c.exp = Timestamp::FromSeconds(now.seconds() + 600);
  c.jti = "x-1";
  const std::string token = MustSign(t, c);
  const std::string decode = R"py(
import json, sys, jwt
claims = jwt.decode(sys.argv[1], sys.argv[2], algorithms=["HS256"],
                    options={"require": ["exp", "iat", "sub"]})
header = jwt.get_unverified_header(sys.argv[1])
print(json.dumps({"header": header, "claims": claims}, sort_keys=True))
)py";
  testing::TallyRun decoded = RunPython(python, decode, token + " " + kSecret);
  ASSERT_EQ(decoded.code, 0) << decoded.out;
  const std::string expected =
      R"({"claims": {"dashboards": ["usage", "bill"], "exp": )" + std::to_string(c.exp.seconds()) +
      R"(, "iat": )" + std::to_string(now.seconds()) + R"(, "jti": "x-1", "nbf": )" +
      std::to_string(now.seconds()) +
      R"(, "partner": 3, "role": "subscriber", "sub": "subscriber:123", "subscriber": 123}, )"
      R"("header": {"alg": "HS256", "typ": "JWT"}})";
  EXPECT_EQ(decoded.out, expected);
  // And PyJWT refuses it with another secret.
  testing::TallyRun wrong = RunPython(python, decode, token + " " + kSecret + "x");
  EXPECT_NE(wrong.code, 0);
  EXPECT_TRUE(Contains(wrong.out, "Signature verification failed")) << wrong.out;

  // PyJWT signs, tally verifies.
  const std::string encode = R"py(
import sys, jwt
now = int(sys.argv[2])
claims = {"sub": "partner:7", "role": "partner", "partner": 7, "dashboards": ["usage"],
          "iat": now, "exp": now + 900, "jti": "py-1", "iss": "operator-app"}
print(jwt.encode(claims, sys.argv[1], algorithm=sys.argv[3]))
)py";
  testing::TallyRun py =
      RunPython(python, encode, kSecret + " " + std::to_string(now.seconds()) + " HS256");
  ASSERT_EQ(py.code, 0) << py.out;
  auto verified = t.Verify(py.out, now);
  ASSERT_TRUE(verified.ok()) << verified.status().ToString() << " for " << py.out;
  EXPECT_EQ(verified->sub, "partner:7");
  EXPECT_EQ(verified->partner, PartnerId(7));
  EXPECT_EQ(verified->jti, "py-1");
  EXPECT_EQ(verified->exp, Timestamp::FromSeconds(now.seconds() + 900));
  ExpectRefused(t, py.out, "expired", Timestamp::FromSeconds(now.seconds() + 900));

  // A PyJWT token with the same secret but HS512 is refused for its algorithm.
  testing::TallyRun hs512 =
      RunPython(python, encode, kSecret + " " + std::to_string(now.seconds()) + " HS512");
  ASSERT_EQ(hs512.code, 0) << hs512.out;
  ExpectRefused(t, hs512.out, "algorithm 'HS512' is not accepted", now);
}

// ---- Rate limits ------------------------------------------------------------------------------

using SteadyTime = RateLimiter::Clock::time_point;
SteadyTime At(double seconds) {
  return SteadyTime(std::chrono::duration_cast<RateLimiter::Clock::duration>(
      std::chrono::duration<double>(1000 + seconds)));
}

std::unique_ptr<RateLimiter> MustLimiter(double rate, double burst, int idle_s = 60) {
  RateLimiter::Options o;
  o.rate_per_second = rate;
  o.burst = burst;
  o.idle_after = std::chrono::seconds(idle_s);
  auto l = RateLimiter::Create(o);
  EXPECT_TRUE(l.ok()) << l.status().ToString();
  return std::move(*l);
}

TEST(AuthRateLimiter, BurstThenRefusalWithRetryAfterThenRefill) {
  auto l = MustLimiter(1, 3);
  for (int i = 0; i < 3; ++i) {
    auto d = l->Take("k", At(0));
    EXPECT_TRUE(d.allowed) << i;
    EXPECT_EQ(d.remaining, 2 - i);
  }
  auto refused = l->Take("k", At(0));
  EXPECT_FALSE(refused.allowed);
  EXPECT_EQ(refused.retry_after_s, 1);
  EXPECT_FALSE(l->Take("k", At(0.5)).allowed);
  EXPECT_TRUE(l->Take("k", At(1.0)).allowed);
  EXPECT_FALSE(l->Take("k", At(1.0)).allowed);
  // Other keys have their own buckets.
  EXPECT_TRUE(l->Take("other", At(1.0)).allowed);
  // A long rest refills to the burst, not beyond.
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(l->Take("k", At(100)).allowed);
  EXPECT_FALSE(l->Take("k", At(100)).allowed);
}

TEST(AuthRateLimiter, RetryAfterIsWholeSecondsRoundedUp) {
  auto l = MustLimiter(0.25, 1);  // one request every 4 s
  EXPECT_TRUE(l->Take("k", At(0)).allowed);
  EXPECT_EQ(l->Take("k", At(0)).retry_after_s, 4);
  EXPECT_EQ(l->Take("k", At(1.5)).retry_after_s, 3);  // 2.5 s left
  EXPECT_EQ(l->Take("k", At(3.9)).retry_after_s, 1);  // 0.1 s left: still at least 1
  EXPECT_TRUE(l->Take("k", At(4.0)).allowed);

  auto fast = MustLimiter(1000, 1);
  EXPECT_TRUE(fast->Take("k", At(0)).allowed);
  auto d = fast->Take("k", At(0));
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.retry_after_s, 1);
  // A clock that steps back (threads racing) gives no tokens and breaks nothing.
  EXPECT_FALSE(fast->Take("k", At(-1)).allowed);
}

TEST(AuthRateLimiter, IdleBucketsAreEvictedOnlyOnceFull) {
  auto l = MustLimiter(10, 20, 60);
  for (int i = 0; i < 1000; ++i) l->Take("old-" + std::to_string(i), At(0));
  EXPECT_EQ(l->BucketCount(), 1000u);
  for (int i = 0; i < 1000; ++i) l->Take("new-" + std::to_string(i), At(61));
  EXPECT_EQ(l->BucketCount(), 1000u) << "every shard swept its idle buckets";

  // A bucket still refilling is kept: burst 100 at 1/s takes 100 s to refill, beyond idle_after.
  auto slow = MustLimiter(1, 100, 10);
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(slow->Take("k", At(0)).allowed);
  auto d = slow->Take("k", At(20));
  EXPECT_TRUE(d.allowed);
  EXPECT_EQ(d.remaining, 19) << "an evicted bucket would have come back full";
}

TEST(AuthRateLimiter, ConcurrentTakersShareOneBucketExactly) {
  auto l = MustLimiter(1, 100);
  std::atomic<int> allowed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) allowed += l->Take("shared", At(0)).allowed ? 1 : 0;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(allowed, 100);
}

TEST(AuthRateLimiter, BadOptionsAreRefused) {
  RateLimiter::Options o;
  o.rate_per_second = 0;
  EXPECT_FALSE(RateLimiter::Create(o).ok());
  o.rate_per_second = 1;
  o.burst = 0.5;
  EXPECT_FALSE(RateLimiter::Create(o).ok());
}

// ---- Audit log --------------------------------------------------------------------------------

std::vector<std::string> Lines(const std::string& path) {
  std::vector<std::string> out;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

AuditEntry Entry(int64_t second, std::string query) {
  AuditEntry e;
  e.time = Timestamp{Timestamp::FromSeconds(1'760'000'000 + second).micros + 123456};
  e.key_id = "AbCd1234";
  e.role = Role::kPartner;
  e.scope = "partner:7";
  e.method = "GET";
  e.route = "/v1/query";
  e.query = std::move(query);
  e.status = 200;
  e.rows = 42;
  e.duration_ms = 3.25;
  return e;
}

TEST(AuthAudit, LinesAreJsonWithEveryField) {
  const std::string dir = TempDir("audit_fields");
  auto log = AuditLog::Open(dir);
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  AuditEntry tricky = Entry(0, "measures=[\"revenue\"]\nfilter=\\ \xFF");
  (*log)->Record(tricky);
  AuditEntry anonymous;
  anonymous.time = tricky.time;
  anonymous.method = "POST";
  anonymous.route = "/v1/query";
  anonymous.status = 401;
  (*log)->Record(anonymous);
  ASSERT_TRUE((*log)->Close().ok());

  const std::string path = (*log)->PathFor(tricky.time.date());
  EXPECT_TRUE(Contains(path, "audit/audit-2025-10-09.ndjson")) << path;
  EXPECT_EQ(FileMode(path), 0600);
  const auto lines = Lines(path);
  ASSERT_EQ(lines.size(), 2u);
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  ASSERT_EQ(parser.parse(lines[0]).get(doc), simdjson::SUCCESS) << lines[0];
  EXPECT_EQ(std::string_view(doc["time"]), "2025-10-09T08:53:20.123456Z");
  EXPECT_EQ(std::string_view(doc["key_id"]), "AbCd1234");
  EXPECT_TRUE(doc["token_id"].is_null());
  EXPECT_EQ(std::string_view(doc["role"]), "partner");
  EXPECT_EQ(std::string_view(doc["scope"]), "partner:7");
  EXPECT_EQ(std::string_view(doc["method"]), "GET");
  EXPECT_EQ(std::string_view(doc["route"]), "/v1/query");
  EXPECT_EQ(std::string_view(doc["query"]), "measures=[\"revenue\"]\nfilter=\\ \\xFF");
  EXPECT_EQ(int64_t(doc["status"]), 200);
  EXPECT_EQ(int64_t(doc["rows"]), 42);
  EXPECT_DOUBLE_EQ(double(doc["duration_ms"]), 3.25);
  ASSERT_EQ(parser.parse(lines[1]).get(doc), simdjson::SUCCESS) << lines[1];
  EXPECT_TRUE(doc["role"].is_null());
  EXPECT_TRUE(doc["key_id"].is_null());
  EXPECT_EQ(int64_t(doc["status"]), 401);
}

TEST(AuthAudit, ConcurrentWritersProduceWholeValidLines) {
  const std::string dir = TempDir("audit_concurrent");
  AuditLog::Options o;
  o.flush_interval = std::chrono::milliseconds(20);
  o.max_queued_bytes = 64 << 10;  // small, so writers also meet the back-pressure path
  auto log = AuditLog::Open(dir, o);
  ASSERT_TRUE(log.ok());
  constexpr int kThreads = 8, kPerThread = 500;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        AuditEntry e = Entry(0, std::string(50 + (i % 7) * 40, 'q'));
        e.key_id = "t" + std::to_string(t) + "-" + std::to_string(i);
        (*log)->Record(e);
        if (i % 100 == 0) {
          EXPECT_TRUE((*log)->Flush().ok());
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_TRUE((*log)->Close().ok());
  const auto lines = Lines((*log)->PathFor(Entry(0, "").time.date()));
  ASSERT_EQ(lines.size(), size_t{kThreads * kPerThread});
  simdjson::dom::parser parser;
  std::set<std::string> ids;
  for (const std::string& line : lines) {
    simdjson::dom::element doc;
    ASSERT_EQ(parser.parse(line).get(doc), simdjson::SUCCESS) << line;
    ids.insert(std::string(std::string_view(doc["key_id"])));
  }
  EXPECT_EQ(ids.size(), size_t{kThreads * kPerThread});
}

TEST(AuthAudit, LinesReachTheFileWithinTheFlushIntervalAndByDay) {
  const std::string dir = TempDir("audit_interval");
  AuditLog::Options o;
  o.flush_interval = std::chrono::milliseconds(100);
  auto log = AuditLog::Open(dir, o);
  ASSERT_TRUE(log.ok());
  AuditEntry today = Entry(0, "a");
  AuditEntry tomorrow = Entry(86400, "b");
  (*log)->Record(today);
  (*log)->Record(tomorrow);
  const std::string p1 = (*log)->PathFor(today.time.date());
  const std::string p2 = (*log)->PathFor(tomorrow.time.date());
  ASSERT_NE(p1, p2);
  // No Flush: the writer's timer alone must get them there.
  for (int i = 0; i < 100 && (Lines(p1).empty() || Lines(p2).empty()); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(Lines(p1).size(), 1u);
  EXPECT_EQ(Lines(p2).size(), 1u);
}

TEST(AuthAudit, ATornLastLineFromACrashDoesNotSwallowTheNextOne) {
  const std::string dir = TempDir("audit_torn");
  AuditEntry e = Entry(0, "after the crash");
  {
    auto log = AuditLog::Open(dir);
    ASSERT_TRUE(log.ok());
    std::ofstream((*log)->PathFor(e.time.date()), std::ios::binary) << "{\"time\":\"2025-";
    (*log)->Record(e);
  }
  auto log = AuditLog::Open(dir);
  const auto lines = Lines((*log)->PathFor(e.time.date()));
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[1], AuditLine(e));
}

// ---- `tally keys` -----------------------------------------------------------------------------

std::string FieldOf(const std::string& json, const char* field) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(json).get(doc) != simdjson::SUCCESS) return "<not json: " + json + ">";
  std::string_view v;
  if (doc[field].get_string().get(v) != simdjson::SUCCESS) return "<no " + std::string(field) + ">";
  return std::string(v);
}

TEST(AuthKeysCli, CreateListRevokeAsAUserRunsThem) {
  const std::string dir = TempDir("keys_cli");
  auto created = RunTally("keys create --data " + dir +
                          " --role partner --partner 7 "
                          "--name 'acme app' --json");
  ASSERT_EQ(created.code, 0) << created.out;
  const std::string key = FieldOf(created.out, "key");
  const std::string id = FieldOf(created.out, "key_id");
  ASSERT_TRUE(IsKeyShape(key)) << key;
  EXPECT_EQ(key.substr(4, 8), id);

  auto text = RunTally("keys create --data " + dir + " --role analyst");
  ASSERT_EQ(text.code, 0) << text.out;
  EXPECT_TRUE(Contains(text.out, "only time the key is shown")) << text.out;
  const std::string analyst_key = FindKey(text.out);
  ASSERT_FALSE(analyst_key.empty()) << text.out;

  auto list = RunTally("keys list --data " + dir);
  ASSERT_EQ(list.code, 0) << list.out;
  EXPECT_TRUE(Contains(list.out, id));
  EXPECT_TRUE(Contains(list.out, "partner:7"));
  EXPECT_TRUE(Contains(list.out, "acme app"));
  EXPECT_TRUE(Contains(list.out, "analyst"));
  EXPECT_FALSE(Contains(list.out, key.substr(13))) << "list shows a secret";
  EXPECT_FALSE(Contains(list.out, analyst_key.substr(13))) << "list shows a secret";
  auto list_json = RunTally("keys list --json --data " + dir);
  ASSERT_EQ(list_json.code, 0);
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  ASSERT_EQ(parser.parse(list_json.out).get(doc), simdjson::SUCCESS) << list_json.out;
  EXPECT_EQ(simdjson::dom::array(doc["keys"]).size(), 2u);

  {
    auto store = MustOpen(dir);
    auto p = store->Verify(key);
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    EXPECT_EQ(p->partner, PartnerId(7));
  }
  auto revoke = RunTally("keys revoke --data " + dir + " " + id);
  ASSERT_EQ(revoke.code, 0) << revoke.out;
  EXPECT_TRUE(Contains(revoke.out, "revoked API key " + id)) << revoke.out;
  auto again = RunTally("keys revoke " + id + " --data " + dir);
  EXPECT_EQ(again.code, 0) << again.out;
  EXPECT_TRUE(Contains(again.out, "already revoked")) << again.out;
  {
    auto store = MustOpen(dir);
    EXPECT_FALSE(store->Verify(key).ok());
    EXPECT_TRUE(store->Verify(analyst_key).ok());
  }
  auto after = RunTally("keys list --data " + dir + " --json");
  ASSERT_EQ(parser.parse(after.out).get(doc), simdjson::SUCCESS) << after.out;
  EXPECT_TRUE(doc["keys"].at(0)["revoked_at"].is_string());
  EXPECT_TRUE(doc["keys"].at(1)["revoked_at"].is_null());

  auto unknown = RunTally("keys revoke --data " + dir + " ZZZZZZZZ");
  EXPECT_EQ(unknown.code, 1);
  EXPECT_TRUE(Contains(unknown.out, "ZZZZZZZZ")) << unknown.out;
}

TEST(AuthKeysCli, BadFlagsAreNamedAndExitTwo) {
  const std::string dir = TempDir("keys_cli_bad");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"keys create --data " + dir + " --role superuser", "--role"},
      {"keys create --data " + dir + " --role superuser", "'superuser'"},
      {"keys create --data " + dir, "--role is required"},
      {"keys create --data " + dir + " --role partner", "--partner is required"},
      {"keys create --data " + dir + " --role partner --partner seven", "--partner 'seven'"},
      {"keys create --data " + dir + " --role partner --partner -3", "--partner '-3'"},
      {"keys create --data " + dir + " --role subscriber --partner 1", "--subscriber is required"},
      {"keys create --data " + dir + " --role analyst --partner 1", "--partner is not allowed"},
      {"keys create --role admin", "--data is required"},
      {"keys revoke --data " + dir + " nope", "KEY_ID 'nope'"},
      {"keys revoke --data " + dir, "KEY_ID is required"},
      {"keys token --data " + dir + " --role admin", "embed tokens are for role partner"},
      {"keys token --data " + dir + " --role partner --partner 7 --ttl 48h", "--ttl 48h"},
      {"keys token --data " + dir + " --role partner --partner 7 --ttl soon", "--ttl 'soon'"},
      {"keys token --data " + dir + " --role partner --partner 7 --dashboards a,,b",
       "--dashboards"},
      {"keys token --data " + dir + " --role partner --partner 7 --dashboards overview,usage",
       "--dashboards: 'usage' is not a dashboard (expected one of overview, realtime"},
  };
  for (const auto& [args, expected] : cases) {
    auto r = RunTally(args);
    EXPECT_EQ(r.code, 2) << args << "\n" << r.out;
    EXPECT_TRUE(Contains(r.out, expected)) << args << "\n" << r.out;
  }
  // Nothing was created by the refused commands.
  auto list = RunTally("keys list --data " + dir + " --json");
  EXPECT_TRUE(Contains(list.out, "{\"keys\":[]}")) << list.out;
}

TEST(AuthKeysCli, TokenPrintsASignedEmbedTokenForTheScope) {
  const std::string dir = TempDir("keys_cli_token");
  auto r = RunTally("keys token --data " + dir +
                    " --role partner --partner 7 --dashboards overview,funnel --ttl 30m --json");
  ASSERT_EQ(r.code, 0) << r.out;
  const std::string token = FieldOf(r.out, "token");
  EXPECT_EQ(FieldOf(r.out, "scope"), "partner:7");
  EXPECT_EQ(FileMode(dir + "/embed.secret"), 0600);
  auto secret = LoadOrCreateEmbedSecret(dir);
  ASSERT_TRUE(secret.ok());
  auto tokens = EmbedTokens::Create(*secret);
  ASSERT_TRUE(tokens.ok());
  const Timestamp now = WallClock();
  auto claims = tokens->Verify(token, now);
  ASSERT_TRUE(claims.ok()) << claims.status().ToString() << "\n" << r.out;
  EXPECT_EQ(claims->partner, PartnerId(7));
  EXPECT_EQ(claims->dashboards, (std::vector<std::string>{"overview", "funnel"}));
  ASSERT_TRUE(claims->iat.has_value());
  EXPECT_EQ(claims->exp.seconds() - claims->iat->seconds(), 1800);
  EXPECT_FALSE(claims->jti.empty());
  EXPECT_FALSE(tokens->Verify(token, Timestamp::FromSeconds(now.seconds() + 1801)).ok());

  // Text mode: the token alone on stdout (the note goes to stderr).
  auto plain = RunTally("keys token --data " + dir + " --role subscriber --subscriber 5", "");
  ASSERT_EQ(plain.code, 0) << plain.out;
  const std::string plain_token = FindToken(plain.out);
  ASSERT_FALSE(plain_token.empty()) << plain.out;
  auto sub = tokens->Verify(plain_token, WallClock());
  ASSERT_TRUE(sub.ok()) << sub.status().ToString();
  EXPECT_EQ(sub->sub, "subscriber:5");
  EXPECT_EQ(sub->dashboards, std::vector<std::string>{"*"});
}

}  // namespace
}  // namespace tally

namespace tally {
namespace {

TEST(AuthRole, DashboardsOpenTheRoutesOfTheirPagesOnly) {
  Principal key = Make(Role::kPartner, 7, {});
  EXPECT_TRUE(key.OpensAny(DashboardBit(Dashboard::kFunnel)));  // API key: every dashboard
  Principal token = key;
  token.dashboards = {"subscriber", "nonsense"};
  EXPECT_TRUE(token.OpensAny(DashboardBit(Dashboard::kSubscriber)));
  EXPECT_FALSE(token.OpensAny(DashboardBit(Dashboard::kFunnel)));
  EXPECT_FALSE(token.OpensAny(0));
  token.dashboards = {"*"};
  EXPECT_TRUE(token.OpensAny(DashboardBit(Dashboard::kGeo)));
}

TEST(AuthRole, PrincipalJsonSaysWhoTheCallerIs) {
  Principal p = Make(Role::kSubscriber, 7, 123);
  EXPECT_EQ(PrincipalJson(p),
            R"({"role":"subscriber","partner":7,"subscriber":123,"dashboards":[],)"
            R"("expires":null,"via":"key"})");
  p.dashboards = {"subscriber"};
  p.expires = Timestamp::FromSeconds(1'760'000'000);
  EXPECT_EQ(PrincipalJson(p),
            R"({"role":"subscriber","partner":7,"subscriber":123,"dashboards":["subscriber"],)"
            R"("expires":"2025-10-09T08:53:20Z","via":"token"})");
}

}  // namespace
}  // namespace tally
