// copy.h: the CUDA loops behind Tensor::copy_ and Tensor::fill_ (see tensor/tensor.h).
#pragma once

#include "tensor/tensor.h"

namespace ssm::cuda {

// dst[i] = T_dst(src[i]) for every index of dst; src is already expanded to dst's shape and
// both live on one CUDA device; either may be strided, dtypes may differ.
void copy(const Tensor& src, Tensor& dst);
// dst[i] = value for every index of dst (dst may be strided).
void fill(Tensor& dst, double value);

} // namespace ssm::cuda
