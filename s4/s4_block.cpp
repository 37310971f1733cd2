// s4_block.cpp: the S4 layer and block (math and glossary in s4_block.h).
#include "s4/s4_block.h"

#include <cmath>
#include <stdexcept>

#include "s4/fft.h"
#include "s4/hippo.h"
#include "s4/s4_kernel.h"
#include "tensor/ops.h"

namespace ssm::s4 {

namespace {

struct KernelName {
  S4Kernel kernel;
  const char* name;
};
const KernelName kKernelNames[] = {{S4Kernel::S4D_LegS, "s4d-legs"},
                                   {S4Kernel::S4D_Lin, "s4d-lin"},
                                   {S4Kernel::S4D_Inv, "s4d-inv"},
                                   {S4Kernel::S4D_Real, "s4d-real"},
                                   {S4Kernel::DPLR_LegS, "dplr-legs"}};

bool is_diagonal(S4Kernel k) { return k != S4Kernel::DPLR_LegS; }

// (M, ...) repeated for each of H channels: (H, M, ...).
Tensor per_channel(const Tensor& t, int64_t H, DType dtype) {
  Shape shape = t.shape();
  shape.insert(shape.begin(), H);
  return t.to(dtype).unsqueeze(0).expand(shape).contiguous();
}

} // namespace

S4Kernel parse_s4_kernel(const std::string& name) {
  for (const KernelName& k : kKernelNames)
    if (name == k.name) return k.kernel;
  std::string known;
  for (const KernelName& k : kKernelNames) known += std::string(known.empty() ? "" : ", ") + k.name;
  throw std::invalid_argument("unknown S4 kernel \"" + name + "\"; expected one of " + known);
}

const char* s4_kernel_name(S4Kernel kernel) {
  for (const KernelName& k : kKernelNames)
    if (k.kernel == kernel) return k.name;
  return "?";
}

// ---- the layer -------------------------------------------------------------------------

// Initialisation (S4D paper, Section 4; S4 paper, Section 3.4):
//   log_dt ~ U(log dt_min, log dt_max) per channel
//   A, B from the chosen HiPPO-derived init, the same for every channel
//   C ~ complex normal with unit variance (real and imaginary parts N(0, 1/2))
//   D ~ N(0, 1)
//   output: PyTorch's Linear default
S4Layer::S4Layer(const S4Config& c, nn::Init init)
    : config(c), output(c.d_model, 2 * c.d_model, /*bias=*/true, init) {
  const int64_t H = c.d_model, N = c.d_state;
  if (H < 1) throw std::invalid_argument("S4Layer: d_model must be >= 1");
  const bool halved = c.kernel != S4Kernel::S4D_Real;
  if (N < 1 || (halved && N % 2 != 0))
    throw std::invalid_argument("S4Layer: d_state must be " +
                                std::string(halved ? "even and >= 2" : ">= 1") + " for " +
                                s4_kernel_name(c.kernel) + ", got " + std::to_string(N));
  if (!(c.dt_min > 0 && c.dt_min <= c.dt_max))
    throw std::invalid_argument("S4Layer: need 0 < dt_min <= dt_max");
  const DType dtype = init.dtype;
  log_dt = register_parameter(
      "log_dt", Tensor::uniform({H}, std::log(c.dt_min), std::log(c.dt_max), dtype, init.gen));
  Tensor B0; // (M, 2)
  if (is_diagonal(c.kernel)) {
    const DiagonalInit d = c.kernel == S4Kernel::S4D_LegS  ? s4d_legs(N)
                           : c.kernel == S4Kernel::S4D_Lin ? s4d_lin(N)
                           : c.kernel == S4Kernel::S4D_Inv ? s4d_inv(N)
                                                           : s4d_real(N);
    const Tensor A = per_channel(d.A, H, DType::Float64);                              // (H, M, 2)
    log_A_real = register_parameter("log_A_real", log(neg(A.select(2, 0))).to(dtype)); // (H, M)
    A_imag = register_parameter("A_imag", A.select(2, 1).contiguous().to(dtype));      // (H, M)
    B0 = d.B;
  } else {
    const DplrInit d = make_dplr_legs(N);
    // Lambda's real part is kept negative the same way as S4D's A: -exp(log_Lambda_real).
    const Tensor L0 = per_channel(d.Lambda, H, DType::Float64); // (H, M, 2)
    log_Lambda_real =
        register_parameter("log_Lambda_real", log(neg(L0.select(2, 0))).to(dtype)); // (H, M)
    Lambda_imag = register_parameter("Lambda_imag", L0.select(2, 1).contiguous().to(dtype));
    P = register_parameter("P", per_channel(d.P, H, dtype)); // (H, M, 2)
    B0 = d.B;
  }
  const int64_t M = B0.size(0);
  B = register_parameter("B", per_channel(B0, H, dtype)); // (H, M, 2)
  C = register_parameter("C", mul(Tensor::randn({H, M, 2}, dtype, init.gen), std::sqrt(0.5)));
  D = register_parameter("D", Tensor::randn({H}, dtype, init.gen));
  register_module("output", output);
}

Var S4Layer::kernel(int64_t length) const {
  if (is_diagonal(config.kernel)) {
    const Var A = stack({neg(exp(log_A_real)), A_imag}, 2); // (H, M, 2)
    return s4d_kernel(log_dt, A, B, C, length,
                      config.zoh ? Discretization::ZOH : Discretization::Bilinear);
  }
  const Var Lambda = stack({neg(exp(log_Lambda_real)), Lambda_imag}, 2); // (H, M, 2)
  return dplr_kernel(log_dt, Lambda, P, B, C, length);                   // (H, length)
}

Var S4Layer::forward(const Var& u) const {
  const int64_t H = config.d_model;
  if (u.dim() != 3 || u.size(2) != H)
    throw std::invalid_argument("S4Layer: input must be (batch, length, d_model = " +
                                std::to_string(H) + "), got " + shape_str(u.shape()));
  const int64_t length = u.size(1);
  const Var K = kernel(length);                                  // (H, l)
  const Var y_hl = causal_conv(transpose(u, 1, 2), K, D);        // (b, H, l)
  const Var y = gelu(transpose(y_hl, 1, 2));                     // (b, l, H)
  const Var ag = output.forward(y);                              // (b, l, 2H)
  return mul(narrow(ag, 2, 0, H), sigmoid(narrow(ag, 2, H, H))); // (b, l, H)  GLU
}

// ---- the block -------------------------------------------------------------------------

S4Block::S4Block(const S4Config& c, nn::Init init)
    : norm(Shape{c.d_model}, 1e-5, true, init), layer(c, init), dropout(c.dropout, init.gen) {
  register_module("norm", norm);
  register_module("layer", layer);
  register_module("dropout", dropout);
}

Var S4Block::forward(const Var& x) const {
  return add(x, dropout.forward(layer.forward(norm.forward(x))));
}

} // namespace ssm::s4
