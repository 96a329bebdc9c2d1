// InputError: an error in what the user gave a tool, its command line or its config file. Every rank of a job is given
// the same words and reads the same file, so every rank fails with the same message at the same point: run_main
// prints it from rank 0 alone instead of once per rank (dist/runtime.h).
#pragma once
#include "common/error.h"

namespace cg {

struct InputError : Error {
  using Error::Error;
};

}  // namespace cg
