// ops_index.cpp: checks and device dispatch of the indexing, joining and splitting ops, and of
// cumsum; the loops are in tensor/cpu/index.cpp and their CUDA kernels in cuda/index.cu.
//
// Shapes (dim = d, shown for a 3-D x of shape (A, B, C) and d = 1):
//   index_select(x, 1, index[n])        -> (A, n, C)   out[a][i][c] = x[a][index[i]][c]
//   gather(x, 1, index(A', m, C'))      -> (A', m, C') out[a][j][c] = x[a][index[a][j][c]][c]
//   scatter_add(x, 1, index, src)       -> (A, B, C)   out[a][index[a][j][c]][c] += src[a][j][c]
//   index_add_(dst(A, B, C), 1, index[n], src(A, n, C))  dst[a][index[i]][c] += src[a][i][c]
//   concat({(A, B1, C), (A, B2, C)}, 1) -> (A, B1 + B2, C)
//   stack({k tensors (A, B, C)}, 1)     -> (A, k, B, C)
//   split(x, {B1, B2}, 1)               -> views (A, B1, C), (A, B2, C)
//   cumsum(x, 1)                        -> (A, B, C)   out[a][j][c] = sum_{i <= j} x[a][i][c]
// gather/scatter_add follow PyTorch: index has x's number of dims, index.size(k) <= x.size(k)
// for k != d (and <= src.size(k) for every k in scatter_add); only the leading part of x (and
// src) that index covers takes part.
//
// Indices are int64 and must lie in [0, size of the indexed dim). Negative indices are an
// error, not wrapped Python-style (as in PyTorch's index_select and gather): a negative token
// id or position is far more often a bug than an intent. Every index is checked before the
// loop runs, so an in-place op that throws has not modified its destination. The indices of a
// CUDA op are checked on a host copy (cuda/index.h says why).
#include <algorithm>
#include <string>

#include "tensor/cpu/index.h"
#include "tensor/ops.h"

#ifdef SSM_CUDA
#include "cuda/index.h"
#endif

