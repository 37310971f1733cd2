// bench_s4.cpp: time of S4's FFT convolution, y = u * K + D u computed as
// irfft(rfft(u, N) rfft(K, N), N)[:L] + D u with N the smallest power of two >= 2L
// (s4/fft_conv.cpp; cuFFT and the kernels of s4/fft.cu on the GPU), called through the autograd op
// s4::causal_conv as a model calls it:
//   forward, inference   under NoGradGuard: no spectrum kept for backward
//   forward              u, K, D require gradients: the op keeps rfft(u) and rfft(K)
//   forward + backward   the same, then backward from a fixed random grad_y: du, dK, dD
// at (batch, channels, length) = (8, 2048, 2048) in float32 on CUDA (S4D's convolution at the
// issue's shape; the kernel K is an input here, its generation is not timed), and on the CPU
// at a small shape, (4, 64, 1024) by default.
//
// Reference point (the figure, not measured here): torch.fft takes about 1.1 ms forward
// and 3.3 ms forward + backward at (8, 2048, 2048) on an H200.
//
// Before timing, results are checked: on the CPU, the FFT path against the direct O(L^2) sum
// (s4::causal_conv_direct) at (2, 8, 300); on the GPU, y and every gradient against the CPU at
// (2, 64, 300). The error is max |a - ref| / max |ref| (tests/test_fft.cpp says why), against
// the parity tests' float32 tolerance 5e-6; above it the benchmark prints FAIL and exits with 1.
//
// Inputs are fresh random values (Tensor::randn, made on the device that runs them; never
// zeros). GPU timing: --warmup untimed calls, then --runs calls each between two CUDA events on
// the device's stream, the host waiting for each to finish, so the interval covers the op's
// host-side work (checks, allocation from the caching allocator, cuFFT plan lookup, launches)
// as well as the GPU's. Leaf gradients are forgotten (zero_grad) before each forward +
// backward, so no run pays for accumulating into the previous one's. CPU timing: wall clock
// (std::chrono::steady_clock) around each call. Tables give the median and, in brackets, the
// fastest and slowest.
//
//   build/bench_s4                (--quick: 5 runs after 2 warm-up calls)
//   build/bench_s4 --batch 4 --length 4096
// In a build without CUDA or on a machine without a GPU it times the CPU, says that CUDA is
// not available, and exits with status 0.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#ifdef SSM_CUDA
#include "cuda/check.h"
#include "cuda/runtime.h"
#endif
#include "autograd/functions.h"
#include "bench/timing.h"
#include "s4/fft.h"
#include "tensor/cpu/parallel.h"
#include "tensor/ops.h"
#include "tensor/random.h"
#include "train/flags.h"

using namespace ssm;

