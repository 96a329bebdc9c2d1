// Tokenizer over sentencepiece's processor.
#include "data/tokenizer.h"

#include <sentencepiece_processor.h>

#include <fstream>
#include <sstream>

#include "common/error.h"
#include "common/sha256.h"

namespace cg {

struct Tokenizer::Impl {
  sentencepiece::SentencePieceProcessor sp;
  std::string bytes;
  std::string hash;
};

Tokenizer Tokenizer::load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  CG_CHECK(in.good(), "cannot read tokenizer model '{}': set data.tokenizer to a sentencepiece .model file "
                      "(cgtok converts LLaMA-2's tokenizer.json), or to 'train'", path);
  std::ostringstream ss;
  ss << in.rdbuf();
  try {
    return from_bytes(ss.str());
  } catch (const Error& e) {
    CG_FAIL("tokenizer model '{}': {}", path, e.what());
  }
}

Tokenizer Tokenizer::from_bytes(std::string model_proto) {
  auto impl = std::make_shared<Impl>();
  auto st = impl->sp.LoadFromSerializedProto(model_proto);
  CG_CHECK(st.ok(), "not a valid sentencepiece model: {}", st.ToString());
  impl->hash = sha256_hex(model_proto.data(), model_proto.size());
  impl->bytes = std::move(model_proto);
  Tokenizer t;
  t.impl_ = std::move(impl);
  return t;
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_bos) const {
  std::vector<int> ids;
  auto st = impl_->sp.Encode(absl::string_view(text.data(), text.size()), &ids);
  CG_CHECK(st.ok(), "sentencepiece could not encode text: {}", st.ToString());
  std::vector<int32_t> out;
  out.reserve(ids.size() + 1);
  if (add_bos) out.push_back(bos_id());
  out.insert(out.end(), ids.begin(), ids.end());
  return out;
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids) const {
  std::vector<int> v(ids.begin(), ids.end());
  for (int id : v) CG_CHECK(id >= 0 && id < vocab_size(), "token id {} outside the vocabulary [0, {})", id, vocab_size());
  std::string out;
  auto st = impl_->sp.Decode(v, &out);
  CG_CHECK(st.ok(), "sentencepiece could not decode ids: {}", st.ToString());
  return out;
}

int Tokenizer::bos_id() const { return impl_->sp.bos_id(); }
int Tokenizer::eos_id() const { return impl_->sp.eos_id(); }
int Tokenizer::vocab_size() const { return impl_->sp.GetPieceSize(); }

std::string Tokenizer::piece(int id) const {
  CG_CHECK(id >= 0 && id < vocab_size(), "token id {} outside the vocabulary [0, {})", id, vocab_size());
  return impl_->sp.IdToPiece(id);
}

const std::string& Tokenizer::hash() const { return impl_->hash; }
const std::string& Tokenizer::model_bytes() const { return impl_->bytes; }

}  // namespace cg
