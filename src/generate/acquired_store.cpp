#include "generate/acquired_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <type_traits>

namespace tally {

static_assert(std::is_trivially_copyable_v<AcquiredSubscriber>, "records are written as raw bytes");

AcquiredStore::~AcquiredStore() {
  if (fd_ >= 0) {
    ::close(fd_);
    ::unlink(path_.c_str());
  }
}

Status AcquiredStore::Create(const std::string& path) {
  path_ = path;
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd_ < 0) return Status::IOError("cannot create " + path + ": " + std::strerror(errno));
  buffer_.reserve(4096);
  return Status::Ok();
}

void AcquiredStore::Append(const AcquiredSubscriber& a) {
  buffer_.push_back(a);
  ++count_;
  if (buffer_.size() == buffer_.capacity()) FlushBuffer();
}

void AcquiredStore::FlushBuffer() {
  const char* p = reinterpret_cast<const char*>(buffer_.data());
  size_t n = buffer_.size() * sizeof(AcquiredSubscriber);
  while (n > 0 && status_.ok()) {
    ssize_t w = ::write(fd_, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      status_ = Status::IOError("cannot write " + path_ + ": " + std::strerror(errno));
      break;
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  buffer_.clear();
}

Status AcquiredStore::FinishWriting() {
  FlushBuffer();
  return status_;
}

Status AcquiredStore::Read(int64_t first, int64_t n, std::vector<AcquiredSubscriber>* out) const {
  out->resize(static_cast<size_t>(n));
  char* p = reinterpret_cast<char*>(out->data());
  size_t left = static_cast<size_t>(n) * sizeof(AcquiredSubscriber);
  off_t offset = static_cast<off_t>(first) * static_cast<off_t>(sizeof(AcquiredSubscriber));
  while (left > 0) {
    ssize_t r = ::pread(fd_, p, left, offset);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      return Status::IOError("cannot read " + path_ + ": " + (r < 0 ? std::strerror(errno) : "short file"));
    }
    p += r;
    left -= static_cast<size_t>(r);
    offset += r;
  }
  return Status::Ok();
}

}  // namespace tally
