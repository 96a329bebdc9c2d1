// Tokenizer: a BPE sentencepiece model (LLaMA-2's, or a small one cgprep trains) behind a light header. Encoding and
// decoding are our own (data/tokenizer.cpp) and give libsentencepiece's ids, without linking libsentencepiece (its
// bundled protobuf crashes processes that also load libtorch), so torch binaries may use it. BPE models only.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace cg {

class Tokenizer {
 public:
  // Loads a sentencepiece .model file; throws cg::Error naming the path when it cannot be read or parsed, or when
  // it is not a BPE model with identity normalization (unigram models, nmt_nfkc maps are refused).
  static Tokenizer load(const std::string& path);
  // From the serialized ModelProto bytes (what a .model file holds).
  static Tokenizer from_bytes(std::string model_proto);

  // Token ids of `text` (sentencepiece adds the dummy-prefix space itself); add_bos prepends bos_id().
  std::vector<int32_t> encode(std::string_view text, bool add_bos) const;
  // Text of `ids`; control tokens (BOS, EOS) produce no text; byte pieces are reassembled into UTF-8 (U+FFFD per
  // malformed byte); "▁" -> ' ', and the dummy-prefix space of the first text piece is dropped once, so
  // decode(encode(x)) == x for valid UTF-8 without a literal "▁", leading spaces included (as sentencepiece does).
  std::string decode(const std::vector<int32_t>& ids) const;
  int bos_id() const;
  int eos_id() const;
  int vocab_size() const;
  // Raw piece text: "▁" for space, byte pieces as "<0x0A>", "<s>" for BOS.
  std::string piece(int id) const;
  // sha256 (hex) of the model bytes: identifies the tokenizer in shards and checkpoints.
  const std::string& hash() const;
  // The serialized model (to copy it next to shards).
  const std::string& model_bytes() const;

 private:
  struct Impl;
  std::shared_ptr<const Impl> impl_;  // immutable after load: copies are cheap, encode() is thread-safe
};

}  // namespace cg
