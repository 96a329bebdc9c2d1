// Rewrites HDF5 shards as a cgprep older than the property_counts record wrote them (the attribute left out, all
// else as it was), for the cgsweep checks of such shards (test_sweep_cli.sh).
// usage: shard_without_counts SHARD.h5 ...
#include <iostream>

#include "data/shard.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: shard_without_counts SHARD.h5 ...\n";
    return 2;
  }
  try {
    for (int i = 1; i < argc; ++i) {
      cg::ShardMeta meta;
      const cg::SampleSet s = cg::read_shard(argv[i], &meta);
      meta.property_counts.clear();  // write_shard then writes no property_counts attribute
      cg::write_shard(argv[i], s, meta);
    }
  } catch (const std::exception& e) {
    std::cerr << "shard_without_counts: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
