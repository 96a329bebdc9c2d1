// The paper's crystal text format (Gruver et al. 2024) and its strict parser:
//   "a b c" (Å, 1 decimal) \n "alpha beta gamma" (degrees, integers) \n then per site, in order,
//   the element symbol on its own line and "x y z" (fractional, 2 decimals, wrapped into [0, 1)).
//   No trailing newline. Example: "4.2 4.2 4.2\n60 60 60\nLi\n0.50 0.50 0.50\nMn\n0.00 0.00 0.00".
#pragma once
#include <string>
#include <string_view>

#include "data/crystal.h"

namespace cg {

enum class AngleMode {
  kRound,     // nearest integer (default): 119.9999 -> 120
  kTruncate,  // the reference code's int(): 119.9999 -> 119
};
// "round" | "truncate" (data.angle_mode); throws naming the allowed values.
AngleMode parse_angle_mode(const std::string& s);
const char* angle_mode_name(AngleMode m);

struct TextOptions {
  AngleMode angles = AngleMode::kRound;
  // Coordinates are wrapped into [0, 1) and then printed with 2 decimals, so 0.996 would print as "1.00".
  // fold_one (default) prints such values as "0.00" (the same position under periodicity), so every
  // coordinate in the text is one of 0.00..0.99. false reproduces the reference's f"{x:.2f}" after wrapping.
  bool fold_one = true;
};

// Crystal -> text. Sites in the crystal's order (the reader's: data/mp20.h); no trailing newline.
std::string crystal_to_text(const Crystal& c, const TextOptions& opt = {});
// One formatted coordinate ("0.50"), as used by crystal_to_text.
std::string format_frac(double x, const TextOptions& opt = {});

// Strict text -> Crystal (lattice, species, frac; id = `id`). Accepts exactly the format above: lines separated by
// single '\n', numbers as [-]digits[.digits], 3 lengths > 0, 3 angles in (0, 180), element symbols of the periodic
// table, coordinates in [0, 1], at least one site, no blank or trailing lines.
// On failure returns false and sets *error to "line N: what is wrong (got '...')".
bool parse_crystal_text(std::string_view text, Crystal* out, std::string* error, const std::string& id = "");
// Throwing form (cg::Error with the same message, prefixed by id when given).
Crystal parse_crystal_text(std::string_view text, const std::string& id = "");

}  // namespace cg
