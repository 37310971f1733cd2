// bench_scan.cpp: forward and backward time of the selective scan's CUDA kernels
// (mamba/selective_scan.cu), called directly (selective_scan_fwd_cuda / selective_scan_bwd_cuda,
// no autograd), in float32 with delta_softplus, delta_bias and D, at
//   (batch, d_inner, length, n) = (8, 2048, 2048, 16) with z, (2, 2048, 8192, 16),
//                                 (64, 2048, 256, 16), (8, 2048, 2048, 64)   (groups = 1).
//
// Bytes: the inputs each call must read and the outputs it must write, once each (4 bytes an
// element; z counts only in the case that has it):
//   forward   reads u, delta, z (b l d each), B, C (b l n each), A (d n), D, delta_bias (d);
//             writes out (b l d)
//             = 4 [(3 + z) b l d + 2 b l n + d n + 2 d]
//   backward  reads u, delta, z, grad_out, B, C, A, D, delta_bias; writes du, ddelta, dz, dB,
//             dC, dA, dD, ddelta_bias
//             = 4 [(5 + 2 z) b l d + 4 b l n + 2 d n + 4 d]
// GB/s = bytes / median time, set against the device's copy bandwidth, measured here with a
// 1 GiB cudaMemcpyAsync device to device (2 x bytes / time: each byte read and written): the
// most any memory-bound kernel reaches. The kernels also read and write chunk states and
// partial sums (see the header of selective_scan.cu), so "% of copy" is the share of that
// ceiling that goes to the necessary traffic.
//
// Before timing, one small case, (batch, d_inner, length, n) = (2, 64, 300, 16) with z, is
// run on the CPU loops and on CUDA; the largest |difference| of the output and of every
// gradient is printed, with the normalised error max |cuda - cpu| / (2e-3 + 6e-4 |cpu|) (the
// parity tests' float32 tolerance, <= 1 passes). Above 1 it prints FAIL and exits with 1.
//
// Inputs are fresh random values made on the GPU (never zeros): u, z, B, C, D, grad_out
// ~ N(0, 1), delta ~ 0.5 N(0, 1), delta_bias ~ U(-4, -2) (so dt = softplus(delta + bias) is
// ~0.02 to 0.13, as Mamba's dt initialisation), A = -exp(0.5 N(0, 1)).
// Timing: --warmup untimed calls, then --runs calls each between two CUDA events on the
// device's stream; the table gives the median and, in brackets, the fastest and slowest.
//
//   build/bench_scan            (--quick: 5 runs after 2 warm-up calls)
// In a build without CUDA or on a machine without a GPU it says so and exits with status 0.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#ifdef SSM_CUDA
#include "cuda/check.h"
#include "cuda/runtime.h"
#endif
#include "bench/timing.h"
#include "mamba/selective_scan.h"
#include "tensor/ops.h"
#include "tensor/random.h"
#include "train/flags.h"

using namespace ssm;

#ifdef SSM_CUDA

