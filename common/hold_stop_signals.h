// Stop signals held over a commit: the few renames that replace one output with another (write_file_set's files,
// cgsample's samples.jsonl, summary.json and cifs/), which a signal acting halfway through would leave half old, half
// new.
#pragma once
#include <csignal>
#include <exception>
#include <iterator>

namespace cg {

// The last stop signal that came while held; 0: none.
inline volatile std::sig_atomic_t g_held_stop_signal = 0;
inline void hold_stop_signal(int sig) { g_held_stop_signal = sig; }

// While it lives, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 are noted instead of acted on (a handler for
// the process: whichever thread gets one, it waits). On destruction the earlier dispositions come back and a signal
// that came is raised, acting as it would have (default: death, ignored, or the earlier handler) with the commit
// whole. While an exception unwinds (the commit failed: a full disk) it is not raised: the error says what happened
// and what to do, which dying of the signal would not print.
// Holders nest: one made while another is held on this thread (write_file_set's, within cgsample's larger commit)
// does nothing, and its end lets nothing in; the outermost alone holds the signals and acts on them, once all of its
// commit is whole.
struct HoldStopSignals {
  static constexpr int kStop[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
  static inline thread_local int held_on_this_thread = 0;
  const bool outermost = held_on_this_thread++ == 0;
  struct sigaction before[std::size(kStop)];
  int unwinding = std::uncaught_exceptions();
  HoldStopSignals() {
    if (!outermost) return;
    struct sigaction hold = {};
    hold.sa_handler = hold_stop_signal;
    sigemptyset(&hold.sa_mask);
    for (size_t i = 0; i < std::size(kStop); ++i) ::sigaction(kStop[i], &hold, &before[i]);
  }
  ~HoldStopSignals() {
    --held_on_this_thread;
    if (!outermost) return;
    for (size_t i = 0; i < std::size(kStop); ++i) ::sigaction(kStop[i], &before[i], nullptr);
    const int sig = g_held_stop_signal;
    g_held_stop_signal = 0;
    if (sig && std::uncaught_exceptions() == unwinding) std::raise(sig);
  }
  HoldStopSignals(const HoldStopSignals&) = delete;
  HoldStopSignals& operator=(const HoldStopSignals&) = delete;
};

}  // namespace cg