namespace ssm {

namespace {

void check_index_tensor(const Tensor& index, const Tensor& x, const char* op) {
  check_defined(index, op);
  if (index.dtype() != DType::Int64)
    throw std::invalid_argument(std::string(op) + ": index must be an int64 tensor, got " +
                                index.describe());
  if (index.device() != x.device())
    throw std::invalid_argument(std::string(op) + ": index on " + index.device().str() +
                                ", input on " + x.device().str());
}

// Throws std::out_of_range naming op, the first bad index value, the dim and its size.
void check_index_range(const Tensor& index, int64_t dim, int64_t size, const char* op) {
  const std::optional<int64_t> bad = cpu::first_index_out_of_range(index.to(Device::cpu()), size);
  if (bad)
    throw std::out_of_range(std::string(op) + ": index " + std::to_string(*bad) +
                            " is out of range for dim " + std::to_string(dim) + " of size " +
                            std::to_string(size) + " (expected 0 <= index < " +
                            std::to_string(size) + "; negative indices are not wrapped)");
}

// Throws unless index.size(k) <= limit.size(k) for every k (except `skip_dim` when >= 0).
void check_index_fits(const Tensor& index, const Tensor& limit, int64_t skip_dim,
                      const char* limit_name, const char* op) {
  for (int64_t k = 0; k < index.dim(); ++k)
    if (k != skip_dim && index.size(k) > limit.size(k))
      throw std::invalid_argument(
          std::string(op) + ": index of shape " + shape_str(index.shape()) + " does not fit " +
          limit_name + " of shape " + shape_str(limit.shape()) + " (size " +
          std::to_string(index.size(k)) + " > " + std::to_string(limit.size(k)) + " at dim " +
          std::to_string(k) + ")");
}

void check_same_ndim(const Tensor& a, const Tensor& b, const char* a_name, const char* b_name,
                     const char* op) {
  if (a.dim() != b.dim())
    throw std::invalid_argument(std::string(op) + ": " + a_name + " of shape " +
                                shape_str(a.shape()) + " and " + b_name + " of shape " +
                                shape_str(b.shape()) + " need the same number of dims");
}

// The first tensor of a list to join; throws when the list is empty or it is undefined.
const Tensor& first_of(const std::vector<Tensor>& tensors, const char* op) {
  if (tensors.empty())
    throw std::invalid_argument(std::string(op) + ": expected a non-empty list of tensors");
  if (!tensors[0].defined())
    throw std::invalid_argument(std::string(op) + ": tensor at position 0 is undefined");
  return tensors[0];
}

// Checks a non-empty list to join: one dtype and device, and every shape equal to the first
// except at `free_dim` (pass -1 when every size must match, as stack needs).
void check_joinable(const std::vector<Tensor>& tensors, int64_t free_dim, const char* op) {
  for (size_t k = 0; k < tensors.size(); ++k) {
    const std::string position = "tensor at position " + std::to_string(k);
    if (!tensors[k].defined())
      throw std::invalid_argument(std::string(op) + ": " + position + " is undefined");
    if (tensors[k].dtype() != tensors[0].dtype() || tensors[k].device() != tensors[0].device())
      throw std::invalid_argument(std::string(op) + ": " + position + " is " +
                                  tensors[k].describe() + ", tensor at position 0 is " +
                                  tensors[0].describe() + "; dtypes and devices must match");
    const Shape& first = tensors[0].shape();
    const Shape& shape = tensors[k].shape();
    bool match = shape.size() == first.size();
    for (size_t d = 0; match && d < shape.size(); ++d)
      match = static_cast<int64_t>(d) == free_dim || shape[d] == first[d];
    if (!match)
      throw std::invalid_argument(
          std::string(op) + ": " + position + " has shape " + shape_str(shape) +
          ", tensor at position 0 has shape " + shape_str(first) +
          (free_dim >= 0 ? "; sizes must match except in dim " + std::to_string(free_dim)
                         : "; every shape must be equal"));
  }
}

// Allocates the joined shape and runs the loop; `tensors` has passed check_joinable.
Tensor concat_checked(const std::vector<Tensor>& tensors, int64_t dim) {
  Shape shape = tensors[0].shape();
  shape[dim] = 0;
  for (const Tensor& t : tensors) shape[dim] += t.size(dim);
  Tensor out = Tensor::empty(shape, tensors[0].dtype(), tensors[0].device());
  if (out.device().is_cuda()) {
#ifdef SSM_CUDA
    cuda::concat(tensors, dim, out);
#else
    throw_no_cuda("concat");
#endif
  } else {
    cpu::concat(tensors, dim, out);
  }
  return out;
}

} // namespace

// ---- indexing ------------------------------------------------------------------------------

Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index) {
  const char* op = "index_select";
  check_defined(x, op);
  check_index_tensor(index, x, op);
  const int64_t d = wrap_dim(dim, x.dim(), op);
  if (index.dim() != 1)
    throw std::invalid_argument(std::string(op) + ": index must be 1-D, got shape " +
                                shape_str(index.shape()));
  check_index_range(index, d, x.size(d), op);
  Shape shape = x.shape();
  shape[d] = index.numel();
  Tensor out = Tensor::empty(shape, x.dtype(), x.device());
  if (x.device().is_cuda()) {
#ifdef SSM_CUDA
    cuda::index_select(x, d, index, out);
#else
    throw_no_cuda(op);
#endif
  } else {
    cpu::index_select(x, d, index, out);
  }
  return out;
}

Tensor gather(const Tensor& x, int64_t dim, const Tensor& index) {
  const char* op = "gather";
  check_defined(x, op);
  check_index_tensor(index, x, op);
  const int64_t d = wrap_dim(dim, x.dim(), op);
  check_same_ndim(index, x, "index", "input", op);
  check_index_fits(index, x, d, "input", op);
  check_index_range(index, d, x.size(d), op);
  Tensor out = Tensor::empty(index.shape(), x.dtype(), x.device());
  if (x.device().is_cuda()) {
#ifdef SSM_CUDA
    cuda::gather(x, d, index, out);
#else
    throw_no_cuda(op);
#endif
  } else {
    cpu::gather(x, d, index, out);
  }
  return out;
}

Tensor scatter_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src) {
  const char* op = "scatter_add";
  check_same_dtype_device(x, src, op);
  check_index_tensor(index, x, op);
  const int64_t d = wrap_dim(dim, x.dim(), op);
  check_same_ndim(index, x, "index", "input", op);
  check_same_ndim(src, x, "src", "input", op);
  check_index_fits(index, x, d, "input", op);
  check_index_fits(index, src, -1, "src", op);
  check_index_range(index, d, x.size(d), op);
  Tensor out = x.clone();
  if (x.device().is_cuda()) {
#ifdef SSM_CUDA
    cuda::scatter_add_(out, d, index, src);
#else
    throw_no_cuda(op);
#endif
  } else {
    cpu::scatter_add_(out, d, index, src);
  }
  return out;
}

