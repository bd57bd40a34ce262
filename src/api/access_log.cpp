#include "api/access_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <iostream>
#include <mutex>
#include <thread>

#include "core/text_buffer.h"
#include "core/utf8.h"

namespace tally {

namespace {

void PutField(TextBuffer& out, std::string_view name, std::string_view value) {
  out.Put(",\"");
  out.Put(name);
  out.Put("\":");
  out.PutJsonString(ValidUtf8OrEscaped(value));
}

}  // namespace

std::string AccessLine(const AccessEntry& e) {
  TextBuffer out(384);
  out.Put("{\"time\":\"");
  out.PutTimestamp(e.time);
  out.Put('"');
  PutField(out, "remote", e.remote);
  PutField(out, "method", e.method);
  PutField(out, "path", e.path);
  PutField(out, "route", e.route);
  out.Put(",\"status\":");
  out.PutInt(e.status);
  out.Put(",\"bytes\":");
  out.PutInt(static_cast<int64_t>(e.bytes));
  out.Put(",\"duration_ms\":");
  out.PutDouble(std::isfinite(e.duration_ms) ? e.duration_ms : 0.0);
  PutField(out, "key_id", e.key_id);
  PutField(out, "role", e.role);
  PutField(out, "user_agent", e.user_agent.substr(0, 256));
  out.Put('}');
  return std::string(out.view());
}

struct AccessLog::Impl {
  int fd = -1;
  bool owns_fd = false;
  std::mutex write_mu;  // taken before mu, so batches reach the file in the order they were cut
  std::mutex mu;
  std::condition_variable cv;
  std::string pending;
  bool stopping = false;
  std::thread writer;

  void WriteOut(const std::string& data) {
    std::string_view rest = data;
    while (!rest.empty()) {
      const ssize_t n = ::write(fd, rest.data(), rest.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return;  // a closed stdout or a full disk: the access log is best effort
      rest.remove_prefix(static_cast<size_t>(n));
    }
  }

  // Writes what is pending; returns true once stopping and nothing is left.
  bool WritePending() {
    std::lock_guard write_lock(write_mu);
    std::string batch;
    bool stop = false;
    {
      std::lock_guard lock(mu);
      batch.swap(pending);
      stop = stopping;
    }
    WriteOut(batch);
    return stop;
  }

  void Loop() {
    for (;;) {
      {
        std::unique_lock lock(mu);
        cv.wait_for(lock, std::chrono::milliseconds(200), [&] { return stopping; });
      }
      if (WritePending()) return;
    }
  }
};

Result<std::unique_ptr<AccessLog>> AccessLog::Open(const std::string& target) {
  auto impl = std::make_unique<Impl>();
  if (target == "stdout") {
    impl->fd = STDOUT_FILENO;
  } else {
    impl->fd = ::open(target.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (impl->fd < 0) {
      return Status::IOError("cannot open access log " + target + ": " + std::strerror(errno));
    }
    impl->owns_fd = true;
  }
  Impl* raw = impl.get();
  impl->writer = std::thread([raw] { raw->Loop(); });
  return std::unique_ptr<AccessLog>(new AccessLog(std::move(impl)));
}

AccessLog::AccessLog(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

AccessLog::~AccessLog() {
  {
    std::lock_guard lock(impl_->mu);
    impl_->stopping = true;
  }
  impl_->cv.notify_one();
  impl_->writer.join();
  if (impl_->owns_fd) ::close(impl_->fd);
}

void AccessLog::Record(const AccessEntry& e) {
  std::string line = AccessLine(e);
  line += '\n';
  std::lock_guard lock(impl_->mu);
  // A stalled stdout must not grow memory without bound: past 64 MiB, lines are dropped.
  if (impl_->pending.size() < (64u << 20)) impl_->pending += line;
}

void AccessLog::Flush() {
  impl_->WritePending();
}

}  // namespace tally
