// SweepSpec: a cgsweep file (base config + grid or explicit points) and its expansion into named sweep points.
// Pure data + yaml-cpp: nothing here runs a process or knows the config tree; validation of each point's resolved
// config happens in sweep_plan.h through a resolver (cg::load_config in cgsweep).
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace cg::sweep {

// One swept setting: a dotted config key and the value as an override string ("8", "true", "[q_proj, v_proj]").
struct Setting {
  std::string key;
  std::string value;
};

struct SweepSpec {
  std::string path;                       // the sweep file itself (for messages and Slurm re-entry)
  std::string base;                       // base config YAML (relative to cwd, else to the sweep file's folder)
  std::string out_dir = "runs/sweep";     // one folder per point below it, plus shards/ and summary files
  int64_t np = 1;                         // ranks per point (mpirun -np / Slurm tasks)
  std::string launcher = "";              // empty: "mpirun --oversubscribe --bind-to none -np {np}"
  std::string bin_dir = "";               // where cgprep/cgtrain/... live (build folder); empty: next to cgsweep
  bool sample = false;                    // per point: cgexport + cgsample + cgeval after training
  std::vector<Setting> overrides;         // applied to every point, before the point's own settings
  std::vector<Setting> command_line;      // cgsweep's key=value words: after `overrides`, before the point's settings
  std::vector<std::string> keys;          // swept keys, in file order (the naming and table column order)
  std::vector<std::vector<Setting>> points;  // expanded points (grid: cartesian product, last key fastest)
  bool from_grid = false;                 // points came from `grid:` (else from `points:`), for messages
  // Slurm array job (--slurm): header lines for sweep.sbatch.
  std::string slurm_time = "04:00:00";
  std::string slurm_partition = "";
  int64_t slurm_nodes = 1;
  int64_t slurm_gpus_per_node = 0;        // 0: CPU job
  int64_t slurm_cpus_per_task = 1;
  int64_t slurm_signal_seconds = 300;     // USR1 this long before the limit: cgtrain saves and exits 75
};

// `path` absolute, resolved as the kernel resolves it (std::filesystem::weakly_canonical: symbolic links followed,
// then "." and ".." dropped), without a trailing '/': "runs/./sw/", "/repo/runs/sw" and a link to it read the same.
// Reading a file and recording its path both go through this, so "link/../x" names the file that was read.
std::string normalized_path(const std::string& path);

// Throws "<what> ... contains <a control character>; <fix>" when `value` holds a newline, tab or other control
// character: such a value cannot be written into a script, a comment or a table line without changing its meaning.
void check_no_control_chars(const std::string& value, const std::string& what, const std::string& fix);

// Parse a sweep file. Exactly one of `grid:` (map key -> list of values) or `points:` (list of maps key -> value).
// Errors name the sweep file and the offending entry. spec.path is the file's absolute, normalized path, so
// everything that records it reads the same however the file was named on the command line.
SweepSpec load_sweep_spec(const std::string& path);
// Same from YAML text (path used in messages and stored in spec.path).
SweepSpec parse_sweep_spec(const std::string& yaml_text, const std::string& path);

// A YAML scalar or flow sequence as an override value ("true", "8", "[q_proj, v_proj]").
std::string value_to_override(const std::string& yaml_flow);

// Short folder-safe name of a point, e.g. "r8-alpha32-translate1": per key a short label (last dotted component,
// a few well-known abbreviations, or the full key with '_' when two keys would share a label) and its value
// (booleans 1/0, numbers as %g, lists joined with '+', "_proj" dropped, other characters outside [A-Za-z0-9.+_-]
// replaced by '_'). Keys are [A-Za-z0-9_] names joined by dots (parse_sweep_spec refuses others), so a name is never a
// path, "..", or a hidden folder. A value whose characters had to be replaced, or longer than 40 characters (cut to
// 31), gets "_" + 8 hex digits of a hash of the exact value ("g/a b.csv" and "g/a_b.csv" are two folders), and a name
// over 96 characters is cut to 87 and ends in "_" + 8 hex digits of a hash of all its settings, so every name fits a
// folder name.
std::string point_name(const std::vector<std::string>& keys, const std::vector<Setting>& point);

// "key=value" override strings of one point (spec.overrides, spec.command_line, then the point's settings).
std::vector<std::string> point_overrides(const SweepSpec& spec, const std::vector<Setting>& point);
// Where each of point_overrides(spec, spec.points[index]) comes from, for errors: "sweep file S: overrides",
// "command line", "sweep file S: grid" or "sweep file S: points[i]".
std::vector<std::string> point_override_origins(const SweepSpec& spec, size_t index);

// Adds cgsweep's section.key=value words to spec.command_line. Refuses a word that is not key=value and a key the
// sweep file sweeps (the point's own value would silently win over it).
void add_command_line_overrides(SweepSpec& spec, const std::vector<std::string>& words);

}  // namespace cg::sweep
