// Writing sentencepiece models without protobuf: the few ModelProto wire-format fields a BPE model needs,
// converters from LLaMA-2's vocabulary + merges (llama-tokenizer-js, or a Hugging Face tokenizer.json), and
// training a small model on crystal text. Field numbers follow sentencepiece_model.proto:
//   ModelProto { pieces=1 {piece=1, score=2 (float), type=3}, trainer_spec=2, normalizer_spec=3 }
//   TrainerSpec { model_type=3 (BPE=2), vocab_size=4, split_digits=25, byte_fallback=35,
//                 unk_id=40, bos_id=41, eos_id=42, pad_id=43 }
//   NormalizerSpec { name=1, add_dummy_prefix=3, remove_extra_whitespaces=4, escape_whitespaces=5 }
#pragma once
#include <string>
#include <utility>
#include <vector>

namespace cg {

enum class SpPieceType : int { kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6 };

struct SpPiece {
  std::string piece;  // "▁the", "<0x0A>", "<s>"
  float score = 0;    // BPE: higher merges first
  SpPieceType type = SpPieceType::kNormal;
};

// A BPE sentencepiece model as LLaMA-2 uses it: identity normalization, dummy prefix, whitespace kept as "▁",
// byte fallback, digits split. Piece i has id i.
struct SpModelSpec {
  std::vector<SpPiece> pieces;
  int unk_id = 0, bos_id = 1, eos_id = 2, pad_id = -1;
  bool byte_fallback = true;
  bool split_digits = true;
  bool add_dummy_prefix = true;
};

// Serialized ModelProto bytes (the content of a .model file).
std::string serialize_sp_model(const SpModelSpec& spec);

// BPE vocabulary (id -> piece) + merges (rank order) -> spec. Normal pieces score minus the rank of the first merge
// that produces them (pieces no merge produces score below every merge); "<unk>" is UNKNOWN, "<s>"/"</s>" CONTROL,
// "<0xNN>" BYTE. Throws when a merge names a piece that is not in the vocabulary.
SpModelSpec sp_model_from_bpe(const std::vector<std::string>& vocab,
                              const std::vector<std::pair<std::string, std::string>>& merges);
// LLaMA-2's tokenizer from llama-tokenizer-js (its llama-tokenizer.js embeds the 32,000 pieces as base64 of
// newline-separated text and the merges as base64 of little-endian uint16 id pairs).
SpModelSpec sp_model_from_llama_tokenizer_js(const std::string& js_path);
// A Hugging Face tokenizer.json with a BPE model (model.vocab {piece: id}, model.merges ["a b"] or [["a","b"]]).
SpModelSpec sp_model_from_hf_tokenizer_json(const std::string& json_path);

// Trains a BPE model on `sentences` (one line of text each; no '\n' inside): identity normalization, dummy prefix,
// byte fallback, split digits, full character coverage, so text round-trips exactly. Returns the model bytes.
std::string train_sp_model(const std::vector<std::string>& sentences, int vocab_size, int threads = 2);

// Writes bytes to path via a temporary file and rename (no half-written model on interruption).
void write_file_atomic(const std::string& path, const std::string& bytes);

}  // namespace cg
