// train_step / validation_loss: forward, vocab-parallel cross-entropy, backward, gradient reduction, update.
#include "trainer/train_step.h"

#include <torch/torch.h>

#include <algorithm>
#include <limits>

#include "common/error.h"
#include "dist/vocab_parallel_ce.h"

namespace cg {

namespace {

// Host int32 ids -> int64 on `device`. On a GPU the ids are widened on the host, pinned and copied asynchronously:
// a copy from pageable memory (or one that converts the dtype on the way) would wait for the stream, i.e. for the
// previous micro-batch's backward, every micro-batch.
at::Tensor ids_to_device(const std::vector<int32_t>& ids, at::IntArrayRef shape, const at::Device& device) {
  at::Tensor t = at::from_blob(const_cast<int32_t*>(ids.data()), shape, at::TensorOptions().dtype(at::kInt))
                     .to(at::kLong);  // a copy this function owns
  if (!device.is_cuda()) return t.to(device);
  return t.pin_memory().to(device, /*non_blocking=*/true);
}

}  // namespace

at::Tensor batch_token_losses(TrainModel& m, const Batch& b, const dist::ParallelDims& dims) {
  // Ids are checked here on the host: the cross-entropy's own check would cost a device sync per micro-batch.
  const int64_t V = m.llama->config().vocab_size;
  for (size_t i = 0; i < b.targets.size(); ++i) {
    const int32_t t = b.targets[i], x = b.tokens[i];
    CG_CHECK((t == dist::kIgnoreIndex || (t >= 0 && t < V)) && x >= 0 && x < V, "batch position {} holds token {} / "
             "target {}, outside the model's vocabulary [0, {}); the shards were made with another tokenizer: run "
             "cgprep again or set data.tokenizer to the shards' tokenizer", i, x, t, V);
  }
  at::Tensor tokens = ids_to_device(b.tokens, {b.B, b.T}, m.device);       // (B, T)
  at::Tensor targets = ids_to_device(b.targets, {b.B * b.T}, m.device);  // (B*T), -100 = no loss
  at::Tensor logits = m.llama->forward(tokens);       // (B, T, V_local) fp32
  return dist::vocab_parallel_cross_entropy(logits.reshape({b.B * b.T, logits.size(-1)}), targets, m.vocab_start(),
                                           dims.tp_comm);  // (B*T)
}

at::Tensor batch_loss_sum(TrainModel& m, const Batch& b, const dist::ParallelDims& dims) {
  return batch_token_losses(m, b, dims).sum();
}

StepResult train_step(TrainModel& m, Loader& loader, TrainGrads& grads, AdamW& opt, double lr, double clip_grad_norm,
                      const dist::ParallelDims& dims) {
  m.llama->train();
  StepResult r;
  at::Tensor loss_sum = at::zeros({}, at::TensorOptions().dtype(at::kFloat).device(m.device));
  int64_t loss_tokens = 0, real_tokens = 0;
  for (int64_t i = 0; i < loader.grad_accum(); ++i) {  // one global batch: the loader's micro-steps
    Batch b = loader.next();
    r.epoch = b.epoch;
    if (b.B == 0) continue;  // the last global batch of an epoch may leave this dp replica empty (all its tp ranks)
    at::Tensor l = batch_loss_sum(m, b, dims);
    l.backward();
    loss_sum += l.detach();
    loss_tokens += b.loss_tokens;
    real_tokens += b.real_tokens;
  }
  r.stats = grads.reduce(loss_sum, loss_tokens, real_tokens);
  r.real_tokens = int64_t(r.stats.real_tokens);
  if (!r.stats.finite) {
    r.skipped = true;
    grads.zero_grad();
    return r;
  }
  r.clip_factor = grads.clip(clip_grad_norm, r.stats.grad_norm);
  opt.step(lr);
  grads.zero_grad();
  return r;
}

ValLoss validation_loss(TrainModel& m, const std::vector<Batch>& batches, const dist::ParallelDims& dims) {
  m.llama->eval();
  double sum[2] = {0, 0}, tokens[2] = {0, 0};  // [task != generation]
  {
    at::NoGradGuard no_grad;
    for (const auto& b : batches) {
      if (b.B == 0) continue;
      // One host copy of B row sums per batch (the scalar sum was one too).
      const at::Tensor rows = batch_token_losses(m, b, dims).view({b.B, b.T}).sum(1).to(at::kDouble).cpu();
      const double* r = rows.data_ptr<double>();
      for (int64_t row = 0; row < b.B; ++row) {
        const size_t task = b.tasks.empty() || b.tasks[size_t(row)] == 0 ? 0 : 1;
        const auto first = b.targets.begin() + row * b.T;
        sum[task] += r[row];
        tokens[task] += double(std::count_if(first, first + b.T, [](int32_t t) { return t != dist::kIgnoreIndex; }));
      }
    }
  }
  m.llama->train();
  at::Tensor t = at::tensor({sum[0], tokens[0], sum[1], tokens[1]}, at::kDouble);
  if (dims.dp > 1) dims.host_dp_comm->all_reduce(t);
  const auto v = t.accessor<double, 1>();
  // No loss-carrying token: no measurement (NaN, written as null), never a perfect 0.
  auto mean = [](double s, double n) { return n > 0 ? s / n : std::numeric_limits<double>::quiet_NaN(); };
  ValLoss out;
  out.all = mean(v[0] + v[2], v[1] + v[3]);
  out.generation = mean(v[0], v[1]);
  out.infill = mean(v[2], v[3]);
  out.generation_tokens = int64_t(v[1]);
  out.infill_tokens = int64_t(v[3]);
  out.tokens = out.generation_tokens + out.infill_tokens;
  return out;
}

}  // namespace cg
