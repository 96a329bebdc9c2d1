// Resolution of sweep points into run folders and shared shard folders.
#include "launch/sweep_plan.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>

#include "common/error.h"

namespace fs = std::filesystem;

namespace cg::sweep {

std::string data_settings_key(const std::string& resolved_yaml) {
  YAML::Node root = YAML::Load(resolved_yaml);
  CG_CHECK(root.IsMap() && root["data"] && root["data"].IsMap(),
           "resolved config has no data: section; cannot key prepared shards");
  YAML::Node data = YAML::Clone(root["data"]);
  data.remove("shards_dir");
  YAML::Emitter e;
  e << data;
  // FNV-1a 64: stable across runs and machines (std::hash is not).
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : std::string(e.c_str())) h = (h ^ c) * 1099511628211ull;
  return fmt::format("{:012x}", h & 0xffffffffffffull);
}

std::string find_base_config(const SweepSpec& spec) {
  if (fs::exists(spec.base)) return spec.base;
  const fs::path beside = fs::path(spec.path).parent_path() / spec.base;
  CG_CHECK(fs::path(spec.base).is_relative() && fs::exists(beside),
           "sweep file {}: base config '{}' not found (looked relative to the current folder, {}, and to the sweep "
           "file's folder): run cgsweep from the folder the path is relative to (the repository root for configs/...), "
           "or give base: as an absolute path", spec.path, spec.base, fs::current_path().string());
  return beside.string();
}

namespace {

// What a point's resolved config must hold before anything runs: a layout that fits the np ranks the sweep launches
// (else cgtrain fails after cgprep), and no eval.out from the base config (every point's report would go to that one
// folder, and the summary would read every point's scores from it).
void check_point_config(const std::string& resolved_yaml, int64_t np) {
  const YAML::Node root = YAML::Load(resolved_yaml);
  const YAML::Node ev = root["eval"];
  const std::string eval_out = ev && ev["out"] ? ev["out"].as<std::string>() : "";
  CG_CHECK(eval_out.empty(), "the base config sets eval.out={}: every point would write its cgeval report there; "
           "leave eval.out empty (each point reports into <point>/samples/eval)", eval_out);
  const YAML::Node par = root["parallel"];
  if (!par || !par["tp"]) return;
  const int64_t tp = par["tp"].as<int64_t>(), dp = par["dp"] ? par["dp"].as<int64_t>() : 0;
  CG_CHECK(np % tp == 0, "parallel.tp {} does not divide np {} (ranks per point); change np (sweep file or --np) or "
           "parallel.tp", tp, np);
  CG_CHECK(dp == 0 || tp * dp == np, "parallel.tp {} x parallel.dp {} = {} but np is {}; set parallel.dp=0 (np / tp) "
           "or np to {}", tp, dp, tp * dp, np, tp * dp);
}

}  // namespace

SweepPlan plan_sweep(const SweepSpec& spec_in, const Resolver& resolve) {
  SweepPlan plan;
  plan.spec = spec_in;
  const SweepSpec& spec = plan.spec;
  plan.spec.out_dir = normalized_path(spec_in.out_dir);
  plan.base_path = normalized_path(find_base_config(spec));
  // Each goes into point.yaml's header comment, sweep.sbatch and points.tsv, where a newline would start a line of
  // its own (a command, in sweep.sbatch).
  check_no_control_chars(spec.path, "the sweep file's path", "rename the file or its folder");
  check_no_control_chars(plan.base_path, "sweep file " + spec.path + ": the base config's path",
                         "rename the file or its folder");
  check_no_control_chars(spec.out_dir, "the sweep's out_dir (out_dir: in " + spec.path + ", or --out-dir)",
                         "pick a folder name without them");
  const fs::path out(spec.out_dir);
  for (size_t i = 0; i < spec.points.size(); ++i) {
    PlannedPoint p;
    p.index = i;
    p.settings = spec.points[i];
    p.name = point_name(spec.keys, p.settings);
    p.run_dir = (out / p.name).string();
    const auto where = fmt::format("sweep point {} ({})", i, p.name);
    try {
      // Pass 1: the point's own settings only, to key its data; pass 2: with its folders filled in.
      const std::vector<std::string> own = point_overrides(spec, p.settings);
      std::vector<std::string> origins = point_override_origins(spec, i);
      p.data_key = data_settings_key(resolve(plan.base_path, own, origins));
      p.shards_dir = (out / "shards" / ("data-" + p.data_key)).string();
      p.overrides = own;
      // What sample.out_dir and eval.input default to under this train.run_dir, given explicitly as cgsweep always
      // has: the point.yaml of a point that ran before says the same, so it is not taken for a changed config.
      const std::string samples = (fs::path(p.run_dir) / "samples").string();
      for (const std::string& o :
           {"train.run_dir=" + p.run_dir, "data.shards_dir=" + p.shards_dir, "sample.out_dir=" + samples,
            "eval.input=" + samples})
        p.overrides.push_back(o);
      if (spec.sample) p.overrides.push_back("sample.adapter=" + (fs::path(p.run_dir) / "adapter").string());
      origins.resize(p.overrides.size(), "cgsweep's run folders");
      p.config_yaml = resolve(plan.base_path, p.overrides, origins);
      check_point_config(p.config_yaml, spec.np);
    } catch (const std::exception& e) {
      CG_FAIL("{}: {}", where, e.what());
    }
    if (std::find(plan.shards_dirs.begin(), plan.shards_dirs.end(), p.shards_dir) == plan.shards_dirs.end())
      plan.shards_dirs.push_back(p.shards_dir);
    plan.points.push_back(std::move(p));
  }
  return plan;
}

}  // namespace cg::sweep
