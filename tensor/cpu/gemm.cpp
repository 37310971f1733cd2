// gemm.cpp: the blocked, packed, multi-threaded CPU GEMM described in gemm.h.
//
//   A~ buffer: ceil(mc / MR) micro-panels, each KC x MR (k-major: a[k * MR + r])
//   B~ buffer: ceil(nc / NR) micro-panels, each KC x NR (k-major: b[k * NR + c])
//   C tile:    MR x NR, row-major with leading dimension ldc
#include "tensor/cpu/gemm.h"

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <new>
#include <type_traits>

#include "tensor/cpu/parallel.h"

#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
#include <immintrin.h>
#endif

namespace ssm::cpu {

// ---- SIMD registers ------------------------------------------------------------------------
// Simd<T> names one vector register of T and the five operations the micro-kernel needs. The
// register tile is `rows` x (vectors_per_row * lanes) elements of C.

// Plain C++: one element per "register", a 4 x 4 tile. Used for int64 and where no vector
// extension is enabled. int64 products wrap around (two's complement, as in PyTorch) instead
// of overflowing, which C++ leaves undefined for signed integers.
template <typename T>
struct Simd {
  using Reg = T;
  static constexpr int lanes = 1;
  static constexpr int vectors_per_row = 4;
  static constexpr int rows = 4;
  static Reg zero() { return T(0); }
  static Reg load(const T* p) { return *p; }
  static void store(T* p, Reg r) { *p = r; }
  static Reg broadcast(T v) { return v; }
  static Reg fma(Reg a, Reg b, Reg c) {
    if constexpr (std::is_integral_v<T>) {
      using U = std::make_unsigned_t<T>;
      return static_cast<T>(static_cast<U>(a) * static_cast<U>(b) + static_cast<U>(c));
    } else {
      return a * b + c;
    }
  }
};

#if defined(__AVX512F__)
template <>
struct Simd<float> {
  using Reg = __m512;
  static constexpr int lanes = 16;
  static constexpr int vectors_per_row = 2;
  static constexpr int rows = 12;
  static Reg zero() { return _mm512_setzero_ps(); }
  static Reg load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, Reg r) { _mm512_storeu_ps(p, r); }
  static Reg broadcast(float v) { return _mm512_set1_ps(v); }
  static Reg fma(Reg a, Reg b, Reg c) { return _mm512_fmadd_ps(a, b, c); }
};
template <>
struct Simd<double> {
  using Reg = __m512d;
  static constexpr int lanes = 8;
  static constexpr int vectors_per_row = 2;
  static constexpr int rows = 12;
  static Reg zero() { return _mm512_setzero_pd(); }
  static Reg load(const double* p) { return _mm512_loadu_pd(p); }
  static void store(double* p, Reg r) { _mm512_storeu_pd(p, r); }
  static Reg broadcast(double v) { return _mm512_set1_pd(v); }
  static Reg fma(Reg a, Reg b, Reg c) { return _mm512_fmadd_pd(a, b, c); }
};
#elif defined(__AVX2__) && defined(__FMA__)
template <>
struct Simd<float> {
  using Reg = __m256;
  static constexpr int lanes = 8;
  static constexpr int vectors_per_row = 2;
  static constexpr int rows = 6;
  static Reg zero() { return _mm256_setzero_ps(); }
  static Reg load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, Reg r) { _mm256_storeu_ps(p, r); }
  static Reg broadcast(float v) { return _mm256_set1_ps(v); }
  static Reg fma(Reg a, Reg b, Reg c) { return _mm256_fmadd_ps(a, b, c); }
};
template <>
struct Simd<double> {
  using Reg = __m256d;
  static constexpr int lanes = 4;
  static constexpr int vectors_per_row = 2;
  static constexpr int rows = 6;
  static Reg zero() { return _mm256_setzero_pd(); }
  static Reg load(const double* p) { return _mm256_loadu_pd(p); }
  static void store(double* p, Reg r) { _mm256_storeu_pd(p, r); }
  static Reg broadcast(double v) { return _mm256_set1_pd(v); }
  static Reg fma(Reg a, Reg b, Reg c) { return _mm256_fmadd_pd(a, b, c); }
};
#endif

