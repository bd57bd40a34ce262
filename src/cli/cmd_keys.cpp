// `tally keys`: API keys and embed tokens of a data directory (docs/security.md).
//
//   tally keys create --data DIR --role R [--partner P] [--subscriber S] [--name TEXT] [--json]
//   tally keys list   --data DIR [--json]
//   tally keys revoke --data DIR KEY_ID
//   tally keys token  --data DIR --role partner --partner 7 [--dashboards a,b] [--ttl 1h] [--json]
//
// As in `tally ledger`, flags are taken as text and parsed here, so a bad value is a usage error
// (exit 2) whose message names the flag. A refused operation (an unknown key id, an unreadable
// data directory) exits 1.

#include <algorithm>
#include <charconv>
#include <chrono>
#include <iomanip>
#include <iostream>
#include <memory>
#include <utility>
#include <vector>

#include "api/auth.h"
#include "api/embed_token.h"
#include "api/key_store.h"
#include "cli/commands.h"
#include "core/text_buffer.h"
#include "core/utf8.h"

namespace tally {

namespace {

struct KeysFlags {
  std::string data;
  bool json = false;
  std::string role, partner, subscriber, name;
  std::string key_id;
  std::string dashboards = "*";
  std::string ttl = "1h";
  std::string jti;
};

int Report(std::string_view command, const Status& st, int code) {
  std::cerr << "tally keys " << command << ": " << st.message() << "\n";
  return code;
}
int UsageError(std::string_view command, const Status& st) {
  return Report(command, st, 2);
}
int Failed(std::string_view command, const Status& st) {
  return Report(command, st, 1);
}

// ---- Flag values ------------------------------------------------------------------------------

template <typename Id>
Result<std::optional<Id>> IdFlag(std::string_view flag, const std::string& text) {
  if (text.empty()) return std::optional<Id>();
  int64_t v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || p != text.data() + text.size() || !Id(v).valid()) {
    return Status::InvalidArgument(std::string(flag) + " '" + ValidUtf8OrEscaped(text) +
                                   "': expected an id of " + (Id(0).valid() ? "0" : "1") +
                                   " or more");
  }
  return std::optional<Id>(Id(v));
}

// The role and scope flags, checked against each other with messages that name the flags.
Result<Principal> ScopeFlags(const KeysFlags& f) {
  if (f.role.empty()) return Status::InvalidArgument("--role is required");
  auto role = ParseRole(f.role);
  if (!role.ok()) return role.status().WithContext("--role");
  Principal p;
  p.role = *role;
  TALLY_ASSIGN_OR_RETURN(p.partner, IdFlag<PartnerId>("--partner", f.partner));
  TALLY_ASSIGN_OR_RETURN(p.subscriber, IdFlag<SubscriberId>("--subscriber", f.subscriber));
  const std::string with = " with --role " + f.role;
  switch (p.role) {
    case Role::kPartner:
      if (!p.partner) return Status::InvalidArgument("--partner is required" + with);
      if (p.subscriber) {
        return Status::InvalidArgument("--subscriber is not allowed" + with +
                                       " (use --role subscriber for one subscriber)");
      }
      break;
    case Role::kSubscriber:
      if (!p.subscriber) return Status::InvalidArgument("--subscriber is required" + with);
      break;
    default:
      if (p.partner || p.subscriber) {
        return Status::InvalidArgument(std::string(p.partner ? "--partner" : "--subscriber") +
                                       " is not allowed" + with + ", which sees every tenant");
      }
  }
  TALLY_RETURN_IF_ERROR(ValidatePrincipal(p));
  return p;
}

// "90s", "15m", "1h", "1d".
Result<std::chrono::seconds> DurationFlag(std::string_view flag, const std::string& text) {
  const auto bad = [&] {
    return Status::InvalidArgument(std::string(flag) + " '" + ValidUtf8OrEscaped(text) +
                                   "': expected a duration such as 90s, 15m, 1h or 1d");
  };
  if (text.size() < 2) return bad();
  int64_t n = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size() - 1, n);
  if (ec != std::errc() || p != text.data() + text.size() - 1 || n <= 0 || n > 1'000'000) {
    return bad();
  }
  switch (text.back()) {
    case 's':
      return std::chrono::seconds(n);
    case 'm':
      return std::chrono::seconds(n * 60);
    case 'h':
      return std::chrono::seconds(n * 3600);
    case 'd':
      return std::chrono::seconds(n * 86400);
    default:
      return bad();
  }
}

