// bench_tokenizer: sentencepiece tokenizer throughput on MP-20 training text (generation prompt + crystal text, as
// cgprep writes it), encode on 1 and on all cores, decode on 1; tokens/s and characters per token.
//   bench_tokenizer [TOKENIZER(.model | llama-tokenizer.js)] [CSV]
// Defaults: third_party/llama2/tokenizer.model (scripts/build.sh makes it; else converted from llama-tokenizer.js) and
// data/mp20/train.csv.gz. No torch here: sentencepiece's protobuf cannot share a process with libtorch's.
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <thread>

#include "common/log.h"
#include "data/crystal_text.h"
#include "data/mp20.h"
#include "data/prompt.h"
#include "data/rng.h"
#include "data/sp_model.h"
#include "data/tokenizer.h"

namespace {
double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
}  // namespace

int main(int argc, char** argv) {
  cg::init_logging(0, 1, "warn");
  const std::string src = CG_SOURCE_DIR;
  std::string tok_path = argc > 1 ? argv[1] : src + "/third_party/llama2/tokenizer.model";
  const std::string csv = argc > 2 ? argv[2] : src + "/data/mp20/train.csv.gz";
  if (argc <= 1 && !std::filesystem::exists(tok_path))
    tok_path = src + "/third_party/llama-tokenizer-js/llama-tokenizer.js";
  cg::Tokenizer tok = tok_path.size() > 3 && tok_path.substr(tok_path.size() - 3) == ".js"
                          ? cg::Tokenizer::from_bytes(
                                cg::serialize_sp_model(cg::sp_model_from_llama_tokenizer_js(tok_path)))
                          : cg::Tokenizer::load(tok_path);

  const cg::Mp20Split split = cg::read_mp20(csv);
  cg::Rng rng(42);
  std::vector<std::string> texts;
  int64_t chars = 0;
  for (const auto& c : split.crystals) {
    cg::TextSample s = cg::make_generation_sample(c, {}, rng);
    texts.push_back(s.prompt + s.completion);
    chars += int64_t(texts.back().size());
  }

  // Encode, one thread.
  double t0 = now_s();
  std::vector<std::vector<int32_t>> ids(texts.size());
  int64_t tokens = 0;
  for (size_t i = 0; i < texts.size(); ++i) tokens += int64_t((ids[i] = tok.encode(texts[i], true)).size());
  const double enc1 = now_s() - t0;

  // Encode, all cores, contiguous blocks (as cgprep splits rows).
  const int nt = int(std::max(1u, std::thread::hardware_concurrency()));
  t0 = now_s();
  std::vector<std::thread> pool;
  std::vector<int64_t> counts(size_t(nt), 0);
  for (int w = 0; w < nt; ++w)
    pool.emplace_back([&, w] {
      const size_t lo = texts.size() * size_t(w) / size_t(nt), hi = texts.size() * size_t(w + 1) / size_t(nt);
      for (size_t i = lo; i < hi; ++i) counts[size_t(w)] += int64_t(tok.encode(texts[i], true).size());
    });
  for (auto& th : pool) th.join();
  const double encn = now_s() - t0;

  // Decode, one thread (what the sampler does with every generated sequence).
  t0 = now_s();
  int64_t decoded_chars = 0;
  for (const auto& v : ids) decoded_chars += int64_t(tok.decode(v).size());
  const double dec1 = now_s() - t0;

  std::printf("tokenizer %s (vocab %d) on %zu MP-20 train texts (%s): %lld tokens, %.2f chars/token, %.0f tokens "
              "per text\n",
              tok_path.c_str(), tok.vocab_size(), texts.size(), csv.c_str(), (long long)tokens,
              double(chars) / double(tokens), double(tokens) / double(texts.size()));
  std::printf("encode 1 thread: %.2f s = %.2f M tokens/s (%.0f texts/s)\n", enc1, double(tokens) / enc1 / 1e6,
              double(texts.size()) / enc1);
  std::printf("encode %d threads: %.2f s = %.2f M tokens/s\n", nt, encn, double(tokens) / encn / 1e6);
  std::printf("decode 1 thread: %.2f s = %.2f M tokens/s (%lld chars)\n", dec1, double(tokens) / dec1 / 1e6,
              (long long)decoded_chars);
  return 0;
}
