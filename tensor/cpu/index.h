// index.h: CPU loops of the indexing, joining and cumulative ops (see tensor/ops.h for the
// math).
//
// The dispatch layer (tensor/ops_index.cpp) has already checked shapes, dtypes and every index
// value, so these loops never see an index outside [0, size): they only move and add numbers.
// Every operand may be a strided view; the loops read and write it in place through
// for_each_strided. Index tensors are int64.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "tensor/tensor.h"

namespace ssm::cpu {

// The first value of `index` (row-major) outside [0, size), or nothing when all are inside.
std::optional<int64_t> first_index_out_of_range(const Tensor& index, int64_t size);

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
// out[..., k, ...] = sum_{j <= k} x[..., j, ...] along `dim`.
void cumsum(const Tensor& x, int64_t dim, Tensor& out);

} // namespace ssm::cpu
