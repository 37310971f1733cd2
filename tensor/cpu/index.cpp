// index.cpp: CPU loops of index_select, gather, scatter_add, index_add_, concat and cumsum.
//
// The indexed ops share one trick. The indexed operand (x for reads, out/dst for writes) is
// walked with its stride along `dim` set to 0, so the walk lands on the start of the line
// through `dim` at every position; the loop then adds index * stride(dim) to reach the row
// that the index picks. For a 1-D index (index_select, index_add_) the index itself is walked
// with its stride placed at `dim` and 0 elsewhere, so at every position the walk reads the
// index that belongs to that position's coordinate along `dim`. No operand is copied.
#include "tensor/cpu/index.h"

#include <type_traits>

#include "tensor/cpu/strided.h"

namespace ssm::cpu {

// t's strides with the one at `dim` set to 0 (see the top of this file).
static Shape strides_without_dim(const Tensor& t, int64_t dim) {
  Shape strides = t.strides();
  strides[dim] = 0;
  return strides;
}

// Strides that read a 1-D `index` as if it were broadcast to `ndim` dims, varying along `dim`.
static Shape index_strides_along(const Tensor& index, int64_t dim, int64_t ndim) {
  Shape strides(ndim, 0);
  strides[dim] = index.strides()[0];
  return strides;
}

std::optional<int64_t> first_index_out_of_range(const Tensor& index, int64_t size) {
  const int64_t* pi = index.data<int64_t>();
  std::optional<int64_t> bad;
  for_each_strided<1>(index.shape(), {&index.strides()}, [&](const std::array<int64_t, 1>& o) {
    const int64_t v = pi[o[0]];
    if (!bad && (v < 0 || v >= size)) bad = v;
  });
  return bad;
}

void index_select(const Tensor& x, int64_t dim, const Tensor& index, Tensor& out) {
  const int64_t x_dim_stride = x.strides()[dim];
  const Shape x_strides = strides_without_dim(x, dim);
  const Shape i_strides = index_strides_along(index, dim, out.dim());
  const int64_t* pi = index.data<int64_t>();
  dispatch_dtype(x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T* px = x.data<T>();
    T* po = out.data<T>();
    for_each_strided<3>(
        out.shape(), {&out.strides(), &x_strides, &i_strides},
        [&](const std::array<int64_t, 3>& o) { po[o[0]] = px[o[1] + pi[o[2]] * x_dim_stride]; });
  });
}

void gather(const Tensor& x, int64_t dim, const Tensor& index, Tensor& out) {
  const int64_t x_dim_stride = x.strides()[dim];
  const Shape x_strides = strides_without_dim(x, dim);
  const int64_t* pi = index.data<int64_t>();
  dispatch_dtype(x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T* px = x.data<T>();
    T* po = out.data<T>();
    for_each_strided<3>(
        index.shape(), {&out.strides(), &index.strides(), &x_strides},
        [&](const std::array<int64_t, 3>& o) { po[o[0]] = px[o[2] + pi[o[1]] * x_dim_stride]; });
  });
}

void scatter_add_(Tensor& out, int64_t dim, const Tensor& index, const Tensor& src) {
  const int64_t out_dim_stride = out.strides()[dim];
  const Shape out_strides = strides_without_dim(out, dim);
  const int64_t* pi = index.data<int64_t>();
  dispatch_dtype(out.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T* ps = src.data<T>();
    T* po = out.data<T>();
    for_each_strided<3>(
        index.shape(), {&index.strides(), &src.strides(), &out_strides},
        [&](const std::array<int64_t, 3>& o) { po[o[2] + pi[o[0]] * out_dim_stride] += ps[o[1]]; });
  });
}

void index_add_(Tensor& dst, int64_t dim, const Tensor& index, const Tensor& src) {
  const int64_t dst_dim_stride = dst.strides()[dim];
  const Shape dst_strides = strides_without_dim(dst, dim);
  const Shape i_strides = index_strides_along(index, dim, src.dim());
  const int64_t* pi = index.data<int64_t>();
  dispatch_dtype(dst.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T* ps = src.data<T>();
    T* pd = dst.data<T>();
    for_each_strided<3>(
        src.shape(), {&src.strides(), &dst_strides, &i_strides},
        [&](const std::array<int64_t, 3>& o) { pd[o[1] + pi[o[2]] * dst_dim_stride] += ps[o[0]]; });
  });
}

void concat(const std::vector<Tensor>& inputs, int64_t dim, Tensor& out) {
  dispatch_dtype(out.dtype(), [&](auto zero) {
    using T = decltype(zero);
    int64_t start = 0;
    for (const Tensor& in : inputs) {
      const int64_t length = in.shape()[dim];
      const Tensor slab = out.narrow(dim, start, length);
      T* po = slab.data<T>();
      const T* pi = in.data<T>();
      for_each_strided<2>(in.shape(), {&slab.strides(), &in.strides()},
                          [&](const std::array<int64_t, 2>& o) { po[o[0]] = pi[o[1]]; });
      start += length;
    }
  });
}

void cumsum(const Tensor& x, int64_t dim, Tensor& out) {
  // Walking `lines` (x's shape with size 1 at dim) visits the first element of every line
  // through `dim`; the inner loop then runs along it.
  Shape lines = x.shape();
  const int64_t length = lines[dim];
  lines[dim] = 1;
  const int64_t x_step = x.strides()[dim], out_step = out.strides()[dim];
  dispatch_dtype(x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    // float32 accumulates in double, as PyTorch's CPU cumsum does: prefix sums over long
    // sequences otherwise drift by ~length * 2^-24 relative.
    using Acc = std::conditional_t<std::is_same_v<T, float>, double, T>;
    const T* px = x.data<T>();
    T* po = out.data<T>();
    for_each_strided<2>(lines, {&out.strides(), &x.strides()},
                        [&](const std::array<int64_t, 2>& o) {
                          Acc running = 0;
                          for (int64_t k = 0; k < length; ++k) {
                            running += px[o[1] + k * x_step];
                            po[o[0] + k * out_step] = static_cast<T>(running);
                          }
                        });
  });
}

} // namespace ssm::cpu
