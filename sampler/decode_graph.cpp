// DecodeGraphs: padded decode steps, captured as CUDA graphs per span bucket (sampler/decode_graph.h).
#include "sampler/decode_graph.h"

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <algorithm>

#include "common/error.h"
#include "model/llama.h"

#ifdef CG_HAVE_CUDA_KERNELS
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime_api.h>
#endif

namespace cg {

struct DecodeGraphs::Graph {
#ifdef CG_HAVE_CUDA_KERNELS
  at::cuda::CUDAGraph graph;
#endif
  at::Tensor out;  // (cap, 1, vocab_local) fp32, written by each replay
};

DecodeGraphs::DecodeGraphs(model::LlamaImpl& model, model::KVCache& cache, const model::KVCache* prefix,
                           bool capture)
    : model_(model),
      cache_(cache),
      prefix_(prefix),
      cap_(cache.batch()),
      prefix_len_(prefix ? prefix->max_len : 0),
      capture_(capture) {
  const auto device = model.device();
#ifndef CG_HAVE_CUDA_KERNELS
  CG_CHECK(!capture_, "sample.cuda_graphs needs a build with cgtrain's CUDA code (a CUDA libtorch and nvcc at "
           "configure time, CG_WITH_CUDA_KERNELS=ON: configure prints 'CUDA kernels ON'); set sample.cuda_graphs=false");
#endif
  CG_CHECK(!capture_ || device.is_cuda(), "CUDA graphs need the model on a GPU (model.device=cuda), not {}",
           device.str());
  const auto longs = at::TensorOptions().dtype(at::kLong);
  tokens_ = at::zeros({cap_, 1}, longs.device(device));
  pos_ = at::full({cap_}, prefix_len_, longs.device(device));
  host_tokens_ = at::zeros({cap_, 1}, longs.pinned_memory(device.is_cuda()));
  host_pos_ = at::zeros({cap_}, longs.pinned_memory(device.is_cuda()));
}

DecodeGraphs::~DecodeGraphs() = default;

at::Tensor DecodeGraphs::step(const std::vector<int64_t>& next, const std::vector<int64_t>& pos) {
  const int64_t R = static_cast<int64_t>(next.size());
  CG_CHECK(R > 0 && R <= cap_ && static_cast<int64_t>(pos.size()) == R, "DecodeGraphs::step: {} tokens and {} "
           "positions for a batch of {}", R, pos.size(), cap_);
  const auto [lo, hi] = std::minmax_element(pos.begin(), pos.end());
  CG_CHECK(*lo >= prefix_len_ && *hi < cache_.max_len, "decode positions [{}, {}] outside [{}, {}) (shared prefix, "
           "KV cache length)", *lo, *hi, prefix_len_, cache_.max_len);
  // The rows' largest position past the prefix, rounded up to a bucket (the cache's end at most). With the one-pass
  // attention every row reads its own positions whatever the span: one graph, for the whole cache.
  const bool one_pass = model_.one_pass_decode();
  const int64_t need = *hi - prefix_len_ + 1, whole = cache_.max_len - prefix_len_;
  const int64_t span = one_pass ? whole : std::min((need + kSpanBucket - 1) / kSpanBucket * kSpanBucket, whole);
  int64_t* ht = host_tokens_.data_ptr<int64_t>();
  int64_t* hp = host_pos_.data_ptr<int64_t>();
  for (int64_t r = 0; r < cap_; ++r) {  // padding rows: token 0 at the first position past the prefix
    ht[r] = r < R ? next[r] : 0;
    hp[r] = r < R ? pos[r] : prefix_len_;
  }
  // From pinned memory the copies are asynchronous; the staging is rewritten only after the caller has waited for
  // this step's logits.
  tokens_.copy_(host_tokens_, /*non_blocking=*/true);
  pos_.copy_(host_pos_, /*non_blocking=*/true);
  if (one_pass) {  // each row [0, pos], padding rows [0, prefix]
    last_read_ = (cap_ - R) * (prefix_len_ + 1);
    for (const int64_t p : pos) last_read_ += p + 1;
  } else {
    last_read_ = prefix_len_ + cap_ * span;
  }
  const at::Tensor out = capture_ ? replay(span)
                                  : model_.decode_step_on_device(tokens_, pos_, span, &cache_, prefix_);
  return out.select(1, 0).narrow(0, 0, R);  // (R, vocab_local)
}

at::Tensor DecodeGraphs::replay(int64_t span) {
#ifdef CG_HAVE_CUDA_KERNELS
  auto it = graphs_.find(span);
  if (it != graphs_.end()) {
    it->second->graph.replay();
    return it->second->out;
  }
  // First step of this span: run it eagerly on a side stream (this is the step's result, and it warms up cuBLAS's
  // handle and workspace for that stream), then record the same step, replay it and compare. The cache writes of
  // the eager run and the replay are the same values at the same positions.
  const auto device = model_.device();
  auto current = c10::cuda::getCurrentCUDAStream(device.index());
  auto side = c10::cuda::getStreamFromPool(false, device.index());
  current.synchronize();  // the inputs' copies and every earlier step are done: the side stream may start
  auto g = std::make_unique<Graph>();
  at::Tensor eager;
  // Graphs off for the rest of the run; this step's logits from the eager run.
  const auto give_up = [&](const std::string& why) {
    spdlog::warn("sample.cuda_graphs: {} (span {}); decoding eagerly from here on", why, span);
    capture_ = false;
    graphs_.clear();
    current.synchronize();
    return eager.defined() ? eager : model_.decode_step_on_device(tokens_, pos_, span, &cache_, prefix_);
  };
  bool recording = false;
  std::string failed;
  {
    // The side stream stays current through the catch: capture_end must run on the stream the capture began on
    // (else torch refuses it, the stream stays capturing and, in the global capture mode, the eager fallback's first
    // synchronize fails too).
    c10::cuda::CUDAStreamGuard on_side(side);
    try {
      eager = model_.decode_step_on_device(tokens_, pos_, span, &cache_, prefix_);
      side.synchronize();
      // One memory pool for every span's graph: they replay one at a time.
      if (graphs_.empty())
        g->graph.capture_begin();
      else
        g->graph.capture_begin(graphs_.begin()->second->graph.pool());
      recording = true;
      g->out = model_.decode_step_on_device(tokens_, pos_, span, &cache_, prefix_);
      recording = false;
      g->graph.capture_end();
      g->graph.replay();
      side.synchronize();
    } catch (const std::exception& e) {
      failed = e.what();
      if (recording) {  // leave the stream's capture mode before anything else runs on it
        try {
          g->graph.capture_end();
        } catch (const std::exception&) {
        }
        cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
        if (cudaStreamIsCapturing(side.stream(), &status) == cudaSuccess && status != cudaStreamCaptureStatusNone) {
          cudaGraph_t partial = nullptr;  // torch's capture_end did not end it: end it here
          if (cudaStreamEndCapture(side.stream(), &partial) == cudaSuccess && partial) cudaGraphDestroy(partial);
        }
      }
      (void)cudaGetLastError();
    }
  }
  if (!failed.empty()) return give_up("capturing the decode step failed: " + failed);
  const double diff = (g->out - eager).abs().nan_to_num(1e30).max().item<double>();
  const double scale = std::max(1.0, eager.abs().nan_to_num(0).max().item<double>());
  if (!(diff <= 1e-3 * scale))
    return give_up(fmt::format("the replayed decode step differs from the eager one by {:.3g} (logits up to {:.3g})",
                               diff, scale));
  spdlog::debug("sample.cuda_graphs: captured the decode step for span {} ({} rows)", span, cap_);
  const at::Tensor out = g->out;
  graphs_.emplace(span, std::move(g));
  return out;
#else
  (void)span;
  CG_FAIL("CUDA graphs need a build against a CUDA libtorch");
#endif
}

}  // namespace cg