namespace {

using bench::time_on_stream;
using bench::Timing;

struct ScanSize {
  int64_t batch, d_inner, length, n;
  bool z;
  std::string str() const {
    return "(" + std::to_string(batch) + ", " + std::to_string(d_inner) + ", " +
           std::to_string(length) + ", " + std::to_string(n) + ")" + (z ? " z" : "");
  }
};

// The inputs of one scan on `device` (see the header for the distributions).
ScanInputs make_inputs(const ScanSize& sz, Generator& gen, Device device) {
  const DType f32 = DType::Float32;
  const Shape rows{sz.batch, sz.length, sz.d_inner};
  ScanInputs in;
  in.u = Tensor::randn(rows, f32, &gen, device);
  in.delta = mul(Tensor::randn(rows, f32, &gen, device), 0.5);
  in.A = neg(exp(mul(Tensor::randn({sz.d_inner, sz.n}, f32, &gen, device), 0.5)));
  in.B = Tensor::randn({sz.batch, sz.length, sz.n}, f32, &gen, device);
  in.C = Tensor::randn({sz.batch, sz.length, sz.n}, f32, &gen, device);
  in.D = Tensor::randn({sz.d_inner}, f32, &gen, device);
  if (sz.z) in.z = Tensor::randn(rows, f32, &gen, device);
  in.delta_bias = Tensor::uniform({sz.d_inner}, -4, -2, f32, &gen, device);
  return in;
}

// Every gradient of `in`'s inputs, allocated on their device (the kernels write them all).
ScanGrads make_grads(const ScanInputs& in) {
  auto like = [](const Tensor& t) {
    return t.defined() ? Tensor::empty(t.shape(), t.dtype(), t.device()) : Tensor();
  };
  return {like(in.u), like(in.delta), like(in.A), like(in.B),
          like(in.C), like(in.D),     like(in.z), like(in.delta_bias)};
}

// max |a - b| and max |a - b| / (atol + rtol |b|), a on the GPU, b on the CPU.
struct Difference {
  double max_abs = 0, normalised = 0;
};
Difference difference(const Tensor& gpu, const Tensor& cpu) {
  const std::vector<double> a = gpu.to(Device::cpu()).to_doubles(), b = cpu.to_doubles();
  Difference d;
  for (size_t i = 0; i < a.size(); ++i) {
    const double diff = std::fabs(a[i] - b[i]);
    const double norm = diff / (2e-3 + 6e-4 * std::fabs(b[i]));
    if (!(diff <= d.max_abs)) d.max_abs = diff; // NaN sticks
    if (!(norm <= d.normalised)) d.normalised = norm;
  }
  return d;
}

// CPU vs CUDA on one small case; false (and FAIL printed) when a result is out of tolerance.
bool sanity_check(int device) {
  const ScanSize sz{2, 64, 300, 16, true};
  Generator gen(7);
  const ScanInputs cpu_in = make_inputs(sz, gen, Device::cpu());
  auto to_gpu = [&](const Tensor& t) { return t.to(Device::cuda(device)); };
  const ScanInputs gpu_in = {to_gpu(cpu_in.u), to_gpu(cpu_in.delta),     to_gpu(cpu_in.A),
                             to_gpu(cpu_in.B), to_gpu(cpu_in.C),         to_gpu(cpu_in.D),
                             to_gpu(cpu_in.z), to_gpu(cpu_in.delta_bias)};
  const ScanShape s = make_scan_shape("bench_scan", cpu_in, true);
  const Tensor grad_out = Tensor::randn(cpu_in.u.shape(), DType::Float32, &gen);

  Tensor cpu_out = Tensor::empty(cpu_in.u.shape()), no_last;
  selective_scan_fwd_cpu(cpu_in, s, cpu_out, no_last);
  ScanGrads cpu_grads = make_grads(cpu_in);
  selective_scan_bwd_cpu(cpu_in, s, grad_out, Tensor(), cpu_grads);
  Tensor gpu_out = Tensor::empty(gpu_in.u.shape(), DType::Float32, gpu_in.u.device());
  selective_scan_fwd_cuda(gpu_in, s, gpu_out, no_last);
  ScanGrads gpu_grads = make_grads(gpu_in);
  selective_scan_bwd_cuda(gpu_in, s, grad_out.to(gpu_in.u.device()), Tensor(), gpu_grads);

  const std::vector<std::pair<const char*, std::pair<Tensor, Tensor>>> results = {
      {"out", {gpu_out, cpu_out}},
      {"du", {gpu_grads.u, cpu_grads.u}},
      {"ddelta", {gpu_grads.delta, cpu_grads.delta}},
      {"dA", {gpu_grads.A, cpu_grads.A}},
      {"dB", {gpu_grads.B, cpu_grads.B}},
      {"dC", {gpu_grads.C, cpu_grads.C}},
      {"dD", {gpu_grads.D, cpu_grads.D}},
      {"dz", {gpu_grads.z, cpu_grads.z}},
      {"ddelta_bias", {gpu_grads.delta_bias, cpu_grads.delta_bias}}};
  std::printf("check: CPU loops vs CUDA at %s float32, max |difference| (normalised error):\n ",
              sz.str().c_str());
  double worst = 0;
  for (const auto& [name, pair] : results) {
    const Difference d = difference(pair.first, pair.second);
    std::printf(" %s %.2g (%.2g)", name, d.max_abs, d.normalised);
    if (!(d.normalised <= worst)) worst = d.normalised;
  }
  std::printf("\n  worst normalised error %.3g: %s\n", worst,
              worst <= 1 ? "within the parity tests' float32 tolerance"
                         : "FAIL, outside the parity tests' float32 tolerance");
  return worst <= 1;
}

// cudaMemcpyAsync device to device of 1 GiB: GB/s = 2 bytes / time.
double copy_bandwidth(int device, int64_t warmup, int64_t runs, Generator& gen) {
  const int64_t n = int64_t(1) << 28;
  const Tensor src = Tensor::rand({n}, DType::Float32, &gen, Device::cuda(device));
  const Tensor dst = Tensor::empty({n}, DType::Float32, Device::cuda(device));
  const cudaStream_t stream = cuda::stream(device);
  const Timing t = time_on_stream(stream, warmup, runs, [&] {
    SSM_CUDA_CHECK(cudaMemcpyAsync(dst.raw_data(), src.raw_data(), static_cast<size_t>(n) * 4,
                                   cudaMemcpyDeviceToDevice, stream));
  });
  return 2.0 * n * 4 / (t.median_ms * 1e-3) * 1e-9;
}

struct Row {
  std::string direction, size;
  Timing timing;
  double bytes;
};

} // namespace

