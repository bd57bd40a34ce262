#include "sql/pg_wire.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <charconv>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <type_traits>

#include "core/time.h"

namespace tally {

namespace {

constexpr int32_t kProtocol3 = 196608;  // 3.0
constexpr int32_t kSslRequest = 80877103;
constexpr int32_t kGssEncRequest = 80877104;
constexpr int32_t kCancelRequest = 80877102;
constexpr uint32_t kMaxMessage = 64u << 20;
constexpr int32_t kTextOid = 25;

// One server message: its type, then its length and payload, big-endian.
class Message {
 public:
  explicit Message(char type) : type_(type) {}
  Message& Int32(int32_t v) {
    const uint32_t n = htonl(static_cast<uint32_t>(v));
    body_.append(reinterpret_cast<const char*>(&n), 4);
    return *this;
  }
  Message& Int16(int16_t v) {
    const uint16_t n = htons(static_cast<uint16_t>(v));
    body_.append(reinterpret_cast<const char*>(&n), 2);
    return *this;
  }
  Message& Str(std::string_view s) {  // a C string: no NUL inside, one after
    for (char c : s) body_ += c == '\0' ? ' ' : c;
    body_ += '\0';
    return *this;
  }
  Message& Bytes(std::string_view s) {
    body_.append(s);
    return *this;
  }
  std::string Take() const {
    std::string out(1, type_);
    const uint32_t n = htonl(static_cast<uint32_t>(body_.size() + 4));
    out.append(reinterpret_cast<const char*>(&n), 4);
    out += body_;
    return out;
  }

