#include "sampler/sample_journal.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <vector>

#include "common/durable_file.h"
#include "common/error.h"

namespace cg {
namespace fs = std::filesystem;

namespace {

constexpr const char* kPrefix = ".cgsample.journal";

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

bool all_of_class(const std::string& s, int (*is)(int)) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [&](char c) { return is(static_cast<unsigned char>(c)) != 0; });
}

// A journal file's name: .cgsample.journal[.aside-<hex>][.dp<digits>].jsonl. `aside` (optional) is set when it is
// one set aside (a stopped run of other settings, kept for that run to go on).
bool is_journal_name(const std::string& name, bool* aside = nullptr) {
  const std::string head = std::string(kPrefix), tail = ".jsonl";
  if (name.size() < head.size() + tail.size() || name.compare(0, head.size(), head) != 0 ||
      name.compare(name.size() - tail.size(), tail.size(), tail) != 0)
    return false;
  std::string mid = name.substr(head.size(), name.size() - head.size() - tail.size());  // "", ".dp3", ".aside-ab.dp3"
  bool set_aside = false;
  if (mid.rfind(".aside-", 0) == 0) {
    const size_t end = mid.find('.', 1);
    if (!all_of_class(mid.substr(7, end == std::string::npos ? std::string::npos : end - 7), isxdigit)) return false;
    set_aside = true;
    mid = end == std::string::npos ? "" : mid.substr(end);
  }
  if (aside) *aside = set_aside;
  return mid.empty() || (mid.rfind(".dp", 0) == 0 && all_of_class(mid.substr(3), isdigit));
}

std::vector<fs::path> journal_files(const std::string& out_dir) {
  std::vector<fs::path> files;
  std::error_code ec;
  for (fs::directory_iterator it(out_dir, ec), end; !ec && it != end; it.increment(ec))
    if (is_journal_name(it->path().filename().string())) files.push_back(it->path());
  std::sort(files.begin(), files.end());
  return files;
}

std::string line_of(size_t i, const Generation& g) {
  return nlohmann::json{{"i", i}, {"eos", g.hit_eos}, {"tokens", g.tokens}}.dump() + "\n";
}

// The key on a journal's first line ("" when none); when it is `key`, the journal's sequences go into `done`.
std::string read_journal(const fs::path& path, const std::string& key, size_t n, int64_t vocab_size,
                         std::map<size_t, Generation>& done) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  const auto head = nlohmann::json::parse(line, nullptr, false);
  const std::string file_key =
      head.is_object() && head.contains("key") && head["key"].is_string() ? head["key"].get<std::string>() : "";
  if (file_key != key) return file_key;
  while (std::getline(in, line)) {
    const auto j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_object() || !j.contains("i") || !j["i"].is_number_unsigned() || !j.contains("tokens") ||
        !j["tokens"].is_array() || !j.contains("eos") || !j["eos"].is_boolean())
      continue;
    const size_t i = j["i"].get<size_t>();
    const auto& tokens = j["tokens"];
    if (i >= n || !std::all_of(tokens.begin(), tokens.end(), [&](const nlohmann::json& t) {
          return t.is_number_integer() && t.get<int64_t>() >= 0 && t.get<int64_t>() < vocab_size;
        }))
      continue;  // not a line this key's runs wrote: drawn again
    Generation g;
    g.hit_eos = j["eos"].get<bool>();
    for (const auto& t : tokens) g.tokens.push_back(t.get<int32_t>());
    done[i] = std::move(g);
  }
  return file_key;
}

}  // namespace

std::string journal_path(const std::string& out_dir, int dp_group) {
  return (fs::path(out_dir) / (dp_group == 0 ? std::string(kPrefix) + ".jsonl"
                                             : std::string(kPrefix) + ".dp" + std::to_string(dp_group) + ".jsonl"))
      .string();
}