static int run(int argc, char** argv) {
  int64_t device = 0, runs = 20, warmup = 5;
  bool quick = false;
  train::Flags flags("bench_scan",
                     "Forward and backward time of the CUDA selective scan (float32, softplus, "
                     "delta_bias, D) at four Mamba sizes, in ms and GB/s against the measured "
                     "device-to-device copy bandwidth, after a CPU-vs-CUDA check.");
  flags.add("device", &device, "CUDA device index");
  flags.add("runs", &runs, "timed runs per measurement (the median is reported)");
  flags.add("warmup", &warmup, "untimed runs before timing");
  flags.add("quick", &quick, "5 runs after 2 warm-up runs (overrides --runs and --warmup)");
  if (!flags.parse(argc, argv)) return 0;
  if (quick) runs = 5, warmup = 2;
  if (runs < 1 || warmup < 0)
    throw std::invalid_argument("bench_scan: expected --runs >= 1 and --warmup >= 0");
  if (!cuda_available()) {
    std::printf("bench_scan: CUDA is not available (no usable GPU on this machine)\n");
    return 0;
  }
  cuda::select_device(static_cast<int>(device));
  const int dev = static_cast<int>(device);
  cudaDeviceProp prop;
  SSM_CUDA_CHECK(cudaGetDeviceProperties(&prop, dev));
  std::printf("device %d: %s, %d SMs; median of %lld runs after %lld warm-up runs\n", dev,
              prop.name, prop.multiProcessorCount, static_cast<long long>(runs),
              static_cast<long long>(warmup));
  if (!sanity_check(dev)) return 1;

  Generator gen(0);
  const double copy_gbs = copy_bandwidth(dev, warmup, runs, gen);
  std::printf("device-to-device copy: %.0f GB/s\n", copy_gbs);

  const std::vector<ScanSize> sizes = {{8, 2048, 2048, 16, true},
                                       {2, 2048, 8192, 16, false},
                                       {64, 2048, 256, 16, false},
                                       {8, 2048, 2048, 64, false}};
  const cudaStream_t stream = cuda::stream(dev);
  std::vector<Row> rows;
  for (const ScanSize& sz : sizes) {
    std::printf("scan %s\n", sz.str().c_str());
    std::fflush(stdout);
    const ScanInputs in = make_inputs(sz, gen, Device::cuda(dev));
    const ScanShape s = make_scan_shape("bench_scan", in, true);
    Tensor out = Tensor::empty(in.u.shape(), DType::Float32, in.u.device()), no_last;
    const Tensor grad_out = Tensor::randn(in.u.shape(), DType::Float32, &gen, in.u.device());
    ScanGrads grads = make_grads(in);
    const double bld = double(sz.batch) * sz.length * sz.d_inner,
                 bln = double(sz.batch) * sz.length * sz.n;
    const double dn = double(sz.d_inner) * sz.n, d = double(sz.d_inner), z = sz.z ? 1 : 0;
    const double fwd_bytes = 4 * ((3 + z) * bld + 2 * bln + dn + 2 * d);
    const double bwd_bytes = 4 * ((5 + 2 * z) * bld + 4 * bln + 2 * dn + 4 * d);
    rows.push_back({"forward", sz.str(),
                    time_on_stream(stream, warmup, runs,
                                   [&] { selective_scan_fwd_cuda(in, s, out, no_last); }),
                    fwd_bytes});
    rows.push_back(
        {"backward", sz.str(),
         time_on_stream(stream, warmup, runs,
                        [&] { selective_scan_bwd_cuda(in, s, grad_out, Tensor(), grads); }),
         bwd_bytes});
  }

  std::printf(
      "\n| scan | (batch, d_inner, length, n) | median ms (fastest - slowest) | GB/s | %% of copy "
      "|\n");
  std::printf("|---|---|---|---|---|\n");
  for (const Row& r : rows) {
    const double gbs = r.bytes / (r.timing.median_ms * 1e-3) * 1e-9;
    std::printf("| %s | %s | %.3f (%.3f - %.3f) | %.0f | %.0f%% |\n", r.direction.c_str(),
                r.size.c_str(), r.timing.median_ms, r.timing.fastest_ms, r.timing.slowest_ms, gbs,
                100 * gbs / copy_gbs);
  }
  return 0;
}

#else

static int run(int argc, char** argv) {
  train::Flags flags("bench_scan", "CUDA selective scan timings; needs a build with CUDA.");
  bool quick = false;
  flags.add("quick", &quick, "fewer runs");
  if (!flags.parse(argc, argv)) return 0;
  std::printf(
      "bench_scan: CUDA is not available (this build has no CUDA: nvcc was not found or "
      "NO_CUDA=1)\n");
  return 0;
}

#endif

int main(int argc, char** argv) { return train::run_program(run, argc, argv); }