// ---- block sizes ---------------------------------------------------------------------------
// Derived from the cache sizes as gemm.h explains: the B~ micro-panel takes two thirds of L1,
// the A~ block half of L2, the B~ block 3 MiB of L3.
template <typename T>
struct Blocking {
  static constexpr int64_t MR = Simd<T>::rows;
  static constexpr int64_t NR = Simd<T>::vectors_per_row * Simd<T>::lanes;
  static constexpr int64_t l1_bytes = 48 * 1024, l2_bytes = 1024 * 1024;
  static constexpr int64_t KC = l1_bytes * 2 / 3 / (NR * int64_t(sizeof(T)));
  static constexpr int64_t MC = l2_bytes / 2 / (KC * int64_t(sizeof(T))) / MR * MR;
  static constexpr int64_t NC = (int64_t(3) << 20) / (KC * int64_t(sizeof(T))) / NR * NR;
};

// ---- micro-kernel --------------------------------------------------------------------------

// C tile (MR x NR at c, leading dimension ldc) = [C tile if load_c] + a~ b~ over kc steps:
//   a: kc x MR (a[k * MR + r]),  b: kc x NR (b[k * NR + j]).
template <typename T>
static void micro_kernel(int64_t kc, const T* a, const T* b, T* c, int64_t ldc, bool load_c,
                         const T* c_next) {
  using S = Simd<T>;
  constexpr int MR = S::rows, NV = S::vectors_per_row, L = S::lanes;
  // The next tile's rows (NV * L elements = 1 or 2 cache lines each) load from L2/L3 while
  // this tile computes.
  for (int r = 0; r < MR; ++r) {
    __builtin_prefetch(c_next + r * ldc, 1);
    __builtin_prefetch(c_next + r * ldc + NV * L - 1, 1);
  }
  typename S::Reg acc[MR][NV];
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[r][v] = load_c ? S::load(c + r * ldc + v * L) : S::zero();
  for (int64_t k = 0; k < kc; ++k) {
    typename S::Reg b_row[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) b_row[v] = S::load(b + v * L);
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      const typename S::Reg a_rk = S::broadcast(a[r]);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[r][v] = S::fma(a_rk, b_row[v], acc[r][v]);
    }
    a += MR;
    b += NV * L;
  }
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) S::store(c + r * ldc + v * L, acc[r][v]);
}

// The same on a partial tile (rows x cols of C, at most MR x NR): runs the full kernel on a
// local MR x NR tile and copies the valid part in and out, so edge elements go through the
// very same arithmetic as interior ones.
template <typename T>
static void micro_kernel_edge(int64_t kc, const T* a, const T* b, T* c, int64_t ldc, int64_t rows,
                              int64_t cols, bool load_c) {
  constexpr int64_t MR = Blocking<T>::MR, NR = Blocking<T>::NR;
  alignas(64) T tile[MR * NR] = {};
  if (load_c)
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = 0; j < cols; ++j) tile[r * NR + j] = c[r * ldc + j];
  micro_kernel(kc, a, b, tile, NR, load_c, tile);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < cols; ++j) c[r * ldc + j] = tile[r * NR + j];
}

// ---- packing -------------------------------------------------------------------------------

// The operands of one gemm call.
template <typename T>
struct GemmArgs {
  int64_t M, N, K;
  const T* A;
  int64_t lda;
  bool trans_a;
  const T* B;
  int64_t ldb;
  bool trans_b;
  T* C;
  int64_t ldc;
  bool accumulate;
};

// The packings that transpose (rows of A, or of B when trans_b, into k-major panels) copy
// pack_chunk values of each source row per pass: the pass then writes a few consecutive
// destination lines while they sit in L1, where copying whole rows scatters every pass over
// the whole panel. On the development machine this packs 2-4x faster.
constexpr int64_t pack_chunk = 8;

// A~ <- op(A)[i0 : i0+mc, p0 : p0+kc], as ceil(mc / MR) micro-panels of kc x MR, the rows
// past mc zero-filled.
template <typename T>
static void pack_a(const GemmArgs<T>& g, int64_t i0, int64_t mc, int64_t p0, int64_t kc, T* dst) {
  constexpr int64_t MR = Blocking<T>::MR;
  for (int64_t ir = 0; ir < mc; ir += MR, dst += kc * MR) {
    const int64_t rows = std::min(MR, mc - ir);
    if (g.trans_a) {
      // op(A)(i, k) = A[k * lda + i]: each k gives `rows` consecutive values.
      for (int64_t k = 0; k < kc; ++k) {
        const T* src = g.A + (p0 + k) * g.lda + i0 + ir;
        for (int64_t r = 0; r < rows; ++r) dst[k * MR + r] = src[r];
        for (int64_t r = rows; r < MR; ++r) dst[k * MR + r] = T(0);
      }
    } else {
      // op(A)(i, k) = A[i * lda + k]: a transpose, done pack_chunk k's at a time.
      for (int64_t k0 = 0; k0 < kc; k0 += pack_chunk) {
        const int64_t n = std::min(pack_chunk, kc - k0);
        for (int64_t r = 0; r < rows; ++r) {
          const T* src = g.A + (i0 + ir + r) * g.lda + p0 + k0;
          for (int64_t k = 0; k < n; ++k) dst[(k0 + k) * MR + r] = src[k];
        }
        for (int64_t r = rows; r < MR; ++r)
          for (int64_t k = 0; k < n; ++k) dst[(k0 + k) * MR + r] = T(0);
      }
    }
  }
}

