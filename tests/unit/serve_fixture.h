#pragma once
// `tally serve` as a child process for end-to-end tests, with the API keys to call it.

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "api/http_client.h"
#include "core/url.h"
#include "store_fixture.h"
#include "world_fixture.h"

namespace tally::testing {

inline uint16_t FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

//! A new API key for data directory `dir`, made by `tally keys create` with `args`
//! ("--role partner --partner 3"). Fails the test and returns "" when the command fails.
inline std::string CreateKey(const std::string& dir, const std::string& args) {
  TallyRun run = RunTally("keys create --data " + dir + " " + args + " --json");
  const size_t at = run.out.find("\"key\":\"");
  if (run.code != 0 || at == std::string::npos) {
    ADD_FAILURE() << "tally keys create " << args << ": " << run.out;
    return "";
  }
  const size_t from = at + 7;
  return run.out.substr(from, run.out.find('"', from) - from);
}

//! A `tally serve` child process. Its stdout and stderr go to DIR.log.
class Server {
 public:
  //! `env` holds NAME=VALUE settings for the server's environment (TALLY_SERVE_...).
  Server(std::string dir, uint16_t port, std::vector<std::string> env = {})
      : dir_(std::move(dir)), port_(port), env_(std::move(env)) {}
  ~Server() {
    if (pid_ > 0) Kill(SIGKILL);
  }
  //! Starts the server (creating an admin key first, once) and waits until it answers.
  void Start() {
    using namespace std::chrono_literals;
    if (admin_key_.empty()) admin_key_ = CreateKey(dir_, "--role admin --name tests");
    pid_ = ::fork();
    if (pid_ == 0) {
      const std::string log = dir_ + ".log";
      FILE* f = std::freopen(log.c_str(), "a", stdout);
      (void)f;
      ::dup2(::fileno(stdout), 2);
      const std::string port = std::to_string(port_);
      for (std::string& e : env_) ::putenv(e.data());
      ::execl(TALLY_BINARY, TALLY_BINARY, "serve", "--data", dir_.c_str(), "--port", port.c_str(),
              nullptr);
      ::_exit(127);
    }
    HttpClient c("127.0.0.1", port_, 2s);
    for (int i = 0; i < 600; ++i) {
      auto r = c.Get("/healthz");
      if (r.ok() && r->status == 200) return;
      std::this_thread::sleep_for(50ms);
    }
    ADD_FAILURE() << "tally serve did not come up; log:\n" << ReadFile(dir_ + ".log");
  }
  //! Sends `sig` and reaps the process; returns its exit status.
  int Kill(int sig) {
    ::kill(pid_, sig);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    return status;
  }
  uint16_t port() const { return port_; }
  const std::string& dir() const { return dir_; }
  const std::string& admin_key() const { return admin_key_; }
  //! Makes `client` call as the admin key.
  void Authorize(HttpClient& client) const { AuthorizeAs(client, admin_key_); }
  static void AuthorizeAs(HttpClient& client, const std::string& credential) {
    ASSERT_TRUE(client.SetDefaultHeader("Authorization", "Bearer " + credential).ok());
  }

 private:
  std::string dir_;
  uint16_t port_;
  std::vector<std::string> env_;
  std::string admin_key_;
  pid_t pid_ = -1;
};

}  // namespace tally::testing