Result<std::vector<std::string>> ListFlag(std::string_view flag, const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    const size_t comma = text.find(',', start);
    std::string item = text.substr(start, comma == std::string::npos ? comma : comma - start);
    while (!item.empty() && item.back() == ' ') item.pop_back();
    while (!item.empty() && item.front() == ' ') item.erase(0, 1);
    if (item.empty() || FindInvalidUtf8(item) != std::string::npos) {
      return Status::InvalidArgument(std::string(flag) + " '" + ValidUtf8OrEscaped(text) +
                                     "': expected comma-separated dashboard names");
    }
    out.push_back(std::move(item));
    if (comma == std::string::npos) return out;
    start = comma + 1;
  }
}

// ---- Output -----------------------------------------------------------------------------------

void PutOptionalId(TextBuffer& out, const auto& id) {
  if (id) {
    out.PutInt(id->value());
  } else {
    out.Put("null");
  }
}

void PutKeyInfo(TextBuffer& out, const KeyInfo& k) {
  out.Put("\"key_id\":");
  out.PutJsonString(k.key_id);
  out.Put(",\"role\":");
  out.PutJsonString(Name(k.role));
  out.Put(",\"partner\":");
  PutOptionalId(out, k.partner);
  out.Put(",\"subscriber\":");
  PutOptionalId(out, k.subscriber);
  out.Put(",\"name\":");
  out.PutJsonString(ValidUtf8OrEscaped(k.name));
  out.Put(",\"created_at\":\"");
  out.PutTimestamp(k.created_at);
  out.Put("\",\"revoked_at\":");
  if (k.revoked_at) {
    out.Put('"');
    out.PutTimestamp(*k.revoked_at);
    out.Put('"');
  } else {
    out.Put("null");
  }
}

// "2026-01-02T03:04:05Z": whole seconds, so the list's columns line up.
std::string Seconds(Timestamp t) {
  return FormatTimestamp(Timestamp::FromSeconds(t.seconds()));
}

std::string ScopeOf(const KeyInfo& k) {
  Principal p;
  p.role = k.role;
  p.partner = k.partner;
  p.subscriber = k.subscriber;
  return p.Scope();
}

// ---- Subcommands ------------------------------------------------------------------------------

Result<std::unique_ptr<KeyStore>> OpenStore(const KeysFlags& f) {
  return KeyStore::Open(f.data);
}

int Create(const KeysFlags& f) {
  auto scope = ScopeFlags(f);
  if (!scope.ok()) return UsageError("create", scope.status());
  if (FindInvalidUtf8(f.name) != std::string::npos) {
    return UsageError("create", Status::InvalidArgument("--name is not valid UTF-8"));
  }
  auto store = OpenStore(f);
  if (!store.ok()) return Failed("create", store.status());
  KeySpec spec{scope->role, scope->partner, scope->subscriber, f.name};
  auto key = (*store)->Create(spec, WallClock());
  if (!key.ok()) return Failed("create", key.status());
  if (f.json) {
    TextBuffer out(512);
    out.Put('{');
    PutKeyInfo(out, key->info);
    out.Put(",\"key\":");
    out.PutJsonString(key->key);
    out.Put('}');
    std::cout << out.view() << "\n";
    return 0;
  }
  std::cout << "created API key " << key->info.key_id << " (" << ScopeOf(key->info)
            << (f.name.empty() ? "" : ", '" + f.name + "'") << ")\n"
            << key->key << "\n"
            << "This is the only time the key is shown: store it now. tally keeps only its "
               "SHA-256 hash.\n";
  return 0;
}

