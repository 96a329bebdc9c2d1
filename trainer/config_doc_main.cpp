// cgconfigdoc: prints docs/config.md (the configuration reference, generated from trainer/config_fields.cpp).
//   build/trainer/cgconfigdoc > docs/config.md
#include <iostream>

#include "trainer/config.h"

int main() {
  std::cout << cg::config_reference_markdown();
  return 0;
}