namespace {

// The parity tests' float32 tolerance (tests/test_cuda_fft.cpp), relative to max |ref|.
constexpr double kF32Tolerance = 5e-6;

using bench::time_on_host;
using bench::Timing;

struct ConvSize {
  int64_t batch, channels, length;
  std::string str() const {
    return "(" + std::to_string(batch) + ", " + std::to_string(channels) + ", " +
           std::to_string(length) + ")";
  }
};

// u (B, H, L), K (H, L), D (H), each a leaf that requires a gradient, and grad_y (B, H, L).
struct ConvInputs {
  Var u, K, D;
  Tensor grad_y;
};

ConvInputs make_inputs(const ConvSize& sz, Generator& gen, Device device) {
  const DType f32 = DType::Float32;
  const Shape bhl{sz.batch, sz.channels, sz.length};
  ConvInputs in;
  in.u = Var(Tensor::randn(bhl, f32, &gen, device), true);
  in.K = Var(Tensor::randn({sz.channels, sz.length}, f32, &gen, device), true);
  in.D = Var(Tensor::randn({sz.channels}, f32, &gen, device), true);
  in.grad_y = Tensor::randn(bhl, f32, &gen, device);
  return in;
}

// The three measured calls.
void forward_inference(const ConvInputs& in) {
  const NoGradGuard no_grad;
  s4::causal_conv(in.u, in.K, in.D);
}
void forward(const ConvInputs& in) { s4::causal_conv(in.u, in.K, in.D); }
void forward_backward(const ConvInputs& in) {
  for (const Var* v : {&in.u, &in.K, &in.D}) v->zero_grad();
  s4::causal_conv(in.u, in.K, in.D).backward(in.grad_y);
}

struct Measurement {
  const char* what;
  void (*call)(const ConvInputs&);
  const char* reference; // the torch.fft figure beside it, or ""
};
const Measurement kMeasurements[] = {
    {"forward, inference", forward_inference, ""},
    {"forward", forward, "~1.1 ms (torch.fft, H200)"},
    {"forward + backward", forward_backward, "~3.3 ms (torch.fft, H200)"},
};

// max |a - ref| / max |ref| (NaN sticks).
double rel_max(const Tensor& a, const Tensor& ref) {
  const std::vector<double> va = a.to(Device::cpu()).to_doubles(), vr = ref.to_doubles();
  double diff = 0, scale = 0;
  for (size_t i = 0; i < va.size(); ++i) {
    const double d = std::fabs(va[i] - vr[i]);
    if (!(d <= diff)) diff = d;
    scale = std::max(scale, std::fabs(vr[i]));
  }
  return scale > 0 ? diff / scale : diff;
}

// Prints "  name err" and returns whether err is within the float32 tolerance.
bool report(const char* name, double err) {
  std::printf("  %s %.2g", name, err);
  return err <= kF32Tolerance;
}

void print_table(const std::vector<std::pair<std::string, Timing>>& rows, const ConvSize& sz,
                 bool gpu) {
  std::printf("\n| %s | (batch, channels, length) | median ms (fastest - slowest) |%s\n",
              gpu ? "CUDA, float32" : "CPU, float32", gpu ? " reference |" : "");
  std::printf("|---|---|---|%s\n", gpu ? "---|" : "");
  for (size_t i = 0; i < rows.size(); ++i) {
    const Timing& t = rows[i].second;
    std::printf("| %s | %s | %.3f (%.3f - %.3f) |", rows[i].first.c_str(), sz.str().c_str(),
                t.median_ms, t.fastest_ms, t.slowest_ms);
    if (gpu) std::printf(" %s |", kMeasurements[i].reference);
    std::printf("\n");
  }
}

// ---- CPU -------------------------------------------------------------------------------------

// The FFT path against the direct sum on the CPU.
bool check_cpu() {
  Generator gen(3);
  const ConvInputs in = make_inputs({2, 8, 300}, gen, Device::cpu());
  const Tensor y = s4::causal_conv(in.u, in.K, in.D).value();
  const Tensor ref = s4::causal_conv_direct(in.u.value(), in.K.value(), in.D.value());
  std::printf("check: CPU FFT path vs direct sum at (2, 8, 300) float32, max|diff|/max|ref|:");
  const bool ok = report("y", rel_max(y, ref));
  std::printf("\n  %s\n", ok ? "within tolerance" : "FAIL, outside the float32 tolerance 5e-6");
  return ok;
}

bool bench_cpu(const ConvSize& sz, int64_t warmup, int64_t runs) {
  std::printf(
      "CPU: %d threads (SSM_NUM_THREADS caps them); median of %lld runs after %lld "
      "warm-up runs, wall clock\n",
      cpu::num_threads(), static_cast<long long>(runs), static_cast<long long>(warmup));
  if (!check_cpu()) return false;
  Generator gen(1);
  const ConvInputs in = make_inputs(sz, gen, Device::cpu());
  std::vector<std::pair<std::string, Timing>> rows;
  for (const Measurement& m : kMeasurements)
    rows.push_back({m.what, time_on_host(warmup, runs, [&] { m.call(in); })});
  print_table(rows, sz, false);
  return true;
}

#ifdef SSM_CUDA

// ---- CUDA ------------------------------------------------------------------------------------

using bench::time_on_stream;

// y and every gradient, CUDA against the CPU, on one small case.
bool check_cuda(int device) {
  const ConvSize sz{2, 64, 300};
  Generator gen(7);
  const ConvInputs cpu = make_inputs(sz, gen, Device::cpu());
  const Device gpu_device = Device::cuda(device);
  const ConvInputs gpu = {Var(cpu.u.value().to(gpu_device), true),
                          Var(cpu.K.value().to(gpu_device), true),
                          Var(cpu.D.value().to(gpu_device), true), cpu.grad_y.to(gpu_device)};
  const Var y_cpu = s4::causal_conv(cpu.u, cpu.K, cpu.D);
  y_cpu.backward(cpu.grad_y);
  const Var y_gpu = s4::causal_conv(gpu.u, gpu.K, gpu.D);
  y_gpu.backward(gpu.grad_y);
  std::printf("check: CUDA vs CPU at %s float32, max|diff|/max|ref|:", sz.str().c_str());
  bool ok = report("y", rel_max(y_gpu.value(), y_cpu.value()));
  ok &= report("du", rel_max(gpu.u.grad(), cpu.u.grad()));
  ok &= report("dK", rel_max(gpu.K.grad(), cpu.K.grad()));
  ok &= report("dD", rel_max(gpu.D.grad(), cpu.D.grad()));
  std::printf("\n  %s\n", ok ? "within the parity tests' float32 tolerance (5e-6)"
                             : "FAIL, outside the parity tests' float32 tolerance (5e-6)");
  return ok;
}

// false when the check failed.
bool bench_cuda(const ConvSize& sz, int dev, int64_t warmup, int64_t runs) {
  cuda::select_device(dev);
  cudaDeviceProp prop;
  SSM_CUDA_CHECK(cudaGetDeviceProperties(&prop, dev));
  std::printf("\ndevice %d: %s, %d SMs; median of %lld runs after %lld warm-up runs, CUDA events\n",
              dev, prop.name, prop.multiProcessorCount, static_cast<long long>(runs),
              static_cast<long long>(warmup));
  if (!check_cuda(dev)) return false;
  Generator gen(0);
  const ConvInputs in = make_inputs(sz, gen, Device::cuda(dev));
  const cudaStream_t stream = cuda::stream(dev);
  std::vector<std::pair<std::string, Timing>> rows;
  for (const Measurement& m : kMeasurements)
    rows.push_back({m.what, time_on_stream(stream, warmup, runs, [&] { m.call(in); })});
  print_table(rows, sz, true);
  const cuda::AllocatorStats stats = cuda::allocator_stats(dev);
  std::printf("peak GPU memory in use: %.0f MiB\n", stats.peak_bytes / 1048576.0);
  return true;
}

#endif

} // namespace