int List(const KeysFlags& f) {
  auto store = OpenStore(f);
  if (!store.ok()) return Failed("list", store.status());
  auto keys = (*store)->List();
  if (!keys.ok()) return Failed("list", keys.status());
  if (f.json) {
    TextBuffer out(4096);
    out.Put("{\"keys\":[");
    for (size_t i = 0; i < keys->size(); ++i) {
      if (i) out.Put(',');
      out.Put('{');
      PutKeyInfo(out, (*keys)[i]);
      out.Put('}');
    }
    out.Put("]}");
    std::cout << out.view() << "\n";
    return 0;
  }
  if (keys->empty()) {
    std::cout << "no API keys in " << f.data << " (create one with `tally keys create`)\n";
    return 0;
  }
  std::cout << std::left << std::setw(10) << "KEY_ID" << std::setw(16) << "SCOPE" << std::setw(22)
            << "CREATED" << std::setw(22) << "REVOKED"
            << "NAME\n";
  for (const KeyInfo& k : *keys) {
    std::cout << std::setw(10) << k.key_id << std::setw(16) << ScopeOf(k) << std::setw(22)
              << Seconds(k.created_at) << std::setw(22)
              << (k.revoked_at ? Seconds(*k.revoked_at) : std::string("-"))
              << ValidUtf8OrEscaped(k.name) << "\n";
  }
  return 0;
}

int Revoke(const KeysFlags& f) {
  std::string id = f.key_id;
  // A whole key names its id too.
  if (auto parsed = ParseApiKey(id); parsed.ok()) id = std::string(parsed->key_id);
  const bool well_formed =
      id.size() == 8 && std::all_of(id.begin(), id.end(), [](char c) {
        return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
      });
  if (!well_formed) {
    return UsageError(
        "revoke", Status::InvalidArgument((id.empty() ? std::string("KEY_ID is required")
                                                      : "KEY_ID '" + ValidUtf8OrEscaped(id) +
                                                            "': expected the 8-character id that "
                                                            "`tally keys list` shows")));
  }
  auto store = OpenStore(f);
  if (!store.ok()) return Failed("revoke", store.status());
  const Timestamp now = WallClock();
  auto info = (*store)->Revoke(id, now);
  if (!info.ok()) return Failed("revoke", info.status());
  if (info->revoked_at && *info->revoked_at != now) {
    std::cout << "API key " << id << " was already revoked at "
              << FormatTimestamp(*info->revoked_at) << "\n";
  } else {
    std::cout << "revoked API key " << id << " (" << ScopeOf(*info) << ")\n";
  }
  return 0;
}

