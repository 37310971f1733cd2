// optim.cu: the SGD and AdamW parameter updates on CUDA tensors.
//
//   SGD:    d = g + wd p;  buf = (first ? d : mu buf + d);  d = (nesterov ? d + mu buf : buf);
//           p = p - lr d                         (without momentum: p = p - lr (g + wd p))
//   AdamW:  m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
//           p = p (1 - decay) - lr (m / bias1) / (sqrt(v / bias2) + eps)
// Buffers: p, g, buf, m, v of one shape, contiguous, n elements each.
//
// One thread per element in a grid-stride loop. As the CPU loops of autograd/optim.cpp, every
// intermediate is a double and only the stored values (p, buf, m, v) are rounded to T; buf, m
// and v are read back after rounding, exactly where the CPU loop reads them. The results
// differ from the CPU's only where nvcc fuses a double multiply-add that the CPU rounds twice:
// one double ulp, which rounding to float32 almost always removes.
#include <cmath>

#include "cuda/check.h"
#include "cuda/indexing.cuh"
#include "cuda/optim.h"
#include "cuda/runtime.h"

namespace ssm::cuda {

namespace {

template <typename T>
__global__ void sgd_kernel(T* p, const T* g, T* buf, bool first, double lr, double momentum,
                           double weight_decay, bool nesterov, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    double d = g[i] + weight_decay * p[i];
    if (buf) {
      buf[i] = static_cast<T>(first ? d : momentum * buf[i] + d);
      d = nesterov ? d + momentum * buf[i] : buf[i];
    }
    p[i] = static_cast<T>(p[i] - lr * d);
  }
}

template <typename T>
__global__ void adamw_kernel(T* p, const T* g, T* m, T* v, double lr, double beta1, double beta2,
                             double eps, double decay, double bias1, double bias2, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const double gi = g[i];
    m[i] = static_cast<T>(beta1 * m[i] + (1 - beta1) * gi);
    v[i] = static_cast<T>(beta2 * v[i] + (1 - beta2) * gi * gi);
    const double denom = sqrt(v[i] / bias2) + eps;
    p[i] = static_cast<T>(p[i] * (1 - decay) - lr * (m[i] / bias1) / denom);
  }
}

} // namespace

void sgd_step(Tensor& param, const Tensor& grad, Tensor& momentum_buffer, bool first, double lr,
              double momentum, double weight_decay, bool nesterov) {
  const int64_t n = param.numel();
  if (n == 0) return;
  dispatch_floating(param.dtype(), "SGD", [&](auto zero) {
    using T = decltype(zero);
    sgd_kernel<T><<<elementwise_blocks(n), kElementwiseThreads, 0, stream(param.device().index)>>>(
        param.data<T>(), grad.data<T>(),
        momentum_buffer.defined() ? momentum_buffer.data<T>() : nullptr, first, lr, momentum,
        weight_decay, nesterov, n);
    SSM_CUDA_CHECK(cudaGetLastError());
  });
}

void adamw_step(Tensor& param, const Tensor& grad, Tensor& exp_avg, Tensor& exp_avg_sq, double lr,
                double beta1, double beta2, double eps, double decay, double bias1, double bias2) {
  const int64_t n = param.numel();
  if (n == 0) return;
  dispatch_floating(param.dtype(), "AdamW", [&](auto zero) {
    using T = decltype(zero);
    adamw_kernel<T>
        <<<elementwise_blocks(n), kElementwiseThreads, 0, stream(param.device().index)>>>(
            param.data<T>(), grad.data<T>(), exp_avg.data<T>(), exp_avg_sq.data<T>(), lr, beta1,
            beta2, eps, decay, bias1, bias2, n);
    SSM_CUDA_CHECK(cudaGetLastError());
  });
}

} // namespace ssm::cuda
