// Deterministic random numbers, bit-identical on every platform and compiler: splitmix64 (seeding
// and the stateless counter hash the synthetic-model generator uses per element) and
// xoshiro256** (the sampler's stream). No std::*_distribution anywhere: their output is
// implementation-defined.
#pragma once

#include <cstdint>

namespace quill {

// The splitmix64 finalizer: a bijective 64-bit mix, good enough as a counter-based hash.
inline uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// One step of the splitmix64 generator (advances state).
inline uint64_t splitmix64(uint64_t& state) {
  state += 0x9e3779b97f4a7c15ull;
  return mix64(state);
}

// Uniform double in [0, 1) from the top 53 bits.
inline double u64_to_unit_double(uint64_t x) { return double(x >> 11) * 0x1.0p-53; }

// An approximately standard-normal value from one 64-bit hash: the Irwin-Hall sum of four 16-bit
// uniforms, rescaled to unit variance (bounded to about +-3.46; cheap and branch-free).
inline float u64_to_normalish(uint64_t x) {
  const int32_t s = int32_t(x & 0xffff) + int32_t((x >> 16) & 0xffff) + int32_t((x >> 32) & 0xffff) +
                    int32_t(x >> 48);              // in [0, 4*65535], mean 131070, variance 4*(65536^2-1)/12
  constexpr float kScale = 1.7320508f / 65536.0f;  // sqrt(12/4) / 65536
  return float(s - 131070) * kScale;
}

// xoshiro256** 1.0 (Blackman & Vigna), seeded through splitmix64 as its authors recommend.
class Xoshiro256 {
 public:
  explicit Xoshiro256(uint64_t seed = 0) { reseed(seed); }

  void reseed(uint64_t seed) {
    uint64_t sm = seed;
    for (auto& word : s_) word = splitmix64(sm);
  }

  uint64_t next() {
    const uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }

  double uniform() { return u64_to_unit_double(next()); }  // [0, 1)

 private:
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

}  // namespace quill
