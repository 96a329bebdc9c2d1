// Python's list.sort, CPython 3.11's timsort step for step (Objects/listobject.c, Objects/listsort.txt).
#include "data/python_sort.h"

#include <algorithm>

namespace cg {
namespace {

using Less = std::function<bool(size_t, size_t)>;
constexpr std::ptrdiff_t kMinGallop = 7;  // CPython's MIN_GALLOP

// [lo, hi) sorted by binary insertion, [lo, start) already sorted (binarysort).
void binary_insertion(size_t* lo, size_t* hi, size_t* start, const Less& lt) {
  if (lo == start) ++start;
  for (; start < hi; ++start) {
    size_t pivot = *start;
    size_t *l = lo, *r = start;
    while (l < r) {
      size_t* p = l + ((r - l) >> 1);
      if (lt(pivot, *p)) r = p;
      else l = p + 1;
    }
    for (size_t* p = start; p > l; --p) *p = *(p - 1);
    *l = pivot;
  }
}

// Length of the run at lo (lo < hi): non-descending (a[i] < a[i-1] never), or strictly descending (*descending).
std::ptrdiff_t count_run(size_t* lo, size_t* hi, bool* descending, const Less& lt) {
  *descending = false;
  if (lo + 1 == hi) return 1;
  std::ptrdiff_t n = 2;
  if (lt(lo[1], lo[0])) {
    *descending = true;
    for (size_t* p = lo + 2; p < hi && lt(*p, *(p - 1)); ++p) ++n;
  } else {
    for (size_t* p = lo + 2; p < hi && !lt(*p, *(p - 1)); ++p) ++n;
  }
  return n;
}

// k in 0..n with a[k-1] < key <= a[k], searched from a[hint] outwards (gallop_left).
std::ptrdiff_t gallop_left(const size_t& key, const size_t* a, std::ptrdiff_t n, std::ptrdiff_t hint, const Less& lt) {
  std::ptrdiff_t last = 0, ofs = 1;
  if (lt(a[hint], key)) {  // gallop right: a[hint + last] < key <= a[hint + ofs]
    const std::ptrdiff_t max_ofs = n - hint;
    while (ofs < max_ofs && lt(a[hint + ofs], key)) {
      last = ofs;
      ofs = (ofs << 1) + 1;
    }
    ofs = std::min(ofs, max_ofs);
    last += hint;
    ofs += hint;
  } else {  // gallop left: a[hint - ofs] < key <= a[hint - last]
    const std::ptrdiff_t max_ofs = hint + 1;
    while (ofs < max_ofs && !lt(a[hint - ofs], key)) {
      last = ofs;
      ofs = (ofs << 1) + 1;
    }
    ofs = std::min(ofs, max_ofs);
    const std::ptrdiff_t k = last;
    last = hint - ofs;
    ofs = hint - k;
  }
  for (++last; last < ofs;) {  // binary search in (last, ofs]
    const std::ptrdiff_t m = last + ((ofs - last) >> 1);
    if (lt(a[m], key)) last = m + 1;
    else ofs = m;
  }
  return ofs;
}

// k in 0..n with a[k-1] <= key < a[k] (gallop_right).
std::ptrdiff_t gallop_right(const size_t& key, const size_t* a, std::ptrdiff_t n, std::ptrdiff_t hint, const Less& lt) {
  std::ptrdiff_t last = 0, ofs = 1;
  if (lt(key, a[hint])) {  // gallop left: a[hint - ofs] <= key < a[hint - last]
    const std::ptrdiff_t max_ofs = hint + 1;
    while (ofs < max_ofs && lt(key, a[hint - ofs])) {
      last = ofs;
      ofs = (ofs << 1) + 1;
    }
    ofs = std::min(ofs, max_ofs);
    const std::ptrdiff_t k = last;
    last = hint - ofs;
    ofs = hint - k;
  } else {  // gallop right: a[hint + last] <= key < a[hint + ofs]
    const std::ptrdiff_t max_ofs = n - hint;
    while (ofs < max_ofs && !lt(key, a[hint + ofs])) {
      last = ofs;
      ofs = (ofs << 1) + 1;
    }
    ofs = std::min(ofs, max_ofs);
    last += hint;
    ofs += hint;
  }
  for (++last; last < ofs;) {
    const std::ptrdiff_t m = last + ((ofs - last) >> 1);
    if (lt(key, a[m])) ofs = m;
    else last = m + 1;
  }
  return ofs;
}

// The merge state of one sort: the list, its pending runs (start, length, powersort power), min_gallop.
struct Merger {
  struct Run {
    std::ptrdiff_t start, len;
    int power;
  };
  Merger(size_t* base_, std::ptrdiff_t n_, const Less& lt_) : base(base_), n(n_), lt(lt_) {}
  size_t* base;
  std::ptrdiff_t n;
  const Less& lt;
  std::ptrdiff_t min_gallop = kMinGallop;
  std::vector<Run> pending;
  std::vector<size_t> tmp;

