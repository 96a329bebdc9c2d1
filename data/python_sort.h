// Python's list.sort (CPython 3.11's timsort), step for step, for the sorts pymatgen does with keys that hold NaN: a
// noble gas's electronegativity compares false both ways, so "<" is no ordering and where such an item lands depends
// on which comparisons the algorithm makes, in which order (below 64 items binary insertion after the first run;
// above, runs so extended, merged with galloping in powersort's order). With a consistent "<" this is just a stable
// sort. Used for pymatgen's formulas (data/formula.cpp) and for the site order of its CifParser
// (data/pymatgen_order.h).
#pragma once
#include <cstddef>
#include <functional>
#include <vector>

namespace cg {

// Sorts the items 0..n-1 in `a` (in their given order) as Python's list.sort sorts a list of them, `lt(i, j)` its "<"
// (items are compared only by lt, never for equality).
void python_sort_indices(std::vector<size_t>& a, const std::function<bool(size_t, size_t)>& lt);

// Sorts `a` as Python's sorted(a) does with `lt` as "<".
template <class T, class Lt>
void python_sort(std::vector<T>& a, Lt lt) {
  std::vector<size_t> order(a.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  python_sort_indices(order, [&](size_t i, size_t j) { return lt(a[i], a[j]); });
  std::vector<T> sorted;
  sorted.reserve(a.size());
  for (size_t i : order) sorted.push_back(std::move(a[i]));
  a = std::move(sorted);
}

}  // namespace cg
