// Config: the one typed config tree shared by every tool (cgprep, cgtrain, cgexport, cgsample, cgeval, cgsweep).
// Every field is declared once, with its default here and its documentation in config_fields.cpp's visit_config();
// YAML file < dotted command-line overrides; unknown keys and bad values fail naming the dotted key.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace cg {

struct ModelConfig {
  std::string flavor = "tiny";         // tiny | 7b | 13b | 70b; ignored when hf_dir has a config.json
  std::string hf_dir = "";             // Hugging Face checkpoint folder (config.json + safetensors); empty: random init
  std::string device = "auto";         // auto | cpu | cuda
  std::string dtype = "auto";          // auto (bf16 on cuda, fp32 on cpu) | fp32 | bf16 | fp16: base weights
  bool activation_checkpointing = false;
  uint64_t init_seed = 1234;           // random init, same full model whatever the tp degree
};

struct DataConfig {
  std::string train_csv = "data/mp20/train.csv.gz";
  std::string val_csv = "data/mp20/val.csv.gz";
  std::string test_csv = "data/mp20/test.csv.gz";
  std::vector<std::string> columns = {};  // name=column: another dataset's CSV columns under MP-20's names
  std::string shards_dir = "runs/shards/tiny";  // cgprep writes, cgtrain reads
  std::string tokenizer = "train";     // path to a sentencepiece .model, or "train": fit a small one on the train text
  int64_t tokenizer_vocab_size = 512;  // when tokenizer = train
  int64_t max_rows = 0;                // 0: all rows; else the first N rows of each split (quick runs)
  int64_t copies = 1;                  // augmented copies of each crystal
  bool translate = true;               // random uniform shift of all fractional coords, wrapped
  bool permute = false;                // random atom order
  double infill_fraction = 1.0 / 3.0;  // share of infill prompts; the rest are generation prompts
  std::string angle_mode = "round";    // round | truncate (reference code's int())
  std::string site_order = "pymatgen"; // pymatgen (CifParser's, as the reference's text) | file (the CIF's)
  std::string loss_on = "all";         // all (reference) | completion
  int64_t max_tokens = 1024;           // samples longer than this are skipped with a reason
  uint64_t seed = 42;
  bool strict = false;                 // first malformed row is an error instead of a counted skip
  int64_t shard_samples = 100000;      // samples per HDF5 shard
};

struct LoraConfig {
  bool enabled = true;                 // false: full-parameter training (tiny from-scratch baseline)
  int64_t r = 8;
  double alpha = 32;
  double dropout = 0.05;
  std::vector<std::string> targets = {"q_proj", "v_proj"};  // subset of q,k,v,o,gate,up,down _proj, or "all-linear"
  bool rslora = false;                 // scale alpha/sqrt(r) instead of alpha/r
  std::string init_adapter = "";       // PEFT adapter folder to start from (continue training)
};

struct ParallelConfig {
  int64_t tp = 1;
  int64_t dp = 0;                      // 0: world / tp
  std::string backend = "auto";        // auto (nccl on cuda, mpi on cpu) | mpi | nccl
  std::string mpi_wait = "auto";       // auto | sleep | poll: how ranks wait in MPI collectives (dist::CollectiveWait)
};

struct TrainConfig {
  std::string run_dir = "runs/tiny";
  int64_t steps = 200;                 // optimizer steps
  int64_t micro_batch = 8;             // sequences per rank per micro-step
  int64_t seq_len = 512;               // longest packed/padded sequence
  int64_t grad_accum = 1;
  double lr = 1e-4;
  std::string schedule = "cosine";     // cosine | linear | constant
  int64_t warmup_steps = 100;
  double min_lr_ratio = 0.0;           // final lr = lr * min_lr_ratio
  double weight_decay = 0.0;
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  double clip_grad_norm = 1.0;         // 0: off
  uint64_t seed = 0;
  int64_t val_every = 50;              // 0: never
  int64_t val_samples = 512;
  int64_t max_bad_steps = 5;           // consecutive NaN/inf losses before abort
  int64_t threads = 0;                 // torch intra-op threads per rank; 0: OMP_NUM_THREADS or cores / local ranks
};

struct CheckpointConfig {
  int64_t every = 100;                 // steps; 0: only at the end
  int64_t keep_last = 2;
  bool resume = true;                  // resume from the newest complete step-N/ in run_dir/checkpoints
};

struct LogConfig {
  std::string level = "info";
  int64_t every = 10;                  // steps between progress lines
  bool all_ranks = false;
};

struct SampleConfig {
  std::string adapter = "";            // PEFT adapter folder, run_dir or run_dir/checkpoints/step-N; empty: base/merged
  std::string out_dir = "";            // empty: <train.run_dir>/samples (sample_out_dir)
  std::string task = "generate";       // generate | infill
  int64_t num_samples = 64;
  int64_t batch_size = 32;
  int64_t max_new_tokens = 400;
  int64_t min_new_tokens = 0;          // EOS held back before this many new tokens
  double temperature = 0.7;
  double top_p = 0.9;
  int64_t top_k = 0;                   // 0: off
  uint64_t seed = 0;
  bool constrained = true;             // grammar-constrained decoding
  bool share_prompt = true;            // decode attention reads the prompt head all samples share from one copy
  bool cuda_graphs = false;            // decode steps replayed as CUDA graphs (GPU, tp 1)
  std::string decode_kernels = "auto";  // auto | on | off (model::DecodeKernels)
  std::string formula = "";            // conditions (empty / NaN: not given)
  int64_t spacegroup = 0;
  std::string formation_energy = "";
  std::string band_gap = "";
  std::string e_above_hull = "";
  std::string conditions_from = "";    // per-sample conditions from this CSV's rows (path or data.*_csv); "": fixed
  std::vector<std::string> condition_on = {"formula", "spacegroup"};  // attributes each prompt states from its row
};

