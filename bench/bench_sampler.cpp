// bench_sampler [NUM] [BATCH] [MAX_NEW] [--profile] [--unfused]: generation throughput of the tiny flavor (random
// weights) on CPU, with and without the grammar: sequences/s, tokens/s, and crystals/s (grammar-complete crystals
// per second).
// --profile: the operators a decode step calls (count and time per step, bench/op_profile.h): on a GPU every one is
// a kernel launch the host must issue; then the kernels one decode step of a model with 7B's layout launches (views
// and allocations not counted), per layer and per extra attention chunk, and what one operator call costs the host
// here. CG_PRINT_OPS=1 also prints that step's operator table.
// --unfused: separate q/k/v and gate/up matmuls (cgsample fuses them).
// The vocabulary is a 512-piece stand-in (256 byte pieces, printable characters, element symbols, digit pairs):
// libsentencepiece cannot share a process with libtorch's libprotobuf (see sampler/generator.h).
#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <chrono>
#include <memory>
#include <string>

#include "bench/op_profile.h"
#include "dist/cpu_threads.h"
#include "data/crystal_text.h"
#include "data/elements.h"
#include "data/prompt.h"
#include "model/llama.h"
#include "sampler/generator.h"

namespace {

std::vector<std::string> stand_in_vocab() {
  std::vector<std::string> p = {"<unk>", "<s>", "</s>"};
  for (int b = 0; b < 256; ++b) p.push_back(fmt::format("<0x{:02X}>", b));
  p.push_back("\xe2\x96\x81");
  for (char c = 33; c < 127; ++c) p.push_back(std::string(1, c));
  for (const auto& e : cg::all_elements())
    if (e.size() == 2) p.push_back(e);
  for (int d = 0; d < 100 && p.size() < 512; ++d) p.push_back(fmt::format("{:02d}", d));
  while (p.size() < 512) p.push_back(fmt::format("<unused{}>", p.size()));
  return p;
}

// Kernels one decode step launches (OpProfile::kernels) for a model with 7B's layout (32 layers, 32 heads, no
// GQA, bf16) narrowed to head_dim 4 so that it runs in no time on CPU (the count depends on the layout, not the
// widths): with and without the shared prompt, in one attention chunk and in two. What a GPU's host must issue.
void count_decode_kernels(bool fuse, int64_t batch, int64_t prompt) {
  at::NoGradGuard no_grad;
  auto cfg = cg::model::llama_flavor("7b", 512);
  cfg.hidden_size = cfg.num_attention_heads * 4, cfg.intermediate_size = 3 * cfg.hidden_size;
  cg::model::Llama model(cfg, cg::model::TpShape{}, at::TensorOptions().dtype(at::kBFloat16));
  cg::model::init_weights(*model, 1, 0.5);
  if (fuse) model->fuse_for_inference();
  model->eval();
  const int64_t L = cfg.num_hidden_layers;
  auto shared = model->make_cache(1, prompt);
  model->forward(at::ones({1, prompt}, at::kLong), 0, &shared);
  auto cache = model->make_cache(batch, prompt + 64);
  const auto tokens = at::ones({batch, 1}, at::kLong);
  std::printf("one decode step of a model with 7B's layout (bf16, %lld layers, %lld heads), %lld rows:\n",
              static_cast<long long>(L), static_cast<long long>(cfg.num_attention_heads),
              static_cast<long long>(batch));
  for (const bool with_prefix : {true, false}) {
    double counts[2];
    for (const int64_t chunks : {1, 2}) {
      // Two chunks: the first half of the rows at an early position, the rest late, and chunks free (cost 0).
      std::vector<int64_t> pos(batch, prompt + 40);
      if (chunks == 2)
        for (int64_t b = 0; b < batch / 2; ++b) pos[b] = prompt + 2;
      cg::bench::OpProfile::reset();
      {
        cg::bench::OpProfile prof;
        model->decode_step(tokens, pos, &cache, with_prefix ? &shared : nullptr, chunks, 0);
      }
      counts[chunks - 1] = cg::bench::OpProfile::kernels();
      if (std::getenv("CG_PRINT_OPS") && chunks == 1) cg::bench::OpProfile::print(40, double(L));
      if (chunks == 1)
        std::printf("  %s: ~%.0f kernels in one attention chunk (%.0f operator calls), per layer: %s\n",
                    with_prefix ? "shared prompt" : "own prompt   ", counts[0], cg::bench::OpProfile::calls(),
                    cg::bench::OpProfile::kernels_by_op(static_cast<double>(L)).c_str());
    }
    std::printf("  %s: +%.0f per extra chunk (%.1f per layer)\n", with_prefix ? "shared prompt" : "own prompt   ",
                counts[1] - counts[0], (counts[1] - counts[0]) / L);
  }
  if (fuse) {
    // sample.decode_kernels=on (the default on a GPU build): the attention as two kernels a layer, add + RMSNorm and
    // SiLU x up as one each; here their ATen references run under the kernels' profiler scopes, each counted as one.
    model->set_decode_kernels(cg::model::DecodeKernels::On);
    std::vector<int64_t> pos(batch, prompt + 40);
    for (int64_t b = 0; b < batch / 2; ++b) pos[b] = prompt + 2;  // positions apart: no chunks either way
    for (const bool with_prefix : {true, false}) {
      cg::bench::OpProfile::reset();
      {
        cg::bench::OpProfile prof;
        model->decode_step(tokens, pos, &cache, with_prefix ? &shared : nullptr);
      }
      std::printf("  cgtrain's kernels, %s: ~%.0f kernels (%.0f operator calls), per layer: %s\n",
                  with_prefix ? "shared prompt" : "own prompt   ", cg::bench::OpProfile::kernels(),
                  cg::bench::OpProfile::calls(),
                  cg::bench::OpProfile::kernels_by_op(static_cast<double>(L)).c_str());
    }
  }
  // What one operator call costs the host here (dispatch, output allocation; a 16 x 128 add does ~no arithmetic):
  // a GPU's host pays this per call plus the launch per kernel.
  const auto a = at::randn({16, 128}), b = at::randn({16, 128});
  for (int i = 0; i < 1000; ++i) (void)(a + b);
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 20000; ++i) (void)(a + b);
  const double us = 1e6 * std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / 20000;
  std::printf("  an operator call (a 16 x 128 add) costs %.2f us of host time here\n", us);
}

}  // namespace

