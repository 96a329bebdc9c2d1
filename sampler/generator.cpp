// Generator: the decode loop (prefill, then one token per step through the KV cache) and the dp split.
#include "sampler/generator.h"

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <limits>
#include <map>
#include <random>

#include "common/error.h"
#include "common/parallel.h"
#include "data/rng.h"
#include "dist/tp_ops.h"
#include "model/accounting.h"
#include "model/llama.h"
#include "sampler/decode_graph.h"

namespace cg {

namespace {

// One sequence in a row of the running batch.
struct Row {
  size_t seq = 0;        // index into the prompts
  int64_t pos = 0;       // the position its next input token takes (= tokens in its cache row)
  int64_t next = 0;      // that token (the last one sampled)
  int64_t cohort = 0;    // the admission it came in with
  GrammarState state;
  std::mt19937_64 rng;
  bool finished = false;
};

// Adds the time since the last lap (or construction) to `acc` and starts the next lap.
class Lap {
 public:
  void operator()(double& acc) {
    const auto now = std::chrono::steady_clock::now();
    acc += std::chrono::duration<double>(now - last_).count();
    last_ = now;
  }

 private:
  std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
};

// int64 values -> a tensor on `device`.
at::Tensor long_tensor(const std::vector<int64_t>& v, const at::Device& device) {
  return torch::tensor(v, at::TensorOptions().dtype(at::kLong)).to(device);
}

// The length of the token prefix all prompts share.
int64_t common_prefix(const std::vector<std::vector<int32_t>>& prompts) {
  size_t p = prompts[0].size();
  for (const auto& q : prompts)
    p = std::mismatch(q.begin(), q.begin() + std::min(p, q.size()), prompts[0].begin()).first - q.begin();
  return static_cast<int64_t>(p);
}

// Rows moved when finished ones leave: row src[i] goes to row dst[i]; the moved rows hold cache positions
// [0, width).
struct Moves {
  std::vector<int64_t> dst, src;
  int64_t width = 0;
};

// Removes the finished rows. The rows stay grouped by admission, oldest first, so positions fall along the rows and
// decode_step's attention chunks read few positions a row does not attend to (a row admitted late does not read up
// to the oldest row's position). Each admission's survivors take a block of rows where the earlier ones end; a
// survivor already inside its block stays, the others move into the gaps: about one move per later admission for
// each sequence that ends.
Moves drop_finished(std::vector<Row>& rows) {
  const int64_t R = static_cast<int64_t>(rows.size());
  int64_t keep = 0;
  for (const auto& r : rows) keep += !r.finished;
  Moves m;
  std::vector<int64_t> dest(R, -1), movers;  // row r goes to dest[r]
  std::vector<char> taken(keep, 0);
  for (int64_t r = 0, begin = 0; r < R;) {
    int64_t e = r, alive = 0;  // rows [r, e): one admission's
    for (; e < R && rows[e].cohort == rows[r].cohort; ++e) alive += !rows[e].finished;
    const int64_t end = begin + alive;  // its block of the kept rows: [begin, end)
    int64_t gap = begin;
    for (int64_t i = r; i < e; ++i) {
      if (rows[i].finished) continue;
      if (i >= begin && i < end)
        dest[i] = i, taken[i] = 1;
      else
        movers.push_back(i);
    }
    for (int64_t i : movers) {
      while (taken[gap]) ++gap;
      dest[i] = gap, taken[gap] = 1;
      m.dst.push_back(gap), m.src.push_back(i);
      m.width = std::max(m.width, rows[i].pos);
    }
    movers.clear();
    r = e, begin = end;
  }
  std::vector<Row> kept(keep);
  for (int64_t r = 0; r < R; ++r)
    if (dest[r] >= 0) kept[dest[r]] = std::move(rows[r]);
  rows.swap(kept);
  return m;
}

}  // namespace

Generator::Generator(model::LlamaImpl& model, std::vector<std::string> pieces, int eos_id, dist::CommPtr tp)
    : model_(model), pieces_(std::move(pieces)), eos_(eos_id), tp_(std::move(tp)) {
  CG_CHECK(model.config().vocab_size >= static_cast<int64_t>(pieces_.size()),
           "the model's vocabulary ({}) is smaller than the tokenizer's ({}); use the tokenizer the model was "
           "trained with",
           model.config().vocab_size, pieces_.size());
  CG_CHECK(eos_ >= 0 && eos_ < static_cast<int>(pieces_.size()), "EOS id {} is outside the vocabulary ({})", eos_,
           pieces_.size());
}

at::Tensor Generator::prefill(const std::vector<std::vector<int32_t>>& prompts, size_t first, size_t count,
                              model::KVCache& cache, int64_t row0, int64_t shared) {
  const auto device = model_.device();
  // Identical prompts (every unconditional prompt is the same) are computed once; distinct ones of equal length in
  // one forward.
  std::map<std::vector<int32_t>, int64_t> distinct;
  std::vector<int64_t> which(count);  // admitted prompt i -> its distinct prompt
  std::map<size_t, std::vector<int64_t>> by_len;  // length -> distinct prompts
  std::vector<const std::vector<int32_t>*> texts;
  for (size_t i = 0; i < count; ++i) {
    const auto& p = prompts[first + i];
    auto [it, fresh] = distinct.try_emplace(p, static_cast<int64_t>(texts.size()));
    if (fresh) texts.push_back(&p), by_len[p.size()].push_back(it->second);
    which[i] = it->second;
  }
  std::vector<at::Tensor> last(texts.size());  // distinct prompt -> its last position's logits (vocab_local)
  for (const auto& [len, group] : by_len) {
    const int64_t G = static_cast<int64_t>(group.size()), T = static_cast<int64_t>(len);
    std::vector<int64_t> flat;
    flat.reserve(G * T);
    for (int64_t d : group) flat.insert(flat.end(), texts[d]->begin(), texts[d]->end());
    const at::Tensor tokens = long_tensor(flat, device).view({G, T});
    model::KVCache tmp = model_.make_cache(G, T);
    const at::Tensor logits = model_.forward(tokens, 0, &tmp);  // (G, T, vocab_local)
    ++stats_.prefills;
    std::vector<int64_t> local(texts.size(), -1);  // distinct prompt -> its row in this group
    for (int64_t g = 0; g < G; ++g) local[group[g]] = g, last[group[g]] = logits[g][T - 1];
    // Copy the group's keys/values into the cache rows of the prompts that use them.
    std::vector<int64_t> dst, src;
    for (size_t i = 0; i < count; ++i)
      if (local[which[i]] >= 0) dst.push_back(row0 + static_cast<int64_t>(i)), src.push_back(local[which[i]]);
    // Positions [0, shared) are read from the shared prefix, never from the rows: not copied.
    if (T > shared) cache.copy_rows(dst, tmp, src, shared, T - shared);
  }
  std::vector<at::Tensor> rows;
  for (size_t i = 0; i < count; ++i) rows.push_back(last[which[i]]);
  return at::stack(rows);  // (count, vocab_local)
}

namespace {
constexpr int64_t kTopLogits = 64;  // a row's largest logits brought to the host for an unconstrained draw
}  // namespace

std::vector<Generation> Generator::generate(const std::vector<std::vector<int32_t>>& prompts,
                                            const GenerationParams& params, const GenerationProgress& progress,
                                            const std::vector<uint64_t>& streams, const GenerationDone& on_done) {
  torch::NoGradGuard no_grad;
  CG_CHECK(params.batch_size >= 1 && params.max_new_tokens >= 1,
           "sample.batch_size ({}) and sample.max_new_tokens ({}) must be >= 1", params.batch_size,
           params.max_new_tokens);
  CG_CHECK(params.min_new_tokens >= 0 && params.min_new_tokens < params.max_new_tokens,
           "sample.min_new_tokens ({}) must be in [0, sample.max_new_tokens ({})): EOS comes after at least "
           "min_new_tokens new tokens, and must fit within max_new_tokens", params.min_new_tokens,
           params.max_new_tokens);
  CG_CHECK(streams.empty() || streams.size() == prompts.size(), "{} RNG streams for {} prompts", streams.size(),
           prompts.size());
  const size_t n = prompts.size();
  std::vector<Generation> out(n);
  stats_ = {};
  if (n == 0) return out;
  int64_t longest = 0;
  for (size_t i = 0; i < n; ++i) {
    const int64_t T = static_cast<int64_t>(prompts[i].size());
    CG_CHECK(T > 0, "prompt {} is empty (it needs at least BOS)", i);
    const int64_t positions = model_.config().max_position_embeddings;
    CG_CHECK(T < positions, "prompt {} is {} tokens, as long as the model's {} positions or longer: no room for a "
             "crystal; shorten the prompt's conditions (sample.formula and the others)", i, T, positions);
    CG_CHECK(T + params.max_new_tokens <= positions,
             "prompt {} ({} tokens) + sample.max_new_tokens ({}) exceeds the model's {} positions; lower "
             "sample.max_new_tokens to {} or less", i, T, params.max_new_tokens, positions, positions - T);
    longest = std::max(longest, T);
  }
  const int vocab = vocab_size();
  const int eos = eos_;
  TokenGrammar grammar(CrystalGrammar(params.mode), pieces_, eos);
  const auto device = model_.device();

  // Continuous batching: up to `cap` sequences run together, rows [0, rows.size()) of the cache. A sequence that
  // stops leaves at once (later rows move up, below), and queued prompts are prefilled into the free rows at the end,
  // so the batch stays full until the queue runs dry instead of waiting for its longest sequence. Admission waits
  // until an eighth of the rows are free (or none run): each prefill is one more pass over the weights, which is
  // what a decode step costs on a GPU. Each sequence samples from its own RNG stream and each row's numbers do not
  // depend on its neighbours, so which sequences share a step does not change the samples.
  const int64_t cap = std::min<int64_t>(params.batch_size, static_cast<int64_t>(n));
  const int64_t admit_at = std::max<int64_t>(1, cap / 8);
  model::KVCache cache;
  try {
    cache = model_.make_cache(cap, longest + params.max_new_tokens);
  } catch (const c10::Error& e) {  // out of memory: say what it was for and what to lower
    const double per_position =  // this tp rank's share of the kv heads
        double(model::kv_cache_bytes_per_position(model_.config(), c10::elementSize(model_.dtype()))) /
        model_.tp().size;
    const double gb = per_position * cap * (longest + params.max_new_tokens) / 1e9;
    CG_FAIL("the KV cache for {} rows x {} positions ({:.1f} GB on {}) could not be allocated; lower "
            "sample.batch_size or sample.max_new_tokens ({})",
            cap, longest + params.max_new_tokens, gb, device.str(), e.what_without_backtrace());
  }
  // The tokens every prompt starts with (all of it when they are one prompt, as in unconditional sampling; the
  // generation prompt's head when they differ by their conditions) are computed once, and decode steps read their
  // keys/values from that one copy instead of once per row: at 7B the prompt is ~30% of the cache a step reads.
  // Below kMinSharedPrefix tokens, or with one row, sharing would not pay for the separate attention path.
  constexpr int64_t kMinSharedPrefix = 8;
  int64_t P = common_prefix(prompts);
  if (!params.share_prompt || P < kMinSharedPrefix || cap < 2) P = 0;
  stats_.shared_prefix = P;
  // decode_step's price of one more attention chunk, in cached positions read per layer (model::decode_chunk_cost).
  const int64_t chunk_cost = model::decode_chunk_cost(model_.config(), model_.tp().size, model_.dtype(), device, P > 0);
  model::KVCache shared;
  if (P > 0) {
    shared = model_.make_cache(1, P);
    std::vector<int64_t> head(prompts[0].begin(), prompts[0].begin() + P);
    model_.forward(long_tensor(head, device).view({1, P}), 0, &shared);
    ++stats_.prefills;
  }
  std::unique_ptr<DecodeGraphs> graphs;
  if (params.cuda_graphs) {
    CG_CHECK(!tp_ || tp_->size() == 1, "sample.cuda_graphs needs tp 1 (this run has tp {}); set "
             "sample.cuda_graphs=false or parallel.tp=1", tp_ ? tp_->size() : 1);
    graphs = std::make_unique<DecodeGraphs>(model_, cache, P > 0 ? &shared : nullptr, device.is_cuda());
  }
  std::vector<Row> rows;
  rows.reserve(cap);
  std::vector<const uint8_t*> masks(cap, nullptr);            // per row: the grammar's mask,
  std::vector<const std::vector<int32_t>*> allowed(cap, nullptr);  // and the same as token ids
  std::vector<int> picked(cap, -1);
  // Unconstrained draws from each row's largest logits where those decide them (sample_token_from_top): on a GPU,
  // where the whole rows (32k logits each) would cost a copy and a sort on the host per row and step.
  using TopLogits = GenerationParams::TopLogits;
  const bool top = !params.constrained &&
                   (params.top_logits == TopLogits::On || (params.top_logits == TopLogits::Auto && device.is_cuda())) &&
                   (params.sampling.temperature <= 0 || params.sampling.top_p < 1 || params.sampling.top_k > 0);
  // Logits come to the host every step (the grammar lives there). From a GPU they land in pinned memory: a copy
  // into pageable memory runs at a fraction of the bus speed, and unconstrained, at batch 256 x 32k vocabulary, it is
  // 33 MB a step.
  at::Tensor host_logits;
  size_t queued = 0;  // prompts [0, queued) have been admitted
  int64_t admissions = 0;
  int64_t done = 0, generated = 0, reported = 0;
  auto reported_at = std::chrono::steady_clock::now();
  Lap lap;
  while (!rows.empty() || queued < n) {
    std::vector<at::Tensor> parts;  // next-token logits of rows [0, R), (rows, vocab_local) each
    const int64_t running = static_cast<int64_t>(rows.size());
    if (running > 0) {
      std::vector<int64_t> next(running), pos(running);
      for (int64_t r = 0; r < running; ++r) {
        next[r] = rows[r].next, pos[r] = rows[r].pos++;
        stats_.cache_needed += pos[r] + 1;
      }
      int64_t read = 0;
      if (graphs) {
        parts.push_back(graphs->step(next, pos));  // every row of the cache, padding past `running`
        read = graphs->last_positions_read();
      } else {
        const at::Tensor tokens = long_tensor(next, device).view({running, 1});
        model::KVCache view = cache.rows(0, running);
        parts.push_back(model_.decode_step(tokens, pos, &view, P > 0 ? &shared : nullptr, model::kDecodeMaxChunks,
                                           chunk_cost, &read)
                            .select(1, 0));
      }
      stats_.cache_read += read;
      ++stats_.decode_steps;
      stats_.decode_rows += running;
    }
    if (queued < n && (running == 0 || cap - running >= admit_at)) {
      const size_t take = std::min<size_t>(cap - running, n - queued);
      parts.push_back(prefill(prompts, queued, take, cache, running, P));
      for (size_t i = queued; i < queued + take; ++i) {
        Row row;
        row.seq = i;
        row.cohort = admissions;
        row.pos = static_cast<int64_t>(prompts[i].size());
        row.state = grammar.grammar().start();
        row.rng.seed(Rng::derive({params.seed, streams.empty() ? i : streams[i]}));
        rows.push_back(std::move(row));
      }
      queued += take;
      ++admissions;
    }
    lap(stats_.model_s);
    const int64_t R = static_cast<int64_t>(rows.size());
    at::Tensor logits = parts.size() == 1 ? parts[0] : at::cat(parts, 0);  // (R, vocab_local)
    if (tp_ && tp_->size() > 1) logits = dist::gather_from_tp(logits.contiguous(), tp_);  // (R, vocab_padded)
    lap(stats_.to_host_s);
    // With the grammar, only the allowed columns of each row come to the host (a state allows a few dozen tokens of
    // LLaMA's 32k: digits, element symbols, separators): the row's allowed ids, padded to the widest row. Drawing
    // among them gives the tokens the masked full row gives (sample_token_among). Masks are looked up serially (the
    // grammar's cache may grow).
    int64_t K = 0;
    if (params.constrained)
      for (int64_t r = 0; r < R; ++r) {
        masks[r] = grammar.allowed(rows[r].state).data();
        allowed[r] = &grammar.allowed_ids(rows[r].state);
        K = std::max<int64_t>(K, static_cast<int64_t>(allowed[r]->size()));
      }
    const int64_t full_width = logits.size(1);
    // EOS held back, on the device, for rows short of min_new_tokens where anything else is allowed: its logit -inf.
    if (params.min_new_tokens > 0 && eos < full_width) {
      std::vector<uint8_t> held(R);
      bool any = false;
      for (int64_t r = 0; r < R; ++r)
        any |= held[r] = static_cast<int64_t>(out[rows[r].seq].tokens.size()) < params.min_new_tokens &&
                         (!params.constrained || allowed[r]->size() > 1);
      if (any) {
        const auto mask = at::tensor(at::ArrayRef<uint8_t>(held)).to(at::kBool).to(device);
        logits = logits.clone();  // (not the model's output buffer)
        logits.select(1, eos).masked_fill_(mask, -std::numeric_limits<float>::infinity());
      }
    }
    lap(stats_.host_s);
    const bool compact = params.constrained && K > 0 && 4 * K <= full_width;
    if (compact) {
      std::vector<int64_t> cols(R * K);
      for (int64_t r = 0; r < R; ++r) {
        const auto& ids = *allowed[r];
        for (int64_t c = 0; c < K; ++c) cols[r * K + c] = ids.empty() ? 0 : ids[std::min<size_t>(c, ids.size() - 1)];
      }
      logits = logits.gather(1, long_tensor(cols, device).view({R, K}));  // (R, K)
    }
    logits = logits.to(at::kFloat);
    // Unconstrained (top): each row's kTopLogits largest logits, their ids and its softmax sum come to the host
    // instead of the whole row; the rare row they do not decide (sample_token_from_top) comes whole after the draws.
    at::Tensor top_ids, top_z;
    const at::Tensor whole = logits;  // (R, full_width) fp32 on the device: rows the top logits do not decide
    if (top) {
      const auto row = logits.narrow(1, 0, vocab);
      const int64_t m = std::min<int64_t>(vocab, params.sampling.top_k > 0 ? params.sampling.top_k + 1 : kTopLogits);
      auto [vals, ids] = row.topk(m, 1);
      if (params.sampling.temperature > 0 && params.sampling.top_k == 0) {  // the softmax sum over the whole row
        const auto mx = std::get<0>(row.max(1, /*keepdim=*/true)).to(at::kDouble);
        const auto d = (row.to(at::kDouble) - mx) / params.sampling.temperature;
        top_z = at::where(d > -40, d.exp(), at::zeros({}, d.options())).sum(1).to(at::kCPU);
      }
      logits = vals;
      top_ids = ids.to(at::kCPU);
    }
    const int64_t width = logits.size(1);
    stats_.logits_to_host += R * width;
    stats_.logits_full += R * full_width;
    at::Tensor host;  // (R, width) fp32 on the host
    if (device.is_cuda()) {
      if (!host_logits.defined())
        host_logits = at::empty({cap * full_width}, at::TensorOptions().dtype(at::kFloat).pinned_memory(true));
      host = host_logits.narrow(0, 0, R * width).view({R, width});
      host.copy_(logits);
    } else {
      host = logits.contiguous();
    }
    const float* lp = host.data_ptr<float>();
    lap(stats_.to_host_s);
    // Every sequence samples from its own logits row with its own RNG stream, in parallel (independent, so the result
    // does not depend on the thread count); then the grammar states advance, serially. parallel_chunks rather than
    // at::parallel_for, which runs serially in GPU builds (compiled without OpenMP), where batches are largest.
    parallel_chunks(0, R, 16, at::get_num_threads(), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const float* row_logits = lp + r * width;
        if (top) {
          picked[r] = sample_token_from_top(row_logits, top_ids.data_ptr<int64_t>() + r * width,
                                            static_cast<int>(width), vocab,
                                            top_z.defined() ? top_z.data_ptr<double>()[r] : 0.0, params.sampling,
                                            rows[r].rng);
          continue;
        }
        if (compact)
          picked[r] = sample_token_among(row_logits, allowed[r]->data(), static_cast<int>(allowed[r]->size()),
                                         params.sampling, rows[r].rng);
        else
          picked[r] = sample_token(row_logits, vocab, params.constrained ? masks[r] : nullptr, params.sampling,
                                   rows[r].rng);
      }
    });
    if (top) {  // the rows their largest logits did not decide: whole, in one copy, drawn in parallel
      std::vector<int64_t> need;
      for (int64_t r = 0; r < R; ++r)
        if (picked[r] == kNeedWholeRow) need.push_back(r);
      if (!need.empty()) {
        const int64_t k = static_cast<int64_t>(need.size());
        const auto host_rows = whole.narrow(1, 0, vocab).index_select(0, long_tensor(need, device)).to(at::kCPU)
                                   .contiguous();  // (k, vocab)
        const float* hp = host_rows.data_ptr<float>();
        parallel_chunks(0, k, 4, at::get_num_threads(), [&](int64_t i0, int64_t i1) {
          for (int64_t i = i0; i < i1; ++i)
            picked[need[i]] = sample_token(hp + i * vocab, vocab, nullptr, params.sampling, rows[need[i]].rng);
        });
        stats_.logits_to_host += k * vocab;
        stats_.whole_rows += k;
      }
    }
    int64_t finished = 0;
    for (int64_t r = 0; r < R; ++r) {
      Row& row = rows[r];
      Generation& g = out[row.seq];
      const int tok = picked[r];
      if (tok < 0) {  // nothing allowed (cannot happen for a live grammar): stop this sequence
        row.finished = true;
      } else {
        if (params.constrained) grammar.advance(row.state, tok);
        if (tok == eos) {
          row.finished = g.hit_eos = true;
        } else {
          g.tokens.push_back(tok);
          row.next = tok;
          ++generated;
          row.finished = static_cast<int64_t>(g.tokens.size()) == params.max_new_tokens;
        }
      }
      finished += row.finished;
      if (row.finished && on_done) on_done(row.seq, g);
    }
    if (finished > 0) {
      // Finished rows leave; the moved rows' cache entries follow them.
      const Moves moves = drop_finished(rows);
      if (!moves.dst.empty())
        cache.copy_rows(moves.dst, cache, moves.src, P, moves.width - P);  // [0, P): the shared prefix's, never read
      done += finished;
      // Also after 30 s without a line: a slow batch (long crystals, a busy machine) still shows it moves.
      const auto now = std::chrono::steady_clock::now();
      if (progress && (done - reported >= cap || done == static_cast<int64_t>(n) ||
                       now - reported_at >= std::chrono::seconds(30))) {
        progress(done, static_cast<int64_t>(n), generated);
        reported = done;
        reported_at = now;
      }
    }
    lap(stats_.host_s);
  }
  stats_.cuda_graphs = graphs ? graphs->graphs_captured() : 0;
  return out;
}