struct EvalConfig {
  std::string input = "";              // cgsample folder, CSV (CDVAE layout) or CIF folder; empty: cgsample's
                                       // folder (eval_input)
  std::string out = "";                // report folder; empty: <input>/eval
  int64_t max_rows = 0;                // 0: all
  double min_distance = 0.5;           // Å
  double min_volume = 0.1;             // Å^3
  bool invariance = false;             // log-likelihood invariance check on data.test_csv (needs a model)
  int64_t invariance_crystals = 32;
  int64_t invariance_translations = 4;  // translated copies per crystal for the IPT
  std::string train_csv = "data.train_csv";  // novelty reference: a CSV path, "data.train_csv", or "" (skip novelty)
  std::string ref_csv = "data.test_csv";     // distribution reference: a CSV path, "data.test_csv", or "" (skip)
  double match_ltol = 0.2;             // structure matcher: lattice length tolerance (pymatgen ltol)
  double match_stol = 0.3;             // structure matcher: site tolerance, units of (V/N)^(1/3) (pymatgen stol)
  double match_angle_tol = 5;          // structure matcher: lattice angle tolerance, degrees (pymatgen angle_tol)
  double symprec = 0.1;                // spglib distance tolerance (Å) for space groups
  bool spacegroups = true;             // space group histogram of the valid crystals vs the reference
};

struct Config {
  ModelConfig model;
  DataConfig data;
  LoraConfig lora;
  ParallelConfig parallel;
  TrainConfig train;
  CheckpointConfig checkpoint;
  LogConfig log;
  SampleConfig sample;
  EvalConfig eval;
};

// argv = [CONFIG.yaml] [dotted.key=value ...] [--help]. Returns nullopt after printing help (every key with type,
// default and doc). Words that are neither a .yaml/.yml file nor key=value go to *positional (an error when null).
// Its errors are cg::InputError (common/input_error.h): every rank's alike, said once under mpirun (dist::run_main).
std::optional<Config> parse_cli(int argc, char** argv, const std::string& tool, const std::string& summary,
                                std::vector<std::string>* positional = nullptr);

// Defaults < YAML file (empty path: none) < overrides ("train.lr=3e-4", "lora.targets=[q_proj,v_proj]"), validated.
// Throws cg::Error naming the dotted key and what is allowed; a key given twice in one YAML map is an error.
// origins[i] says where overrides[i] came from in errors (default "command line"; cgsweep: "sweep file S: grid").
Config load_config(const std::string& yaml_path, const std::vector<std::string>& overrides,
                   const std::vector<std::string>& origins = {});
// A config cgtrain wrote (a run folder's or a checkpoint's config.yaml): read as written, without today's cross-key
// rules (validate_config), so that runs of older versions still resume, export and sample.
Config load_saved_config(const std::string& yaml_path);
// Same as load_config, from YAML text instead of a file (tests, configs embedded in run folders).
Config load_config_string(const std::string& yaml_text, const std::vector<std::string>& overrides = {});

// Checks every field's type-independent rules (ranges, enums, list members); throws naming the first bad key.
void validate_config(const Config& c);

// A property value as a prompt states it (sample.formation_energy, ...): a finite decimal number as a float key takes
// one (not nan / inf / hexadecimal, which strtod reads, nor 010; no spaces around it), nor so large (>= 1e16) that
// Python's str() would write it with an exponent. std::nullopt when `v` is not one.
std::optional<double> decimal_number(const std::string& v);

// An integer as a config key reads it (decimal, 1e5 as 100000; not 0x10 or 010; `quoted`: the text was a quoted YAML
// scalar, already decoded), for the numbers of other YAML files (a sweep file's slurm section); throws
// "<what>: expected an integer, got '<text>'" with what to write instead.
int64_t integer_value(const std::string& what, const std::string& text, bool quoted);

// A CSV-valued key's value resolved: "data.train_csv" / "data.val_csv" / "data.test_csv" name that key's value in
// `c`; anything else is a path, returned as it is.
std::string resolve_csv(const std::string& value, const Config& c);

// The folders that follow the run unless set: sample.out_dir, or <train.run_dir>/samples when it is empty (so two
// runs' samples never share a folder); eval.input, or that folder of cgsample's when it is empty. Run folders of
// older versions saved the literal runs/tiny/samples in both, which is an explicit value and is kept.
std::string sample_out_dir(const Config& c);
std::string eval_input(const Config& c);

// Resolved config as YAML, one section per struct, every key with its doc as a trailing comment.
// load_config_string(to_yaml(c)) == c.
std::string to_yaml(const Config& c);

// Short hex digest (16 chars of sha256) of the resolved values (comments excluded); written into checkpoints.
std::string config_hash(const Config& c);

// docs/config.md: every key grouped by section with type, default, allowed values and doc.
std::string config_reference_markdown();
// --help text: usage line, summary, then every key with type and default.
std::string config_help(const std::string& tool, const std::string& summary);

// "train.lr 0.0001 -> 0.0002" for every key whose value differs, in reference order.
std::vector<std::string> config_differences(const Config& before, const Config& after);

bool operator==(const Config& a, const Config& b);
inline bool operator!=(const Config& a, const Config& b) { return !(a == b); }

}  // namespace cg
