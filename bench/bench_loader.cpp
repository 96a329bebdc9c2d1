// bench_loader: loader throughput (real tokens per second into Batches), micro_batch 8, seq_len 1024, bucketing on;
// then the padding of the same epoch without bucketing.
//   bench_loader [SHARDS_DIR]   train shards from cgprep; without one, 34k synthetic samples of 150-400 tokens
#include <chrono>

#include "common/log.h"
#include "data/loader.h"
#include "data/rng.h"

namespace {
cg::Loader make(int argc, char** argv, const cg::LoaderOptions& o) {
  if (argc > 1) return cg::Loader::from_shards(argv[1], "train", o);
  cg::SampleSet s;
  cg::Rng rng(1);
  for (int i = 0; i < 34000; ++i) s.add(std::vector<int32_t>(150 + rng.below(250), 7), 40, 0, i, 0);
  return cg::Loader(std::move(s), o);
}
}  // namespace

int main(int argc, char** argv) {
  cg::init_logging(0, 1, "warn");
  using Clock = std::chrono::steady_clock;
  cg::LoaderOptions o;
  o.micro_batch = 8;
  o.seq_len = 1024;
  o.seed = 1;
  auto t0 = Clock::now();
  cg::Loader l = make(argc, argv, o);
  const double load_s = std::chrono::duration<double>(Clock::now() - t0).count();
  int64_t tokens = 0, batches = 0;
  t0 = Clock::now();
  for (int e = 0; e < 3; ++e)
    for (int64_t i = 0; i < l.batches_per_epoch(); ++i, ++batches) tokens += l.next().real_tokens;
  const double s = std::chrono::duration<double>(Clock::now() - t0).count();
  std::printf("loader: %lld samples loaded in %.2f s; %lld batches, %lld tokens in %.2f s = %.1f M tokens/s; "
              "padding waste %.1f%%\n",
              (long long)l.num_samples(), load_s, (long long)batches, (long long)tokens, s, double(tokens) / s / 1e6,
              100 * l.padding_waste());
  o.bucket_batches = 1;
  cg::Loader plain = make(argc, argv, o);
  for (int64_t i = 0; i < plain.batches_per_epoch(); ++i) plain.next();
  std::printf("without bucketing: padding waste %.1f%%\n", 100 * plain.padding_waste());
  return 0;
}
