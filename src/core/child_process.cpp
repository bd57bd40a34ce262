#include "core/child_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <thread>

namespace tally {

namespace {

std::string ErrnoText(int err) {
  return std::strerror(err);
}

// In the child, between fork and exec: only async-signal-safe calls.
[[noreturn]] void ExecChild(const std::vector<char*>& argv, const char* workdir, int in_fd,
                            int out_fd, const std::optional<UserIds>& user, int death_signal,
                            bool detach, pid_t parent) {
  if (detach) {
    ::setsid();  // no terminal's Ctrl-C or hangup reaches it
  } else {
    ::setpgid(0, 0);
  }
  if (user) {
    // Group first: after setuid the process may no longer change its groups.
    if (::setgroups(0, nullptr) != 0 || ::setgid(user->gid) != 0 || ::setuid(user->uid) != 0) {
      ::_exit(124);
    }
  }
  // After the change of user, which clears the death signal.
  if (!detach) {
    ::prctl(PR_SET_PDEATHSIG, death_signal);
    if (::getppid() != parent) ::_exit(126);  // the parent died before the signal was set
  }
  sigset_t none;
  ::sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  for (int sig : {SIGPIPE, SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGCHLD}) ::signal(sig, SIG_DFL);
  ::dup2(in_fd, STDIN_FILENO);
  ::dup2(out_fd, STDOUT_FILENO);
  ::dup2(out_fd, STDERR_FILENO);
  // Descriptors of this process (listening sockets, lock files) must not live on in the server.
  if (::syscall(SYS_close_range, 3U, ~0U, 0U) != 0) {
    rlimit lim{};
    long max_fd = 65536;
    if (::getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur != RLIM_INFINITY) {
      max_fd = static_cast<long>(lim.rlim_cur);
    }
    for (long fd = 3; fd < max_fd && fd < (1L << 20); ++fd) ::close(static_cast<int>(fd));
  }
  if (workdir && ::chdir(workdir) != 0) ::_exit(125);
  ::execv(argv[0], argv.data());
  static constexpr char kMessage[] = "tally: exec of a child process failed\n";
  [[maybe_unused]] const ssize_t n = ::write(STDERR_FILENO, kMessage, sizeof(kMessage) - 1);
  ::_exit(127);
}

}  // namespace

Result<UserIds> LookUpUser(const std::string& name) {
  passwd pw{};
  passwd* found = nullptr;
  std::vector<char> buf(16384);
  const int rc = ::getpwnam_r(name.c_str(), &pw, buf.data(), buf.size(), &found);
  if (rc != 0 || !found) {
    return Status::NotFound("no user '" + name + "'" + (rc ? ": " + ErrnoText(rc) : ""));
  }
  return UserIds{found->pw_uid, found->pw_gid};
}

Result<pid_t> StartChild(const ChildSpec& spec) {
  if (spec.argv.empty()) return Status::InvalidArgument("StartChild: no executable given");
  std::vector<char*> argv;
  for (const std::string& a : spec.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const int in_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (in_fd < 0) return Status::IOError("cannot open /dev/null: " + ErrnoText(errno));
  const std::string out = spec.output_path.empty() ? "/dev/null" : spec.output_path;
  const int out_fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (out_fd < 0) {
    const int err = errno;
    ::close(in_fd);
    return Status::IOError("cannot open " + out + ": " + ErrnoText(err));
  }
  if (spec.user && spec.output_path.size() > 0) {
    // The child writes it after switching users.
    [[maybe_unused]] const int ignored = ::fchown(out_fd, spec.user->uid, spec.user->gid);
  }
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid == 0) {
    ExecChild(argv, spec.workdir.empty() ? nullptr : spec.workdir.c_str(), in_fd, out_fd, spec.user,
              spec.death_signal, spec.detach, parent);
  }
  const int fork_errno = errno;
  ::close(in_fd);
  ::close(out_fd);
  if (pid < 0) return Status::IOError("fork failed: " + ErrnoText(fork_errno));
  if (!spec.detach) ::setpgid(pid, pid);  // here too, so the group exists whichever runs first
  return pid;
}

bool ChildExited(pid_t pid, int* wstatus) {
  for (;;) {
    const pid_t r = ::waitpid(pid, wstatus, WNOHANG);
    if (r == pid) return true;
    if (r == 0) return false;
    if (errno == EINTR) continue;
    *wstatus = 0;  // ECHILD: reaped elsewhere; it is gone all the same
    return true;
  }
}

bool WaitForChild(pid_t pid, std::chrono::milliseconds timeout, int* wstatus) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!ChildExited(pid, wstatus)) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

ChildStop StopChild(pid_t pid,
                    const std::vector<std::pair<int, std::chrono::milliseconds>>& steps) {
  ChildStop out;
  if (ChildExited(pid, &out.wstatus)) {
    out.exited_before = true;
    return out;
  }
  for (const auto& [signal, grace] : steps) {
    ::kill(pid, signal);
    if (WaitForChild(pid, grace, &out.wstatus)) return out;
  }
  ::kill(pid, SIGKILL);
  out.killed = true;
  while (::waitpid(pid, &out.wstatus, 0) < 0 && errno == EINTR) {
  }
  return out;
}

std::string DescribeWaitStatus(int wstatus) {
  if (WIFEXITED(wstatus)) return "exited with code " + std::to_string(WEXITSTATUS(wstatus));
  if (WIFSIGNALED(wstatus)) return "was killed by signal " + std::to_string(WTERMSIG(wstatus));
  return "changed state " + std::to_string(wstatus);
}

Result<std::vector<uint16_t>> PickFreePorts(int count) {
  std::vector<int> fds;
  std::vector<uint16_t> ports;
  Status status;
  for (int i = 0; i < count && status.ok(); ++i) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      status = Status::IOError("cannot create a socket to pick a port: " + ErrnoText(errno));
      break;
    }
    fds.push_back(fd);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      status = Status::IOError("cannot bind 127.0.0.1:0 to pick a port: " + ErrnoText(errno));
      break;
    }
    ports.push_back(ntohs(addr.sin_port));
  }
  for (int fd : fds) ::close(fd);
  if (!status.ok()) return status;
  return ports;
}

Result<uint16_t> PickFreePort() {
  TALLY_ASSIGN_OR_RETURN(std::vector<uint16_t> ports, PickFreePorts(1));
  return ports[0];
}

std::string TailOfFile(const std::string& path, size_t max_bytes) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return {};
  const std::streamoff size = in.tellg();
  const std::streamoff from = size > static_cast<std::streamoff>(max_bytes)
                                  ? size - static_cast<std::streamoff>(max_bytes)
                                  : 0;
  in.seekg(from);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (from > 0) {  // drop the partial first line
    const size_t nl = text.find('\n');
    text.erase(0, nl == std::string::npos ? text.size() : nl + 1);
  }
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

}  // namespace tally
