// Space groups of many crystals (spglib, through data/space_groups.h), for cgeval's check of space-group-conditioned
// samples and its space-group histogram.
#pragma once
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "data/crystal.h"
#include "data/space_groups.h"  // SpaceGroup, have_spglib, space_group

namespace cg {

// Space group numbers of a list of crystals, each looked up at most once (spglib takes 2-16 ms a crystal, the slow
// part of cgeval), with a progress line every 10 s.
class SpaceGroupCache {
 public:
  SpaceGroupCache(const std::vector<Crystal>& crystals, double symprec);
  int number(size_t i);  // 0: spglib found none, or is not built in
  double symprec() const { return symprec_; }
  const std::vector<Crystal>& crystals() const { return crystals_; }

 private:
  const std::vector<Crystal>& crystals_;
  double symprec_;
  std::vector<int> number_;  // -1: not looked up yet
  int64_t looked_up_ = 0;
  std::chrono::steady_clock::time_point last_log_;
};

// Space groups of the valid crystals against the reference split's (its spacegroup.number column, Materials
// Project's spglib at 0.1 Å: the same finder at eval.symprec's default; or spglib's where it has none).
struct SpaceGroupReport {
  int64_t crystals = 0, found = 0;  // crystals looked at; those spglib gave a group
  std::map<int, int64_t> counts;    // space group number -> crystals
  int64_t ref_crystals = 0;         // reference rows with a space group number
  std::map<int, int64_t> ref_counts;
  double tv = -1;                   // total variation between the two normalised histograms; -1: no reference
  int64_t ref_rows = 0;             // reference crystals looked at
  int64_t ref_from_spglib = 0;      // of them, those without a spacegroup.number (a CIF folder, an empty cell):
                                    // spglib's group
  double symprec = 0.1;
  double share(int number) const { return found > 0 ? double(counts.count(number) ? counts.at(number) : 0) / found : 0; }
  double ref_share(int number) const {
    return ref_crystals > 0 ? double(ref_counts.count(number) ? ref_counts.at(number) : 0) / ref_crystals : 0;
  }
};
// numbers / ref_numbers: one per crystal, 0 where unknown; ref_numbers may be null (no reference).
SpaceGroupReport space_group_report(const std::vector<int>& numbers, const std::vector<int>* ref_numbers,
                                    double symprec);

}  // namespace cg
