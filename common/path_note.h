// The note a "does not exist" error adds for a relative path: where it was looked for.
#pragma once
#include <string>

namespace cg {

// " in CWD (relative paths are read from the folder WHO runs in)" for a relative `path`, else "": for the error of an
// input that does not exist, whose likeliest cause is a command run in another folder than the config's paths assume
// (they are relative to the folder the command runs in, not to the config file). `who`: the tool ("cgprep"), or "the
// command" where the caller does not know it.
std::string relative_path_note(const std::string& path, const std::string& who);

}  // namespace cg