 private:
  char type_;
  std::string body_;
};

bool WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

bool ReadExact(int fd, char* out, size_t n) {
  while (n > 0) {
    const ssize_t r = ::recv(fd, out, n, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    out += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

bool ReadInt32(int fd, int32_t* v) {
  uint32_t n = 0;
  if (!ReadExact(fd, reinterpret_cast<char*>(&n), 4)) return false;
  *v = static_cast<int32_t>(ntohl(n));
  return true;
}

// The character position in a message such as `relation "keys" at 15 is not ...`, for the
// error's P field (psql then points at it).
std::optional<int> PositionIn(std::string_view message) {
  size_t at = 0;
  while ((at = message.find(" at ", at)) != std::string_view::npos) {
    at += 4;
    size_t end = at;
    while (end < message.size() && message[end] >= '0' && message[end] <= '9') ++end;
    if (end > at && (end == message.size() || message[end] == ' ' || message[end] == ':')) {
      return std::stoi(std::string(message.substr(at, end - at)));
    }
  }
  return std::nullopt;
}

std::string Error(const char* severity, const std::string& code, const std::string& message) {
  Message m('E');
  m.Bytes("S").Str(severity).Bytes("V").Str(severity).Bytes("C").Str(code).Bytes("M").Str(message);
  if (auto p = PositionIn(message)) m.Bytes("P").Str(std::to_string(*p));
  m.Bytes(std::string_view("\0", 1));
  return m.Take();
}

std::string Ready() {
  return Message('Z').Bytes("I").Take();
}

// A big-endian integer of N bytes.
template <typename T>
std::string BigEndian(T v) {
  using U = std::make_unsigned_t<T>;
  const U u = static_cast<U>(v);
  std::string out(sizeof(T), '\0');
  for (size_t i = 0; i < sizeof(T); ++i) {
    out[i] = static_cast<char>((u >> (8 * (sizeof(T) - 1 - i))) & 0xff);
  }
  return out;
}

template <typename T>
std::optional<T> ParseNumber(const std::string& s) {
  T v{};
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

// Microseconds since 2000-01-01 of DuckDB's "YYYY-MM-DD HH:MM:SS[.ffffff][+HH[:MM]]".
std::optional<int64_t> PgMicros(const std::string& s) {
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0, n = 0;
  if (std::sscanf(s.c_str(), "%d-%d-%d %d:%d:%d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6) {
    return std::nullopt;
  }
  int64_t micros = 0;
  size_t i = static_cast<size_t>(n);
  if (i < s.size() && s[i] == '.') {
    int64_t scale = 100000;
    for (++i; i < s.size() && std::isdigit(static_cast<unsigned char>(s[i])); ++i, scale /= 10) {
      micros += (s[i] - '0') * scale;
    }
  }
  int64_t offset = 0;  // seconds east of UTC
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
    int oh = 0, om = 0;
    std::sscanf(s.c_str() + i + 1, "%d:%d", &oh, &om);
    offset = (s[i] == '+' ? 1 : -1) * (oh * 3600 + om * 60);
  }
  const int64_t days = DaysFromCivil(y, mo, d) - DaysFromCivil(2000, 1, 1);
  return (days * 86400 + h * 3600 + mi * 60 + sec - offset) * 1000000 + micros;
}

// PostgreSQL's binary numeric (base-10000 digits) of a plain decimal such as "-1234.5".
std::optional<std::string> PgNumeric(const std::string& s) {
  size_t i = 0;
  const bool negative = !s.empty() && s[0] == '-';
  if (negative || (!s.empty() && s[0] == '+')) i = 1;
  std::string whole, fraction;
  bool point = false;
  for (; i < s.size(); ++i) {
    if (s[i] == '.' && !point) {
      point = true;
    } else if (std::isdigit(static_cast<unsigned char>(s[i]))) {
      (point ? fraction : whole) += s[i];
    } else {
      return std::nullopt;  // exponents, NaN, infinity: not a plain decimal
    }
  }
  const int16_t dscale = static_cast<int16_t>(fraction.size());
  whole.insert(0, (4 - whole.size() % 4) % 4, '0');
  fraction.append((4 - fraction.size() % 4) % 4, '0');
  std::vector<int16_t> digits;
  for (size_t k = 0; k < whole.size(); k += 4) digits.push_back(std::stoi(whole.substr(k, 4)));
  int weight = static_cast<int>(digits.size()) - 1;
  for (size_t k = 0; k < fraction.size(); k += 4) {
    digits.push_back(std::stoi(fraction.substr(k, 4)));
  }
  size_t lead = 0;
  while (lead < digits.size() && digits[lead] == 0) ++lead, --weight;
  digits.erase(digits.begin(), digits.begin() + static_cast<std::ptrdiff_t>(lead));
  while (!digits.empty() && digits.back() == 0) digits.pop_back();
  if (digits.empty()) weight = 0;
  std::string out = BigEndian<int16_t>(static_cast<int16_t>(digits.size())) +
                    BigEndian<int16_t>(static_cast<int16_t>(weight)) +
                    BigEndian<uint16_t>(negative && !digits.empty() ? 0x4000 : 0) +
                    BigEndian<int16_t>(dscale);
  for (int16_t d : digits) out += BigEndian<int16_t>(d);
  return out;
}

// A client's binary parameter value as text, for its declared type.
std::optional<std::string> FromBinary(ColumnType t, std::string_view b) {
  auto read = [&](size_t n) {
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i) v = (v << 8) | static_cast<unsigned char>(b[i]);
    return v;
  };
  switch (t) {
    case ColumnType::kBool:
      return b.size() == 1 ? std::optional<std::string>(b[0] ? "true" : "false") : std::nullopt;
    case ColumnType::kInt16:
      if (b.size() != 2) return std::nullopt;
      return std::to_string(static_cast<int16_t>(read(2)));
    case ColumnType::kInt32:
      if (b.size() != 4) return std::nullopt;
      return std::to_string(static_cast<int32_t>(read(4)));
    case ColumnType::kInt64:
      if (b.size() != 8) return std::nullopt;
      return std::to_string(static_cast<int64_t>(read(8)));
    case ColumnType::kFloat32: {
      if (b.size() != 4) return std::nullopt;
      const uint32_t u = static_cast<uint32_t>(read(4));
      float f;
      std::memcpy(&f, &u, 4);
      char buf[64];
      std::snprintf(buf, sizeof buf, "%.9g", f);
      return std::string(buf);
    }
    case ColumnType::kFloat64: {
      if (b.size() != 8) return std::nullopt;
      const uint64_t u = read(8);
      double d;
      std::memcpy(&d, &u, 8);
      char buf[64];
      std::snprintf(buf, sizeof buf, "%.17g", d);
      return std::string(buf);
    }
    case ColumnType::kText:
    case ColumnType::kUnknown:
      return std::string(b);
    default:
      return std::nullopt;
  }
}

// Reads the big-endian fields of a client message in order; any overrun marks it bad.
class Reader {
 public:
  explicit Reader(std::string_view body) : body_(body) {}
  bool ok() const { return ok_; }
  int32_t Int32() { return static_cast<int32_t>(Fixed(4)); }
  int16_t Int16() { return static_cast<int16_t>(Fixed(2)); }
  char Byte() { return static_cast<char>(Fixed(1)); }
  std::string Str() {
    const size_t end = body_.find('\0', at_);
    if (end == std::string_view::npos) return Bad(), "";
    std::string s(body_.substr(at_, end - at_));
    at_ = end + 1;
    return s;
  }
  std::string_view Bytes(size_t n) {
    if (body_.size() - at_ < n) return Bad(), std::string_view();
    std::string_view s = body_.substr(at_, n);
    at_ += n;
    return s;
  }

 private:
  uint64_t Fixed(size_t n) {
    std::string_view b = Bytes(n);
    uint64_t v = 0;
    for (char c : b) v = (v << 8) | static_cast<unsigned char>(c);
    return v;
  }
  void Bad() {
    ok_ = false;
    at_ = body_.size();
  }
  std::string_view body_;
  size_t at_ = 0;
  bool ok_ = true;
};

// The format code of column `i` among a Bind's result formats (none: text; one: all).
int16_t FormatOf(const std::vector<int16_t>& formats, size_t i) {
  if (formats.empty()) return 0;
  return formats.size() == 1 ? formats[0] : formats[i];
}

// Each type's PostgreSQL OID and length (typlen: -1 for variable length), in one place.
struct PgType {
  ColumnType type;
  int32_t oid;
  int16_t length;
};
constexpr PgType kPgTypes[] = {
    {ColumnType::kBool, 16, 1},          {ColumnType::kInt16, 21, 2},
    {ColumnType::kInt32, 23, 4},         {ColumnType::kInt64, 20, 8},
    {ColumnType::kFloat32, 700, 4},      {ColumnType::kFloat64, 701, 8},
    {ColumnType::kNumeric, 1700, -1},    {ColumnType::kDate, 1082, 4},
    {ColumnType::kTime, 1083, 8},        {ColumnType::kTimestamp, 1114, 8},
    {ColumnType::kTimestampTz, 1184, 8}, {ColumnType::kInterval, 1186, 16},
    {ColumnType::kText, kTextOid, -1},
};

// The row of `t`; lists, structs and the unknown travel as text.
const PgType& PgTypeOf(ColumnType t) {
  for (const PgType& p : kPgTypes) {
    if (p.type == t) return p;
  }
  return kPgTypes[std::size(kPgTypes) - 1];
}

std::string RowDescription(const PgResult& r, const std::vector<int16_t>& formats) {
  Message m('T');
  m.Int16(static_cast<int16_t>(r.table.columns.size()));
  for (size_t i = 0; i < r.table.columns.size(); ++i) {
    const ColumnType t = i < r.table.types.size() ? r.table.types[i] : ColumnType::kText;
    m.Str(r.table.columns[i])
        .Int32(0)
        .Int16(0)
        .Int32(PgTypeOid(t))
        .Int16(PgTypeOf(t).length)
        .Int32(-1);
    m.Int16(FormatOf(formats, i));
  }
  return m.Take();
}

std::string DataRow(const PgResult& r, const std::vector<std::optional<std::string>>& row,
                    const std::vector<int16_t>& formats) {
  Message d('D');
  d.Int16(static_cast<int16_t>(row.size()));
  for (size_t i = 0; i < row.size(); ++i) {
    if (!row[i]) {
      d.Int32(-1);
      continue;
    }
    const ColumnType t = i < r.table.types.size() ? r.table.types[i] : ColumnType::kText;
    std::string v;
    if (FormatOf(formats, i) == 1) {
      v = PgBinary(t, *row[i]).value_or(std::string());
    } else {
      v = PgText(t, *row[i]);
    }
    d.Int32(static_cast<int32_t>(v.size())).Bytes(v);
  }
  return d.Take();
}

// Checks that every column asked for in binary has a binary form.
Status CheckFormats(const PgResult& r, const std::vector<int16_t>& formats) {
  if (formats.size() > 1 && formats.size() != r.table.columns.size()) {
    return Status::InvalidArgument("bind message has " + std::to_string(formats.size()) +
                                   " result formats but the query has " +
                                   std::to_string(r.table.columns.size()) + " columns");
  }
  for (size_t i = 0; i < r.table.columns.size(); ++i) {
    const int16_t f = FormatOf(formats, i);
    if (f != 0 && f != 1)
      return Status::InvalidArgument("unknown format code " + std::to_string(f));
    const ColumnType t = i < r.table.types.size() ? r.table.types[i] : ColumnType::kText;
    if (f == 1 && (t == ColumnType::kTime || t == ColumnType::kInterval)) {
      return Status::InvalidArgument("binary format for column \"" + r.table.columns[i] +
                                     "\" (type OID " + std::to_string(PgTypeOid(t)) +
                                     ") is not supported: ask for text");
    }
  }
  return Status::Ok();
}

// Sends rows [*next, end) (at most `max_rows` of them when positive) and what follows them:
// CommandComplete when they are all sent, PortalSuspended otherwise.
bool SendRows(int fd, const PgResult& r, const std::vector<int16_t>& formats, size_t* next,
              int32_t max_rows) {
  if (!r.tag.empty()) return WriteAll(fd, Message('C').Str(r.tag).Take());
  std::string out;
  size_t end = r.table.rows.size();
  if (max_rows > 0) end = std::min(end, *next + static_cast<size_t>(max_rows));
  for (; *next < end; ++*next) {
    out += DataRow(r, r.table.rows[*next], formats);
    if (out.size() > (1u << 20)) {  // stream big results
      if (!WriteAll(fd, out)) return false;
      out.clear();
    }
  }
  if (*next < r.table.rows.size()) {
    out += Message('s').Take();
  } else {
    out += Message('C').Str("SELECT " + std::to_string(r.table.rows.size())).Take();
  }
  return WriteAll(fd, out);
}

}  // namespace

std::string SqlState(const Status& status) {
  if (status.code() == Status::Code::kInvalidArgument) {
    return status.message().starts_with("syntax error") ? "42601" : "42501";
  }
  if (status.code() == Status::Code::kDeadlineExceeded) return "57014";  // query_canceled
  if (status.code() == Status::Code::kNotFound) return "42704";          // undefined_object
  return "XX000";
}

std::span<const PgSetting> PgSettings() {
  static constexpr PgSetting kSettings[] = {
      {"server_version", "15.0 (tally)", true},
      {"server_encoding", "UTF8", true},
      {"client_encoding", "UTF8", true},
      {"DateStyle", "ISO, MDY", true},
      {"TimeZone", "UTC", true},
      {"integer_datetimes", "on", true},
      {"standard_conforming_strings", "on", true},
      {"is_superuser", "off", true},
      {"server_version_num", "150000", false},
      {"transaction_isolation", "read committed", false},
      {"transaction_read_only", "on", false},
      {"default_transaction_read_only", "on", false},
      {"search_path", "public", false},
      {"max_identifier_length", "63", false},
      {"lc_collate", "C", false},
      {"lc_ctype", "C", false},
  };
  return kSettings;
}

int32_t PgTypeOid(ColumnType t) {
  return PgTypeOf(t).oid;
}

ColumnType FromPgTypeOid(int32_t oid) {
  for (const PgType& p : kPgTypes) {
    if (p.oid == oid) return p.type;
  }
  if (oid == 1043 || oid == 1042 || oid == 19) return ColumnType::kText;  // varchar, char, name
  return ColumnType::kUnknown;
}

std::string PgText(ColumnType t, const std::string& v) {
  if (t == ColumnType::kBool) return v == "true" ? "t" : v == "false" ? "f" : v;
  return v;
}

std::optional<std::string> PgBinary(ColumnType t, const std::string& v) {
  switch (t) {
    case ColumnType::kBool:
      return std::string(1, v == "true" || v == "t" ? '\1' : '\0');
    case ColumnType::kInt16:
      if (auto i = ParseNumber<int16_t>(v)) return BigEndian<int16_t>(*i);
      return std::nullopt;
    case ColumnType::kInt32:
      if (auto i = ParseNumber<int32_t>(v)) return BigEndian<int32_t>(*i);
      return std::nullopt;
    case ColumnType::kInt64:
      if (auto i = ParseNumber<int64_t>(v)) return BigEndian<int64_t>(*i);
      return std::nullopt;
    case ColumnType::kFloat32: {
      const float f = std::strtof(v.c_str(), nullptr);
      uint32_t u;
      std::memcpy(&u, &f, 4);
      return BigEndian<uint32_t>(u);
    }
    case ColumnType::kFloat64: {
      const double d = std::strtod(v.c_str(), nullptr);
      uint64_t u;
      std::memcpy(&u, &d, 8);
      return BigEndian<uint64_t>(u);
    }
    case ColumnType::kNumeric:
      return PgNumeric(v);
    case ColumnType::kDate: {
      int y = 0, m = 0, d = 0;
      if (std::sscanf(v.c_str(), "%d-%d-%d", &y, &m, &d) != 3) return std::nullopt;
      return BigEndian<int32_t>(DaysFromCivil(y, m, d) - DaysFromCivil(2000, 1, 1));
    }
    case ColumnType::kTimestamp:
    case ColumnType::kTimestampTz:
      if (auto us = PgMicros(v)) return BigEndian<int64_t>(*us);
      return std::nullopt;
    case ColumnType::kText:
    case ColumnType::kOther:
    case ColumnType::kUnknown:
      return v;
    default:
      return std::nullopt;
  }
}

struct PgWireServer::State {
  Options options;
  Authenticate authenticate;
  Query query;
  int listen_fd = -1;
  std::atomic<bool> stopping{false};
  std::mutex mu;
  std::condition_variable idle;
  std::set<int> clients;
  std::thread acceptor;

  void Serve(int fd);
  bool Startup(int fd, std::map<std::string, std::string>* params);
};

bool PgWireServer::State::Startup(int fd, std::map<std::string, std::string>* params) {
  for (int attempt = 0; attempt < 3; ++attempt) {
    int32_t len = 0, code = 0;
    if (!ReadInt32(fd, &len) || len < 8 || len > 10000 || !ReadInt32(fd, &code)) return false;
    std::string body(static_cast<size_t>(len - 8), '\0');
    if (!ReadExact(fd, body.data(), body.size())) return false;
    if (code == kSslRequest || code == kGssEncRequest) {
      // No TLS or GSS on a loopback-only endpoint: the client goes on in plain text.
      if (!WriteAll(fd, "N")) return false;
      continue;
    }
    if (code == kCancelRequest) return false;
    if (code != kProtocol3) {
      WriteAll(fd, Error("FATAL", "0A000",
                         "protocol version " + std::to_string(code >> 16) + "." +
                             std::to_string(code & 0xffff) + " is not supported: use 3.0"));
      return false;
    }
    size_t i = 0;
    while (i < body.size() && body[i] != '\0') {
      const std::string key(body.c_str() + i);
      i += key.size() + 1;
      if (i >= body.size()) break;
      const std::string value(body.c_str() + i);
      i += value.size() + 1;
      (*params)[key] = value;
    }
    return true;
  }
  return false;
}

// One connection's prepared statements and portals (the extended query protocol).
struct Prepared {
  std::string sql;
  std::vector<ColumnType> declared;
};
struct Portal {
  Prepared statement;
  TextParams params;
  std::vector<int16_t> formats;
  std::optional<PgResult> result;  // run on first Describe or Execute
  size_t next = 0;                 // the next row to send
};

void PgWireServer::State::Serve(int fd) {
  std::map<std::string, std::string> params;
  if (!Startup(fd, &params)) return;
  // Cleartext password: the API key. It never leaves the loopback interface.
  if (!WriteAll(fd, Message('R').Int32(3).Take())) return;
  char type = 0;
  int32_t len = 0;
  if (!ReadExact(fd, &type, 1) || type != 'p' || !ReadInt32(fd, &len) || len < 5 || len > 4096) {
    return;
  }
  std::string password(static_cast<size_t>(len - 4), '\0');
  if (!ReadExact(fd, password.data(), password.size())) return;
  password.resize(std::strlen(password.c_str()));
  sockaddr_in peer{};
  socklen_t peer_len = sizeof peer;
  char host[INET_ADDRSTRLEN] = "?";
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &peer_len) == 0) {
    ::inet_ntop(AF_INET, &peer.sin_addr, host, sizeof host);
  }
  auto session = authenticate(params["user"], password,
                              std::string(host) + ":" + std::to_string(ntohs(peer.sin_port)));
  if (!session.ok()) {
    WriteAll(fd, Error("FATAL", "28P01",
                       "password authentication failed: " + session.status().message()));
    return;
  }
  std::string hello = Message('R').Int32(0).Take();
  for (const PgSetting& setting : PgSettings()) {
    if (setting.announced) hello += Message('S').Str(setting.name).Str(setting.value).Take();
  }
  hello += Message('S').Str("application_name").Str(params["application_name"]).Take();
  hello += Message('K').Int32(static_cast<int32_t>(::getpid())).Int32(fd).Take();
  if (!WriteAll(fd, hello + Ready())) return;

  std::map<std::string, Prepared> statements;
  std::map<std::string, Portal> portals;
  bool failed = false;  // an extended-protocol error: skip messages until Sync
  auto fail = [&](const std::string& code, const std::string& message) {
    failed = true;
    return WriteAll(fd, Error("ERROR", code, message));
  };
  auto run = [&](Portal& p) -> Status {
    if (p.result) return Status::Ok();
    PgCall call{p.statement.sql, &p.params, p.statement.declared};
    TALLY_ASSIGN_OR_RETURN(PgResult r, query(*session, call));
    TALLY_RETURN_IF_ERROR(CheckFormats(r, p.formats));
    p.result = std::move(r);
    return Status::Ok();
  };
  // The portal `name`, run if it has not been: *out is null when it is missing or failed (the
  // error is sent); false when the connection is lost.
  auto ran = [&](const std::string& name, Portal** out) {
    *out = nullptr;
    auto p = portals.find(name);
    if (p == portals.end()) return fail("34000", "portal \"" + name + "\" does not exist");
    if (Status st = run(p->second); !st.ok()) return fail(SqlState(st), st.message());
    *out = &p->second;
    return true;
  };
  while (!stopping) {
    if (!ReadExact(fd, &type, 1) || !ReadInt32(fd, &len) || len < 4 ||
        static_cast<uint32_t>(len) > kMaxMessage) {
      return;
    }
    std::string body(static_cast<size_t>(len - 4), '\0');
    if (!ReadExact(fd, body.data(), body.size())) return;
    if (type == 'X') return;
    if (type == 'S') {  // Sync ends an extended-protocol exchange (an implicit transaction)
      failed = false;
      portals.clear();
      if (!WriteAll(fd, Ready())) return;
      continue;
    }
    if (type == 'Q') {
      portals.clear();
      const std::string sql(body.c_str());
      if (sql.find_first_not_of(" \t\r\n;") == std::string::npos) {
        if (!WriteAll(fd, Message('I').Take() + Ready())) return;
        continue;
      }
      const TextParams none;
      Result<PgResult> r = query(*session, PgCall{sql, &none, {}});
      size_t next = 0;
      if (!r.ok()) {
        if (!WriteAll(fd, Error("ERROR", SqlState(r.status()), r.status().message()) + Ready())) {
          return;
        }
        continue;
      }
      if (r->tag.empty() && !WriteAll(fd, RowDescription(*r, {}))) return;
      if (!SendRows(fd, *r, {}, &next, 0) || !WriteAll(fd, Ready())) return;
      continue;
    }
    if (failed && std::strchr("PBDECH", type) != nullptr) continue;
    Reader in(body);
    switch (type) {
      case 'P': {  // Parse: name, query, parameter types
        Prepared p;
        const std::string name = in.Str();
        p.sql = in.Str();
        const int16_t n = in.Int16();
        for (int16_t i = 0; i < n && in.ok(); ++i) p.declared.push_back(FromPgTypeOid(in.Int32()));
        if (!in.ok()) return (void)WriteAll(fd, Error("FATAL", "08P01", "malformed Parse message"));
        if (!name.empty() && statements.count(name)) {
          if (!fail("42P05", "prepared statement \"" + name + "\" already exists")) return;
          break;
        }
        statements[name] = std::move(p);
        if (!WriteAll(fd, Message('1').Take())) return;
        break;
      }
      case 'B': {  // Bind: portal, statement, parameter formats and values, result formats
        const std::string portal = in.Str();
        const std::string name = in.Str();
        std::vector<int16_t> param_formats(static_cast<size_t>(std::max<int16_t>(in.Int16(), 0)));
        for (int16_t& f : param_formats) f = in.Int16();
        const int16_t n = in.Int16();
        TextParams values;
        for (int16_t i = 0; i < n && in.ok(); ++i) {
          const int32_t size = in.Int32();
          if (size < 0) {
            values.emplace_back(std::nullopt);
          } else {
            values.emplace_back(std::string(in.Bytes(static_cast<size_t>(size))));
          }
        }
        std::vector<int16_t> formats(static_cast<size_t>(std::max<int16_t>(in.Int16(), 0)));
        for (int16_t& f : formats) f = in.Int16();
        if (!in.ok()) return (void)WriteAll(fd, Error("FATAL", "08P01", "malformed Bind message"));
        auto st = statements.find(name);
        if (st == statements.end()) {
          if (!fail("26000", "prepared statement \"" + name + "\" does not exist")) return;
          break;
        }
        Portal p{st->second, {}, std::move(formats), std::nullopt, 0};
        std::string bad;
        for (size_t i = 0; i < values.size() && bad.empty(); ++i) {
          if (!values[i] || FormatOf(param_formats, i) == 0) continue;
          const ColumnType t =
              i < p.statement.declared.size() ? p.statement.declared[i] : ColumnType::kUnknown;
          if (auto text = FromBinary(t, *values[i])) {
            values[i] = std::move(*text);
          } else {
            bad = "parameter $" + std::to_string(i + 1) +
                  ": binary format is supported for booleans, integers, floats and text only";
          }
        }
        if (!bad.empty()) {
          if (!fail("22P03", bad)) return;
          break;
        }
        p.params = std::move(values);
        portals[portal] = std::move(p);
        if (!WriteAll(fd, Message('2').Take())) return;
        break;
      }
      case 'D': {  // Describe a statement ('S') or a portal ('P')
        const char what = in.Byte();
        const std::string name = in.Str();
        if (what == 'S') {
          auto st = statements.find(name);
          if (st == statements.end()) {
            if (!fail("26000", "prepared statement \"" + name + "\" does not exist")) return;
            break;
          }
          Result<PgResult> shape =
              query(*session, PgCall{st->second.sql, nullptr, st->second.declared});
          if (!shape.ok()) {
            if (!fail(SqlState(shape.status()), shape.status().message())) return;
            break;
          }
          Message pd('t');
          const size_t count = std::max(st->second.declared.size(), shape->params.size());
          pd.Int16(static_cast<int16_t>(count));
          for (size_t i = 0; i < count; ++i) {
            ColumnType t =
                i < st->second.declared.size() ? st->second.declared[i] : ColumnType::kUnknown;
            if (t == ColumnType::kUnknown && i < shape->params.size()) t = shape->params[i];
            pd.Int32(PgTypeOid(t));
          }
          std::string out = pd.Take();
          out += shape->tag.empty() ? RowDescription(*shape, {}) : Message('n').Take();
          if (!WriteAll(fd, out)) return;
        } else {
          Portal* p = nullptr;
          if (!ran(name, &p)) return;
          if (p == nullptr) break;
          const PgResult& r = *p->result;
          if (!WriteAll(fd, r.tag.empty() ? RowDescription(r, p->formats) : Message('n').Take())) {
            return;
          }
        }
        break;
      }
      case 'E': {  // Execute a portal, at most max_rows rows (0: all)
        const std::string name = in.Str();
        const int32_t max_rows = in.Int32();
        Portal* p = nullptr;
        if (!ran(name, &p)) return;
        if (p == nullptr) break;
        if (!SendRows(fd, *p->result, p->formats, &p->next, max_rows)) {
          return;
        }
        break;
      }
      case 'C': {  // Close a statement or a portal
        const char what = in.Byte();
        const std::string name = in.Str();
        if (what == 'S') {
          statements.erase(name);
        } else {
          portals.erase(name);
        }
        if (!WriteAll(fd, Message('3').Take())) return;
        break;
      }
      case 'H':  // Flush: every answer is written as it is made
        break;
      default:
        WriteAll(fd,
                 Error("FATAL", "08P01", std::string("unexpected message type '") + type + "'"));
        return;
    }
  }
}

Result<std::unique_ptr<PgWireServer>> PgWireServer::Start(Options options,
                                                          Authenticate authenticate, Query query) {
  auto state = std::make_shared<State>();
  state->options = options;
  state->authenticate = std::move(authenticate);
  state->query = std::move(query);
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::IOError(std::string("sql: socket: ") + std::strerror(errno));
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(options.port);
  if (::inet_pton(AF_INET, options.address.c_str(), &addr.sin_addr) != 1) {
    ::close(fd);
    return Status::InvalidArgument("sql: address '" + options.address + "' is not IPv4");
  }
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 128) != 0) {
    const std::string why = std::strerror(errno);
    ::close(fd);
    return Status::IOError("sql: cannot listen on " + options.address + ":" +
                           std::to_string(options.port) + ": " + why);
  }
  socklen_t alen = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &alen);
  state->listen_fd = fd;
  std::unique_ptr<PgWireServer> server(new PgWireServer());
  server->state_ = state;
  server->port_ = ntohs(addr.sin_port);
  state->acceptor = std::thread([state] {
    while (!state->stopping) {
      pollfd p{state->listen_fd, POLLIN, 0};
      if (::poll(&p, 1, 200) <= 0) continue;
      const int client = ::accept4(state->listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
      if (client < 0) continue;
      std::unique_lock lock(state->mu);
      if (static_cast<int>(state->clients.size()) >= state->options.max_connections) {
        lock.unlock();
        WriteAll(client, Error("FATAL", "53300", "too many connections"));
        ::close(client);
        continue;
      }
      state->clients.insert(client);
      lock.unlock();
      // Answers go out in a few writes (row description, rows, ready): without TCP_NODELAY the
      // last one waits for the client's delayed ACK, some 40 ms a query.
      const int nodelay = 1;
      ::setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &nodelay, sizeof nodelay);
      std::thread([state, client] {
        state->Serve(client);
        std::lock_guard guard(state->mu);
        state->clients.erase(client);
        ::close(client);
        state->idle.notify_all();
      }).detach();
    }
  });
  return server;
}

void PgWireServer::Stop() {
  if (!state_ || state_->stopping.exchange(true)) return;
  if (state_->acceptor.joinable()) state_->acceptor.join();
  ::close(state_->listen_fd);
  std::unique_lock lock(state_->mu);
  for (int fd : state_->clients) ::shutdown(fd, SHUT_RDWR);
  state_->idle.wait(lock, [this] { return state_->clients.empty(); });
}

PgWireServer::~PgWireServer() {
  Stop();
}

}  // namespace tally
