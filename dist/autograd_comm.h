// Internal to dist/: carry a CommPtr through an autograd context (ctx->saved_data holds IValues only), so a custom
// backward runs its collective on the very group its forward used, and the group stays alive until then.
#pragma once
#include <ATen/core/ivalue.h>

#include "dist/comm.h"

namespace cg::dist::detail {

struct CommHolder : torch::CustomClassHolder {
  CommPtr comm;
};

inline c10::IValue comm_to_ivalue(const CommPtr& comm) {
  auto h = c10::make_intrusive<CommHolder>();
  h->comm = comm;
  return c10::IValue::make_capsule(std::move(h));
}

inline CommPtr comm_from_ivalue(const c10::IValue& v) {
  return static_cast<CommHolder*>(v.toCapsule().get())->comm;
}

}  // namespace cg::dist::detail
