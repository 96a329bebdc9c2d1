// Python's sort (data/python_sort.h) against CPython 3.11's.
#include <gtest/gtest.h>

#include <limits>
#include <map>
#include <string>
#include <vector>

#include "data/python_sort.h"

// 200 items under Site.__lt__'s comparison, two of its six kinds (He, Ar) with a NaN key: CPython 3.11's sorted()
// gives this order (its list.sort, run by /usr/bin/python3 on the same items). Above 64 items CPython sorts runs of
// 50 by binary insertion and merges them, galloping; binary insertion over the whole list (the sort formulas used
// before, which never see 64 items) puts all 40 He together after the first F, so this fails for anything but the
// merge.
TEST(PythonSort, IsCPythonsSortWhereNaNKeysMakeNoOrder) {
  const std::map<char, std::pair<double, std::string>> key = {
      {'h', {std::numeric_limits<double>::quiet_NaN(), "He"}}, {'a', {std::numeric_limits<double>::quiet_NaN(), "Ar"}},
      {'L', {0.98, "Li"}}, {'F', {3.98, "F"}}, {'N', {0.93, "Na"}}, {'C', {3.16, "Cl"}}};
  const std::string codes = "haLFNC";
  std::string items;
  for (int i = 0; i < 200; ++i) items += codes[size_t((i * i + 3 * i + i / 7) % 6)];
  std::vector<char> v(items.begin(), items.end());
  cg::python_sort(v, [&](char a, char b) {
    const auto &ka = key.at(a), &kb = key.at(b);
    if (ka.first < kb.first) return true;
    if (ka.first > kb.first) return false;
    return ka.second < kb.second;
  });
  EXPECT_EQ(std::string(v.begin(), v.end()),
            std::string(30, 'a') + "F" + std::string(18, 'h') + std::string(29, 'N') + std::string(31, 'L') +
                std::string(33, 'C') + std::string(34, 'F') + std::string(22, 'h') + "LL");
  // Without NaN it is a stable sort: equal keys keep their order.
  std::vector<std::pair<int, int>> p;
  for (int i = 0; i < 150; ++i) p.push_back({(i * 37) % 5, i});
  cg::python_sort(p, [](const auto& a, const auto& b) { return a.first < b.first; });
  for (size_t i = 1; i < p.size(); ++i)
    EXPECT_TRUE(p[i - 1].first < p[i].first || (p[i - 1].first == p[i].first && p[i - 1].second < p[i].second));
}
