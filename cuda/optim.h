// optim.h: CUDA kernels of the SGD and AdamW updates of autograd/optim.cpp, the same
// formulas in the same precision as the CPU loops there (see autograd/optim.h for the math).
// Every tensor is contiguous, of one floating dtype, on one CUDA device, and updated in place.
#pragma once

#include "tensor/tensor.h"

namespace ssm::cuda {

// d = grad + weight_decay param; with momentum: buf = first ? d : momentum buf + d, then
// d = nesterov ? d + momentum buf : buf; param -= lr d. `momentum_buffer` is undefined when
// momentum is 0.
void sgd_step(Tensor& param, const Tensor& grad, Tensor& momentum_buffer, bool first, double lr,
              double momentum, double weight_decay, bool nesterov);
// m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2;
// param = param (1 - decay) - lr (m / bias1) / (sqrt(v / bias2) + eps), with decay =
// lr weight_decay (or 0), bias1 = 1 - beta1^t and bias2 = 1 - beta2^t.
void adamw_step(Tensor& param, const Tensor& grad, Tensor& exp_avg, Tensor& exp_avg_sq, double lr,
                double beta1, double beta2, double eps, double decay, double bias1, double bias2);

} // namespace ssm::cuda
