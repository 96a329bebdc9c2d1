// Reading and writing sentencepiece models without protobuf (the ModelProto wire format by hand), and converters
// from LLaMA-2's vocabulary + merges (llama-tokenizer-js, or a Hugging Face tokenizer.json). Training a model is in
// data/sp_train.h (the one place that needs libsentencepiece). Field numbers follow sentencepiece_model.proto:
//   ModelProto { pieces=1 {piece=1, score=2 (float), type=3}, trainer_spec=2, normalizer_spec=3,
//                denormalizer_spec=5 }
//   TrainerSpec { model_type=3 (UNIGRAM=1 default, BPE=2), vocab_size=4, treat_whitespace_as_suffix=24,
//                 split_digits=25, byte_fallback=35, unk_id=40, bos_id=41, eos_id=42, pad_id=43,
//                 unk_surface=44, unk_piece=45, bos_piece=46, eos_piece=47, pad_piece=48 }
//   NormalizerSpec { name=1, precompiled_charsmap=2, add_dummy_prefix=3 (default true),
//                    remove_extra_whitespaces=4 (default true), escape_whitespaces=5 (default true) }
#pragma once
#include "common/durable_file.h"  // write_file_atomic, for the model bytes
#include <string>
#include <string_view>
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
  // What parse_sp_model also reads (the writer writes the defaults below as they are).
  int model_type = 2;                     // TrainerSpec.ModelType: 1 UNIGRAM, 2 BPE, 3 WORD, 4 CHAR
  bool treat_whitespace_as_suffix = false;  // "▁" ends words instead of starting them (written only when true)
  bool remove_extra_whitespaces = false;  // strip leading/trailing spaces, collapse runs of spaces
  bool escape_whitespaces = true;         // ' ' -> "▁"
  std::string normalizer_name = "identity";
  bool has_charsmap = false;              // a precompiled normalization map (nmt_nfkc, ...): not supported here
  bool has_denormalizer = false;          // a denormalizer with its own map: not supported here
  std::string unk_piece = "<unk>", bos_piece = "<s>", eos_piece = "</s>";  // what bos_id()/eos_id() look up
  std::string unk_surface = " \xE2\x81\x87 ";  // text that decoding <unk> produces (" ⁇ ")
};

// Serialized ModelProto bytes (the content of a .model file). Throws for specs it cannot write faithfully
// (a normalization map or denormalizer).
std::string serialize_sp_model(const SpModelSpec& spec);
// Parses serialized ModelProto bytes (any sentencepiece .model: unknown fields are skipped, proto2 defaults apply
// to absent ones). Throws cg::Error on malformed wire data. Does not judge the model (see cg::Tokenizer).
SpModelSpec parse_sp_model(std::string_view bytes);

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
// The pieces of a tokenizer.json's model.vocab by id (added tokens past it, such as a <pad>, not included): what a
// base model's tokenizer is compared by when it has no tokenizer.model.
std::vector<std::string> hf_tokenizer_json_vocab(const std::string& json_path);

}  // namespace cg
