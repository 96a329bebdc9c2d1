// Deterministic data-parallel loader with length bucketing and exact resume.
#include "data/loader.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <numeric>

#include "common/json_int.h"
#include "common/error.h"
#include "common/sha256.h"
#include "common/log.h"
#include "data/rng.h"

namespace cg {

std::string LoaderState::to_json() const {
  nlohmann::json j = {{"epoch", epoch}, {"cursor", cursor}, {"seed", seed}, {"global_batch", global_batch},
                      {"num_samples", num_samples}, {"grad_accum", grad_accum}};
  if (!shards.empty()) j["shards"] = shards;
  return j.dump();
}

LoaderState LoaderState::from_json(const std::string& text) {
  LoaderState s;
  try {
    auto j = nlohmann::json::parse(text);
    const std::string where = "loader state";
    s.epoch = json_int_at(j, "epoch", where, 0);
    s.cursor = json_int_at(j, "cursor", where, 0);
    CG_CHECK(json_uint64(j.at("seed"), &s.seed), "loader state: \"seed\" is {}, not a whole number >= 0",
             j.at("seed").dump());
    s.global_batch = json_int_at(j, "global_batch", where, 0);
    s.num_samples = json_int_at(j, "num_samples", where, 0);
    s.shards = j.value("shards", std::string());
    s.grad_accum = j.contains("grad_accum") ? json_int_at(j, "grad_accum", where, 0) : 0;
  } catch (const std::exception& e) {
    CG_FAIL("loader state '{}' is not valid: {}", text, e.what());
  }
  return s;
}

Loader::Loader(SampleSet samples, LoaderOptions opt) : data_(std::move(samples)), opt_(opt) {
  CG_CHECK(opt_.micro_batch >= 1, "train.micro_batch = {} must be at least 1", opt_.micro_batch);
  CG_CHECK(opt_.grad_accum >= 1, "train.grad_accum = {} must be at least 1", opt_.grad_accum);
  CG_CHECK(opt_.dp_size >= 1 && opt_.dp_rank >= 0 && opt_.dp_rank < opt_.dp_size, "dp_rank {} is outside [0, {})",
           opt_.dp_rank, opt_.dp_size);
  CG_CHECK(opt_.seq_len >= 1, "train.seq_len = {} must be at least 1", opt_.seq_len);
  for (size_t i = 0; i < data_.size(); ++i) {
    const int64_t n = data_.length(i);
    if (n > opt_.seq_len + 1 || n < 2) {
      ++dropped_;
      continue;
    }
    keep_.push_back(int64_t(i));
    len_.push_back(n);
    // Targets are positions 1..n-1; completion mode: only those at or after the prompt.
    const int64_t first = opt_.loss_on_completion ? std::max<int64_t>(1, data_.prompt_lens[i]) : 1;
    loss_.push_back(std::max<int64_t>(0, n - first));
  }
  if (dropped_ > 0)
    spdlog::warn("{}: {} of {} samples are longer than train.seq_len + 1 = {} tokens (or empty) and are left "
                 "out; raise train.seq_len or lower data.max_tokens in cgprep",
                 opt_.what, dropped_, data_.size(), opt_.seq_len + 1);
  CG_CHECK(!keep_.empty(), "{} has no samples of at most {} tokens (train.seq_len + 1; its longest has {}): raise "
           "train.seq_len", opt_.what, opt_.seq_len + 1, longest_sample());
}

Loader Loader::from_shards(const std::string& dir, const std::string& split, LoaderOptions opt) {
  SampleSet all;
  ShardMeta first;
  const std::vector<std::string> paths = list_shards(dir, split);
  for (size_t i = 0; i < paths.size(); ++i) {
    ShardMeta m;
    SampleSet s = read_shard(paths[i], &m);
    if (i == 0) first = m;
    CG_CHECK(m.tokenizer_sha256 == first.tokenizer_sha256 && m.settings_json == first.settings_json &&
             m.source_sha256 == first.source_sha256 && m.derived_properties == first.derived_properties,
             "shard '{}' was made with another tokenizer, settings or source CSV (or derived properties) than {}: "
             "rerun cgprep into a "
             "clean data.shards_dir", paths[i], paths[0]);
    // Shards of one cgprep run are numbered 0..n-1 and each knows n: leftovers of another run (e.g. one that wrote
    // more shards, or failed half-way) would otherwise be read as data, duplicating or mixing samples.
    CG_CHECK(m.shard_index == int64_t(i) && m.num_shards == int64_t(paths.size()),
             "shard '{}' is shard {} of {}, but {} holds {} {} shard(s): files of different cgprep runs are mixed; "
             "rerun cgprep into a clean data.shards_dir", paths[i], m.shard_index, m.num_shards, dir, paths.size(),
             split);
    all.append(s);
  }
  if (opt.what == "loader") opt.what = "the " + split + " split in " + dir;
  Loader l(std::move(all), opt);
  l.meta_ = first;
  l.shards_ = l.shards_digest(first.settings_json);
  return l;
}

int64_t Loader::longest_sample() const {
  int64_t n = 0;
  for (size_t i = 0; i < data_.size(); ++i) n = std::max<int64_t>(n, data_.length(i));
  return n;
}

std::string Loader::shards_digest(const std::string& settings_json) const {
  std::string what = meta_.tokenizer_sha256 + "\n" + settings_json + "\n" + meta_.source_sha256;
  // Properties cgprep derived enter only where it derived some: shards made from the same CIF folder by a cgprep that
  // derived none (an older one, or one without spglib) hold other prompts, while MP-20's shards keep their digest.
  if (!meta_.derived_properties.empty()) what += "\nderived " + meta_.derived_properties;
  return sha256_hex(what.data(), what.size()).substr(0, 16);
}

int64_t Loader::batches_per_epoch() const {
  const int64_t g = global_batch();
  return (int64_t(keep_.size()) + g - 1) / g;
}

std::vector<std::vector<int64_t>> Loader::plan(int64_t epoch) const {
  const int64_t n = int64_t(keep_.size());
  const int64_t g = global_batch();
  std::vector<int64_t> order(static_cast<size_t>(n));  // positions into keep_/len_
  std::iota(order.begin(), order.end(), int64_t(0));
  const bool bucket = opt_.shuffle && opt_.bucket_batches > 1;
  if (opt_.shuffle) {
    Rng rng(Rng::derive({opt_.seed, uint64_t(epoch), 0x6f72646572ull /* "order" */}));
    rng.shuffle(order);
  }
  if (bucket) {
    // Sort windows of bucket_batches global batches by length; the last window may be shorter.
    const int64_t w = g * opt_.bucket_batches;
    for (int64_t b = 0; b < n; b += w) {
      auto first = order.begin() + b, last = order.begin() + std::min(n, b + w);
      std::stable_sort(first, last, [&](int64_t x, int64_t y) { return len_[size_t(x)] < len_[size_t(y)]; });
    }
  }
  std::vector<std::vector<int64_t>> batches;
  for (int64_t b = 0; b < n; b += g) batches.emplace_back(order.begin() + b, order.begin() + std::min(n, b + g));
  if (bucket) {
    // Shuffle the order of full batches so lengths do not rise within a window; a partial batch stays last.
    const size_t full = size_t(n / g);
    std::vector<size_t> perm(full);
    std::iota(perm.begin(), perm.end(), size_t(0));
    Rng rng(Rng::derive({opt_.seed, uint64_t(epoch), 0x6275636b6574ull /* "bucket" */}));
    rng.shuffle(perm);
    std::vector<std::vector<int64_t>> out(batches.size());
    for (size_t i = 0; i < full; ++i) out[i] = std::move(batches[perm[i]]);
    for (size_t i = full; i < batches.size(); ++i) out[i] = std::move(batches[i]);
    batches = std::move(out);
  }
  return batches;
}

Batch Loader::make_batch(const std::vector<int64_t>& global, int64_t epoch, int64_t index, int64_t micro,
                         int64_t parts) const {
  Batch b;
  b.epoch = epoch;
  b.index = index;
  b.global_samples = int64_t(global.size());
  for (int64_t p : global) b.global_loss_tokens += loss_[size_t(p)];
  // The micro-step's contiguous part of the global batch, then this rank's contiguous slice of it (both balanced
  // when the global batch is partial).
  const int64_t g = int64_t(global.size()), r = opt_.dp_rank, d = opt_.dp_size;
  const int64_t part_lo = g * micro / parts, part = g * (micro + 1) / parts - part_lo;
  const int64_t lo = part_lo + part * r / d, hi = part_lo + part * (r + 1) / d;
  b.B = hi - lo;
  for (int64_t i = lo; i < hi; ++i) b.T = std::max(b.T, len_[size_t(global[size_t(i)])] - 1);
  b.tokens.assign(size_t(b.B * b.T), opt_.pad_id);
  b.targets.assign(size_t(b.B * b.T), -100);
  for (int64_t row = 0; row < b.B; ++row) {
    const int64_t p = global[size_t(lo + row)];
    const size_t id = size_t(keep_[size_t(p)]);
    const int32_t* s = data_.sample(id);
    const int64_t n = len_[size_t(p)];
    const int64_t first = opt_.loss_on_completion ? std::max<int64_t>(1, data_.prompt_lens[id]) : 1;
    int32_t* tok = b.tokens.data() + row * b.T;
    int32_t* tgt = b.targets.data() + row * b.T;
    std::copy(s, s + n - 1, tok);
    for (int64_t t = first - 1; t < n - 1; ++t) tgt[t] = s[t + 1];
    b.real_tokens += n - 1;
    b.loss_tokens += loss_[size_t(p)];
    b.sample_ids.push_back(int64_t(id));
    b.tasks.push_back(data_.tasks[id]);
  }
  return b;
}

Batch Loader::next() {
  if (plan_epoch_ != epoch_) {
    plan_cache_ = plan(epoch_);
    plan_epoch_ = epoch_;
  }
  Batch b = make_batch(plan_cache_[size_t(cursor_)], epoch_, cursor_, micro_, opt_.grad_accum);
  if (++micro_ >= opt_.grad_accum) {
    micro_ = 0;
    if (++cursor_ >= int64_t(plan_cache_.size())) {
      ++epoch_;
      cursor_ = 0;
    }
  }
  pad_positions_ += b.B * b.T - b.real_tokens;
  all_positions_ += b.B * b.T;
  return b;
}

LoaderState Loader::state() const {
  CG_CHECK(micro_ == 0, "loader state asked for inside a global batch (micro-step {} of {}): it is kept per optimizer "
           "step", micro_, opt_.grad_accum);
  return position();
}

LoaderState Loader::position() const {
  return {epoch_, cursor_, opt_.seed, global_batch(), int64_t(keep_.size()), opt_.grad_accum, shards_};
}

void Loader::restore(const LoaderState& s, const std::vector<std::string>& also_shards) {
  check_restore(s, also_shards);
  epoch_ = s.epoch;
  cursor_ = s.cursor;
  micro_ = 0;
}

void Loader::check_restore(const LoaderState& s, const std::vector<std::string>& also_shards) const {
  const LoaderState mine = position();  // any micro-step: restore starts a global batch
  CG_CHECK(s.seed == mine.seed, "loader state has seed {}, this run {}: resume with the same train.seed (the run "
           "folder's config.yaml holds it), or start a new train.run_dir", s.seed, mine.seed);
  CG_CHECK(s.global_batch == mine.global_batch || s.grad_accum > 0, "the checkpoint's loader position was saved by "
           "a cgtrain before 2026-12-04, whose global batch was train.micro_batch x dp = {} without grad_accum; this "
           "run's is {} ({} x {} x train.grad_accum {}): resume with a micro_batch x dp of {} and "
           "train.grad_accum=1 (each optimizer step then averages fewer samples than before), or start a new "
           "train.run_dir", s.global_batch, mine.global_batch, opt_.micro_batch, opt_.dp_size, opt_.grad_accum,
           s.global_batch);
  CG_CHECK(s.global_batch == mine.global_batch, "loader state has global batch {} (train.micro_batch x dp x "
           "train.grad_accum), this run {} ({} x {} x {}): keep the product unchanged to resume (e.g. half the dp "
           "ranks with twice the grad_accum)", s.global_batch, mine.global_batch, opt_.micro_batch, opt_.dp_size,
           opt_.grad_accum);
  CG_CHECK(s.num_samples == mine.num_samples,
           "loader state counts {} samples, these shards {}: resume with the shards the run trained on "
           "(data.shards_dir; the checkpoint's training_data.json names them) and the same train.seq_len, or, to "
           "train on other data, start a new train.run_dir with lora.init_adapter set to this run's cgexport",
           s.num_samples, mine.num_samples);
  const bool same_shards = s.shards.empty() || mine.shards.empty() || s.shards == mine.shards ||
                           std::find(also_shards.begin(), also_shards.end(), s.shards) != also_shards.end();
  CG_CHECK(same_shards, "the shards were made again since this "
           "loader state was saved (another tokenizer, cgprep settings or source CSV, or formulas and space groups "
           "derived where the first cgprep derived none: digest {} then, {} now), so the "
           "run would not continue the same samples: prepare them as before (see cgprep_config.yaml of the shards "
           "used; shards made before data.site_order existed hold data.site_order=file's text), or start a new "
           "train.run_dir", s.shards, mine.shards);
  CG_CHECK(s.epoch >= 0 && s.cursor >= 0 && s.cursor < batches_per_epoch(), "loader state cursor {} is outside [0, {})",
           s.cursor, batches_per_epoch());
}

std::vector<Batch> Loader::fixed_batches(int64_t n) const {
  const int64_t k = n > 0 ? std::min<int64_t>(n, int64_t(keep_.size())) : int64_t(keep_.size());
  std::vector<int64_t> order(static_cast<size_t>(k));  // positions into keep_/len_: file order
  std::iota(order.begin(), order.end(), int64_t(0));
  std::stable_sort(order.begin(), order.end(), [&](int64_t x, int64_t y) { return len_[size_t(x)] < len_[size_t(y)]; });
  const int64_t g = opt_.micro_batch * opt_.dp_size;
  std::vector<Batch> out;
  for (int64_t b = 0; b < k; b += g)
    out.push_back(make_batch(std::vector<int64_t>(order.begin() + b, order.begin() + std::min(k, b + g)), 0, b / g));
  return out;
}

double Loader::padding_waste() const {
  return all_positions_ ? double(pad_positions_) / double(all_positions_) : 0.0;
}

}  // namespace cg
