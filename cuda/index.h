// index.h: CUDA kernels of the indexing, joining and cumulative ops, with the semantics and
// signatures of tensor/cpu/index.h (see tensor/ops.h for the math).
//
// As on the CPU, the dispatch layer (tensor/ops_index.cpp) has checked shapes, dtypes and every
// index value before any of these runs, so an op that throws has written nothing. For CUDA
// tensors it checks by copying the index tensor to the host and running the CPU's check. The
// host has to learn the outcome before the writing kernel is launched, which costs a
// synchronisation whichever side inspects the indices; the copy adds one transfer of 8 bytes
// per index (token ids, positions and labels are small next to the activations they pick) and
// gives the same first bad index and the same message as the CPU by construction.
//
// scatter_add_ and index_add_ add with atomics, so several source elements landing on one
// destination element are added in an order that varies from run to run: float results agree
// with the CPU (and between runs) only to rounding, int64 results exactly.
#pragma once

#include <cstdint>
#include <vector>

#include "tensor/tensor.h"

namespace ssm::cuda {

// out[..., i, ...] = x[..., index[i], ...] along `dim`; index 1-D, out contiguous.
void index_select(const Tensor& x, int64_t dim, const Tensor& index, Tensor& out);
// out[p] = x[p with its `dim` coordinate replaced by index[p]]; out has index's shape.
void gather(const Tensor& x, int64_t dim, const Tensor& index, Tensor& out);
// out[p with its `dim` coordinate replaced by index[p]] += src[p] for every p of index's shape.
void scatter_add_(Tensor& out, int64_t dim, const Tensor& index, const Tensor& src);
// dst[..., index[i], ...] += src[..., i, ...] along `dim`; index 1-D.
void index_add_(Tensor& dst, int64_t dim, const Tensor& index, const Tensor& src);
// Copies inputs[k] into consecutive slabs of `out` along `dim`.
void concat(const std::vector<Tensor>& inputs, int64_t dim, Tensor& out);
// out[..., k, ...] = sum_{j <= k} x[..., j, ...] along `dim` (float32 accumulates in double).
void cumsum(const Tensor& x, int64_t dim, Tensor& out);

} // namespace ssm::cuda
