// selective_scan_op.cpp: the differentiable selective scan (one autograd op with a fused,
// hand-written backward), and a second, independent formulation with whole-tensor ops that
// the tests compare the loops against. The math is in selective_scan.h, the backward's
// derivation in selective_scan_cpu.cpp, the CUDA kernels in selective_scan.cu.
//
// Saved for backward: the (contiguous) inputs only. The backward reruns the forward
// recurrence to get the states h_t (the CPU loop keeps all of them for one channel at a time,
// the CUDA kernels keep chunk boundaries and recompute inside a chunk), so the op costs no
// (batch, length, d_inner, n) memory.
#include <string>

#include "autograd/functions.h"
#include "mamba/selective_scan.h"
#include "tensor/ops.h"

namespace ssm {

namespace {

Tensor contiguous_if(const Var& v) { return v.defined() ? v.value().contiguous() : Tensor(); }

// A new tensor shaped like `like` when `needed`, else undefined (a gradient to skip).
Tensor grad_like(bool needed, const Tensor& like) {
  return needed ? Tensor::empty(like.shape(), like.dtype(), like.device()) : Tensor();
}

void scan_fwd([[maybe_unused]] const char* op, const ScanInputs& in, const ScanShape& s,
              Tensor& out, Tensor& last_state) {
  if (in.u.device().is_cuda()) {
#ifdef SSM_CUDA
    selective_scan_fwd_cuda(in, s, out, last_state);
#else
    throw_no_cuda(op);
#endif
  } else {
    selective_scan_fwd_cpu(in, s, out, last_state);
  }
}

void scan_bwd([[maybe_unused]] const char* op, const ScanInputs& in, const ScanShape& s,
              const Tensor& grad_out, ScanGrads& grads) {
  if (in.u.device().is_cuda()) {
#ifdef SSM_CUDA
    selective_scan_bwd_cuda(in, s, grad_out, Tensor(), grads);
#else
    throw_no_cuda(op);
#endif
  } else {
    selective_scan_bwd_cpu(in, s, grad_out, Tensor(), grads);
  }
}

} // namespace

Var selective_scan(const Var& u, const Var& delta, const Var& A, const Var& B, const Var& C,
                   const Var& D, const Var& z, const Var& delta_bias, bool delta_softplus,
                   Tensor* last_state) {
  const char* op = "selective_scan";
  for (const Var* v : {&u, &delta, &A, &B, &C})
    if (!v->defined())
      throw std::invalid_argument("selective_scan: u, delta, A, B and C are required");
  check_inputs(op, {u, delta, A, B, C, D, z, delta_bias});
  ScanInputs in;
  in.u = contiguous_if(u);                   // (b, l, d_inner)
  in.delta = contiguous_if(delta);           // (b, l, d_inner)
  in.A = contiguous_if(A);                   // (d_inner, n)
  in.B = contiguous_if(B);                   // (b, l, n) or (b, l, groups, n)
  in.C = contiguous_if(C);                   // (b, l, n) or (b, l, groups, n)
  in.D = contiguous_if(D);                   // (d_inner) or undefined
  in.z = contiguous_if(z);                   // (b, l, d_inner) or undefined
  in.delta_bias = contiguous_if(delta_bias); // (d_inner) or undefined
  const ScanShape s = make_scan_shape(op, in, delta_softplus);

  Tensor out = Tensor::empty(in.u.shape(), in.u.dtype(), in.u.device()); // (b, l, d_inner)
  Tensor last;                                                           // (b, d_inner, n)
  if (last_state)
    last = Tensor::empty({s.batch, s.d_inner, s.d_state}, in.u.dtype(), in.u.device());
  scan_fwd(op, in, s, out, last);
  if (last_state) *last_state = last;

  const bool need[8] = {u.requires_grad(), delta.requires_grad(),     A.requires_grad(),
                        B.requires_grad(), C.requires_grad(),         D.requires_grad(),
                        z.requires_grad(), delta_bias.requires_grad()};
  return make_result(op, out, {u, delta, A, B, C, D, z, delta_bias}, [=](const Tensor& g) {
    ScanGrads grads;
    grads.u = grad_like(need[0], in.u);
    grads.delta = grad_like(need[1], in.delta);
    grads.A = grad_like(need[2], in.A);
    grads.B = grad_like(need[3], in.B);
    grads.C = grad_like(need[4], in.C);
    grads.D = grad_like(need[5], in.D);
    grads.z = grad_like(need[6], in.z);
    grads.delta_bias = grad_like(need[7], in.delta_bias);
    scan_bwd(op, in, s, g.contiguous(), grads);
    return std::vector<Tensor>{grads.u, grads.delta, grads.A, grads.B,
                               grads.C, grads.D,     grads.z, grads.delta_bias};
  });
}

// ---- the naive formulation ---------------------------------------------------------------
// Materialises dA = exp(dt A) and dBu = dt B u as (b, l, d_inner, n) tensors, then runs the
// recurrence with elementwise ops over whole (b, d_inner, n) slices. Nothing is shared with
// the loops above but the math.
Tensor selective_scan_naive(const ScanInputs& in, bool delta_softplus, Tensor* last_state) {
  const ScanShape s = make_scan_shape("selective_scan_naive", in, delta_softplus);
  const DType dtype = in.u.dtype();
  const Device dev = in.u.device();
  Tensor x = in.delta; // (b, l, d)
  if (s.has_delta_bias) x = add(x, in.delta_bias);
  const Tensor dt = delta_softplus ? softplus(x) : x; // (b, l, d)
  const Tensor dA = exp(mul(dt.unsqueeze(3), in.A));  // (b, l, d, n)
  // Channel d reads group d / (d_inner / groups) of B and C.
  std::vector<int64_t> group_of(s.d_inner);
  for (int64_t d = 0; d < s.d_inner; ++d) group_of[d] = d / s.channels_per_group();
  const Tensor gidx = Tensor::from_vector(group_of, {s.d_inner}, dev);
  const Shape bcg{s.batch, s.length, s.groups, s.d_state};
  const Tensor Bd = index_select(in.B.reshape(bcg), 2, gidx);            // (b, l, d, n)
  const Tensor Cd = index_select(in.C.reshape(bcg), 2, gidx);            // (b, l, d, n)
  const Tensor dBu = mul(mul(dt, in.u).unsqueeze(3), Bd);                // (b, l, d, n)
  Tensor h = Tensor::zeros({s.batch, s.d_inner, s.d_state}, dtype, dev); // (b, d, n)
  std::vector<Tensor> ys;
  for (int64_t t = 0; t < s.length; ++t) {
    h = add(mul(dA.select(1, t), h), dBu.select(1, t)); // (b, d, n)
    ys.push_back(sum(mul(h, Cd.select(1, t)), {2}));    // (b, d)
  }
  Tensor y = stack(ys, 1); // (b, l, d)
  if (s.has_D) y = add(y, mul(in.u, in.D));
  if (s.has_z) y = mul(y, silu(in.z));
  if (last_state) *last_state = h;
  return y;
}

} // namespace ssm
