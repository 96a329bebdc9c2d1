// bench_prep: wall time of the cgprep pipeline on the whole MP-20 copy (train + val + test, one augmented copy),
// with LLaMA-2's tokenizer by default (converted from llama-tokenizer-js first; conversion timed separately).
//   bench_prep [TOKENIZER] [OUT_DIR]   TOKENIZER: a .model, a llama-tokenizer.js, or "train"
// The shards go to OUT_DIR, kept; without it, to a fresh folder in $TMPDIR (/tmp), removed at the end, so that two
// runs at once never write one folder.
#include <stdlib.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <thread>

#include "common/error.h"
#include "common/log.h"
#include "data/mp20.h"
#include "data/prep.h"
#include "data/sp_model.h"

int main(int argc, char** argv) {
  cg::init_logging(0, 1, "warn");
  using Clock = std::chrono::steady_clock;
  const std::string src = CG_SOURCE_DIR;
  std::string tok = argc > 1 ? argv[1] : src + "/third_party/llama-tokenizer-js/llama-tokenizer.js";
  std::string out;
  if (argc > 2) {
    out = argv[2];
    std::filesystem::create_directories(out);
  } else {
    out = (std::filesystem::temp_directory_path() / "cg_bench_prep.XXXXXX").string();
    CG_CHECK(::mkdtemp(out.data()) != nullptr, "bench_prep: cannot make the folder {}: {}; give OUT_DIR", out,
             std::strerror(errno));
  }
  if (tok.size() > 3 && tok.substr(tok.size() - 3) == ".js") {
    auto t0 = Clock::now();
    const std::string model = out + "/llama2.model";
    cg::write_file_atomic(model, cg::serialize_sp_model(cg::sp_model_from_llama_tokenizer_js(tok)));
    std::printf("convert llama-tokenizer.js -> sentencepiece: %.2f s\n",
                std::chrono::duration<double>(Clock::now() - t0).count());
    tok = model;
  }
  cg::DataConfig d;
  d.train_csv = src + "/data/mp20/train.csv.gz";
  d.val_csv = src + "/data/mp20/val.csv.gz";
  d.test_csv = src + "/data/mp20/test.csv.gz";
  d.shards_dir = out;
  d.tokenizer = tok;
  d.copies = 1;
  const int threads = int(std::max(1u, std::thread::hardware_concurrency()));
  cg::PrepReport r = cg::run_prep(d, threads);
  int64_t rows = 0, samples = 0, tokens = 0;
  for (const auto& s : r.splits) rows += s.rows_read, samples += s.samples, tokens += s.tokens;
  std::printf("cgprep MP-20: %lld rows -> %lld samples, %lld tokens in %.1f s on %d threads (%.0f rows/s)\n",
              (long long)rows, (long long)samples, (long long)tokens, r.seconds, threads, double(rows) / r.seconds);
  // What cgprep adds for a CIF folder: every structure's formula and space group derived (derive_properties), here
  // on MP-20 with both cleared, checked against MP's own pretty_formula and spacegroup.number.
  for (const char* split : {"train", "val", "test"}) {
    const cg::Mp20Split mp = cg::read_mp20(src + "/data/mp20/" + split + ".csv.gz");
    std::vector<cg::Crystal> bare = mp.crystals;
    for (auto& c : bare) c.formula.clear(), c.spacegroup.reset();
    const auto t0 = Clock::now();
    const cg::DerivedProperties dp = cg::derive_properties(&bare, threads);
    const double sec = std::chrono::duration<double>(Clock::now() - t0).count();
    size_t formula = 0, sg = 0;
    for (size_t i = 0; i < bare.size(); ++i) {
      formula += bare[i].formula == mp.crystals[i].formula;
      sg += bare[i].spacegroup == mp.crystals[i].spacegroup;
    }
    std::printf("derive_properties %s: %zu crystals in %.1f s on %d threads (%.1f ms a crystal a thread); formula = "
                "MP's for %zu, space group for %zu (%.2f%%), none found for %lld\n", split, bare.size(), sec, threads,
                1e3 * sec * threads / double(bare.size()), formula, sg, 100.0 * double(sg) / double(bare.size()),
                (long long)dp.no_spacegroup);
  }
  if (argc > 2)
    std::printf("shards in %s\n", out.c_str());
  else
    std::filesystem::remove_all(out);
  return 0;
}
