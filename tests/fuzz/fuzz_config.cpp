// Fuzz harness: the config loader (trainer/config.h), YAML text plus dotted key=value overrides, which every tool
// reads from users' files and command lines. Input layout: YAML text, then optionally a line "%%" and one override
// per line. Checks: only cg::Error escapes (yaml-cpp's exceptions must become errors naming the key); an accepted
// config survives the round trip the run folder relies on: load_config_string(to_yaml(c)) == c, same hash, and
// load_saved_config-style reading of it works.
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "tests/fuzz/fuzz_target.h"
#include "trainer/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  std::string yaml = input;
  std::vector<std::string> overrides;
  if (const size_t cut = input.find("\n%%\n"); cut != std::string::npos) {
    yaml = input.substr(0, cut);
    std::istringstream rest(input.substr(cut + 4));
    for (std::string line; std::getline(rest, line);) overrides.push_back(line);
  }
  cg::Config c;
  if (!cg::fuzz::accepts([&] { c = cg::load_config_string(yaml, overrides); })) return 0;
  std::string written;
  if (!cg::fuzz::accepts([&] { written = cg::to_yaml(c); })) cg::fuzz::finding("an accepted config cannot be written");
  cg::Config back;
  if (!cg::fuzz::accepts([&] { back = cg::load_config_string(written); }))
    cg::fuzz::finding("the written config does not load:\n" + written);
  if (back != c) {
    std::string diff;
    for (const auto& d : cg::config_differences(c, back)) diff += d + "\n";
    cg::fuzz::finding("config changed in the to_yaml round trip:\n" + diff);
  }
  if (cg::config_hash(back) != cg::config_hash(c)) cg::fuzz::finding("hash changed in the round trip");
  return 0;
}