static int run(int argc, char** argv) {
  int64_t device = 0, runs = 20, warmup = 5, batch = 8, channels = 2048, length = 2048;
  int64_t cpu_batch = 4, cpu_channels = 64, cpu_length = 1024, cpu_runs = 10;
  bool quick = false;
  train::Flags flags("bench_s4",
                     "Forward and forward + backward time of S4's FFT convolution "
                     "(s4::causal_conv, float32) on CUDA at (8, 2048, 2048) and on the CPU at a "
                     "small shape, after checking the results.");
  flags.add("device", &device, "CUDA device index");
  flags.add("runs", &runs, "timed GPU runs per measurement (the median is reported)");
  flags.add("warmup", &warmup, "untimed runs before timing");
  flags.add("quick", &quick, "5 runs (2 on the CPU) after 2 warm-up runs");
  flags.add("batch", &batch, "GPU batch");
  flags.add("channels", &channels, "GPU channels H");
  flags.add("length", &length, "GPU sequence length L");
  flags.add("cpu-batch", &cpu_batch, "CPU batch");
  flags.add("cpu-channels", &cpu_channels, "CPU channels H");
  flags.add("cpu-length", &cpu_length, "CPU sequence length L");
  flags.add("cpu-runs", &cpu_runs, "timed CPU runs per measurement");
  if (!flags.parse(argc, argv)) return 0;
  if (quick) runs = 5, warmup = 2, cpu_runs = 2;
  if (runs < 1 || cpu_runs < 1 || warmup < 0 || batch < 1 || channels < 1 || length < 1 ||
      cpu_batch < 1 || cpu_channels < 1 || cpu_length < 1)
    throw std::invalid_argument(
        "bench_s4: expected --runs, --cpu-runs, and every size >= 1, --warmup >= 0");

  if (!bench_cpu({cpu_batch, cpu_channels, cpu_length}, std::min<int64_t>(warmup, 2), cpu_runs))
    return 1;
#ifdef SSM_CUDA
  if (!cuda_available()) {
    std::printf("\nbench_s4: CUDA is not available (no usable GPU on this machine)\n");
    return 0;
  }
  return bench_cuda({batch, channels, length}, static_cast<int>(device), warmup, runs) ? 0 : 1;
#else
  std::printf(
      "\nbench_s4: CUDA is not available (this build has no CUDA: nvcc was not found or "
      "NO_CUDA=1)\n");
  return 0;
#endif
}

int main(int argc, char** argv) { return train::run_program(run, argc, argv); }
