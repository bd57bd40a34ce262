#include "ingest/gzip.h"

#include <zlib.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <new>
#include <stdexcept>

namespace tally {

namespace {

// zlib counts bytes in `uInt` (32 bits), so larger buffers are handed over in pieces.
constexpr size_t kMaxZlibChunk = UINT_MAX;

// Window bits for zlib that select the gzip wrapper (header and CRC-32/ISIZE trailer) rather than
// the zlib one; inflate then also rejects zlib and raw deflate streams.
constexpr int kGzipWindowBits = 16 + MAX_WBITS;

uInt ChunkSize(size_t n) {
  return static_cast<uInt>(std::min(n, kMaxZlibChunk));
}

Bytef* Bytes(const char* p) {
  return reinterpret_cast<Bytef*>(const_cast<char*>(p));
}

//! Owns an inflate stream so every return path releases zlib's state.
class Inflater {
 public:
  Inflater() = default;
  Inflater(const Inflater&) = delete;
  Inflater& operator=(const Inflater&) = delete;
  ~Inflater() {
    if (initialised_) inflateEnd(&zs_);
  }
  int Init() {
    int rc = inflateInit2(&zs_, kGzipWindowBits);
    initialised_ = rc == Z_OK;
    return rc;
  }
  z_stream& zs() { return zs_; }

 private:
  z_stream zs_{};
  bool initialised_ = false;
};

//! Owns a deflate stream so every return path releases zlib's state.
class Deflater {
 public:
  Deflater() = default;
  Deflater(const Deflater&) = delete;
  Deflater& operator=(const Deflater&) = delete;
  ~Deflater() {
    if (initialised_) deflateEnd(&zs_);
  }
  int Init(int level) {
    int rc = deflateInit2(&zs_, level, Z_DEFLATED, kGzipWindowBits, 8, Z_DEFAULT_STRATEGY);
    initialised_ = rc == Z_OK;
    return rc;
  }
  z_stream& zs() { return zs_; }

 private:
  z_stream zs_{};
  bool initialised_ = false;
};

Status Truncated() {
  return Status::Corruption("truncated gzip stream");
}

Status TooLarge(size_t max_out) {
  return Status::InvalidArgument("gzip body expands beyond " + std::to_string(max_out) + " bytes");
}

}  // namespace

Result<std::string> Gunzip(std::string_view in, size_t max_out) {
  if (in.empty()) return Truncated();
  Inflater inflater;
  int rc = inflater.Init();
  if (rc == Z_MEM_ERROR) throw std::bad_alloc();
  if (rc != Z_OK) return Status::Internal(std::string("cannot start zlib inflate: ") + zError(rc));
  z_stream& zs = inflater.zs();

  // The output buffer may grow to one byte past max_out: filling that byte proves the body is too
  // large without ever holding more than the limit plus one byte. It starts at a guess of a few
  // times the input and doubles, so a bomb is caught before its memory is allocated.
  const size_t limit = max_out == SIZE_MAX ? max_out : max_out + 1;
  std::string out;
  out.resize(std::min(limit, std::max<size_t>(in.size() * 4, 4096)));
  size_t produced = 0;
  size_t fed = 0;  // bytes of `in` handed to zlib so far

  for (;;) {
    if (zs.avail_in == 0 && fed < in.size()) {
      zs.next_in = Bytes(in.data() + fed);
      zs.avail_in = ChunkSize(in.size() - fed);
      fed += zs.avail_in;
    }
    if (produced == out.size()) {
      if (out.size() >= limit) return TooLarge(max_out);
      out.resize(out.size() > limit / 2 ? limit : out.size() * 2);
    }
    zs.next_out = reinterpret_cast<Bytef*>(out.data() + produced);
    zs.avail_out = ChunkSize(out.size() - produced);
    const uInt room = zs.avail_out;
    rc = inflate(&zs, Z_NO_FLUSH);
    produced += room - zs.avail_out;
    if (produced > max_out) return TooLarge(max_out);

    const bool input_left = zs.avail_in > 0 || fed < in.size();
    switch (rc) {
      case Z_STREAM_END:
        if (!input_left) {
          out.resize(produced);
          return out;
        }
        // Another member follows (RFC 1952 section 2.2): decode it into the same output.
        inflateReset(&zs);
        break;
      case Z_OK:
        break;
      case Z_BUF_ERROR:
        // No progress was possible: out of input (the stream stops early) or out of room (the
        // next turn of the loop grows the buffer).
        if (!input_left) return Truncated();
        if (zs.avail_out != 0) return Status::Corruption("corrupt gzip stream: no progress");
        break;
      case Z_MEM_ERROR:
        throw std::bad_alloc();
      default:  // Z_DATA_ERROR, Z_NEED_DICT, Z_STREAM_ERROR
        return Status::Corruption(std::string("corrupt gzip stream: ") +
                                  (zs.msg != nullptr ? zs.msg : zError(rc)));
    }
  }
}

std::string Gzip(std::string_view in, int level) {
  if (level < -1 || level > 9) {
    throw std::invalid_argument("Gzip level must be -1..9, got " + std::to_string(level));
  }
  Deflater deflater;
  int rc = deflater.Init(level);
  if (rc == Z_MEM_ERROR) throw std::bad_alloc();
  if (rc != Z_OK) throw std::logic_error(std::string("cannot start zlib deflate: ") + zError(rc));
  z_stream& zs = deflater.zs();

  std::string out;
  out.resize(deflateBound(&zs, in.size()));
  size_t produced = 0;
  size_t fed = 0;
  for (;;) {
    if (zs.avail_in == 0 && fed < in.size()) {
      zs.next_in = Bytes(in.data() + fed);
      zs.avail_in = ChunkSize(in.size() - fed);
      fed += zs.avail_in;
    }
    if (produced == out.size()) out.resize(out.size() * 2 + 64);
    zs.next_out = reinterpret_cast<Bytef*>(out.data() + produced);
    zs.avail_out = ChunkSize(out.size() - produced);
    const uInt room = zs.avail_out;
    const int flush = fed == in.size() ? Z_FINISH : Z_NO_FLUSH;
    rc = deflate(&zs, flush);
    produced += room - zs.avail_out;
    if (rc == Z_STREAM_END) break;
    if (rc != Z_OK && rc != Z_BUF_ERROR) {
      throw std::logic_error(std::string("zlib deflate failed: ") + zError(rc));
    }
  }
  out.resize(produced);
  return out;
}

}  // namespace tally
