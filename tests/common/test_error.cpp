// cg::Error: CG_CHECK's message carries file:line first; message_of gives it back without them for a rethrow that
// adds context, and leaves other messages as they are.
#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "common/error.h"

namespace {

cg::Error caught(const std::function<void()>& f) {
  try {
    f();
  } catch (const cg::Error& e) {
    return e;
  }
  return cg::Error("<no error>");
}

TEST(Error, CheckPutsFileAndLineFirstAndMessageOfDropsThem) {
  const int line = __LINE__ + 1;
  const cg::Error e = caught([] { CG_CHECK(1 + 1 == 3, "lora.r {} is not {}: set lora.r=8", 4, 8); });
  EXPECT_EQ(std::string(e.what()), "test_error.cpp:" + std::to_string(line) + ": lora.r 4 is not 8: set lora.r=8");
  EXPECT_EQ(cg::message_of(e), "lora.r 4 is not 8: set lora.r=8");
  // Messages without the prefix stay whole, even when they hold colons.
  for (const std::string m : {"plain", "a.b: c", "x:12 no space after", "step 5: a:1: b", ":1: x", "f.cpp:: x"})
    EXPECT_EQ(cg::message_of(cg::Error(m)), m) << m;
  // Wrapped twice: only the outer prefix goes.
  EXPECT_EQ(cg::message_of(cg::Error("inject.cpp:94: PEFT adapter a: lora.cpp:140: shape")),
            "PEFT adapter a: lora.cpp:140: shape");
}

}  // namespace
