#pragma once
// The subscribers the funnel acquires, spilled to a scratch file beside the output. A
// 50-million-subscriber world acquires millions more; keeping them on disk rather than in a
// vector keeps the generator's memory flat. The funnel appends from one thread; afterwards any
// number of chunk threads read their own ranges with pread.

#include <string>
#include <vector>

#include "core/status.h"
#include "generate/subscriber_sim.h"

namespace tally {

//! Fixed-size records of AcquiredSubscriber in a file. The file is deleted with the store.
class AcquiredStore {
 public:
  AcquiredStore() = default;
  AcquiredStore(const AcquiredStore&) = delete;
  AcquiredStore& operator=(const AcquiredStore&) = delete;
  ~AcquiredStore();

  //! Creates (or truncates) the scratch file.
  Status Create(const std::string& path);
  //! Buffers one record; errors surface in FinishWriting().
  void Append(const AcquiredSubscriber& a);
  //! Writes what is buffered. Call once, before any Read.
  Status FinishWriting();
  int64_t size() const { return count_; }
  //! Reads records [first, first + n) into *out. Thread safe after FinishWriting().
  Status Read(int64_t first, int64_t n, std::vector<AcquiredSubscriber>* out) const;

 private:
  void FlushBuffer();
  int fd_ = -1;
  std::string path_;
  std::vector<AcquiredSubscriber> buffer_;
  int64_t count_ = 0;
  Status status_;
};

}  // namespace tally