std::map<size_t, Generation> gather_journals(const std::string& out_dir, const std::string& key, size_t n,
                                             int64_t vocab_size) {
  std::map<size_t, Generation> done;
  std::vector<fs::path> mine;  // this key's files, live or set aside: consolidated below
  for (const fs::path& f : journal_files(out_dir)) {
    bool aside = false;
    is_journal_name(f.filename().string(), &aside);
    const std::string other = read_journal(f, key, n, vocab_size, done);
    if (other == key) {
      mine.push_back(f);
      continue;
    }
    if (aside) continue;  // another stopped run's, set aside before: kept for it
    // A live journal of other settings: renamed out of this run's way, kept for a run of those settings to go on.
    std::string hex;
    for (char c : other.substr(0, 12)) hex += std::isxdigit(static_cast<unsigned char>(c)) ? c : '0';
    if (hex.empty()) hex = "0";
    const std::string name = f.filename().string();
    const fs::path to = f.parent_path() / (std::string(kPrefix) + ".aside-" + hex + name.substr(std::strlen(kPrefix)));
    std::error_code ec;
    if (fs::exists(to, ec)) {  // a second stop of that run: its lines join the ones set aside before
      std::ifstream in(f);
      std::string line, text;
      std::getline(in, line);
      while (std::getline(in, line)) text += line + "\n";
      std::ofstream(to, std::ios::app) << text;
      fs::remove(f, ec);
    } else {
      fs::rename(f, to, ec);
    }
    spdlog::warn("cgsample: {} is the journal of a stopped run with other settings (model, tokenizer, prompts or "
                 "sampling): set aside as {}, where that run's command finds it again; this run draws its own "
                 "sequences", f.string(), to.filename().string());
  }
  const std::string main = journal_path(out_dir, 0);
  if (!done.empty()) {  // into group 0's file first, then the others go: a stop in between leaves copies, not gaps
    std::string text = nlohmann::json{{"key", key}}.dump() + "\n";
    for (const auto& [i, g] : done) text += line_of(i, g);
    write_file_atomic(main, text);
  }
  std::error_code ec;
  for (const fs::path& f : mine)
    if (done.empty() || f != fs::path(main)) fs::remove(f, ec);
  return done;
}

std::vector<std::string> live_journals(const std::string& out_dir) {
  std::vector<std::string> live;
  for (const fs::path& f : journal_files(out_dir)) {
    bool aside = false;
    if (is_journal_name(f.filename().string(), &aside) && !aside) live.push_back(f.string());
  }
  return live;
}

void remove_journals(const std::string& out_dir) {
  std::error_code ec;
  for (const std::string& f : live_journals(out_dir)) fs::remove(f, ec);
}

JournalWriter::JournalWriter(std::string path, const std::string& key, double sync_every_s)
    : path_(std::move(path)), sync_every_s_(sync_every_s), last_sync_(now_s()) {
  fd_ = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) {
    const int err = errno;
    CG_FAIL("cannot open {} to append: {} (errno {}); {}check sample.out_dir", path_, std::strerror(err), err,
            io_advice_clause(err));
  }
  struct stat st{};
  if (::fstat(fd_, &st) == 0 && st.st_size == 0) {
    try {
      write_all(nlohmann::json{{"key", key}}.dump() + "\n");
      sync();
    } catch (...) {
      ::close(fd_);
      throw;
    }
  }
}

JournalWriter::~JournalWriter() {
  if (fd_ < 0) return;
  ::fdatasync(fd_);
  ::close(fd_);
}

// What a failed write or flush says: the OS reason and what to fix for it (io_advice: free space only for a full
// disk), but not "write elsewhere": the journal is in sample.out_dir, and another folder would sample everything again.
void JournalWriter::fail(const char* what, int err) const {
  const std::string advice = io_advice_clause(err);
  CG_FAIL("{} {}: {} (errno {}); {}then run the same command again with the same sample.out_dir: the sequences "
          "written before are kept", what, path_, std::strerror(err), err,
          advice.empty() ? "check sample.out_dir's file system, " : advice);
}

void JournalWriter::write_all(const std::string& text) {
  size_t off = 0;
  while (off < text.size()) {
    const ssize_t k = ::write(fd_, text.data() + off, text.size() - off);
    if (k < 0 && errno == EINTR) continue;
    if (k < 0) fail("cannot write", errno);
    CG_CHECK(k > 0, "cannot write {}: the system wrote nothing; check sample.out_dir's file system, then run the same "
             "command again with the same sample.out_dir: the sequences written before are kept", path_);
    off += size_t(k);
  }
}

void JournalWriter::add(size_t i, const Generation& g) {
  write_all(line_of(i, g));  // one write: a kill leaves the line whole or, rarely, cut (then skipped on reading)
  ++lines_;
  if (now_s() - last_sync_ >= sync_every_s_) sync();
}

void JournalWriter::sync() {
  if (::fdatasync(fd_) != 0) fail("cannot flush to disk", errno);
  last_sync_ = now_s();
}

}  // namespace cg
