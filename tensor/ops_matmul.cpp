// ops_matmul.cpp: matmul and bmm, the shape rules and batch loop around the CPU GEMM
// (tensor/cpu/gemm.cpp).
//
//   matmul(a, b): a (..., M, K) x b (..., K, N) -> (broadcast(...), M, N)
//     a 1-D a (K) is read as a row (1, K) and a 1-D b (K) as a column (K, 1); that added dim
//     is removed from the result, so (K) x (K) -> () is a dot product, (M, K) x (K) -> (M)
//     and (K) x (K, N) -> (N). The batch dims (all but the last two) broadcast as in NumPy.
//   bmm(a, b): (B, M, K) x (B, K, N) -> (B, M, N), no broadcasting.
//
// out[batch i] = a[batch i] b[batch i] for each index i of the batch shape, each product one
// GEMM call. A matrix is read in place when its last two dims are row-major with a unit column
// stride (any row stride: a narrowed view) or the transpose of that (a .transpose(-1, -2) of a
// contiguous matrix): the GEMM takes the transpose as a flag. Any other layout is copied by
// .contiguous() first. Broadcast batch dims have stride 0, so a matrix shared by the whole
// batch (a weight) is never copied.
#include <algorithm>
#include <array>
#include <string>
#include <vector>

#include "tensor/cpu/gemm.h"
#include "tensor/cpu/parallel.h"
#include "tensor/cpu/strided.h"
#include "tensor/ops.h"

#ifdef SSM_CUDA
#include "cuda/matmul.h"
#endif

namespace ssm {

// How the GEMM reads one rows x cols matrix whose element (r, c) sits at
// r * row_stride + c * col_stride: as (r * ld + c) when !trans, as (c * ld + r) when trans.
struct GemmOperand {
  bool readable = false; // false: neither layout matches, the tensor needs .contiguous()
  bool trans = false;
  int64_t ld = 0;
};

static GemmOperand gemm_operand(const Tensor& t) {
  const int64_t rows = t.size(-2), cols = t.size(-1);
  const int64_t row_stride = t.strides()[t.dim() - 2], col_stride = t.strides()[t.dim() - 1];
  // A size-1 dim's stride is never used, so it matches either layout.
  if (cols == 1 || col_stride == 1) return {true, false, row_stride};
  if (rows == 1 || row_stride == 1) return {true, true, col_stride};
  return {};
}

static std::vector<int64_t> batch_dims(const Shape& shape) {
  return std::vector<int64_t>(shape.begin(), shape.end() - 2);
}

// out (batch..., M, N) = a (batch..., M, K) x b (batch..., K, N), with a and b expanded to the
// batch shape and their matrices GEMM-readable; out is contiguous.
template <typename T>
static void batched_matmul_cpu(const Tensor& a, const Tensor& b, Tensor& out) {
  const int64_t M = a.size(-2), K = a.size(-1), N = b.size(-1);
  const GemmOperand op_a = gemm_operand(a), op_b = gemm_operand(b);
  const Shape batch = batch_dims(out.shape());
  const Shape a_batch_strides = batch_dims(a.strides()), b_batch_strides = batch_dims(b.strides());
  // Element offsets of each batch entry's matrix in a and b, in row-major batch order.
  std::vector<std::array<int64_t, 2>> offsets;
  offsets.reserve(numel_of(batch));
  cpu::for_each_strided<2>(batch, {&a_batch_strides, &b_batch_strides},
                           [&](const std::array<int64_t, 2>& o) { offsets.push_back(o); });
  const T* pa = a.data<T>();
  const T* pb = b.data<T>();
  T* po = out.data<T>();
  auto product = [&](int64_t i) {
    cpu::gemm<T>(M, N, K, pa + offsets[i][0], op_a.ld, op_a.trans, pb + offsets[i][1], op_b.ld,
                 op_b.trans, po + i * M * N, N, false);
  };
  // Large products split their own work across threads; a batch of small ones is split by
  // batch entry instead (each entry's result is the same either way).
  const int64_t count = static_cast<int64_t>(offsets.size());
  const int64_t flops = 2 * M * N * K;
  if (count == 1 || flops >= cpu::gemm_flops_per_thread) {
    for (int64_t i = 0; i < count; ++i) product(i);
    return;
  }
  const int64_t grain = cpu::gemm_flops_per_thread / (flops + 1) + 1;
  cpu::parallel_for(0, count, grain, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) product(i);
  });
}

#ifdef SSM_CUDA
// Whether cuBLAS can read the matrix in place: a layout the GEMM accepts whose leading
// dimension covers a stored row, or a single stored row (cuda/matmul.h). A stride-0 broadcast
// of one row to many, which the CPU GEMM reads in place, is not.
static bool cublas_readable(const Tensor& t) {
  const GemmOperand g = gemm_operand(t);
  if (!g.readable) return false;
  const int64_t rows = t.size(-2), cols = t.size(-1);
  const int64_t row_length = g.trans ? rows : cols, stored_rows = g.trans ? cols : rows;
  return g.ld >= row_length || stored_rows == 1;
}

