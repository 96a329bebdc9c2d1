// Training a small BPE sentencepiece model on crystal text. This is the only code that needs libsentencepiece, and
// it lives in its own library (cg_data_sptrain) because libsentencepiece carries its own protobuf: a process that
// also loads libtorch (protobuf 3.21) crashes before main(). Link cg_data_sptrain only from tools that never load
// torch (cgprep, cgtok, data tests); everything else reads models with cg::Tokenizer (data/tokenizer.h).
#pragma once
#include <string>
#include <vector>

namespace cg {

// Trains a BPE model on `sentences` (one line of text each; no '\n' inside): identity normalization, byte fallback,
// split digits, full character coverage, so text round-trips exactly. Lines are learned without a dummy prefix (as
// they occur after '\n'), and the model adds one at the start of a text, as LLaMA-2's does. Returns the model bytes
// (a serialized ModelProto, what a .model file holds). vocab_size must be at least min_sp_vocab_size(sentences),
// else the error names the number to set.
std::string train_sp_model(const std::vector<std::string>& sentences, int vocab_size, int threads = 2);
// The smallest vocabulary sentencepiece accepts for `sentences`: 256 byte pieces + <unk>, <s>, </s> + one piece per
// distinct character (a space counts as "▁").
int min_sp_vocab_size(const std::vector<std::string>& sentences);

}  // namespace cg
