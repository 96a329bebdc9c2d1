// The one precompiled header for libtorch targets (see cmake/CgHelpers.cmake: cg_use_torch).
#pragma once
#include <torch/torch.h>
