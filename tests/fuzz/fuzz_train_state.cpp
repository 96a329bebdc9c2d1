// Fuzz harness: the train state of a checkpoint (trainer/train_state.h, with the loader position), read on every
// resume from a file that a crash, a full disk or a hand edit may have damaged. Checks: only cg::Error escapes (no
// JSON library exception, no float converted to an integer out of range); an accepted state survives the round
// trip from_json(to_json(s)) == s.
#include <cstdint>
#include <string>

#include "tests/fuzz/fuzz_target.h"
#include "trainer/train_state.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  cg::TrainState s;
  if (!cg::fuzz::accepts([&] { s = cg::TrainState::from_json(text); })) return 0;
  if (s.step < 0 || s.tokens_seen < 0 || s.bad_steps < 0 || s.loader.epoch < 0 || s.loader.cursor < 0)
    cg::fuzz::finding("an accepted state has a negative count: " + s.to_json());
  cg::TrainState back;
  if (!cg::fuzz::accepts([&] { back = cg::TrainState::from_json(s.to_json()); }))
    cg::fuzz::finding("the written state does not read back: " + s.to_json());
  if (!(back == s)) cg::fuzz::finding("state changed in the round trip: " + s.to_json() + " vs " + back.to_json());
  return 0;
}
