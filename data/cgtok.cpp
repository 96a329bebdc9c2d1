// cgtok: make and inspect sentencepiece tokenizer models.
//   cgtok llama-js  third_party/llama-tokenizer-js/llama-tokenizer.js OUT.model   (LLaMA-2's tokenizer)
//   cgtok hf-json   tokenizer.json OUT.model                                     (any HF BPE tokenizer.json)
//   cgtok encode    MODEL "text"      prints ids and pieces
//   cgtok decode    MODEL ID...       prints the text of ids (as encode prints them, or a shard's tokens)
#include <cstdio>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "common/durable_file.h"
#include "common/error.h"
#include "common/log.h"
#include "data/sp_model.h"
#include "data/tokenizer.h"

namespace {
constexpr const char* kUsage =
    "usage: cgtok llama-js JS_FILE OUT.model | hf-json TOKENIZER.json OUT.model | encode MODEL TEXT |"
    " decode MODEL ID... | --help\n"
    "cgtok: make and inspect sentencepiece tokenizer models\n"
    "  cgtok llama-js JS_FILE OUT.model   convert llama-tokenizer-js's llama-tokenizer.js (LLaMA-2's vocabulary\n"
    "                                     and merges) into a sentencepiece model with LLaMA-2's ids\n"
    "  cgtok hf-json TOKENIZER.json OUT.model   convert a Hugging Face BPE tokenizer.json the same way\n"
    "  cgtok encode MODEL TEXT            print the ids and pieces of TEXT (BOS added)\n"
    "  cgtok decode MODEL ID...           print the text of token ids (separate arguments or one argument with\n"
    "                                     ids separated by spaces or commas, e.g. a row of a shard's tokens)\n";

// The converted model never replaces its input, nor a file that holds something else (a model folder's own
// tokenizer.model): either would be lost. The same bytes again are fine (a rerun).
void check_output(const std::string& in, const std::string& out, const std::string& bytes) {
  namespace fs = std::filesystem;
  std::error_code ec;
  CG_CHECK(!fs::equivalent(in, out, ec), "the output {} is the input file: give another output path (the input "
           "would be replaced by the converted model)", out);
  const fs::path parent = fs::absolute(out).parent_path();
  CG_CHECK(fs::is_directory(parent, ec), "cannot write {}: the folder {} does not exist; create it first", out,
           parent.string());
  // A dangling link would be replaced by a file (the atomic rename), not followed: the converted model would not
  // land where the link points.
  CG_CHECK(!fs::is_symlink(out, ec) || fs::exists(out, ec), "the output {} is a link to {}, which does not exist: give "
           "the path it points to, or remove the link", out, fs::read_symlink(out, ec).string());
  CG_CHECK(!fs::is_directory(out, ec), "the output {} is a folder: give a file path, e.g. {}/tokenizer.model", out, out);
  CG_CHECK(!fs::exists(out, ec) || cg::read_file(out, "the existing output") == bytes, "the output {} exists and "
           "holds another file (another tokenizer.model?); remove it first if it is to be replaced, or give another "
           "path", out);
}

// Token ids from arguments that each hold one or more ids separated by spaces, commas or brackets ("1 450",
// "[1, 450]", "(1, 450)"), as encode prints them or Python shows a shard's row ("[  1 450]", "array([  1, 450],
// dtype=int32)"). Every id must be in the model's vocabulary.
std::vector<int32_t> parse_ids(int argc, char** argv, const cg::Tokenizer& tok) {
  std::vector<int32_t> ids;
  for (int a = 3; a < argc; ++a) {
    std::string arg = argv[a];
    for (char& ch : arg)
      if (ch == ',' || ch == '[' || ch == ']' || ch == '(' || ch == ')' || ch == '\t' || ch == '\n') ch = ' ';
    std::istringstream in(arg);
    for (std::string word; in >> word;) {
      if (word == "array" || word.rfind("dtype=", 0) == 0) continue;  // numpy's repr around the ids
      long long id = -1;
      if (!word.empty() && word.size() <= 18 && word.find_first_not_of("0123456789") == std::string::npos)
        id = std::stoll(word);
      CG_CHECK(id >= 0, "cgtok decode: '{}' is not a token id (ids are whole numbers >= 0, separated by spaces or "
               "commas)", word);
      CG_CHECK(id < tok.vocab_size(), "cgtok decode: id {} is outside this model's vocabulary of {} pieces (ids "
               "0..{}): is it the tokenizer the ids were made with?", id, tok.vocab_size(), tok.vocab_size() - 1);
      ids.push_back(static_cast<int32_t>(id));
    }
  }
  CG_CHECK(!ids.empty(), "cgtok decode: no ids given");
  return ids;
}

}  // namespace

int main(int argc, char** argv) {
  cg::init_logging(0, 1);
  const std::string cmd = argc > 1 ? argv[1] : "";  // no command: the usage, as an error
  try {
    if ((cmd == "llama-js" || cmd == "hf-json") && argc == 4) {
      cg::SpModelSpec spec = cmd == "llama-js" ? cg::sp_model_from_llama_tokenizer_js(argv[2])
                                               : cg::sp_model_from_hf_tokenizer_json(argv[2]);
      std::string bytes = cg::serialize_sp_model(spec);
      cg::Tokenizer tok = cg::Tokenizer::from_bytes(bytes);  // validates the model before writing it
      check_output(argv[2], argv[3], bytes);
      cg::write_file_atomic(argv[3], bytes);
      spdlog::info("wrote {} ({} pieces, sha256 {})", argv[3], tok.vocab_size(), tok.hash());
      return 0;
    }
    if ((cmd == "encode" && argc == 4) || (cmd == "decode" && argc >= 4)) {
      std::error_code ec;
      CG_CHECK(std::filesystem::is_regular_file(argv[2], ec), "cgtok {}: the model {} {}: give a sentencepiece "
               "tokenizer.model (cgtok llama-js or hf-json makes one)", cmd, argv[2],
               std::filesystem::exists(argv[2], ec) ? "is not a file" : "does not exist");
    }
    if (cmd == "encode" && argc == 4) {
      cg::Tokenizer tok = cg::Tokenizer::load(argv[2]);
      for (int32_t id : tok.encode(argv[3], true)) std::printf("%d\t%s\n", id, tok.piece(id).c_str());
      return 0;
    }
    if (cmd == "decode" && argc >= 4) {
      cg::Tokenizer tok = cg::Tokenizer::load(argv[2]);
      // The text's bytes as they are: a <0x00> byte piece decodes to a NUL, which a C string would end the text at.
      const std::string text = tok.decode(parse_ids(argc, argv, tok)) + "\n";
      std::fwrite(text.data(), 1, text.size(), stdout);
      return 0;
    }
    if (cmd == "--help" || cmd == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (cmd.empty())
      std::fputs("cgtok: no command given\n", stderr);
    else if (cmd == "llama-js" || cmd == "hf-json" || cmd == "encode")
      std::fprintf(stderr, "cgtok %s: takes 2 arguments, %d given\n", cmd.c_str(), argc - 2);
    else if (cmd == "decode")
      std::fprintf(stderr, "cgtok decode: takes a model and at least one id, %d arguments given\n", argc - 2);
    else
      std::fprintf(stderr, "cgtok: unknown command '%s' (llama-js, hf-json, encode or decode)\n", cmd.c_str());
    std::fputs(kUsage, stderr);
    return 2;
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what());
    return 1;
  }
}