std::vector<Generation> generate_data_parallel(Generator& gen, const std::vector<std::vector<int32_t>>& prompts,
                                               const GenerationParams& params, const dist::ParallelDims& dims,
                                               const GenerationProgress& progress,
                                               const std::vector<uint64_t>& streams, const GenerationDone& on_done) {
  const size_t n = prompts.size();
  CG_CHECK(streams.empty() || streams.size() == n, "generate_data_parallel: {} streams for {} prompts",
           streams.size(), n);
  if (dims.dp == 1) return gen.generate(prompts, params, progress, streams, on_done);
  std::vector<std::vector<int32_t>> mine;
  std::vector<uint64_t> my_streams;
  std::vector<size_t> my_rows;  // position in prompts of each of mine
  for (size_t i = dims.dp_rank; i < n; i += dims.dp) {
    mine.push_back(prompts[i]);
    my_streams.push_back(streams.empty() ? i : streams[i]);
    my_rows.push_back(i);
  }
  GenerationDone mine_done;
  if (on_done) mine_done = [&](size_t k, const Generation& g) { on_done(my_rows[k], g); };
  const std::vector<Generation> local = gen.generate(mine, params, progress, my_streams, mine_done);

  // Row i: [num tokens, hit_eos, tokens..., -1 padding], filled by its dp group and -1 elsewhere; max over dp.
  const int64_t width = 2 + params.max_new_tokens;
  at::Tensor table = at::full({static_cast<int64_t>(n), width}, -1, at::TensorOptions().dtype(at::kLong));
  auto acc = table.accessor<int64_t, 2>();
  for (size_t k = 0; k < local.size(); ++k) {
    const int64_t i = static_cast<int64_t>(my_rows[k]);
    acc[i][0] = static_cast<int64_t>(local[k].tokens.size());
    acc[i][1] = local[k].hit_eos ? 1 : 0;
    for (size_t t = 0; t < local[k].tokens.size(); ++t) acc[i][2 + t] = local[k].tokens[t];
  }
  dims.host_dp_comm->all_reduce(table, dist::ReduceOp::Max);
  const auto res = table.accessor<int64_t, 2>();
  std::vector<Generation> out(n);
  for (size_t i = 0; i < n; ++i) {
    CG_CHECK(res[i][0] >= 0, "sample {} came back from no dp group", i);
    out[i].hit_eos = res[i][1] == 1;
    for (int64_t t = 0; t < res[i][0]; ++t) out[i].tokens.push_back(static_cast<int32_t>(res[i][2 + t]));
  }
  return out;
}

}  // namespace cg
