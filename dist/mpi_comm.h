// MpiComm: collectives over an MPI communicator, for CPU tensors (float, double, bf16, half, int8/uint8, int32, int64, bool).
// The CPU backend of every run, and the bootstrap channel of NcclComm. MPI types stay out of this header.
#pragma once
#include <string>

#include "dist/comm.h"

namespace cg::dist {

// How a group's ranks wait in a collective for the late ones.
//   AsleepFirst: a nonblocking barrier waited on asleep, then OpenMPI's blocking call with every rank there. A
//                waiting rank leaves its core to the others; costs one extra message round per collective.
//   Polling:     OpenMPI's blocking call alone, which polls (yielding the core, mpi_yield_when_idle) while it waits.
//   Auto:        resolve_collective_wait's choice, agreed by the group's ranks when the group is made.
enum class CollectiveWait { Auto, AsleepFirst, Polling };

// Whether a node's ranks run more compute threads (every rank's torch threads, summed) than the cores they may use
// (the union of their CPU affinity masks). cores <= 0 (unknown) counts as oversubscribed.
bool node_oversubscribed(int threads_on_node, int cores_on_node);

// The wait a group uses: `asked`, unless Auto. Auto waits asleep first when the group's ranks are on one node (the
// extra round costs microseconds there, and the machine's cores may be shared with other work) or when any node of
// the group is oversubscribed (a polling rank would take a core from a rank of the job); it polls when the group
// spans nodes none of which is oversubscribed, where the extra round would double a small collective's network
// latency and a waiting rank holds only a core of its own (docs/performance.md, "Ranks waiting").
CollectiveWait resolve_collective_wait(CollectiveWait asked, int group_nodes, bool some_node_oversubscribed);

// The config key parallel.mpi_wait's names: "auto" | "sleep" (AsleepFirst) | "poll" (Polling).
CollectiveWait collective_wait_from_name(const std::string& name);
const char* collective_wait_name(CollectiveWait w);
// The wait an MpiComm group uses, Auto resolved (AsleepFirst for a group of one rank, which never waits). Throws for
// another kind of Comm.
CollectiveWait collective_wait_of(const Comm& comm);

// All ranks of the job (a duplicate of MPI_COMM_WORLD). Needs init_runtime; for Auto, the ranks' thread count set
// first (set_cpu_threads): it is what tells whether a node is oversubscribed.
CommPtr make_mpi_world_comm(CollectiveWait wait = CollectiveWait::Auto);
// Collective over the world: ranks with the same `color` form one group, ordered by `key` (MPI_Comm_split).
CommPtr make_mpi_split_comm(int color, int key, CollectiveWait wait = CollectiveWait::Auto);

}  // namespace cg::dist
