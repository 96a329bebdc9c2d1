// cgprep: MP-20 CSVs -> tokenized HDF5 shards (+ tokenizer.model) in data.shards_dir.
//   cgprep [CONFIG.yaml] [data.key=value ...]      see --help for every key
#include <spdlog/fmt/ranges.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "common/durable_file.h"
#include "common/error.h"
#include "common/log.h"
#include "data/prep.h"
#include "trainer/config.h"

namespace {

// Shards of another cgprep run in the folder are replaced (a run trained on them cannot resume on the new ones):
// say so, naming the data settings that changed, before the minutes of work that replace them.
void warn_if_other_settings(const cg::Config& cfg) {
  const std::string old_yaml = cfg.data.shards_dir + "/cgprep_config.yaml";
  if (!std::filesystem::is_regular_file(old_yaml)) return;
  std::vector<std::string> changed;
  try {
    for (const std::string& d : cg::config_differences(cg::load_saved_config(old_yaml), cfg))
      if (d.rfind("data.", 0) == 0 && d.rfind("data.shards_dir ", 0) != 0 && d.rfind("data.shard_samples ", 0) != 0)
        changed.push_back(d);
  } catch (const std::exception& e) {
    spdlog::warn("{} holds shards of an earlier cgprep whose {} cannot be read ({}); they are replaced",
                 cfg.data.shards_dir, old_yaml, e.what());
    return;
  }
  if (changed.empty()) return;
  spdlog::warn("{} holds shards made with other settings ({}); they are replaced, and a run trained on them may not "
               "resume on the new ones (cgtrain says so if it cannot): give another data.shards_dir to keep both",
               cfg.data.shards_dir,
               fmt::format("{}", fmt::join(changed, "; ")));
}

}  // namespace

int main(int argc, char** argv) {
  try {
    auto cfg = cg::parse_cli(argc, argv, "cgprep",
                             "Turns the MP-20 train/val/test CSVs into tokenized, augmented HDF5 shards "
                             "(data.* keys; data.tokenizer = a sentencepiece .model or 'train').");
    if (!cfg) return 0;
    cg::init_logging(0, 1, cfg->log.level);
    cg::check_shards_dir_owned(cfg->data.shards_dir);
    warn_if_other_settings(*cfg);
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
