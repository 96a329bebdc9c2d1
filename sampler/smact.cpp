#include "sampler/smact.h"

#include <algorithm>
#include <functional>
#include <map>
#include <numeric>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

#include "common/error.h"
#include "data/elements.h"
#include "sampler/tables.h"

namespace cg {

namespace {

// Lines of a table with '#' comments and blank lines dropped, split on whitespace.
std::vector<std::vector<std::string>> table_rows(const char* text) {
  std::vector<std::vector<std::string>> rows;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream ls(line);
    std::vector<std::string> row;
    for (std::string w; ls >> w;) row.push_back(w);
    if (!row.empty()) rows.push_back(std::move(row));
  }
  return rows;
}

struct Tables {
  std::unordered_map<std::string, std::vector<int>> ox;
  std::unordered_map<std::string, std::optional<double>> eneg;  // present: SMACT has element data
  std::unordered_set<std::string> metals;
};

const Tables& smact_tables() {
  static const Tables t = [] {
    Tables t;
    for (const auto& row : table_rows(tables::kSmactOxidationStates)) {
      std::vector<int> states;
      for (size_t i = 1; i < row.size(); ++i) states.push_back(std::stoi(row[i]));
      t.ox[row[0]] = std::move(states);
    }
    for (const auto& row : table_rows(tables::kPaulingElectronegativity)) {
      CG_CHECK(row.size() == 3, "pauling_electronegativity table: bad row for {}", row[0]);
      t.eneg[row[0]] = row[2] == "None" ? std::nullopt : std::optional<double>(std::stod(row[2]));
    }
    for (const auto& row : table_rows(tables::kSmactMetals))
      for (const auto& s : row) t.metals.insert(s);
    CG_CHECK(t.ox.size() == 108 && t.eneg.size() == 103 && t.metals.size() == 79,
             "SMACT tables look truncated ({} oxidation rows, {} electronegativities, {} metals); check data/tables/",
             t.ox.size(), t.eneg.size(), t.metals.size());
    return t;
  }();
  return t;
}

}  // namespace

std::string Composition::formula() const {
  std::string s;
  for (size_t i = 0; i < elements.size(); ++i) {
    s += elements[i];
    if (counts[i] != 1) s += std::to_string(counts[i]);
  }
  return s;
}

Composition reduce_composition(const std::vector<std::string>& species) {
  std::map<int, int> by_z;  // atomic number -> count, ascending
  for (const auto& s : species) {
    const int z = atomic_number(s);
    CG_CHECK(z != 0, "'{}' is not an element symbol", s);
    ++by_z[z];
  }
  Composition c;
  int g = 0;
  for (const auto& [z, n] : by_z) g = std::gcd(g, n);
  for (const auto& [z, n] : by_z) {
    c.elements.push_back(element_symbol(z));
    c.counts.push_back(n / g);
  }
  return c;
}

const std::vector<int>& smact_oxidation_states(const std::string& element) {
  static const std::vector<int> kNone;
  auto it = smact_tables().ox.find(element);
  return it == smact_tables().ox.end() ? kNone : it->second;
}

std::optional<double> smact_pauling_electronegativity(const std::string& element) {
  auto it = smact_tables().eneg.find(element);
  return it == smact_tables().eneg.end() ? std::nullopt : it->second;
}

bool smact_is_metal(const std::string& element) { return smact_tables().metals.count(element) > 0; }

bool smact_pauling_test(const std::vector<int>& ox, const std::vector<std::optional<double>>& eneg) {
  const size_t n = ox.size();
  for (size_t i = 0; i < n; ++i) {
    for (size_t j = i + 1; j < n; ++j) {
      const bool missing = !eneg[i] || !eneg[j];
      if (ox[i] > 0 && ox[j] < 0) {
        if (missing) return true;  // Python raised TypeError comparing None; CDVAE counts that as passing
        if (*eneg[i] >= *eneg[j]) return false;
      } else if (ox[i] < 0 && ox[j] > 0) {
        if (missing) return true;
        if (*eneg[i] <= *eneg[j]) return false;
      } else if (missing) {
        return false;
      }
    }
  }
  return true;
}

SmactResult smact_validity(const Composition& comp, const SmactOptions& opts) {
  SmactResult r;
  const size_t n = comp.elements.size();
  CG_CHECK(n > 0 && comp.counts.size() == n, "smact_validity: empty or inconsistent composition");
  for (const auto& e : comp.elements) {
    if (!smact_tables().eneg.count(e)) {  // SMACT's Element() raises NameError here: no element data beyond Lr
      r.reason = "no SMACT data for " + e;
      return r;
    }
  }
  if (n == 1) {
    r.valid = true;
    r.reason = "single element";
    return r;
  }
  if (opts.include_alloys &&
      std::all_of(comp.elements.begin(), comp.elements.end(), [](const std::string& e) { return smact_is_metal(e); })) {
    r.valid = true;
    r.reason = "alloy";
    return r;
  }

  std::vector<const std::vector<int>*> states(n);
  std::vector<std::optional<double>> enegs(n);
  for (size_t i = 0; i < n; ++i) {
    states[i] = &smact_oxidation_states(comp.elements[i]);
    enegs[i] = smact_pauling_electronegativity(comp.elements[i]);
    if (states[i]->empty()) {
      r.reason = "no oxidation states for " + comp.elements[i];
      return r;
    }
  }
  // Bounds of the charge the elements from i on can still contribute, to prune the product of oxidation states.
  std::vector<long> lo(n + 1, 0), hi(n + 1, 0);
  for (size_t i = n; i-- > 0;) {
    const auto [mn, mx] = std::minmax_element(states[i]->begin(), states[i]->end());
    lo[i] = lo[i + 1] + static_cast<long>(*mn) * comp.counts[i];
    hi[i] = hi[i + 1] + static_cast<long>(*mx) * comp.counts[i];
  }
  bool any_neutral = false;
  std::vector<int> ox(n);
  // Depth-first over the same product itertools.product walks; stops at the first assignment that passes both tests.
  std::function<bool(size_t, long)> search = [&](size_t i, long charge) -> bool {
    if (i == n) {
      if (charge != 0) return false;
      any_neutral = true;
      return !opts.use_pauling_test || smact_pauling_test(ox, enegs);
    }
    if (charge + lo[i] > 0 || charge + hi[i] < 0) return false;
    for (int s : *states[i]) {
      ox[i] = s;
      if (search(i + 1, charge + static_cast<long>(s) * comp.counts[i])) return true;
    }
    return false;
  };
  if (search(0, 0)) {
    r.valid = true;
    r.reason = "charge balanced";
    r.oxidation_states = ox;
  } else {
    r.reason = any_neutral ? "fails Pauling electronegativity test" : "no charge-neutral oxidation states";
  }
  return r;
}

}  // namespace cg