// B~ <- op(B)[p0 : p0+kc, j0 : j0+nc], as ceil(nc / NR) micro-panels of kc x NR, the columns
// past nc zero-filled.
template <typename T>
static void pack_b(const GemmArgs<T>& g, int64_t p0, int64_t kc, int64_t j0, int64_t nc, T* dst) {
  constexpr int64_t NR = Blocking<T>::NR;
  for (int64_t jr = 0; jr < nc; jr += NR, dst += kc * NR) {
    const int64_t cols = std::min(NR, nc - jr);
    if (g.trans_b) {
      // op(B)(k, j) = B[j * ldb + k]: a transpose, done pack_chunk k's at a time.
      for (int64_t k0 = 0; k0 < kc; k0 += pack_chunk) {
        const int64_t n = std::min(pack_chunk, kc - k0);
        for (int64_t j = 0; j < cols; ++j) {
          const T* src = g.B + (j0 + jr + j) * g.ldb + p0 + k0;
          for (int64_t k = 0; k < n; ++k) dst[(k0 + k) * NR + j] = src[k];
        }
        for (int64_t j = cols; j < NR; ++j)
          for (int64_t k = 0; k < n; ++k) dst[(k0 + k) * NR + j] = T(0);
      }
    } else {
      // op(B)(k, j) = B[k * ldb + j]: each k gives `cols` consecutive values.
      for (int64_t k = 0; k < kc; ++k) {
        const T* src = g.B + (p0 + k) * g.ldb + j0 + jr;
        for (int64_t j = 0; j < cols; ++j) dst[k * NR + j] = src[j];
        for (int64_t j = cols; j < NR; ++j) dst[k * NR + j] = T(0);
      }
    }
  }
}

// ---- the five loops ------------------------------------------------------------------------

struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};

static int64_t round_up(int64_t x, int64_t multiple) {
  return (x + multiple - 1) / multiple * multiple;
}

// Elements of the A~ and B~ buffers that gemm_block needs for a rows x cols piece of C, each
// rounded up to whole 64-byte lines so that B~ starts aligned right after A~.
template <typename T>
struct PackingSizes {
  int64_t a, b;
  PackingSizes(int64_t rows, int64_t cols, int64_t K) {
    using Bk = Blocking<T>;
    const int64_t line = 64 / int64_t(sizeof(T));
    const int64_t kc = std::min(Bk::KC, K);
    a = round_up(std::min(Bk::MC, round_up(rows, Bk::MR)) * kc, line);
    b = round_up(kc * std::min(Bk::NC, round_up(cols, Bk::NR)), line);
  }
};

// The calling thread's packing memory, 64-byte aligned, kept from one call to the next and
// grown when a call needs more: allocating the few MiB afresh in every call costs page faults,
// which showed up as occasional calls many times slower than usual.
template <typename T>
static T* workspace(int64_t count) {
  thread_local std::unique_ptr<T, FreeDeleter> buffer;
  thread_local int64_t capacity = 0;
  if (count > capacity) {
    buffer.reset();
    capacity = 0;
    const size_t bytes = static_cast<size_t>(round_up(count * int64_t(sizeof(T)), 64));
    buffer.reset(static_cast<T*>(std::aligned_alloc(64, bytes)));
    if (!buffer) throw std::bad_alloc();
    capacity = count;
  }
  return buffer.get();
}

