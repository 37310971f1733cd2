// ops_loss.cpp: differentiable softmax, log_softmax, cross-entropy and mean squared error.
// Each is one op with a fused, hand-written backward; the CPU loops of the first three are in
// tensor/cpu/nn_softmax.cpp (the layouts are described there) and their CUDA kernels, of the
// same names, in cuda/nn_softmax.cu; mse uses raw tensor ops.
//
// g denotes d(loss)/d(output), the closure's argument. Shapes:
//   softmax, log_softmax:  x (any shape) -> y (same), along one dim of n elements
//   cross_entropy:         logits (N, C, d1, ...), (N, C) or (C); targets int64 of the logits'
//                          shape without the class dim: (N, d1, ...), (N) or ();
//                          -> loss of the targets' shape (Reduction::None) or a scalar
//   mse_loss:              input, target broadcastable -> their broadcast shape or a scalar
//
// Saved for backward: softmax keeps its output y (the derivative is written in y alone);
// cross-entropy keeps the logits (which the input Var holds anyway) and one log-sum-exp per
// position, never the (N, C, ...) probabilities; mse keeps input - target.
//
// Not supported: class weights and label smoothing in cross_entropy.
#include <algorithm>
#include <string>

#include "autograd/functions.h"
#include "tensor/cpu/nn_softmax.h"

#ifdef SSM_CUDA
#include "cuda/nn_softmax.h"
#endif

