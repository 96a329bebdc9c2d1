// cgprep: MP-20 CSVs -> tokenized HDF5 shards (+ tokenizer.model) in data.shards_dir.
//   cgprep [CONFIG.yaml] [data.key=value ...]      see --help for every key
#include <filesystem>
#include <fstream>

#include "common/durable_file.h"
#include "common/error.h"
#include "common/log.h"
#include "data/prep.h"
#include "trainer/config.h"

int main(int argc, char** argv) {
  try {
    auto cfg = cg::parse_cli(argc, argv, "cgprep",
                             "Turns the MP-20 train/val/test CSVs into tokenized, augmented HDF5 shards "
                             "(data.* keys; data.tokenizer = a sentencepiece .model or 'train').");
    if (!cfg) return 0;
    cg::init_logging(0, 1, cfg->log.level);
    const cg::PrepReport r = cg::run_prep(cfg->data);
    cg::write_file_atomic(cfg->data.shards_dir + "/cgprep_config.yaml", cg::to_yaml(*cfg));
    for (const auto& s : r.splits)
      spdlog::info("{:>5}: {} rows -> {} samples, {} tokens; {} rows skipped", s.split, s.rows_read, s.samples,
                   s.tokens, s.rows_skipped);
    spdlog::info("done in {}; shards and tokenizer.model in {}", cg::human_duration(r.seconds), cfg->data.shards_dir);
    return 0;
  } catch (const std::exception& e) {
    cg::init_logging(0, 1);
    spdlog::error("{}", e.what());
    return 1;
  }
}