// C[m0:m1, n0:n1] of the product, on the calling thread, packing into a_packed and b_packed
// (PackingSizes(m1 - m0, n1 - n0, K) elements each, at least).
template <typename T>
static void gemm_block(const GemmArgs<T>& g, int64_t m0, int64_t m1, int64_t n0, int64_t n1,
                       T* a_packed, T* b_packed) {
  using Bk = Blocking<T>;
  for (int64_t jc = n0; jc < n1; jc += Bk::NC) {
    const int64_t nc = std::min(Bk::NC, n1 - jc);
    for (int64_t pc = 0; pc < g.K; pc += Bk::KC) {
      const int64_t kc = std::min(Bk::KC, g.K - pc);
      // The first KC block overwrites C unless accumulating; later blocks add to it.
      const bool load_c = g.accumulate || pc > 0;
      pack_b(g, pc, kc, jc, nc, b_packed);
      for (int64_t ic = m0; ic < m1; ic += Bk::MC) {
        const int64_t mc = std::min(Bk::MC, m1 - ic);
        pack_a(g, ic, mc, pc, kc, a_packed);
        for (int64_t jr = 0; jr < nc; jr += Bk::NR) {
          const T* b_panel = b_packed + jr * kc;
          const int64_t cols = std::min(Bk::NR, nc - jr);
          for (int64_t ir = 0; ir < mc; ir += Bk::MR) {
            const T* a_panel = a_packed + ir * kc;
            const int64_t rows = std::min(Bk::MR, mc - ir);
            T* c_tile = g.C + (ic + ir) * g.ldc + jc + jr;
            // The tile below is next; where that one is partial or absent, the tile prefetches
            // itself (harmless), so no address outside C is formed.
            const bool next_full = ir + 2 * Bk::MR <= mc && cols == Bk::NR;
            const T* c_next = next_full ? c_tile + Bk::MR * g.ldc : c_tile;
            if (rows == Bk::MR && cols == Bk::NR)
              micro_kernel(kc, a_panel, b_panel, c_tile, g.ldc, load_c, c_next);
            else
              micro_kernel_edge(kc, a_panel, b_panel, c_tile, g.ldc, rows, cols, load_c);
          }
        }
      }
    }
  }
}

template <typename T>
void gemm(int64_t M, int64_t N, int64_t K, const T* A, int64_t lda, bool trans_a, const T* B,
          int64_t ldb, bool trans_b, T* C, int64_t ldc, bool accumulate) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {
    if (!accumulate)
      for (int64_t i = 0; i < M; ++i) std::fill(C + i * ldc, C + i * ldc + N, T(0));
    return;
  }
  using Bk = Blocking<T>;
  const GemmArgs<T> g{M, N, K, A, lda, trans_a, B, ldb, trans_b, C, ldc, accumulate};
  // Split C along its longer side, in whole micro-panels, into pieces of at least
  // gemm_flops_per_thread flops, each with its own part of the workspace.
  const bool split_rows = M / Bk::MR >= N / Bk::NR;
  const int64_t panel = split_rows ? Bk::MR : Bk::NR;
  const int64_t panels = split_rows ? (M + Bk::MR - 1) / Bk::MR : (N + Bk::NR - 1) / Bk::NR;
  const int64_t flops_per_panel = 2 * panel * (split_rows ? N : M) * K;
  const int64_t pieces = parallel_pieces(panels, gemm_flops_per_thread / flops_per_panel + 1);
  const int64_t widest = (panels + pieces - 1) / pieces * panel;
  const PackingSizes<T> sizes(split_rows ? widest : M, split_rows ? N : widest, K);
  T* const packing = workspace<T>(pieces * (sizes.a + sizes.b));
  parallel_for(0, pieces, 1, [&](int64_t first, int64_t last) {
    for (int64_t p = first; p < last; ++p) {
      // Piece p covers panels [panels * p / pieces, panels * (p + 1) / pieces).
      const int64_t lo = panels * p / pieces * panel;
      const int64_t hi = panels * (p + 1) / pieces * panel;
      T* const a_packed = packing + p * (sizes.a + sizes.b);
      T* const b_packed = a_packed + sizes.a;
      if (split_rows)
        gemm_block(g, lo, std::min(M, hi), 0, N, a_packed, b_packed);
      else
        gemm_block(g, 0, M, lo, std::min(N, hi), a_packed, b_packed);
    }
  });
}

template void gemm<float>(int64_t, int64_t, int64_t, const float*, int64_t, bool, const float*,
                          int64_t, bool, float*, int64_t, bool);
template void gemm<double>(int64_t, int64_t, int64_t, const double*, int64_t, bool, const double*,
                           int64_t, bool, double*, int64_t, bool);
template void gemm<int64_t>(int64_t, int64_t, int64_t, const int64_t*, int64_t, bool,
                            const int64_t*, int64_t, bool, int64_t*, int64_t, bool);

} // namespace ssm::cpu
