// Several files of one folder that describe one result (cgeval's report.json, report.md and items.jsonl), replaced
// together: a reader finds the earlier set or the new one, never new files beside old ones.
#pragma once
#include <string>
#include <utility>
#include <vector>

namespace cg {

// Replaces the files `files` (name, text) of folder `dir`: every one is written beside its name (name + tmp_suffix)
// and flushed to disk before any is renamed over its name. A failure while writing (a full disk) removes the
// temporary files and throws naming the file and what to do; the earlier files stay as they were. A stop signal that
// comes during the renames is held until the last is done (HoldStopSignals), then acts; a caller whose commit is
// larger than the set (cgsample: the set, then cifs/) holds them itself over all of it, and the set's holder within
// it does nothing (holders nest). A set that several processes may replace at once (a sweep's summary, written by
// whichever Slurm array task gets there) gives a suffix of its own process (shared_tmp_suffix(): ".tmp.<host>.<pid>"),
// so that none renames another's half-written file.
void write_file_set(const std::string& dir, const std::vector<std::pair<std::string, std::string>>& files,
                    const std::string& tmp_suffix = ".tmp");

}  // namespace cg
