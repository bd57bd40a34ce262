#pragma once
// gzip (RFC 1952) compression and decompression of whole in-memory bodies.
//
// Sources receive compressed batches (HTTP `Content-Encoding: gzip`, gzipped files, Kafka payloads)
// and hand the pipeline plain text, so decoding happens once, at the edge. A body is bounded by
// `max_out` because a few kilobytes of gzip can expand to gigabytes ("zip bomb"): decoding stops
// as soon as the output would pass the limit, before that memory is allocated.

#include <cstddef>
#include <string>
#include <string_view>

#include "core/status.h"

namespace tally {

//! Decompresses a gzip stream (RFC 1952; concatenated members allowed). Errors: "truncated gzip
//! stream" when input ends early, "corrupt gzip stream: <zlib msg>", and "gzip body expands beyond
//! N bytes" when output would exceed max_out. Never crashes on any input.
//!
//! Codes: truncated and corrupt streams are kCorruption; a body over max_out is kInvalidArgument
//! (the stream may be fine, it is only too large for the caller). Bytes after the last member
//! must themselves be a gzip member: trailing garbage is corrupt, and a partial header truncated.
Result<std::string> Gunzip(std::string_view in, size_t max_out);

//! Compresses (for tests, clients and benchmarks). `level` is zlib's: 0 (store) to 9 (smallest),
//! or -1 for zlib's default; anything else is a programmer error (std::invalid_argument).
std::string Gzip(std::string_view in, int level = 6);

}  // namespace tally
