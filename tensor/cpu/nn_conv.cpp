// nn_conv.cpp: CPU loops of conv1d (the math and the buffers are in nn_conv.h).
//
// Threads: the forward splits the (b, co) output rows, dx the (b, group) blocks of input rows,
// and dweight/dbias the output channels co. Each output element is written by one thread and
// summed in a fixed order, so the bits never depend on the thread count.
#include "tensor/cpu/nn_conv.h"

#include <algorithm>
#include <vector>

#include "tensor/cpu/nn_accumulate.h"
#include "tensor/cpu/parallel.h"

namespace ssm::cpu {

namespace {

// Items per parallel_for piece when one item costs `work` multiply-adds: ~64k per piece.
int64_t grain_for(int64_t work) {
  return std::max<int64_t>(1, (int64_t(1) << 16) / std::max<int64_t>(1, work));
}

// The outputs t in [begin, end) whose tap with input offset `shift` = k D - P reads inside
// the input, 0 <= t S + shift < L; outside this range the tap reads zero padding.
struct OutputRange {
  int64_t begin, end;
};
OutputRange valid_outputs(int64_t shift, const Conv1dShape& s) {
  // t S + shift >= 0  <=>  t >= ceil(-shift / S)
  const int64_t begin = shift >= 0 ? 0 : (-shift + s.stride - 1) / s.stride;
  // t S + shift <= L - 1  <=>  t <= floor((L - 1 - shift) / S)
  const int64_t last = s.length - 1 - shift;
  const int64_t end = last < 0 ? 0 : std::min(s.out_length, last / s.stride + 1);
  return {std::min(begin, end), end};
}

template <typename T>
void conv1d_forward_typed(const T* x, const T* w, const T* bias, T* y, const Conv1dShape& s) {
  const int64_t cin_g = s.in_channels / s.groups, cout_g = s.out_channels / s.groups;
  const int64_t row_work = cin_g * s.kernel * s.out_length;
  parallel_for(0, s.batch * s.out_channels, grain_for(row_work), [&](int64_t lo, int64_t hi) {
    for (int64_t row = lo; row < hi; ++row) { // row = b * C_out + co
      const int64_t b = row / s.out_channels, co = row % s.out_channels;
      const int64_t grp = co / cout_g;
      T* yr = y + row * s.out_length; // (L_out)
      std::fill(yr, yr + s.out_length, bias ? bias[co] : T(0));
      for (int64_t c = 0; c < cin_g; ++c) {
        const T* xr = x + (b * s.in_channels + grp * cin_g + c) * s.length; // (L)
        const T* wr = w + (co * cin_g + c) * s.kernel;                      // (K)
        for (int64_t k = 0; k < s.kernel; ++k) {
          const int64_t shift = k * s.dilation - s.padding;
          const OutputRange r = valid_outputs(shift, s);
          const T wk = wr[k];
          if (s.stride == 1)
            for (int64_t t = r.begin; t < r.end; ++t) yr[t] += wk * xr[t + shift];
          else
            for (int64_t t = r.begin; t < r.end; ++t) yr[t] += wk * xr[t * s.stride + shift];
        }
      }
    }
  });
}

// dx: the transpose of the forward, scattering each g[b, co, t] back through the taps.
template <typename T>
void conv1d_backward_input(const T* w, const T* g, T* dx, const Conv1dShape& s) {
  const int64_t cin_g = s.in_channels / s.groups, cout_g = s.out_channels / s.groups;
  const int64_t block_work = cout_g * cin_g * s.kernel * s.out_length;
  parallel_for(0, s.batch * s.groups, grain_for(block_work), [&](int64_t lo, int64_t hi) {
    for (int64_t block = lo; block < hi; ++block) { // block = b * G + grp
      const int64_t b = block / s.groups, grp = block % s.groups;
      T* dx_block = dx + (b * s.in_channels + grp * cin_g) * s.length; // (C_in / G, L)
      std::fill(dx_block, dx_block + cin_g * s.length, T(0));
      for (int64_t co = grp * cout_g; co < (grp + 1) * cout_g; ++co) {
        const T* gr = g + (b * s.out_channels + co) * s.out_length; // (L_out)
        for (int64_t c = 0; c < cin_g; ++c) {
          T* dxr = dx_block + c * s.length;              // (L)
          const T* wr = w + (co * cin_g + c) * s.kernel; // (K)
          for (int64_t k = 0; k < s.kernel; ++k) {
            const int64_t shift = k * s.dilation - s.padding;
            const OutputRange r = valid_outputs(shift, s);
            const T wk = wr[k];
            if (s.stride == 1)
              for (int64_t t = r.begin; t < r.end; ++t) dxr[t + shift] += wk * gr[t];
            else
              for (int64_t t = r.begin; t < r.end; ++t) dxr[t * s.stride + shift] += wk * gr[t];
          }
        }
      }
    }
  });
}

// dweight and dbias: per output channel, correlations of g with x summed over the batch
// (in double).
template <typename T>
void conv1d_backward_params(const T* x, const T* g, T* dw, T* db, const Conv1dShape& s) {
  const int64_t cin_g = s.in_channels / s.groups, cout_g = s.out_channels / s.groups;
  const int64_t channel_work = s.batch * cin_g * s.kernel * s.out_length;
  parallel_for(0, s.out_channels, grain_for(channel_work), [&](int64_t lo, int64_t hi) {
    std::vector<double> dw_acc(cin_g * s.kernel); // (C_in / G, K) for one co
    for (int64_t co = lo; co < hi; ++co) {
      const int64_t grp = co / cout_g;
      std::fill(dw_acc.begin(), dw_acc.end(), 0.0);
      double db_acc = 0;
      for (int64_t b = 0; b < s.batch; ++b) {
        const T* gr = g + (b * s.out_channels + co) * s.out_length; // (L_out)
        if (db) db_acc += sum_in_double(s.out_length, [&](int64_t t) { return double(gr[t]); });
        if (!dw) continue;
        for (int64_t c = 0; c < cin_g; ++c) {
          const T* xr = x + (b * s.in_channels + grp * cin_g + c) * s.length; // (L)
          for (int64_t k = 0; k < s.kernel; ++k) {
            const int64_t shift = k * s.dilation - s.padding;
            const OutputRange r = valid_outputs(shift, s);
            dw_acc[c * s.kernel + k] += sum_in_double(r.end - r.begin, [&](int64_t i) {
              const int64_t t = r.begin + i;
              return double(gr[t]) * double(xr[t * s.stride + shift]);
            });
          }
        }
      }
      if (dw)
        for (int64_t i = 0; i < cin_g * s.kernel; ++i)
          dw[co * cin_g * s.kernel + i] = static_cast<T>(dw_acc[i]);
      if (db) db[co] = static_cast<T>(db_acc);
    }
  });
}

} // namespace

void conv1d_forward(const Tensor& x, const Tensor& weight, const Tensor& bias,
                    const Conv1dShape& shape, Tensor& y) {
  dispatch_floating(x.dtype(), "conv1d", [&](auto zero) {
    using T = decltype(zero);
    conv1d_forward_typed(x.data<T>(), weight.data<T>(), bias.defined() ? bias.data<T>() : nullptr,
                         y.data<T>(), shape);
  });
}

void conv1d_backward(const Tensor& x, const Tensor& weight, const Tensor& g,
                     const Conv1dShape& shape, Tensor& dx, Tensor& dweight, Tensor& dbias) {
  dispatch_floating(x.dtype(), "conv1d", [&](auto zero) {
    using T = decltype(zero);
    if (dx.defined()) conv1d_backward_input(weight.data<T>(), g.data<T>(), dx.data<T>(), shape);
    if (dweight.defined() || dbias.defined())
      conv1d_backward_params(x.data<T>(), g.data<T>(),
                             dweight.defined() ? dweight.data<T>() : nullptr,
                             dbias.defined() ? dbias.data<T>() : nullptr, shape);
  });
}

} // namespace ssm::cpu