  // The na items at a with the nb at b = a + na, na <= nb, a copied aside (merge_lo).
  void merge_lo(size_t* a, std::ptrdiff_t na, size_t* b, std::ptrdiff_t nb) {
    tmp.assign(a, a + na);
    size_t* dest = a;
    size_t* pa = tmp.data();
    size_t* pb = b;
    *dest++ = *pb++;
    if (--nb == 0) return succeed_lo(dest, pa, na);
    if (na == 1) return copy_b(dest, pa, pb, nb);
    std::ptrdiff_t gallop = min_gallop;
    for (;;) {
      std::ptrdiff_t acount = 0, bcount = 0;  // times in a row each run won
      for (;;) {
        if (lt(*pb, *pa)) {
          *dest++ = *pb++;
          ++bcount;
          acount = 0;
          if (--nb == 0) return succeed_lo(dest, pa, na);
          if (bcount >= gallop) break;
        } else {
          *dest++ = *pa++;
          ++acount;
          bcount = 0;
          if (--na == 1) return copy_b(dest, pa, pb, nb);
          if (acount >= gallop) break;
        }
      }
      ++gallop;
      do {
        gallop -= gallop > 1;
        min_gallop = gallop;
        std::ptrdiff_t k = gallop_right(*pb, pa, na, 0, lt);
        acount = k;
        if (k) {
          dest = std::copy(pa, pa + k, dest);
          pa += k;
          na -= k;
          if (na == 1) return copy_b(dest, pa, pb, nb);
          if (na == 0) return succeed_lo(dest, pa, na);  // only with an inconsistent "<"
        }
        *dest++ = *pb++;
        if (--nb == 0) return succeed_lo(dest, pa, na);
        k = gallop_left(*pa, pb, nb, 0, lt);
        bcount = k;
        if (k) {
          dest = std::copy(pb, pb + k, dest);  // dest < pb: a forward copy is a memmove
          pb += k;
          nb -= k;
          if (nb == 0) return succeed_lo(dest, pa, na);
        }
        *dest++ = *pa++;
        if (--na == 1) return copy_b(dest, pa, pb, nb);
      } while (acount >= kMinGallop || bcount >= kMinGallop);
      ++gallop;  // penalty for leaving galloping mode
      min_gallop = gallop;
    }
  }
  static void succeed_lo(size_t* dest, size_t* pa, std::ptrdiff_t na) { std::copy(pa, pa + na, dest); }
  static void copy_b(size_t* dest, size_t* pa, size_t* pb, std::ptrdiff_t nb) {  // a's last item ends the merge
    dest = std::copy(pb, pb + nb, dest);
    *dest = *pa;
  }

  // The same with na >= nb, b copied aside, merging from the right (merge_hi).
  void merge_hi(size_t* a, std::ptrdiff_t na, size_t* b, std::ptrdiff_t nb) {
    tmp.assign(b, b + nb);
    size_t* dest = b + nb - 1;
    size_t* const base_a = a;
    size_t* const base_b = tmp.data();
    size_t* pa = a + na - 1;
    size_t* pb = base_b + nb - 1;
    *dest-- = *pa--;
    if (--na == 0) return succeed_hi(dest, base_b, nb);
    if (nb == 1) return copy_a(dest, pa, pb, na);
    std::ptrdiff_t gallop = min_gallop;
    for (;;) {
      std::ptrdiff_t acount = 0, bcount = 0;
      for (;;) {
        if (lt(*pb, *pa)) {
          *dest-- = *pa--;
          ++acount;
          bcount = 0;
          if (--na == 0) return succeed_hi(dest, base_b, nb);
          if (acount >= gallop) break;
        } else {
          *dest-- = *pb--;
          ++bcount;
          acount = 0;
          if (--nb == 1) return copy_a(dest, pa, pb, na);
          if (bcount >= gallop) break;
        }
      }
      ++gallop;
      do {
        gallop -= gallop > 1;
        min_gallop = gallop;
        std::ptrdiff_t k = na - gallop_right(*pb, base_a, na, na - 1, lt);
        acount = k;
        if (k) {
          dest -= k;
          pa -= k;
          std::copy_backward(pa + 1, pa + 1 + k, dest + 1 + k);  // dest > pa: a backward copy is a memmove
          na -= k;
          if (na == 0) return succeed_hi(dest, base_b, nb);
        }
        *dest-- = *pb--;
        if (--nb == 1) return copy_a(dest, pa, pb, na);
        k = nb - gallop_left(*pa, base_b, nb, nb - 1, lt);
        bcount = k;
        if (k) {
          dest -= k;
          pb -= k;
          std::copy(pb + 1, pb + 1 + k, dest + 1);
          nb -= k;
          if (nb == 1) return copy_a(dest, pa, pb, na);
          if (nb == 0) return succeed_hi(dest, base_b, nb);  // only with an inconsistent "<"
        }
        *dest-- = *pa--;
        if (--na == 0) return succeed_hi(dest, base_b, nb);
      } while (acount >= kMinGallop || bcount >= kMinGallop);
      ++gallop;
      min_gallop = gallop;
    }
  }
  static void succeed_hi(size_t* dest, size_t* base_b, std::ptrdiff_t nb) { std::copy(base_b, base_b + nb, dest - (nb - 1)); }
  static void copy_a(size_t* dest, size_t* pa, size_t* pb, std::ptrdiff_t na) {  // b's first item starts the merge
    std::copy_backward(pa + 1 - na, pa + 1, dest + 1);
    *(dest - na) = *pb;
  }

