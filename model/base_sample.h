// A base model's weights, recognised without reading them: a few values of every tensor, taken at fixed places.
// Two bases of one shape (a model and its fine-tune, two random seeds, a base re-downloaded over another) differ
// there; the same weights copied elsewhere, or converted to another dtype, do not. cgtrain records the sample of
// model.hf_dir in every checkpoint and exported adapter, so a resume, an export or cgsample can refuse an adapter put
// on weights it was not trained on, and the ranks of one job compare theirs (a node with another copy).
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace cg::model {

// Values per tensor: at flat positions 0, (n-1)/3, 2(n-1)/3 and n-1 (fewer for a smaller tensor). A 7B base has
// 291 tensors: 1164 values, one page read each.
inline constexpr int kBaseSampleValues = 4;
// The file a checkpoint's step folder keeps it in, and the key of an exported adapter's cgtrain_source.json.
inline constexpr const char* kBaseSampleFile = "base_sample.json";
inline constexpr const char* kBaseSampleKey = "base_sample";

struct BaseSample {
  struct Values {
    std::string dtype;           // safetensors dtype ("BF16", "F16", "F32", ...)
    std::vector<double> values;  // exact: every value of those dtypes is a double
  };
  std::map<std::string, Values> tensors;  // every floating-point tensor of the folder, by name

  // {"format": 1, "tensors": {name: {"dtype": "BF16", "values": [...]}}}; a NaN is written as null.
  std::string to_json() const;
  // `what` names the source in errors (a file, or a key of one).
  static BaseSample from_json(const std::string& text, const std::string& what);
};

// The sample of the HF folder `hf_dir` (model.safetensors, its shards, or the single *.safetensors file).
BaseSample sample_base(const std::string& hf_dir);

// "" when `trained` and `now` are one base: the same tensors, and at every place the same value (within the coarser
// dtype's rounding where the two dtypes differ: a bf16 copy of fp16 weights is the same base). Else what differs,
// e.g. "3 of 36 values differ, first model.layers.0.self_attn.q_proj.weight[0]: 0.0123 there, -0.0456 here".
// `a_name` / `b_name` say whose value is whose ("there" / "here" above).
std::string base_sample_difference(const BaseSample& a, const BaseSample& b, const std::string& a_name,
                                   const std::string& b_name);

}  // namespace cg::model
