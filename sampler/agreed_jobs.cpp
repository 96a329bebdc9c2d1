// cgsample's prompts made on rank 0 and sent to the others: see agreed_jobs.h.
#include "sampler/agreed_jobs.h"

#include <cstdint>

#include "common/error.h"
#include "dist/runtime.h"

namespace cg {

namespace {

void put_field(std::string* out, const std::string& s) {
  *out += std::to_string(s.size());
  *out += ':';
  *out += s;
}

// The field at *pos ("<length>:<bytes>"), moving *pos past it.
std::string take_field(const std::string& text, size_t* pos) {
  const size_t colon = text.find(':', *pos);
  CG_CHECK(colon != std::string::npos && colon > *pos && colon - *pos <= 19, "sample jobs text: no length at byte {}",
           *pos);
  uint64_t n = 0;
  for (size_t i = *pos; i < colon; ++i) {
    CG_CHECK(text[i] >= '0' && text[i] <= '9', "sample jobs text: no length at byte {}", *pos);
    n = n * 10 + uint64_t(text[i] - '0');
  }
  CG_CHECK(n <= text.size() - colon - 1, "sample jobs text: a field of {} bytes at byte {} runs past its end", n,
           *pos);
  *pos = colon + 1 + n;
  return text.substr(colon + 1, n);
}

}  // namespace

std::string jobs_text(const std::vector<SampleJob>& jobs) {
  std::string out;
  for (const auto& j : jobs) {
    put_field(&out, j.prompt);
    put_field(&out, j.truth);
  }
  return out;
}

std::vector<SampleJob> jobs_from_text(const std::string& text) {
  std::vector<SampleJob> jobs;
  for (size_t pos = 0; pos < text.size();) {
    SampleJob j;
    j.prompt = take_field(text, &pos);
    CG_CHECK(pos < text.size(), "sample jobs text: a prompt without its truth field at its end");
    j.truth = take_field(text, &pos);
    jobs.push_back(std::move(j));
  }
  return jobs;
}

std::vector<SampleJob> agreed_sample_jobs(const Config& c) {
  return jobs_from_text(dist::rank0_text([&] { return jobs_text(make_sample_jobs(c)); }));
}

}  // namespace cg
