// A simple structure matcher for uniqueness and novelty: an approximation of pymatgen's StructureMatcher.
// Two crystals match when (1) their reduced compositions are equal, (2) their volumes per atom agree within ltol
// (relative), and (3) for every element and every neighbour rank k = 1..K, the sorted list over that element's sites
// of the k-th nearest-neighbour distance, in units of (V/N)^(1/3), agrees entry by entry within stol (lists of
// different cell sizes are compared after repeating each entry to a common length, so a supercell matches its cell).
// It is invariant to atom order, origin shifts, cell choice (supercells) and rigid rotations; unlike pymatgen it can
// call two different structures with identical neighbour-distance statistics a match (rare; homometric pairs).
#pragma once
#include <string>
#include <unordered_map>
#include <vector>

#include "data/crystal.h"

namespace cg {

struct MatchTolerance {
  double ltol = 0.2;   // relative difference of volume per atom (pymatgen's default ltol is also 0.2, on lengths)
  double stol = 0.1;   // neighbour distances in units of (V/N)^(1/3)
  int neighbours = 12;  // K nearest neighbours per site (first and second shells of close packings)
};

struct StructureFingerprint {
  std::string formula;              // reduced composition (Composition::formula), the grouping key
  std::vector<std::string> elements;  // as in the composition
  std::vector<int> site_counts;     // sites per element in this cell
  double volume_per_atom = 0;       // Å^3
  // per element, per rank k: sorted k-th neighbour distances / (V/N)^(1/3). (elements, K, sites of element)
  std::vector<std::vector<std::vector<double>>> nn;
  bool ok = false;                  // false for empty or degenerate cells (they match nothing)
};

// The K nearest-neighbour distances of site i over all periodic images (self-images included), ascending. Å.
std::vector<double> nearest_neighbour_distances(const Crystal& c, size_t i, int k);

StructureFingerprint fingerprint(const Crystal& c, const MatchTolerance& tol = {});
bool structures_match(const StructureFingerprint& a, const StructureFingerprint& b, const MatchTolerance& tol = {});

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
