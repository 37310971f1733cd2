// parallel.h: parallel_for, the one way the CPU loops use several cores.
//
// parallel_for(begin, end, grain, fn) splits the index range [begin, end) into
//     chunks = min(num_threads(), (end - begin) / grain)
// contiguous pieces of nearly equal length (each at least `grain` long) and calls fn(lo, hi)
// once per piece: the first on the calling thread, the others on fresh std::threads. It
// returns when every piece is done. With one chunk (a range shorter than two grains, or one
// thread) fn(begin, end) runs inline and no thread is started.
//
// Threads are started per call rather than kept in a pool: that costs some tens of
// microseconds, so `grain` should make one piece worth at least that much work.
//
// Determinism: the chunking only decides which thread handles which indices. A loop whose
// output element i is computed from i alone (each output written by exactly one index, any
// sum inside it taken in a fixed order) gives the same bits for every thread count.
//
// Nesting: a parallel_for reached from inside a piece runs inline, so an op that splits its
// batch loop may call one that splits its own loop without oversubscribing the cores.
//
// Exceptions: if pieces throw, the first exception (in piece order) is rethrown to the caller
// after every piece has finished.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#if defined(__linux__)
#include <pthread.h>
#include <sched.h>
#endif

namespace ssm::cpu {

// True on a thread that is running a piece of a parallel_for.
inline thread_local bool in_parallel_region = false;

// The environment variable SSM_NUM_THREADS when set (a positive integer), else the number of
// hardware threads. Read at every call, so a benchmark or test can change it with setenv().
inline int num_threads() {
  if (const char* text = std::getenv("SSM_NUM_THREADS")) {
    char* end = nullptr;
    const long value = std::strtol(text, &end, 10);
    if (end == text || *end != '\0' || value < 1 || value > 4096)
      throw std::invalid_argument(std::string("SSM_NUM_THREADS: expected an integer in ") +
                                  "[1, 4096], got '" + text + "'");
    return static_cast<int>(value);
  }
  const unsigned hardware = std::thread::hardware_concurrency();
  return hardware == 0 ? 1 : static_cast<int>(hardware);
}

// The number of pieces parallel_for(begin, begin + length, grain, fn) runs: 1 inside a
// piece, else min(num_threads(), length / grain), at least 1. A caller that prepares state
// per piece (scratch buffers) sizes it with this and then runs parallel_for(0, pieces, 1, ...).
inline int64_t parallel_pieces(int64_t length, int64_t grain) {
  const int64_t pieces = length / (grain < 1 ? 1 : grain);
  if (in_parallel_region || pieces <= 1) return 1;
  return std::min<int64_t>(pieces, num_threads());
}

// Where a new worker thread may start. On Linux a new thread often starts on its creator's
// CPU, even preempting the creator there, and moves to an idle CPU only at a later load
// balance, milliseconds away; a piece shorter than that ran before or after the creator's
// piece instead of beside it (measured on the 2-core development machine: in some processes
// nearly every pair of 0.5 ms pieces took 1.0 ms). So the creator moves each new worker off
// its own CPU before the worker starts its piece, and the worker then takes back the
// creator's full CPU set.
class WorkerPlacement {
 public:
#if defined(__linux__)
  WorkerPlacement() {
    CPU_ZERO(&allowed_);
    CPU_ZERO(&elsewhere_);
    if (sched_getaffinity(0, sizeof(allowed_), &allowed_) != 0) return;
    elsewhere_ = allowed_;
    const int here = sched_getcpu();
    if (here >= 0 && here < CPU_SETSIZE) CPU_CLR(here, &elsewhere_);
    usable_ = CPU_COUNT(&elsewhere_) > 0;
  }
  // Called by the creator right after starting `worker`, which waits for it (see
  // parallel_for). Placement is only a hint: failures are ignored.
  void start_elsewhere(std::thread& worker) const {
    if (usable_) pthread_setaffinity_np(worker.native_handle(), sizeof(elsewhere_), &elsewhere_);
  }
  // Called by the worker when it starts running.
  void release() const {
    if (usable_) sched_setaffinity(0, sizeof(allowed_), &allowed_);
  }

 private:
  cpu_set_t allowed_, elsewhere_;
  bool usable_ = false;
#else
  void start_elsewhere(std::thread&) const {}
  void release() const {}
#endif
};

template <typename Fn>
void parallel_for(int64_t begin, int64_t end, int64_t grain, Fn&& fn) {
  const int64_t length = end - begin;
  if (length <= 0) return;
  const int64_t chunks = parallel_pieces(length, grain);
  if (chunks <= 1) {
    fn(begin, end);
    return;
  }
  // Piece c covers [begin + length*c/chunks, begin + length*(c+1)/chunks).
  auto piece_start = [&](int64_t c) { return begin + length * c / chunks; };
  std::vector<std::exception_ptr> errors(chunks);
  auto run_piece = [&](int64_t c) {
    in_parallel_region = true;
    try {
      fn(piece_start(c), piece_start(c + 1));
    } catch (...) {
      errors[c] = std::current_exception();
    }
    in_parallel_region = false;
  };
  const WorkerPlacement placement;
  // Workers 1..placed have been moved off the creator's CPU. A worker that starts before its
  // move yields until then, which hands the CPU back to the creator to make the move.
  std::atomic<int64_t> placed{0};
  std::vector<std::thread> workers;
  workers.reserve(chunks - 1);
  for (int64_t c = 1; c < chunks; ++c) {
    try {
      workers.emplace_back([&, c] {
        while (placed.load(std::memory_order_acquire) < c) std::this_thread::yield();
        placement.release();
        run_piece(c);
      });
      placement.start_elsewhere(workers.back());
    } catch (const std::system_error&) {
      run_piece(c); // the system refused another thread: this piece runs here instead
    }
    placed.store(c, std::memory_order_release);
  }
  run_piece(0);
  for (std::thread& worker : workers) worker.join();
  for (const std::exception_ptr& error : errors)
    if (error) std::rethrow_exception(error);
}

} // namespace ssm::cpu