int main(int argc, char** argv) {
  const int num = argc > 1 ? std::atoi(argv[1]) : 32;
  const int batch = argc > 2 ? std::atoi(argv[2]) : 16;
  const int max_new = argc > 3 ? std::atoi(argv[3]) : 300;
  bool profile = false, fuse = true;
  for (int i = 4; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--profile") profile = true;
    else if (a == "--unfused") fuse = false;
    else return std::fprintf(stderr, "unknown flag %s (--profile, --unfused)\n", a.c_str()), 2;
  }
  cg::dist::set_cpu_threads(1);  // as cgsample sets its threads: torch's, OpenBLAS's pool, the heap's reuse
  const std::vector<std::string> pieces = stand_in_vocab();
  cg::model::Llama model(cg::model::llama_flavor("tiny", static_cast<int64_t>(pieces.size())));
  cg::model::init_weights(*model, 1, 0.5);
  if (fuse) model->fuse_for_inference();  // as cgsample's model (load_sampling_model)
  model->eval();
  // Prompt: the generation prompt's length in characters as tokens (a stand-in; only its length matters here).
  std::vector<int32_t> prompt = {1};
  for (char ch : cg::generation_prompt({})) prompt.push_back(ch >= 33 && ch < 127 ? 259 + 1 + (ch - 33) : 259);
  std::printf("tiny flavor, %d sequences, batch %d, max_new_tokens %d, 1 thread, projections %s\n", num, batch, max_new,
              fuse ? "fused" : "unfused");
  for (bool constrained : {true, false}) {
    cg::GenerationParams p;
    p.max_new_tokens = max_new;
    p.batch_size = batch;
    p.sampling = {1.0, 1.0, 0};
    p.constrained = constrained;
    cg::Generator gen(*model, pieces, 2, nullptr);
    const auto t0 = std::chrono::steady_clock::now();
    std::unique_ptr<cg::bench::OpProfile> prof;
    if (profile) cg::bench::OpProfile::reset(), prof = std::make_unique<cg::bench::OpProfile>();
    const auto out = gen.generate(std::vector<std::vector<int32_t>>(num, prompt), p);
    prof.reset();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    int64_t tokens = 0, complete = 0;
    for (const auto& o : out) {
      tokens += static_cast<int64_t>(o.tokens.size());
      std::string text;
      for (int32_t v : o.tokens) text += cg::piece_text(pieces[v]);
      if (!text.empty() && text[0] == ' ') text.erase(0, 1);
      cg::Crystal c;
      std::string err;
      complete += o.hit_eos && cg::parse_crystal_text(text, &c, &err);
    }
    std::printf("grammar %-3s  %6.2f s  %7.1f tokens/s  %6.2f sequences/s  %6.2f crystals/s  (%.0f tokens/seq, %lld/%d "
                "parsed)\n",
                constrained ? "on" : "off", s, tokens / s, num / s, complete / s, double(tokens) / num,
                static_cast<long long>(complete), num);
    const auto& st = gen.stats();
    std::printf("             %lld decode steps, %.1f of %d rows busy on average, %lld prefill passes, %lld prompt "
                "tokens shared, attention read %.2fx the cached positions attended; model calls %.2f s, logits to "
                "host %.2f s, host work %.2f s\n",
                static_cast<long long>(st.decode_steps),
                st.decode_steps ? double(st.decode_rows) / st.decode_steps : 0.0, batch,
                static_cast<long long>(st.prefills), static_cast<long long>(st.shared_prefix),
                st.cache_needed ? double(st.cache_read) / st.cache_needed : 0.0, st.model_s, st.to_host_s, st.host_s);
    if (profile) cg::bench::OpProfile::print(24, static_cast<double>(st.decode_steps + st.prefills));
  }
  if (profile) count_decode_kernels(fuse, batch, static_cast<int64_t>(prompt.size()));
  return 0;
}
