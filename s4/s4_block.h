// s4_block.h: the S4 layer and the residual block around it, the S4 counterpart of
// mamba/mamba_lm.h's MambaLayer (same (batch, length, d_model) in and out), so the EEG and
// speech trainers can use either.
//
// Glossary (code = S4 paper, Gu, Goel & Ré 2022; S4D paper, Gu et al. 2022):
//   H = d_model   channels; each runs its own single-input single-output SSM
//   N = d_state   state size per channel; N2 = N / 2 complex states are kept (the other half
//                 are their conjugates, so the kernel is 2 Re of a sum over N2)
//   dt            per-channel step size, exp(log_dt), log_dt ~ U(log dt_min, log dt_max)
//   A             diagonal complex (S4D) A = -exp(log_A_real) + i A_imag (the real part stays
//                 negative, so the system is stable), or DPLR A = Lambda - P P^* (S4), with
//                 Lambda = -exp(log_Lambda_real) + i Lambda_imag for the same reason
//   C~            (DPLR only) the learned output vector is C~ = C (I - dA^L), as in S4: the
//                 kernel of length L is cheap from C~. Here C~ is used at whatever length the
//                 input has, so the same C~ stands for a slightly different C at each length
//                 (the S4 reference converts C~ when the length changes; not done here)
//   B, C          complex (H, N2); D the real skip (H)
//   K             the SSM convolution kernel (H, L): y = K * u + D u
//
// One layer (S4Layer::forward), u (b, l, H):
//   K   = s4d_kernel(log_dt, A, B, C, l) or dplr_kernel(...)   (H, l)
//   y   = causal_conv(u^T, K, D)^T                              (b, l, H)  FFT convolution
//   y   = GELU(y)
//   out = GLU(Linear(H -> 2H)(y)) = a * sigmoid(g)              (b, l, H)
// One block (S4Block::forward): x + dropout(S4Layer(LayerNorm(x))) (pre-norm residual).
#pragma once

#include <string>

#include "autograd/nn.h"

namespace ssm::s4 {

enum class S4Kernel {
  S4D_LegS, // diagonal, A = the eigenvalues of HiPPO-LegS's normal part
  S4D_Lin,  // diagonal, A_n = -1/2 + i pi n
  S4D_Inv,  // diagonal, A_n = -1/2 + i N/pi (N/(2n+1) - 1)
  S4D_Real, // diagonal, A_n = -(n + 1)
  DPLR_LegS // S4: A = Lambda - P P^*, the full HiPPO-LegS matrix in diagonal-plus-low-rank form
};
S4Kernel parse_s4_kernel(const std::string& name); // "s4d-legs", "s4d-lin", ..., "dplr-legs"
const char* s4_kernel_name(S4Kernel kernel);

struct S4Config {
  int64_t d_model = 64;
  int64_t d_state = 64; // N; N / 2 complex states are stored
  S4Kernel kernel = S4Kernel::S4D_LegS;
  double dt_min = 0.001, dt_max = 0.1;
  double dropout = 0.0;
  bool zoh = true; // S4D discretisation: zero-order hold (true) or bilinear; DPLR is bilinear
};

class S4Layer : public nn::Module {
 public:
  S4Layer(const S4Config& config, nn::Init init);
  // u (b, l, H) -> (b, l, H)
  Var forward(const Var& u) const;
  // The convolution kernel for sequences of `length`: (H, length).
  Var kernel(int64_t length) const;

  S4Config config;
  Var log_dt;                       // (H)
  Var log_A_real, A_imag;           // (H, N2) each: S4D
  Var log_Lambda_real, Lambda_imag; // (H, N2) each: DPLR, Lambda = -exp(.) + i Lambda_imag
  Var P;                            // (H, N2, 2): DPLR
  Var B, C;                         // (H, N2, 2)
  Var D;                            // (H)
  nn::Linear output;                // H -> 2H, then GLU
};

class S4Block : public nn::Module {
 public:
  S4Block(const S4Config& config, nn::Init init);
  Var forward(const Var& x) const; // (b, l, H) -> (b, l, H)
  nn::LayerNorm norm;
  S4Layer layer;
  nn::Dropout dropout;
};

} // namespace ssm::s4
