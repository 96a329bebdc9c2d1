// SweepPlan: every sweep point resolved against the base config (so a typo in a sweep key fails before anything
// runs), with its run folder, and its prepared-shards folder shared by all points whose data.* settings are equal.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "launch/sweep_spec.h"

namespace cg::sweep {

// Base config path + "key=value" overrides -> the resolved config as YAML text (cg::to_yaml(cg::load_config(..)) in
// cgsweep). origins[i] says where overrides[i] comes from ("sweep file S: grid"); must throw cg::Error naming the key
// (and its origin) when a key or value is bad.
using Resolver = std::function<std::string(const std::string& base, const std::vector<std::string>& overrides,
                                           const std::vector<std::string>& origins)>;

struct PlannedPoint {
  size_t index = 0;                      // position in the sweep (SLURM_ARRAY_TASK_ID)
  std::string name;                      // "r8-alpha32-translate1"
  std::vector<Setting> settings;         // the swept settings of this point
  std::vector<std::string> overrides;    // everything passed on top of the base config (sweep + point + folders)
  std::string run_dir;                   // <out_dir>/<name>
  std::string shards_dir;                // <out_dir>/shards/data-<data_key>
  std::string data_key;                  // hash of the resolved data.* settings (shards_dir excluded)
  std::string config_yaml;               // the resolved config, written to <run_dir>/point.yaml
};

struct SweepPlan {
  SweepSpec spec;                        // spec.out_dir absolute and normalized: every folder below is spelled one way
  std::string base_path;                 // spec.base as found (cwd first, then the sweep file's folder), absolute
  std::vector<PlannedPoint> points;
  std::vector<std::string> shards_dirs;  // distinct shards folders, in first-use order
};

// Resolve and validate every point, and check its parallel.tp / parallel.dp against spec.np. Errors name the point
// ("sweep point 3 (r16-translate0): ...").
SweepPlan plan_sweep(const SweepSpec& spec, const Resolver& resolve);

// 12 hex digits identifying the `data:` section of a resolved config, data.shards_dir left out.
std::string data_settings_key(const std::string& resolved_yaml);

// Where the base config is: as given when it exists relative to cwd, else next to the sweep file.
std::string find_base_config(const SweepSpec& spec);

}  // namespace cg::sweep