namespace ssm {

namespace {
// A tensor viewed as (outer, n, inner) around dim `d`.
struct SplitAtDim {
  int64_t outer = 1, n = 1, inner = 1;
};
SplitAtDim split_at_dim(const Shape& shape, int64_t d) {
  SplitAtDim s;
  const int64_t ndim = static_cast<int64_t>(shape.size());
  for (int64_t k = 0; k < ndim; ++k) {
    if (k < d) s.outer *= shape[k];
    if (k == d) s.n = shape[k];
    if (k > d) s.inner *= shape[k];
  }
  return s;
}

// softmax (log = false) or log_softmax (log = true) along `dim`; a 0-d x counts as 1-D.
Var softmax_op(const Var& x, int64_t dim, bool log, const char* op) {
  const Tensor& xv = x.value();
  check_floating(xv, op);
  const int64_t d = wrap_dim(dim, std::max<int64_t>(xv.dim(), 1), op);
  const SplitAtDim s = split_at_dim(xv.shape(), d);
  Tensor y = Tensor::empty(xv.shape(), xv.dtype(), xv.device()); // (shape of x)
  if (xv.device().is_cuda()) {
#ifdef SSM_CUDA
    cuda::softmax_forward(xv.contiguous(), s.outer, s.n, s.inner, log, y);
#else
    throw_no_cuda(op);
#endif
  } else {
    cpu::softmax_forward(xv.contiguous(), s.outer, s.n, s.inner, log, y);
  }
  return make_result(op, y, {x}, [=](const Tensor& g) {
    Tensor dx = Tensor::empty(y.shape(), y.dtype(), y.device()); // (shape of x)
    if (y.device().is_cuda()) {
#ifdef SSM_CUDA
      cuda::softmax_backward(y, g.contiguous(), s.outer, s.n, s.inner, log, dx);
#else
      throw_no_cuda(op);
#endif
    } else {
      cpu::softmax_backward(y, g.contiguous(), s.outer, s.n, s.inner, log, dx);
    }
    return std::vector<Tensor>{dx};
  });
}

} // namespace

// ---- softmax -------------------------------------------------------------------------------

// y_j = exp(x_j) / sum_k exp(x_k):  dy_j/dx_i = y_j ([i == j] - y_i), so
//   dx_i = sum_j g_j y_j ([i == j] - y_i) = y_i (g_i - sum_j g_j y_j).
Var softmax(const Var& x, int64_t dim) { return softmax_op(x, dim, false, "softmax"); }

// y_j = x_j - log sum_k exp(x_k):  dy_j/dx_i = [i == j] - softmax_i, so
//   dx_i = g_i - softmax_i sum_j g_j,  softmax_i = exp(y_i).
Var log_softmax(const Var& x, int64_t dim) { return softmax_op(x, dim, true, "log_softmax"); }

// ---- cross-entropy -------------------------------------------------------------------------

// At a position p with target t (not ignored): loss_p = log sum_c exp(x_c) - x_t, so
//   dloss_p/dx_c = softmax_c - [c == t].
// Ignored positions have loss 0 and gradient 0. The reductions:
//   None: loss_p;   Sum: sum_p loss_p;   Mean: sum_p loss_p / (number of non-ignored p),
// so each position's upstream weight w_p is g_p, g, or g / count. With every target ignored,
// Mean is 0 / 0 = NaN, as in PyTorch, and the gradient is 0 (no position contributes).
Var cross_entropy(const Var& logits, const Tensor& targets, int64_t ignore_index,
                  Reduction reduction) {
  const char* op = "cross_entropy";
  const Tensor& x = logits.value();
  check_floating(x, op);
  check_defined(targets, op);
  if (x.dim() == 0)
    throw std::invalid_argument(
        "cross_entropy: logits need a class dim: expected (C), (N, C) or (N, C, d1, ...), got "
        "shape []");
  const int64_t class_dim = x.dim() == 1 ? 0 : 1;
  Shape target_shape = x.shape(); // logits' shape without the class dim
  target_shape.erase(target_shape.begin() + class_dim);
  if (targets.dtype() != DType::Int64)
    throw std::invalid_argument("cross_entropy: targets must be int64 class indices, got " +
                                targets.describe());
  if (targets.shape() != target_shape)
    throw std::invalid_argument("cross_entropy: logits of shape " + shape_str(x.shape()) +
                                " need targets of shape " + shape_str(target_shape) + ", got " +
                                shape_str(targets.shape()));
  if (targets.device() != x.device())
    throw std::invalid_argument("cross_entropy: targets on " + targets.device().str() +
                                ", logits on " + x.device().str());

  const SplitAtDim s = split_at_dim(x.shape(), class_dim); // (N, C, d1 * ...)
  const Tensor t = targets.contiguous();                   // (N, d1, ...)
  // CUDA targets are scanned on a host copy: the host needs the count and the verdict before
  // it launches anything (cuda/index.h weighs this for the indexing ops).
  const cpu::TargetScan scan = cpu::scan_targets(t.to(Device::cpu()), s.n, ignore_index);
  if (scan.out_of_range)
    throw std::out_of_range("cross_entropy: target " + std::to_string(*scan.out_of_range) +
                            " is out of range for " + std::to_string(s.n) +
                            " classes (expected 0 <= target < " + std::to_string(s.n) +
                            ", or ignore_index " + std::to_string(ignore_index) + ")");

  const Tensor xc = x.contiguous();                                   // (N, C, d1, ...)
  Tensor losses = Tensor::empty(target_shape, x.dtype(), x.device()); // (N, d1, ...)
  Tensor lse = Tensor::empty(target_shape, x.dtype(), x.device());    // (N, d1, ...)
  if (x.device().is_cuda()) {
#ifdef SSM_CUDA
    cuda::cross_entropy_forward(xc, t, s.outer, s.n, s.inner, ignore_index, losses, lse);
#else
    throw_no_cuda(op);
#endif
  } else {
    cpu::cross_entropy_forward(xc, t, s.outer, s.n, s.inner, ignore_index, losses, lse);
  }

  Tensor out;
  switch (reduction) {
    case Reduction::None: out = losses; break;
    case Reduction::Sum: out = ssm::sum(losses); break;
    case Reduction::Mean:
      out = ssm::div(ssm::sum(losses), static_cast<double>(scan.counted));
      break;
  }
  const double scalar_weight = reduction == Reduction::Mean ? 1.0 / scan.counted : 1.0;
  return make_result(op, out, {logits}, [=](const Tensor& g) {
    // (N, d1, ...): dL/dloss_p for every position.
    const Tensor w =
        reduction == Reduction::None
            ? g.contiguous()
            : Tensor::full(target_shape, g.item() * scalar_weight, g.dtype(), g.device());
    Tensor dx = Tensor::empty(xc.shape(), xc.dtype(), xc.device()); // (N, C, d1, ...)
    if (xc.device().is_cuda()) {
#ifdef SSM_CUDA
      cuda::cross_entropy_backward(xc, t, lse, w, s.outer, s.n, s.inner, ignore_index, dx);
#else
      throw_no_cuda(op);
#endif
    } else {
      cpu::cross_entropy_backward(xc, t, lse, w, s.outer, s.n, s.inner, ignore_index, dx);
    }
    return std::vector<Tensor>{dx};
  });
}

// ---- mean squared error --------------------------------------------------------------------

// d = input - target (broadcast), L = reduce(d^2):
//   dL/dinput = 2 d g (times 1/n for Mean, n = number of elements of d),  dL/dtarget = -dL/dinput.
// The engine sums each gradient back from the broadcast shape to its input's shape.
Var mse_loss(const Var& input, const Var& target, Reduction reduction) {
  const char* op = "mse_loss";
  if (!input.defined() || !target.defined())
    throw std::invalid_argument("mse_loss: got an undefined input or target");
  check_inputs(op, {input, target});
  check_floating(input.value(), op);
  broadcast_shapes(input.shape(), target.shape(), op);
  const Tensor diff = ssm::sub(input.value(), target.value()); // (broadcast shape)
  const Tensor squared = ssm::square(diff);                    // (broadcast shape)
  Tensor out;
  switch (reduction) {
    case Reduction::None: out = squared; break;
    case Reduction::Sum: out = ssm::sum(squared); break;
    case Reduction::Mean: out = ssm::mean(squared); break;
  }
  const double scale = reduction == Reduction::Mean ? 2.0 / static_cast<double>(diff.numel()) : 2.0;
  const bool need_target = target.requires_grad();
  return make_result(op, out, {input, target}, [=](const Tensor& g) {
    const Tensor d_input = ssm::mul(ssm::mul(diff, g), scale); // (broadcast shape)
    return std::vector<Tensor>{d_input, need_target ? ssm::neg(d_input) : Tensor()};
  });
}

} // namespace ssm
