// The data/tables/*.txt files, embedded as strings at build time (sampler/CMakeLists.txt writes tables_data.cpp).
#pragma once

namespace cg::tables {
extern const char* const kSmactOxidationStates;      // data/tables/smact_oxidation_states.txt
extern const char* const kPaulingElectronegativity;  // data/tables/pauling_electronegativity.txt
extern const char* const kSmactMetals;               // data/tables/smact_metals.txt
}  // namespace cg::tables
