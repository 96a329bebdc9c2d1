// Whole numbers out of JSON read from files we did not write. nlohmann's get<int64_t>() converts any number:
// 1e30 to int64 is undefined behaviour, 2.5 is truncated, -1 as uint64 wraps. These accept only an integer that fits.
#pragma once
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>

#include "common/error.h"

namespace cg {

// True, with *out set, when v is an integer in int64's range.
inline bool json_int64(const nlohmann::json& v, int64_t* out) {
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    if (u > uint64_t(std::numeric_limits<int64_t>::max())) return false;
    *out = int64_t(u);
    return true;
  }
  if (!v.is_number_integer()) return false;
  *out = v.get<int64_t>();
  return true;
}

// True, with *out set, when v is an integer >= 0 (any uint64).
inline bool json_uint64(const nlohmann::json& v, uint64_t* out) {
  if (v.is_number_unsigned()) {
    *out = v.get<uint64_t>();
    return true;
  }
  if (!v.is_number_integer() || v.get<int64_t>() < 0) return false;
  *out = uint64_t(v.get<int64_t>());
  return true;
}

// j.at(key) as a whole number in [lo, hi]; otherwise cg::Error "<where>: \"key\" is 1e30, not a whole number in
// [lo, hi]" (a missing key throws nlohmann's out_of_range, which callers turn into their own message).
inline int64_t json_int_at(const nlohmann::json& j, const char* key, const std::string& where,
                           int64_t lo = std::numeric_limits<int64_t>::min(),
                           int64_t hi = std::numeric_limits<int64_t>::max()) {
  int64_t v = 0;
  CG_CHECK(json_int64(j.at(key), &v) && v >= lo && v <= hi, "{}: \"{}\" is {}, not a whole number in [{}, {}]", where,
           key, j.at(key).dump(), lo, hi);
  return v;
}

}  // namespace cg