// The CUDA counterpart of batched_matmul_cpu, same arguments. The batch dims are merged where
// one step of the outer dim spans the whole inner dim in a, b and out alike (size-1 dims
// dropped), so that a batch walked by one stride in all three, such as a contiguous bmm or a
// weight shared by the whole batch (stride 0), is one cuBLAS strided-batched call; the
// remaining outer dims (as in (2, 1, 3, 4) x (5, 4, 2)) are looped over, one call each.
template <typename T>
static void batched_matmul_cuda(const Tensor& a, const Tensor& b, Tensor& out) {
  const int64_t M = a.size(-2), K = a.size(-1), N = b.size(-1);
  const GemmOperand op_a = gemm_operand(a), op_b = gemm_operand(b);
  Shape batch, a_strides, b_strides, out_strides;
  for (int64_t d = 0; d + 2 < out.dim(); ++d) {
    const int64_t size = out.size(d);
    const int64_t sa = a.strides()[d], sb = b.strides()[d], so = out.strides()[d];
    if (size == 1) continue;
    if (!batch.empty() && a_strides.back() == sa * size && b_strides.back() == sb * size &&
        out_strides.back() == so * size) {
      batch.back() *= size;
      a_strides.back() = sa;
      b_strides.back() = sb;
      out_strides.back() = so;
      continue;
    }
    batch.push_back(size);
    a_strides.push_back(sa);
    b_strides.push_back(sb);
    out_strides.push_back(so);
  }
  // The innermost merged dim is the strided batch; an empty batch is one product.
  int64_t count = 1, step_a = 0, step_b = 0, step_out = 0;
  if (!batch.empty()) {
    count = batch.back();
    step_a = a_strides.back();
    step_b = b_strides.back();
    step_out = out_strides.back();
    for (Shape* s : {&batch, &a_strides, &b_strides, &out_strides}) s->pop_back();
  }
  const T* pa = a.data<T>();
  const T* pb = b.data<T>();
  T* po = out.data<T>();
  cpu::for_each_strided<3>(
      batch, {&a_strides, &b_strides, &out_strides}, [&](const std::array<int64_t, 3>& o) {
        cuda::gemm_strided_batched<T>(out.device().index, count, M, N, K, pa + o[0], op_a.ld,
                                      step_a, op_a.trans, pb + o[1], op_b.ld, step_b, op_b.trans,
                                      po + o[2], N, step_out, false);
      });
}
#endif

// a (..., M, K) x b (..., K, N) -> (batch..., M, N), the batch dims of a and b broadcasting to
// `batch`. Shapes are already checked.
static Tensor batched_matmul(const Tensor& a, const Tensor& b, const Shape& batch,
                             [[maybe_unused]] const char* op) {
  const int64_t M = a.size(-2), K = a.size(-1), N = b.size(-1);
  Shape a_shape = batch, b_shape = batch, out_shape = batch;
  a_shape.insert(a_shape.end(), {M, K});
  b_shape.insert(b_shape.end(), {K, N});
  out_shape.insert(out_shape.end(), {M, N});
  Tensor out = Tensor::empty(out_shape, a.dtype(), a.device());
  if (a.device().is_cuda()) {
#ifdef SSM_CUDA
    if (a.dtype() == DType::Int64)
      throw std::invalid_argument(std::string(op) +
                                  ": int64 matrix products are not supported on CUDA (cuBLAS has "
                                  "no integer GEMM); use float64 or the CPU");
    const Tensor a_read = cublas_readable(a) ? a : a.contiguous();
    const Tensor b_read = cublas_readable(b) ? b : b.contiguous();
    dispatch_floating(a.dtype(), op, [&](auto zero) {
      batched_matmul_cuda<decltype(zero)>(a_read.expand(a_shape), b_read.expand(b_shape), out);
    });
    return out;
#else
    throw_no_cuda(op);
#endif
  }
  const Tensor a_read = gemm_operand(a).readable ? a : a.contiguous();
  const Tensor b_read = gemm_operand(b).readable ? b : b.contiguous();
  dispatch_dtype(a.dtype(), [&](auto zero) {
    batched_matmul_cpu<decltype(zero)>(a_read.expand(a_shape), b_read.expand(b_shape), out);
  });
  return out;
}

static std::string shapes_str(const Tensor& a, const Tensor& b) {
  return shape_str(a.shape()) + " x " + shape_str(b.shape());
}

Tensor matmul(const Tensor& a, const Tensor& b) {
  check_same_dtype_device(a, b, "matmul");
  if (a.dim() == 0 || b.dim() == 0)
    throw std::invalid_argument("matmul: expected operands of at least 1 dim, got " +
                                shapes_str(a, b));
  const Tensor a_matrix = a.dim() == 1 ? a.unsqueeze(0) : a; // (K) -> (1, K)
  const Tensor b_matrix = b.dim() == 1 ? b.unsqueeze(1) : b; // (K) -> (K, 1)
  if (a_matrix.size(-1) != b_matrix.size(-2))
    throw std::invalid_argument("matmul: inner dims differ: " + shapes_str(a, b));
  Shape batch;
  try {
    batch = broadcast_shapes(batch_dims(a_matrix.shape()), batch_dims(b_matrix.shape()), "matmul");
  } catch (const std::invalid_argument&) {
    throw std::invalid_argument("matmul: batch dims do not broadcast: " + shapes_str(a, b));
  }
  const Tensor out = batched_matmul(a_matrix, b_matrix, batch, "matmul");
  // Drop the dims that stood in for 1-D operands.
  Shape result_shape = batch;
  if (a.dim() > 1) result_shape.push_back(a_matrix.size(-2));
  if (b.dim() > 1) result_shape.push_back(b_matrix.size(-1));
  return out.view(result_shape);
}

Tensor bmm(const Tensor& a, const Tensor& b) {
  check_same_dtype_device(a, b, "bmm");
  if (a.dim() != 3 || b.dim() != 3)
    throw std::invalid_argument("bmm: expected 3-D operands (B, M, K) x (B, K, N), got " +
                                shapes_str(a, b));
  if (a.size(0) != b.size(0))
    throw std::invalid_argument("bmm: batch sizes differ: " + shapes_str(a, b));
  if (a.size(2) != b.size(1))
    throw std::invalid_argument("bmm: inner dims differ: " + shapes_str(a, b));
  return batched_matmul(a, b, {a.size(0)}, "bmm");
}

} // namespace ssm
