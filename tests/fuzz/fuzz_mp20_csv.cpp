// Fuzz harness: MP-20 CSV reading (data/csv.h, data/mp20.h: quoted fields with embedded CIFs, property columns,
// empty cells), which reads users' own CSVs. Checks: no crash; only cg::Error escapes (a missing required column);
// every data row read is either a crystal or a skipped row with a reason.
#include <cstdint>
#include <string>

#include "data/mp20.h"
#include "tests/fuzz/fuzz_target.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  cg::Mp20Split split;
  if (!cg::fuzz::accepts([&] { split = cg::parse_mp20_csv(text); })) return 0;
  if (int64_t(split.crystals.size() + split.skipped.size()) != split.rows_read)
    cg::fuzz::finding("rows read != crystals + skipped rows");
  if (split.source_rows.size() != split.crystals.size()) cg::fuzz::finding("one source row per crystal");
  for (const auto& s : split.skipped)
    if (s.reason.empty()) cg::fuzz::finding("row skipped without a reason");
  cg::fuzz::accepts([&] { cg::parse_mp20_csv(text, 0, /*strict=*/true); });
  return 0;
}
