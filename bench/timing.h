// timing.h: how the benchmarks time work. Each measurement runs its work `warmup` times
// untimed, then `runs` times, and reports the median (with the fastest and slowest run).
//   time_on_host    wall clock around each call (CPU work, or GPU work the call waits for)
//   time_on_stream  two CUDA events around each run on a stream. The host waits for each
//                   timed run to finish, so the GPU is idle when the start event is recorded
//                   and passes it at once: the interval covers the work's host-side part (an
//                   op's checks, allocation and launch) as well as the GPU's.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <vector>

#ifdef SSM_CUDA
#include "cuda/check.h"
#include "cuda/runtime.h"
#endif

namespace ssm::bench {

struct Timing {
  double median_ms = 0, fastest_ms = 0, slowest_ms = 0;
};

inline Timing summarize(std::vector<double> ms) {
  std::sort(ms.begin(), ms.end());
  return {ms[ms.size() / 2], ms.front(), ms.back()};
}

inline Timing time_on_host(int64_t warmup, int64_t runs, const std::function<void()>& call) {
  for (int64_t i = 0; i < warmup; ++i) call();
  std::vector<double> ms;
  for (int64_t i = 0; i < runs; ++i) {
    const auto start = std::chrono::steady_clock::now();
    call();
    const auto stop = std::chrono::steady_clock::now();
    ms.push_back(std::chrono::duration<double, std::milli>(stop - start).count());
  }
  return summarize(ms);
}

#ifdef SSM_CUDA

// A CUDA event, destroyed with its scope.
class Event {
 public:
  Event() { SSM_CUDA_CHECK(cudaEventCreate(&event_)); }
  ~Event() { cudaEventDestroy(event_); }
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  cudaEvent_t get() const { return event_; }

 private:
  cudaEvent_t event_ = nullptr;
};

// `queue_work` issues its work on `stream`.
inline Timing time_on_stream(cudaStream_t stream, int64_t warmup, int64_t runs,
                             const std::function<void()>& queue_work) {
  for (int64_t i = 0; i < warmup; ++i) queue_work();
  SSM_CUDA_CHECK(cudaStreamSynchronize(stream));
  Event start, stop;
  std::vector<double> ms;
  for (int64_t i = 0; i < runs; ++i) {
    SSM_CUDA_CHECK(cudaEventRecord(start.get(), stream));
    queue_work();
    SSM_CUDA_CHECK(cudaEventRecord(stop.get(), stream));
    SSM_CUDA_CHECK(cudaEventSynchronize(stop.get()));
    float elapsed = 0;
    SSM_CUDA_CHECK(cudaEventElapsedTime(&elapsed, start.get(), stop.get()));
    ms.push_back(elapsed);
  }
  return summarize(ms);
}

#endif

} // namespace ssm::bench
