#include "api/audit_log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <thread>

#include "core/text_buffer.h"
#include "core/utf8.h"

namespace tally {

namespace {

void PutString(TextBuffer& out, std::string_view name, std::string_view value, bool null_if_empty) {
  out.Put(',');
  out.PutJsonString(name);
  out.Put(':');
  if (null_if_empty && value.empty()) {
    out.Put("null");
  } else {
    out.PutJsonString(ValidUtf8OrEscaped(value));
  }
}

Status WriteAll(int fd, std::string_view data, const std::string& path) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::IOError("cannot write " + path + ": " + std::strerror(errno));
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return Status::Ok();
}

}  // namespace

std::string AuditLine(const AuditEntry& e) {
  TextBuffer out(512);
  out.Put("{\"time\":\"");
  out.PutTimestamp(e.time);
  out.Put('"');
  PutString(out, "key_id", e.key_id, true);
  PutString(out, "token_id", e.token_id, true);
  PutString(out, "role", e.role ? Name(*e.role) : std::string_view(), true);
  PutString(out, "scope", e.scope, false);
  PutString(out, "method", e.method, false);
  PutString(out, "route", e.route, false);
  PutString(out, "query", e.query, false);
  out.Put(",\"status\":");
  out.PutInt(e.status);
  out.Put(",\"rows\":");
  out.PutInt(e.rows);
  out.Put(",\"duration_ms\":");
  out.PutDouble(std::isfinite(e.duration_ms) ? e.duration_ms : 0.0);
  out.Put('}');
  return std::string(out.view());
}

class AuditLog::Impl {
 public:
  Impl(std::string dir, Options options) : dir_(std::move(dir)), options_(options) {
    writer_ = std::thread([this] { WriterLoop(); });
  }
  ~Impl() { (void)Close(); }

  void Record(const AuditEntry& e) {
    std::string line = AuditLine(e);
    line += '\n';
    std::unique_lock lock(mu_);
    written_cv_.wait(lock, [&] { return stopping_ || queued_bytes_ <= options_.max_queued_bytes; });
    if (stopping_) {
      ++lost_;
      return;
    }
    queued_bytes_ += line.size();
    queue_[e.time.date().days] += line;
    ++recorded_;
    if (queued_bytes_ > options_.max_queued_bytes / 2) wake_cv_.notify_one();
  }

  Status Flush() {
    std::unique_lock lock(mu_);
    const uint64_t target = recorded_;
    flush_requested_ = true;
    wake_cv_.notify_one();
    written_cv_.wait(lock, [&] { return written_ >= target || writer_done_; });
    return ErrorLocked();
  }

  Status Close() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    wake_cv_.notify_one();
    written_cv_.notify_all();
    if (writer_.joinable()) writer_.join();
    std::lock_guard lock(mu_);
    return ErrorLocked();
  }

  std::string PathFor(Date day) const {
    return (std::filesystem::path(dir_) / ("audit-" + FormatDate(day) + ".ndjson")).string();
  }

 private:
  Status ErrorLocked() const {
    if (error_.ok() && lost_ == 0) return Status::Ok();
    const std::string lost = std::to_string(lost_) + " audit line(s) lost";
    return error_.ok() ? Status::IOError(lost) : error_.WithContext(lost);
  }

  void WriterLoop() {
    std::unique_lock lock(mu_);
    for (;;) {
      wake_cv_.wait_for(lock, options_.flush_interval, [&] {
        return stopping_ || flush_requested_ || queued_bytes_ > options_.max_queued_bytes / 2;
      });
      std::map<int32_t, std::string> batch;
      batch.swap(queue_);
      queued_bytes_ = 0;
      flush_requested_ = false;
      const uint64_t batch_end = recorded_;
      const bool last = stopping_;
      lock.unlock();
      written_cv_.notify_all();  // room in the queue again

      Status st = Status::Ok();
      uint64_t failed_lines = 0;
      for (const auto& [day, text] : batch) {
        Status w = Append(Date{day}, text);
        if (!w.ok()) {
          failed_lines += static_cast<uint64_t>(std::count(text.begin(), text.end(), '\n'));
          if (st.ok()) st = w;
        }
      }

      lock.lock();
      if (!st.ok()) {
        if (error_.ok()) error_ = st;
        lost_ += failed_lines;
      }
      written_ = batch_end;
      written_cv_.notify_all();
      if (last) break;
    }
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    writer_done_ = true;
    written_cv_.notify_all();
  }

  // Appends `text` to the file of `day` and syncs it. Only the writer thread calls this.
  Status Append(Date day, std::string_view text) {
    if (fd_ < 0 || fd_day_ != day) {
      if (fd_ >= 0) ::close(fd_);
      fd_ = -1;
      const std::string path = PathFor(day);
      fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
      if (fd_ < 0) return Status::IOError("cannot open " + path + ": " + std::strerror(errno));
      fd_day_ = day;
      fd_path_ = path;
      // A crash may have left a torn last line; end it so the lines after it stay valid.
      struct stat st {};
      char last = '\n';
      if (::fstat(fd_, &st) == 0 && st.st_size > 0) {
        const int rfd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (rfd >= 0) {
          if (::pread(rfd, &last, 1, st.st_size - 1) != 1) last = '\n';
          ::close(rfd);
        }
      }
      if (last != '\n') TALLY_RETURN_IF_ERROR(WriteAll(fd_, "\n", path));
    }
    TALLY_RETURN_IF_ERROR(WriteAll(fd_, text, fd_path_));
    if (::fdatasync(fd_) != 0) {
      return Status::IOError("cannot sync " + fd_path_ + ": " + std::strerror(errno));
    }
    return Status::Ok();
  }

  const std::string dir_;
  const Options options_;

  std::mutex mu_;
  std::condition_variable wake_cv_;       // wakes the writer
  std::condition_variable written_cv_;    // a batch was taken or written
  std::map<int32_t, std::string> queue_;  // lines by day, in arrival order within a day
  size_t queued_bytes_ = 0;
  uint64_t recorded_ = 0;  // lines queued so far
  uint64_t written_ = 0;   // lines written (or given up on) so far
  uint64_t lost_ = 0;
  Status error_;
  bool flush_requested_ = false;
  bool stopping_ = false;
  bool writer_done_ = false;

  // The writer's open file.
  int fd_ = -1;
  Date fd_day_;
  std::string fd_path_;

  std::thread writer_;
};

Result<std::unique_ptr<AuditLog>> AuditLog::Open(const std::string& dir, Options options) {
  if (options.flush_interval.count() <= 0) {
    return Status::InvalidArgument("audit log flush interval must be more than 0");
  }
  const std::string audit_dir = (std::filesystem::path(dir) / "audit").string();
  std::error_code ec;
  std::filesystem::create_directories(audit_dir, ec);
  if (ec) return Status::IOError("cannot create directory " + audit_dir + ": " + ec.message());
  return std::unique_ptr<AuditLog>(new AuditLog(std::make_unique<Impl>(audit_dir, options)));
}

AuditLog::AuditLog(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
AuditLog::~AuditLog() = default;

void AuditLog::Record(const AuditEntry& e) {
  impl_->Record(e);
}
Status AuditLog::Flush() {
  return impl_->Flush();
}
Status AuditLog::Close() {
  return impl_->Close();
}
std::string AuditLog::PathFor(Date day) const {
  return impl_->PathFor(day);
}

}  // namespace tally
