// Tokenizer: a sentencepiece model (LLaMA-2's converted one, or a small one cgprep trains) behind a light header.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace cg {

class Tokenizer {
 public:
  // Loads a sentencepiece .model file; throws cg::Error naming the path when it cannot be read or parsed.
  static Tokenizer load(const std::string& path);
  // From the serialized ModelProto bytes (what a .model file holds).
  static Tokenizer from_bytes(std::string model_proto);

  // Token ids of `text` (sentencepiece adds the dummy-prefix space itself); add_bos prepends bos_id().
  std::vector<int32_t> encode(std::string_view text, bool add_bos) const;
  // Text of `ids`; control tokens (BOS, EOS) produce no text; byte pieces are reassembled into UTF-8.
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
