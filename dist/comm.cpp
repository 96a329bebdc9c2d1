// SelfComm: the one-rank group, every collective the identity.
#include "dist/comm.h"

namespace cg::dist {

namespace {

class SelfComm final : public Comm {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string backend() const override { return "self"; }
  void all_reduce(at::Tensor&, ReduceOp) override {}
  at::Tensor all_gather(const at::Tensor& t, int64_t dim) override {
    (void)t.size(dim);  // same dim checks as a real group
    return t.clone();   // a new tensor, like every other backend
  }
  void broadcast(at::Tensor&, int root) override {
    TORCH_CHECK(root == 0, "broadcast root ", root, " is not a rank of a one-rank group");
  }
  void barrier() override {}
};

}  // namespace

at::Tensor all_gather_via_dim0(const at::Tensor& t, int64_t dim, int group_size,
                               const std::function<void(const at::Tensor& send, at::Tensor& recv)>& gather0) {
  TORCH_CHECK(t.dim() > 0, "all_gather needs a tensor with at least one dimension");
  dim = at::maybe_wrap_dim(dim, t.dim());
  at::Tensor x = (dim == 0 ? t : t.movedim(dim, 0)).contiguous();  // (d_dim, ...rest)
  std::vector<int64_t> shape = x.sizes().vec();
  shape[0] *= group_size;
  at::Tensor out = at::empty(shape, x.options());  // (size * d_dim, ...rest)
  gather0(x, out);
  return dim == 0 ? out : out.movedim(0, dim).contiguous();
}

CommPtr make_self_comm() { return std::make_shared<SelfComm>(); }

}  // namespace cg::dist
