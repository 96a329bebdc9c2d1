// The structure matcher for uniqueness and novelty: pymatgen's StructureMatcher.fit with its defaults (ltol 0.2,
// stol 0.3, angle_tol 5, primitive_cell=True, scale=True, attempt_supercell=False), re-implemented step by step:
//   1. reduced compositions must be equal (exact species; no oxidation states, no element substitution);
//   2. each crystal is reduced to its primitive cell (pymatgen's get_primitive_structure, tolerance 0.25 Å per
//      axis of the candidate cell, transcribed: Hermite-normal-form sublattices of increasing index, recursively)
//      and to its Niggli cell (pymatgen's get_niggli_reduced_lattice transcribed; step 4 takes the second
//      crystal's a, b, c and angles as its target, so any other of several equally short bases can decide a pair
//      whose angles are near angle_tol). Primitive cells with different site counts never match;
//   3. scale: both lattices are scaled to the geometric mean of their volumes;
//   4. every basis of the first lattice whose lengths are within a factor (1 + ltol) of the second's and whose
//      angles are within angle_tol degrees (Lattice.find_all_mappings, |det| = 1) is tried. Sites are compared in
//      fractional coordinates on the average lattice (mean of the two parameter sets);
//   5. for each translation that puts a site of the rarest element onto a site of the same element, sites are paired
//      by a minimum-cost assignment of squared periodic distances (same element only); the mean displacement is
//      removed and the largest remaining site displacement, divided by (V/N)^(1/3) of the average lattice, must be
//      <= stol. (fit() uses this maximum; pymatgen's get_rms_dist reports the RMS instead.)
// Like pymatgen's fit(a, b), structures_match(a, b) is not symmetric (step 4 maps a's lattice onto b's parameters;
// pymatgen's own two orders differ on 6 of the 3,158 MP-20 test/train pairs of equal formula, ours on the same 6,
// the same way), so callers fix the order: novelty (train crystal, sample), uniqueness (earlier, later).
// Difference from pymatgen: where several bases have the Niggli parameters, pymatgen keeps the first its lattice
// search meets and we keep the one the reduction arrives at; the primitive search measures its tolerance along that
// basis's axes (a site within a hair of 0.25 Å can be decided differently), and the second crystal's basis decides
// which bases of the first are tried in step 4 (docs/evaluation.md: MP-20 mp-1059528). Cross-checked against pymatgen
// 2022.11 by tests/sampler/matcher_reference.py (test_matcher_reference).
#pragma once
#include <string>
#include <unordered_map>
#include <vector>

#include "data/crystal.h"

namespace cg {

struct MatchTolerance {
  double ltol = 0.2;        // lattice lengths may differ by a factor up to 1 + ltol (pymatgen ltol)
  double stol = 0.3;        // largest site displacement / (V/N)^(1/3) (pymatgen stol)
  double angle_tol = 5.0;   // lattice angles, degrees (pymatgen angle_tol)
  bool scale = true;        // scale both cells to equal volume first (pymatgen scale)
  bool primitive_cell = true;  // reduce both to primitive cells first (pymatgen primitive_cell)
  double primitive_tol = 0.25;  // Å per lattice axis, for finding the primitive cell (get_primitive_structure)
};

// A crystal prepared for matching: its reduced composition and its primitive, basis-reduced cell.
struct StructureFingerprint {
  std::string formula;                // reduced composition (Composition::formula), the grouping key
  std::vector<std::string> elements;  // as in the composition
  Mat3 lattice{};                     // rows a, b, c of the reduced primitive cell, Å
  std::vector<Vec3> frac;             // fractional coordinates in that cell, [0, 1)
  std::vector<int> element;           // per site, index into `elements`
  bool ok = false;                    // false for empty or degenerate cells (they match nothing)
};

StructureFingerprint fingerprint(const Crystal& c, const MatchTolerance& tol = {});
bool structures_match(const StructureFingerprint& a, const StructureFingerprint& b, const MatchTolerance& tol = {});

// The primitive cell of `c` as step 2 above finds it (the crystal itself when it is already primitive).
Crystal primitive_cell(const Crystal& c, double tol = 0.25);

// The Niggli-reduced basis of the lattice whose rows are `m` (Å), as step 2 above reduces every cell: pymatgen's
// Lattice.get_niggli_reduced_lattice() (tol 1e-5) transcribed, right-handed, in the input's Cartesian frame.
// Cross-checked on random lattices by tests/sampler/niggli_reference.py (test_niggli_reference).
Mat3 niggli_reduced_lattice(const Mat3& m);

// Index of the first earlier crystal each crystal matches (itself when none): uniqueness = #(dup[i] == i) / n.
std::vector<size_t> duplicate_of(const std::vector<StructureFingerprint>& fps, const MatchTolerance& tol = {});

// Novelty against a reference set: novel[i] is true when crystal i matches none of `reference`. Only reference
// crystals with the same reduced formula are fingerprinted, so a large training set stays cheap.
class NoveltyIndex {
 public:
  NoveltyIndex(const std::vector<Crystal>* reference, MatchTolerance tol = {});
  bool is_novel(const StructureFingerprint& fp);
  size_t reference_size() const { return ref_ ? ref_->size() : 0; }

 private:
  const std::vector<Crystal>* ref_;
  MatchTolerance tol_;
  std::vector<StructureFingerprint> fp_;  // per reference crystal, computed lazily
  std::vector<char> have_fp_;
  std::unordered_map<std::string, std::vector<size_t>> by_formula_;  // reduced formula -> reference indices
};

}  // namespace cg
