#include "sql/pg_wire.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <thread>

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

}  // namespace

std::string SqlState(const Status& status) {
  if (status.code() == Status::Code::kInvalidArgument) {
    return status.message().starts_with("syntax error") ? "42601" : "42501";
  }
  return "XX000";
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
  void Answer(int fd, const std::shared_ptr<const void>& session, const std::string& sql);
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

void PgWireServer::State::Answer(int fd, const std::shared_ptr<const void>& session,
                                 const std::string& sql) {
  if (sql.find_first_not_of(" \t\r\n;") == std::string::npos) {
    WriteAll(fd, Message('I').Take() + Ready());
    return;
  }
  Result<PgResult> r = query(session, sql);
  if (!r.ok()) {
    WriteAll(fd, Error("ERROR", SqlState(r.status()), r.status().message()) + Ready());
    return;
  }
  std::string out;
  Message header('T');
  header.Int16(static_cast<int16_t>(r->columns.size()));
  for (const std::string& c : r->columns) {
    header.Str(c).Int32(0).Int16(0).Int32(kTextOid).Int16(-1).Int32(-1).Int16(0);
  }
  out += header.Take();
  for (const auto& row : r->rows) {
    Message d('D');
    d.Int16(static_cast<int16_t>(row.size()));
    for (const auto& cell : row) {
      if (!cell) {
        d.Int32(-1);
      } else {
        d.Int32(static_cast<int32_t>(cell->size())).Bytes(*cell);
      }
    }
    out += d.Take();
    if (out.size() > (1u << 20)) {  // stream big results
      if (!WriteAll(fd, out)) return;
      out.clear();
    }
  }
  out += Message('C').Str("SELECT " + std::to_string(r->rows.size())).Take();
  WriteAll(fd, out + Ready());
}

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
  auto session = authenticate(params["user"], password);
  if (!session.ok()) {
    WriteAll(fd, Error("FATAL", "28P01",
                       "password authentication failed: " + session.status().message()));
    return;
  }
  std::string hello = Message('R').Int32(0).Take();
  for (auto [k, v] : std::initializer_list<std::pair<const char*, std::string>>{
           {"server_version", "15.0 (tally)"},
           {"server_encoding", "UTF8"},
           {"client_encoding", "UTF8"},
           {"DateStyle", "ISO, MDY"},
           {"TimeZone", "UTC"},
           {"integer_datetimes", "on"},
           {"standard_conforming_strings", "on"},
           {"is_superuser", "off"},
           {"application_name", params["application_name"]},
       }) {
    hello += Message('S').Str(k).Str(v).Take();
  }
  hello += Message('K').Int32(static_cast<int32_t>(::getpid())).Int32(fd).Take();
  if (!WriteAll(fd, hello + Ready())) return;
  bool extended_failed = false;
  while (!stopping) {
    if (!ReadExact(fd, &type, 1) || !ReadInt32(fd, &len) || len < 4 ||
        static_cast<uint32_t>(len) > kMaxMessage) {
      return;
    }
    std::string body(static_cast<size_t>(len - 4), '\0');
    if (!ReadExact(fd, body.data(), body.size())) return;
    switch (type) {
      case 'Q':
        Answer(fd, *session, std::string(body.c_str()));
        break;
      case 'X':
        return;
      case 'S':  // Sync ends an extended-protocol exchange
        extended_failed = false;
        if (!WriteAll(fd, Ready())) return;
        break;
      case 'P':
      case 'B':
      case 'D':
      case 'E':
      case 'C':
      case 'H':
        if (!extended_failed) {
          extended_failed = true;
          if (!WriteAll(fd, Error("ERROR", "0A000",
                                  "the extended query protocol is not supported yet: use the "
                                  "simple query protocol (docs/sql.md)"))) {
            return;
          }
        }
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
