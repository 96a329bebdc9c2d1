// train_sp_model over sentencepiece's trainer (the one user of libsentencepiece; see sp_train.h).
#include "data/sp_train.h"

#include <sentencepiece_trainer.h>

#include <algorithm>
#include <set>
#include <unordered_map>

#include "common/error.h"
#include "data/sp_model.h"

namespace cg {
namespace {

class VectorIterator : public sentencepiece::SentenceIterator {
 public:
  explicit VectorIterator(const std::vector<std::string>& v) : v_(v) {}
  bool done() const override { return i_ >= v_.size(); }
  void Next() override { ++i_; }
  const std::string& value() const override { return v_[i_]; }
  sentencepiece::util::Status status() const override { return sentencepiece::util::Status(); }

 private:
  const std::vector<std::string>& v_;
  size_t i_ = 0;
};

}  // namespace

int min_sp_vocab_size(const std::vector<std::string>& sentences) {
  // sentencepiece's BPE trainer keeps a piece for every character of the text (character_coverage 1.0; a space is
  // "▁"), beside <unk>, <s>, </s> and the 256 byte pieces, and refuses a vocabulary smaller than all of them.
  std::set<uint32_t> chars;
  for (const auto& s : sentences)
    for (size_t i = 0; i < s.size();) {
      const unsigned char c = s[i];
      const size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 1;
      uint32_t cp = len == 1 ? c : c & (0xFF >> (len + 1));
      for (size_t k = 1; k < len && i + k < s.size(); ++k) cp = (cp << 6) | (uint32_t(s[i + k]) & 0x3F);
      chars.insert(cp == ' ' ? 0x2581 : cp);
      i += len;
    }
  return int(chars.size()) + 3 + 256;
}

std::string train_sp_model(const std::vector<std::string>& sentences, int vocab_size, int threads) {
  CG_CHECK(!sentences.empty(), "no text to train a tokenizer on");
  const int min_vocab = min_sp_vocab_size(sentences);
  CG_CHECK(vocab_size >= min_vocab, "data.tokenizer_vocab_size {} is too small for this text: 256 byte pieces, 3 "
           "control pieces and its {} distinct characters need {}; set data.tokenizer_vocab_size={} or more (512 "
           "leaves room for merges)", vocab_size, min_vocab - 259, min_vocab, min_vocab);
  std::unordered_map<std::string, std::string> args = {
      {"model_type", "bpe"},
      {"vocab_size", std::to_string(vocab_size)},
      {"byte_fallback", "true"},
      {"split_digits", "true"},
      {"normalization_rule_name", "identity"},
      // Trained without the dummy prefix, used with it (set below): the sentences are lines, and in a sample every
      // line but the first follows '\n', so its first word carries no "▁" ("Li", not "▁Li"). A prefix added to each
      // training line would teach "▁Li", a piece crystal text never uses, and split "Li" after '\n' into L + i.
      {"add_dummy_prefix", "false"},
      {"remove_extra_whitespaces", "false"},
      {"character_coverage", "1.0"},
      {"max_sentence_length", "100000"},
      {"input_sentence_size", "0"},
      {"shuffle_input_sentence", "false"},
      {"hard_vocab_limit", "false"},
      {"num_threads", std::to_string(std::max(1, threads))},
      {"minloglevel", "2"},
  };
  VectorIterator it(sentences);
  std::string model;
  auto st = sentencepiece::SentencePieceTrainer::Train(args, &it, &model);
  CG_CHECK(st.ok(), "sentencepiece training failed (raise data.tokenizer_vocab_size if it is too small): {}",
           st.ToString());
  SpModelSpec spec = parse_sp_model(model);
  spec.add_dummy_prefix = true;  // a sample's text starts like LLaMA-2's: "▁" before its first word
  return serialize_sp_model(spec);
}

}  // namespace cg
