// The prompts of a cgsample job of several ranks, made once: rank 0 builds them (make_sample_jobs: reading
// sample.conditions_from or data.test_csv, deriving formulas and space groups the source lacks, which takes spglib
// over every crystal) and the other ranks receive them, instead of every rank repeating that work.
#pragma once
#include <string>
#include <vector>

#include "sampler/sample_jobs.h"

namespace cg {

// Collective over all ranks (dist/runtime.h: rank0_text): rank 0's make_sample_jobs(c), the same on every rank. Its
// warnings are rank 0's alone; its error (a missing CSV, no row with the conditions) is thrown on every rank with
// rank 0's message. Only rank 0's `c` is read.
std::vector<SampleJob> agreed_sample_jobs(const Config& c);

// Jobs as text and back (length-prefixed, any bytes), for sending them between ranks. jobs_from_text throws on text
// jobs_text did not write.
std::string jobs_text(const std::vector<SampleJob>& jobs);
std::vector<SampleJob> jobs_from_text(const std::string& text);

}  // namespace cg
