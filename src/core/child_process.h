#pragma once
// Servers run as child processes for tests, benchmarks and development (a PostgreSQL for the
// ledger's tests, say): started in their own process group with their output in a file, told by
// the kernel to stop when the thread that started them exits, and stopped by their PID.
//
// The death signal (PR_SET_PDEATHSIG) is tied to the starting *thread*, a Linux rule: start a
// child from a thread that lives at least as long as the child.

#include <sys/types.h>

#include <chrono>
#include <csignal>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/status.h"

namespace tally {

//! A user to run a child as (numeric ids, looked up before fork: the child may not call getpwnam).
struct UserIds {
  uid_t uid = 0;
  gid_t gid = 0;
};

//! The ids of the user `name`; NotFound when there is no such user.
Result<UserIds> LookUpUser(const std::string& name);

//! What to start.
struct ChildSpec {
  std::vector<std::string> argv;  // argv[0] is the executable's path
  std::string workdir;            // empty: this process's
  std::string output_path;        // stdout and stderr are appended here; empty: /dev/null
  std::optional<UserIds> user;    // switch to this user before exec (needs root)
  int death_signal = SIGTERM;     // sent to the child when the starting thread exits
  //! A session of its own (setsid) and no death signal: the child outlives this process (a
  //! development server started by a command that returns); stop it by its PID later.
  bool detach = false;
};

//! Starts the child in its own process group (its pid is the group id) with stdin from /dev/null
//! and no descriptor of this process but stdout and stderr. Errors: IOError (fork, the output
//! file). A failed exec shows as the child exiting with code 127.
Result<pid_t> StartChild(const ChildSpec& spec);

//! Whether the child has exited; when it has, it is reaped and *wstatus says how it ended.
bool ChildExited(pid_t pid, int* wstatus);

//! Waits up to `timeout` for the child to exit (and reaps it); false when it still runs.
bool WaitForChild(pid_t pid, std::chrono::milliseconds timeout, int* wstatus);

//! How StopChild went.
struct ChildStop {
  bool exited_before = false;  // it had already exited when StopChild was called
  bool killed = false;         // no signal of `steps` ended it in time: SIGKILL did
  int wstatus = 0;
};

//! Stops a child by its PID: sends each signal of `steps` in turn and waits up to its grace
//! period for the child to exit, then sends SIGKILL. Always reaps the child.
ChildStop StopChild(pid_t pid, const std::vector<std::pair<int, std::chrono::milliseconds>>& steps);

//! "exited with code 1", "was killed by signal 9".
std::string DescribeWaitStatus(int wstatus);

//! `count` distinct TCP ports on 127.0.0.1 that were free a moment ago (bound at once, then
//! released). Another process may take one before the child binds it; callers retry then.
Result<std::vector<uint16_t>> PickFreePorts(int count);
//! A TCP port on 127.0.0.1 that was free a moment ago. Another process may take it before the
//! child binds it; a caller retries with a new port when the child says so.
Result<uint16_t> PickFreePort();

//! The last lines of a text file, at most `max_bytes` (for an error message quoting a log).
std::string TailOfFile(const std::string& path, size_t max_bytes);

}  // namespace tally