int Token(const KeysFlags& f) {
  auto scope = ScopeFlags(f);
  if (!scope.ok()) return UsageError("token", scope.status());
  if (scope->role != Role::kPartner && scope->role != Role::kSubscriber) {
    return UsageError("token",
                      Status::InvalidArgument("--role " + f.role +
                                              ": embed tokens are for role partner or subscriber"));
  }
  auto ttl = DurationFlag("--ttl", f.ttl);
  if (!ttl.ok()) return UsageError("token", ttl.status());
  const EmbedTokens::Options options;
  if (*ttl > options.max_lifetime) {
    return UsageError("token", Status::InvalidArgument(
                                   "--ttl " + f.ttl + " exceeds the longest token lifetime, " +
                                   std::to_string(options.max_lifetime.count() / 3600) + "h"));
  }
  auto dashboards = ListFlag("--dashboards", f.dashboards);
  if (!dashboards.ok()) return UsageError("token", dashboards.status());
  // A misspelt page would make a token that opens nothing (docs/security.md lists the pages).
  for (const std::string& d : *dashboards) {
    if (d == "*") continue;
    if (auto page = ParseEnum<Dashboard>(d); !page.ok()) {
      return UsageError("token", page.status().WithContext("--dashboards"));
    }
  }
  if (FindInvalidUtf8(f.jti) != std::string::npos) {
    return UsageError("token", Status::InvalidArgument("--jti is not valid UTF-8"));
  }

  auto secret = LoadOrCreateEmbedSecret(f.data);
  if (!secret.ok()) return Failed("token", secret.status());
  auto tokens = EmbedTokens::Create(std::move(*secret), options);
  if (!tokens.ok()) return Failed("token", tokens.status());

  EmbedClaims c;
  c.role = scope->role;
  c.partner = scope->partner;
  c.subscriber = scope->subscriber;
  c.dashboards = std::move(*dashboards);
  const Timestamp now = Timestamp::FromSeconds(WallClock().seconds());
  c.iat = now;
  c.exp = Timestamp{now.micros + ttl->count() * kMicrosPerSecond};
  if (f.jti.empty()) {
    auto jti = RandomBase62(16);
    if (!jti.ok()) return Failed("token", jti.status());
    c.jti = *jti;
  } else {
    c.jti = f.jti;
  }
  auto token = tokens->Sign(c);
  if (!token.ok()) return UsageError("token", token.status());
  if (f.json) {
    TextBuffer out(1024);
    out.Put("{\"token\":");
    out.PutJsonString(*token);
    out.Put(",\"jti\":");
    out.PutJsonString(c.jti);
    out.Put(",\"scope\":");
    out.PutJsonString(c.ExpectedSubject());
    out.Put(",\"expires_at\":\"");
    out.PutTimestamp(c.exp);
    out.Put("\"}");
    std::cout << out.view() << "\n";
    return 0;
  }
  // The token alone on stdout, so TOKEN=$(tally keys token ...) works; the rest on stderr.
  std::cout << *token << std::endl;
  std::cerr << "embed token " << c.jti << " for " << c.ExpectedSubject() << ", expires "
            << FormatTimestamp(c.exp) << "\n";
  return 0;
}

using Subcommand = int (*)(const KeysFlags&);

}  // namespace

CommandFn RegisterKeys(CLI::App& app, CliContext& /*ctx*/) {
  auto f = std::make_shared<KeysFlags>();
  app.require_subcommand(1);
  app.fallthrough();
  app.add_option("--data", f->data, "Data directory; keys are in DIR/keys.sqlite (required)");
  app.add_flag("--json", f->json, "Print JSON instead of text");

  std::vector<std::pair<CLI::App*, Subcommand>> subs;
  auto sub = [&](const char* name, const char* help, Subcommand run) {
    CLI::App* s = app.add_subcommand(name, help);
    s->fallthrough();  // --data and --json may come after the subcommand too
    subs.emplace_back(s, run);
    return s;
  };
  auto scope = [&](CLI::App* s) {
    s->add_option("--role", f->role, "admin, analyst, agent, partner or subscriber (required)");
    s->add_option("--partner", f->partner, "Partner id (required for role partner)");
    s->add_option("--subscriber", f->subscriber, "Subscriber id (required for role subscriber)");
  };

  CLI::App* create =
      sub("create", "Create an API key; it is printed once and stored hashed", Create);
  scope(create);
  create->add_option("--name", f->name, "A label for the key, e.g. the app that uses it");

  sub("list", "List API keys (never their secrets)", List);
  sub("revoke", "Revoke an API key by its id", Revoke)
      ->add_option("key_id", f->key_id, "The key's 8-character id, as `tally keys list` shows");

  CLI::App* token = sub(
      "token", "Print a signed embed token (HS256 JWT) with the secret in DIR/embed.secret", Token);
  scope(token);
  token->add_option("--dashboards", f->dashboards,
                    "Comma-separated dashboards the token opens; * for all [*]");
  token->add_option("--ttl", f->ttl, "Lifetime, e.g. 15m or 1h; at most 24h [1h]");
  token->add_option("--jti", f->jti, "Token id recorded in the audit log [random]");

  return [f, subs]() {
    for (const auto& [s, run] : subs) {
      if (!s->parsed()) continue;
      if (f->data.empty()) {
        return UsageError(s->get_name(), Status::InvalidArgument("--data is required"));
      }
      return run(*f);
    }
    return 2;
  };
}

}  // namespace tally
