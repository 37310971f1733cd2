// s4_kernel_op.cpp: the differentiable S4D and DPLR kernels (one autograd op each, with a
// fused, hand-written backward), dispatching to the CPU loops (s4_kernel_cpu.cpp) or the CUDA
// kernels (s4_kernel.cu) by the inputs' device. The math is in s4_kernel.h, the backwards'
// derivations in s4_kernel_cpu.cpp.
//
// Saved for backward: the (contiguous) inputs only; the backward recomputes the discretisation
// (S4D) and the Cauchy sums (DPLR), which costs as much as the forward and no memory.
//
// The DPLR op is three steps on either device:
//   forward   K_hat = Cauchy sums at the nodes   (H, L/2 + 1, 2)
//             K     = irfft(K_hat, L)            (H, L)            s4/fft.h
//   backward  grad_K_hat = (m_k / L) rfft(grad_K, L)   (H, L/2 + 1, 2), the adjoint of the
//             irfft (s4_kernel_cpu.cpp, step 1), then the Cauchy backward.
#include <string>
#include <vector>

#include "s4/fft.h"
#include "s4/s4_kernel.h"
#include "tensor/ops.h"

namespace ssm::s4 {

namespace {

// A new tensor shaped like `like` when `needed`, else undefined (a gradient to skip).
Tensor grad_like(bool needed, const Tensor& like) {
  return needed ? Tensor::empty(like.shape(), like.dtype(), like.device()) : Tensor();
}

void require_defined(const char* op, const std::vector<const Var*>& vars) {
  for (const Var* v : vars)
    if (!v->defined()) throw std::invalid_argument(std::string(op) + ": every input is required");
}

// The weights of the irfft's adjoint, (nodes, 1): m_k / L with m_k = 1 at k = 0 and (even L)
// at k = L/2, 2 elsewhere (the bins that stand for a conjugate pair count twice).
Tensor irfft_adjoint_weights(int64_t L, DType dtype, Device device) {
  const int64_t nodes = L / 2 + 1;
  std::vector<double> w(nodes);
  for (int64_t k = 0; k < nodes; ++k)
    w[k] = (k == 0 || 2 * k == L ? 1.0 : 2.0) / static_cast<double>(L);
  return Tensor::from_values(w, {nodes, 1}, dtype, device);
}

// ---- dispatch by device --------------------------------------------------------------------

void s4d_fwd([[maybe_unused]] const char* op, const S4DInputs& in, const KernelShape& s,
             Discretization disc, Tensor& K) {
  if (in.log_dt.device().is_cuda()) {
#ifdef SSM_CUDA
    s4d_kernel_fwd_cuda(in, s, disc, K);
#else
    throw_no_cuda(op);
#endif
  } else {
    s4d_kernel_fwd_cpu(in, s, disc, K);
  }
}

void s4d_bwd([[maybe_unused]] const char* op, const S4DInputs& in, const KernelShape& s,
             Discretization disc, const Tensor& grad_K, S4DGrads& grads) {
  if (in.log_dt.device().is_cuda()) {
#ifdef SSM_CUDA
    s4d_kernel_bwd_cuda(in, s, disc, grad_K, grads);
#else
    throw_no_cuda(op);
#endif
  } else {
    s4d_kernel_bwd_cpu(in, s, disc, grad_K, grads);
  }
}

void cauchy_fwd([[maybe_unused]] const char* op, const DplrInputs& in, const KernelShape& s,
                Tensor& K_hat) {
  if (in.log_dt.device().is_cuda()) {
#ifdef SSM_CUDA
    dplr_cauchy_fwd_cuda(in, s, K_hat);
#else
    throw_no_cuda(op);
#endif
  } else {
    dplr_cauchy_fwd_cpu(in, s, K_hat);
  }
}

void cauchy_bwd([[maybe_unused]] const char* op, const DplrInputs& in, const KernelShape& s,
                const Tensor& grad_K_hat, DplrGrads& grads) {
  if (in.log_dt.device().is_cuda()) {
#ifdef SSM_CUDA
    dplr_cauchy_bwd_cuda(in, s, grad_K_hat, grads);
#else
    throw_no_cuda(op);
#endif
  } else {
    dplr_cauchy_bwd_cpu(in, s, grad_K_hat, grads);
  }
}

} // namespace

// ---- S4D ---------------------------------------------------------------------------------------

Var s4d_kernel(const Var& log_dt, const Var& A, const Var& B, const Var& C, int64_t L,
               Discretization disc) {
  const char* op = "s4d_kernel";
  require_defined(op, {&log_dt, &A, &B, &C});
  check_inputs(op, {log_dt, A, B, C});
  S4DInputs in;
  in.log_dt = log_dt.value().contiguous(); // (H)
  in.A = A.value().contiguous();           // (H, N2, 2)
  in.B = B.value().contiguous();           // (H, N2, 2)
  in.C = C.value().contiguous();           // (H, N2, 2)
  const KernelShape s = make_s4d_shape(op, in, L);
  Tensor K = Tensor::empty({s.channels, L}, in.log_dt.dtype(), in.log_dt.device()); // (H, L)
  s4d_fwd(op, in, s, disc, K);

  const bool need[4] = {log_dt.requires_grad(), A.requires_grad(), B.requires_grad(),
                        C.requires_grad()};
  return make_result(op, K, {log_dt, A, B, C}, [=](const Tensor& g) {
    S4DGrads grads;
    grads.log_dt = grad_like(need[0], in.log_dt);
    grads.A = grad_like(need[1], in.A);
    grads.B = grad_like(need[2], in.B);
    grads.C = grad_like(need[3], in.C);
    s4d_bwd(op, in, s, disc, g.contiguous(), grads);
    return std::vector<Tensor>{grads.log_dt, grads.A, grads.B, grads.C};
  });
}

// ---- DPLR --------------------------------------------------------------------------------------

Var dplr_kernel(const Var& log_dt, const Var& Lambda, const Var& P, const Var& B, const Var& C,
                int64_t L) {
  const char* op = "dplr_kernel";
  require_defined(op, {&log_dt, &Lambda, &P, &B, &C});
  check_inputs(op, {log_dt, Lambda, P, B, C});
  DplrInputs in;
  in.log_dt = log_dt.value().contiguous(); // (H)
  in.Lambda = Lambda.value().contiguous(); // (H, N2, 2)
  in.P = P.value().contiguous();           // (H, N2, 2)
  in.B = B.value().contiguous();           // (H, N2, 2)
  in.C = C.value().contiguous();           // (H, N2, 2), C~
  const KernelShape s = make_dplr_shape(op, in, L);
  const DType dtype = in.log_dt.dtype();
  const Device device = in.log_dt.device();
  Tensor K_hat = Tensor::empty({s.channels, s.nodes(), 2}, dtype, device); // (H, L/2 + 1, 2)
  cauchy_fwd(op, in, s, K_hat);
  Tensor K = irfft(K_hat, L); // (H, L)

  const bool need[5] = {log_dt.requires_grad(), Lambda.requires_grad(), P.requires_grad(),
                        B.requires_grad(), C.requires_grad()};
  return make_result(op, K, {log_dt, Lambda, P, B, C}, [=](const Tensor& g) {
    // (H, L/2 + 1, 2): the gradient tensor of K_hat, through the irfft.
    const Tensor grad_K_hat = mul(rfft(g.contiguous(), L), irfft_adjoint_weights(L, dtype, device));
    DplrGrads grads;
    grads.log_dt = grad_like(need[0], in.log_dt);
    grads.Lambda = grad_like(need[1], in.Lambda);
    grads.P = grad_like(need[2], in.P);
    grads.B = grad_like(need[3], in.B);
    grads.C = grad_like(need[4], in.C);
    cauchy_bwd(op, in, s, grad_K_hat, grads);
    return std::vector<Tensor>{grads.log_dt, grads.Lambda, grads.P, grads.B, grads.C};
  });
}

} // namespace ssm::s4