  // Merges pending runs i and i + 1 (merge_at).
  void merge_at(size_t i) {
    size_t* a = base + pending[i].start;
    std::ptrdiff_t na = pending[i].len;
    size_t* b = base + pending[i + 1].start;
    std::ptrdiff_t nb = pending[i + 1].len;
    pending[i].len = na + nb;
    if (i + 3 == pending.size()) pending[i + 1] = pending[i + 2];
    pending.pop_back();
    const std::ptrdiff_t k = gallop_right(*b, a, na, 0, lt);  // a's items before b's first stay where they are
    a += k;
    na -= k;
    if (na == 0) return;
    nb = gallop_left(a[na - 1], b, nb, nb - 1, lt);  // so do b's after a's last
    if (nb <= 0) return;
    if (na <= nb) merge_lo(a, na, b, nb);
    else merge_hi(a, na, b, nb);
  }

  // The powersort depth of the run at s1 (n1 items) followed by n2 items (powerloop).
  int power_of(std::ptrdiff_t s1, std::ptrdiff_t n1, std::ptrdiff_t n2) const {
    int result = 0;
    std::ptrdiff_t a = 2 * s1 + n1, b = a + n1 + n2;
    for (;;) {
      ++result;
      if (a >= n) {
        a -= n;
        b -= n;
      } else if (b >= n) {
        break;
      }
      a <<= 1;
      b <<= 1;
    }
    return result;
  }

  // A new run of n2 items follows the last pending one: merges what powersort says to (found_new_run).
  void found_new_run(std::ptrdiff_t n2) {
    if (pending.empty()) return;
    const int power = power_of(pending.back().start, pending.back().len, n2);
    while (pending.size() > 1 && pending[pending.size() - 2].power > power) merge_at(pending.size() - 2);
    pending.back().power = power;
  }

  void force_collapse() {
    while (pending.size() > 1) {
      size_t i = pending.size() - 2;
      if (i > 0 && pending[i - 1].len < pending[i + 1].len) --i;
      merge_at(i);
    }
  }
};

}  // namespace

void python_sort_indices(std::vector<size_t>& a, const std::function<bool(size_t, size_t)>& lt) {
  const std::ptrdiff_t n = std::ptrdiff_t(a.size());
  if (n < 2) return;
  std::ptrdiff_t min_run = n, r = 0;  // merge_compute_minrun: n below 64, else 32..64
  while (min_run >= 64) {
    r |= min_run & 1;
    min_run >>= 1;
  }
  min_run += r;
  Merger m(a.data(), n, lt);
  for (std::ptrdiff_t lo = 0; lo < n;) {
    size_t* const p = a.data() + lo;
    bool descending = false;
    std::ptrdiff_t run = count_run(p, a.data() + n, &descending, lt);
    if (descending) std::reverse(p, p + run);
    if (run < min_run) {  // extended to min_run (or what is left) by binary insertion
      const std::ptrdiff_t force = std::min(min_run, n - lo);
      binary_insertion(p, p + force, p + run, lt);
      run = force;
    }
    m.found_new_run(run);
    m.pending.push_back({lo, run, 0});
    lo += run;
  }
  m.force_collapse();
}

}  // namespace cg
