// Helpers shared by the fuzz targets: a small deterministic generator seeded from the input's
// first bytes, used to cut the rest of the input into chunks and to pick the host's answers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace relayq::fuzz {

// xorshift32: the same input always gives the same chunks and verdicts.
class Choices {
 public:
  explicit Choices(std::uint32_t seed) : state_(seed * 2654435761u + 0x9e3779b9u) {
    if (state_ == 0) state_ = 1;
  }
  std::uint32_t next() {
    state_ ^= state_ << 13;
    state_ ^= state_ >> 17;
    state_ ^= state_ << 5;
    return state_;
  }
  // A number in [0, n).
  std::uint32_t below(std::uint32_t n) { return next() % n; }
  // Usually a small piece (split reads, a command cut anywhere), sometimes a large one
  // (pipelined groups), sometimes everything left.
  std::size_t chunk(std::size_t left) {
    const std::uint32_t kind = below(8);
    std::size_t size = left;
    if (kind < 5) {
      size = 1 + below(16);
    } else if (kind < 7) {
      size = 1 + below(512);
    }
    return size < left ? size : left;
  }

 private:
  std::uint32_t state_;
};

// A broken promise of the code under test: report it and abort, so libFuzzer saves the input.
[[noreturn]] inline void fail(const char* what) {
  std::fprintf(stderr, "fuzz invariant broken: %s\n", what);
  std::abort();
}

}  // namespace relayq::fuzz
