// Rng: a tiny portable PRNG (splitmix64) whose streams are identical on every platform and standard library,
// so augmentation, task draws and the loader's order depend only on the seed (std::*_distribution does not).
#pragma once
#include <cstdint>
#include <utility>
#include <vector>

namespace cg {

class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  // Seed derived from several keys (seed, split, row, copy, ...): independent streams per sample,
  // so parallel workers draw the same numbers as a serial run.
  static uint64_t derive(std::initializer_list<uint64_t> keys) {
    uint64_t h = 0x243f6a8885a308d3ull;
    for (uint64_t k : keys) h = mix(h ^ mix(k + 0x9e3779b97f4a7c15ull));
    return h;
  }
  uint64_t next() { return mix(state_ += 0x9e3779b97f4a7c15ull); }
  // Uniform double in [0, 1) with 53 random bits.
  double uniform() { return double(next() >> 11) * (1.0 / 9007199254740992.0); }
  // Uniform integer in [0, n), n > 0, without modulo bias.
  uint64_t below(uint64_t n) {
    uint64_t limit = (~uint64_t(0) / n) * n;
    uint64_t x;
    do x = next(); while (x >= limit);
    return x % n;
  }
  // Fisher-Yates shuffle.
  template <class T>
  void shuffle(std::vector<T>& v) {
    for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[below(i)]);
  }

 private:
  static uint64_t mix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  uint64_t state_;
};

}  // namespace cg
