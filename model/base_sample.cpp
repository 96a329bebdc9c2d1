#include "model/base_sample.h"

#include <nlohmann/json.hpp>
#include <spdlog/fmt/fmt.h>
#include <torch/torch.h>

#include <cmath>
#include <limits>

#include "common/error.h"
#include "model/hf_checkpoint.h"

namespace cg::model {

namespace {

constexpr int kFormat = 1;

// The relative rounding step of a safetensors float dtype (half an ulp at 1, doubled for double rounding: a bf16
// copy made from fp16 weights that were themselves rounded from fp32).
double relative_step(const std::string& dtype) {
  if (dtype == "BF16") return std::ldexp(1.0, -8);
  if (dtype == "F16") return std::ldexp(1.0, -11);
  if (dtype == "F32") return std::ldexp(1.0, -24);
  return 0;  // F64
}

bool same_value(double a, double b, const std::string& dtype_a, const std::string& dtype_b) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
  if (dtype_a == dtype_b) return a == b;
  // fp16's subnormals are 2^-24 apart: values below its normal range round to within that in absolute terms.
  const double tol = 2 * std::max(relative_step(dtype_a), relative_step(dtype_b)) * std::max(std::fabs(a), std::fabs(b)) +
                     std::ldexp(1.0, -24);
  return std::fabs(a - b) <= tol;
}

}  // namespace

std::string BaseSample::to_json() const {
  nlohmann::json t = nlohmann::json::object();
  for (const auto& [name, v] : tensors) {
    nlohmann::json values = nlohmann::json::array();
    for (double x : v.values) values.push_back(std::isnan(x) ? nlohmann::json(nullptr) : nlohmann::json(x));
    t[name] = {{"dtype", v.dtype}, {"values", values}};
  }
  return nlohmann::json{{"format", kFormat}, {"tensors", t}}.dump();
}

BaseSample BaseSample::from_json(const std::string& text, const std::string& what) {
  const auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  CG_CHECK(j.is_object() && j.value("format", 0) == kFormat && j.contains("tensors") && j["tensors"].is_object(),
           "{} is not a base sample of format {} (an object with \"format\" and \"tensors\"); it is written by "
           "cgtrain, do not edit it", what, kFormat);
  BaseSample s;
  for (const auto& [name, v] : j["tensors"].items()) {
    CG_CHECK(v.is_object() && v.contains("dtype") && v["dtype"].is_string() && v.contains("values") &&
                 v["values"].is_array(), "{}: tensor {} has no \"dtype\" string and \"values\" list", what, name);
    Values& out = s.tensors[name];
    out.dtype = v["dtype"].get<std::string>();
    for (const auto& x : v["values"]) {
      CG_CHECK(x.is_number() || x.is_null(), "{}: tensor {} holds {}, not a number", what, name, x.dump());
      out.values.push_back(x.is_null() ? std::numeric_limits<double>::quiet_NaN() : x.get<double>());
    }
  }
  return s;
}

BaseSample sample_base(const std::string& hf_dir) {
  const HfCheckpoint ckpt(hf_dir);
  BaseSample s;
  for (const std::string& name : ckpt.keys()) {
    const TensorInfo& info = ckpt.info(name);
    if (!at::isFloatingType(info.scalar_type) || hf_buffer_key(name)) continue;  // weights only
    int64_t n = 1;
    for (int64_t d : info.shape) n *= d;
    BaseSample::Values& v = s.tensors[name];
    v.dtype = info.dtype;
    const int64_t k = std::min<int64_t>(n, kBaseSampleValues);
    for (int64_t i = 0; i < k; ++i) v.values.push_back(ckpt.element(name, k == 1 ? 0 : i * (n - 1) / (k - 1)));
  }
  return s;
}

std::string base_sample_difference(const BaseSample& a, const BaseSample& b, const std::string& a_name,
                                   const std::string& b_name) {
  for (const auto& [name, v] : a.tensors)
    if (!b.tensors.count(name)) return fmt::format("tensor {} is in {} only", name, a_name);
  for (const auto& [name, v] : b.tensors)
    if (!a.tensors.count(name)) return fmt::format("tensor {} is in {} only", name, b_name);
  int64_t total = 0, differ = 0;
  std::string first;
  for (const auto& [name, va] : a.tensors) {
    const BaseSample::Values& vb = b.tensors.at(name);
    if (va.values.size() != vb.values.size())
      return fmt::format("tensor {} has {} sampled values in {}, {} in {} (another shape)", name, va.values.size(),
                         a_name, vb.values.size(), b_name);
    for (size_t i = 0; i < va.values.size(); ++i) {
      ++total;
      if (same_value(va.values[i], vb.values[i], va.dtype, vb.dtype)) continue;
      if (differ++ == 0)
        first = fmt::format("{}[sample {}]: {:.9g} ({}) in {}, {:.9g} ({}) in {}", name, i, va.values[i], va.dtype,
                            a_name, vb.values[i], vb.dtype, b_name);
    }
  }
  if (differ == 0) return "";
  return fmt::format("{} of {} sampled weight values differ, first {}", differ, total, first);
}

}  // namespace cg::model