void index_add_(Tensor& dst, int64_t dim, const Tensor& index, const Tensor& src) {
  const char* op = "index_add_";
  check_same_dtype_device(dst, src, op);
  check_index_tensor(index, dst, op);
  const int64_t d = wrap_dim(dim, dst.dim(), op);
  if (index.dim() != 1)
    throw std::invalid_argument(std::string(op) + ": index must be 1-D, got shape " +
                                shape_str(index.shape()));
  Shape expected = dst.shape();
  expected[d] = index.numel();
  if (src.shape() != expected)
    throw std::invalid_argument(std::string(op) + ": src of shape " + shape_str(src.shape()) +
                                " does not match dst of shape " + shape_str(dst.shape()) +
                                " with " + std::to_string(index.numel()) + " indices along dim " +
                                std::to_string(d) + " (expected " + shape_str(expected) + ")");
  check_index_range(index, d, dst.size(d), op);
  if (dst.device().is_cuda()) {
#ifdef SSM_CUDA
    cuda::index_add_(dst, d, index, src);
#else
    throw_no_cuda(op);
#endif
  } else {
    cpu::index_add_(dst, d, index, src);
  }
}

// ---- joining and splitting -----------------------------------------------------------------

Tensor concat(const std::vector<Tensor>& tensors, int64_t dim) {
  const char* op = "concat";
  const Tensor& first = first_of(tensors, op);
  if (first.dim() == 0)
    throw std::invalid_argument(std::string(op) +
                                ": tensor at position 0 is 0-d and has no dim to join along "
                                "(stack joins 0-d tensors)");
  const int64_t d = wrap_dim(dim, first.dim(), op);
  check_joinable(tensors, d, op);
  return concat_checked(tensors, d);
}

Tensor stack(const std::vector<Tensor>& tensors, int64_t dim) {
  const char* op = "stack";
  const Tensor& first = first_of(tensors, op);
  // The new dim can sit anywhere from before the first dim to after the last.
  const int64_t d = wrap_dim(dim, first.dim() + 1, op);
  check_joinable(tensors, -1, op);
  std::vector<Tensor> unsqueezed;
  unsqueezed.reserve(tensors.size());
  for (const Tensor& t : tensors) unsqueezed.push_back(t.unsqueeze(d));
  return concat_checked(unsqueezed, d);
}

std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim) {
  const char* op = "split";
  check_defined(x, op);
  const int64_t d = wrap_dim(dim, x.dim(), op);
  int64_t total = 0;
  for (int64_t s : sizes) {
    if (s < 0)
      throw std::invalid_argument(std::string(op) + ": negative size " + std::to_string(s) +
                                  " in the list of sizes");
    total += s;
  }
  if (total != x.size(d))
    throw std::invalid_argument(std::string(op) + ": sizes add up to " + std::to_string(total) +
                                " but dim " + std::to_string(d) + " of shape " +
                                shape_str(x.shape()) + " has size " + std::to_string(x.size(d)));
  std::vector<Tensor> pieces;
  pieces.reserve(sizes.size());
  int64_t start = 0;
  for (int64_t s : sizes) {
    pieces.push_back(x.narrow(d, start, s));
    start += s;
  }
  return pieces;
}

std::vector<Tensor> split(const Tensor& x, int64_t chunk, int64_t dim) {
  const char* op = "split";
  check_defined(x, op);
  const int64_t d = wrap_dim(dim, x.dim(), op);
  if (chunk <= 0)
    throw std::invalid_argument(std::string(op) + ": chunk size must be positive, got " +
                                std::to_string(chunk));
  // A dim of size 0 gives one empty piece, as torch.split does.
  const int64_t n = x.size(d);
  std::vector<int64_t> sizes;
  for (int64_t start = 0; start < n; start += chunk) sizes.push_back(std::min(chunk, n - start));
  if (sizes.empty()) sizes.push_back(0);
  return split(x, sizes, d);
}

// ---- cumulative sum ------------------------------------------------------------------------

Tensor cumsum(const Tensor& x, int64_t dim) {
  const char* op = "cumsum";
  check_defined(x, op);
  // A 0-d tensor accepts dim 0 or -1 and is its own prefix sum, as in PyTorch.
  const int64_t d = wrap_dim(dim, std::max<int64_t>(x.dim(), 1), op);
  if (x.dim() == 0) return x.clone();
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  if (x.device().is_cuda()) {
#ifdef SSM_CUDA
    cuda::cumsum(x, d, out);
#else
    throw_no_cuda(op);
#endif
  } else {
    cpu::cumsum(x, d, out);
  }
  return out;
}

} // namespace ssm
