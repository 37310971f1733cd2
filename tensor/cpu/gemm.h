// gemm.h: the CPU matrix multiply, C = op(A) op(B) (or C += op(A) op(B)).
//
//   op(A): M x K, op(B): K x N, C: M x N, every matrix row-major with a leading dimension
//   (the distance in elements between consecutive rows of the stored matrix):
//     trans_a == false: op(A)(i, k) = A[i * lda + k]   (A stored M x K)
//     trans_a == true:  op(A)(i, k) = A[k * lda + i]   (A stored K x M, read transposed)
//   and likewise for B (stored K x N, or N x K when trans_b). C(i, j) = C[i * ldc + j].
// So the transpose of a contiguous matrix, and a row-strided view such as a narrowed column
// range, are read in place without a copy.
//
// Algorithm (Goto & van de Geijn, "Anatomy of high-performance matrix multiplication", ACM
// TOMS 2008; the loop names follow BLIS, Van Zee & van de Geijn, ACM TOMS 2015):
//
//   for jc in N by NC:                     columns of C and of op(B)
//     for pc in K by KC:                   pack op(B)[pc:pc+KC, jc:jc+NC] -> B~ (lives in L3)
//       for ic in M by MC:                 pack op(A)[ic:ic+MC, pc:pc+KC] -> A~ (lives in L2)
//         for jr in NC by NR:              one KC x NR micro-panel of B~ (stays in L1)
//           for ir in MC by MR:            one MR x KC micro-panel of A~ (streams from L2)
//             C[ir:ir+MR, jr:jr+NR] += A~ micro-panel * B~ micro-panel      (micro-kernel)
//
// Packing copies each block into a 64-byte-aligned buffer laid out in exactly the order the
// micro-kernel reads it (A~: per micro-panel, MR values of one k after another; B~: per
// micro-panel, NR values of one k after another), zero-padded to whole micro-panels, so the
// kernel only ever does unit-stride loads whatever the strides or transposes of A and B.
//
// Micro-kernel and block sizes on AVX-512 (the development machine: AMD EPYC, L1d 48 KiB,
// L2 1 MiB per core, L3 32 MiB shared), for float32 (float64 in brackets):
//   register tile MR x NR = 12 x 32 (12 x 16): each row of the C tile is 2 zmm registers, so
//     the tile takes 24 of the 32 zmm registers; per k the kernel loads 2 vectors of B~,
//     broadcasts 12 values of A~ and issues 24 independent FMAs, enough to cover the FMA
//     latency (4 cycles) on both FMA pipes (2 x 4 = 8 in flight needed).
//   KC = 256: the B~ micro-panel (KC x NR = 256 x 32 x 4 B = 32 KiB, the same bytes in
//     float64) takes two thirds of L1 and is reused by every A~ micro-panel of the block,
//     which stream through the rest (12 KiB each, 24 KiB in float64; read in order, so the
//     hardware prefetches them). Measured on that machine, KC from 192 to 512 lies within
//     10%; smaller KC loses more to reloading the C tile, which is prefetched one tile ahead.
//   MC = 504 (252): the A~ block (MC x KC, 504 KiB) fills about half of L2.
//   NC = 3072 (1536): the B~ block (KC x NC, 3 MiB) sits in L3.
// On AVX2 the tile is 6 x 16 (6 x 8) in 12 of the 16 ymm registers; without either the
// kernel is plain C++ on a 4 x 4 tile (also the int64 path).
//
// Threads: C is split along its longer side (whole micro-panels) into parallel_for pieces;
// each thread runs the loops above on its piece with its own part of a packing workspace,
// which the calling thread keeps from one call to the next. Products under
// gemm_flops_per_thread run on the calling thread (parallel.h: starting threads costs).
//
// Determinism: every element of C is one chain c = fma(a_ik, b_kj, c) (a*b+c in the plain
// kernel) over k = 0, 1, ..., K-1, starting from 0 or from C; the C tile is stored and
// reloaded between KC blocks in its own type, which loses nothing. No piece of K is summed
// separately, so the bits depend neither on the thread count nor on where tiles fall.
#pragma once

#include <cstdint>

namespace ssm::cpu {

// C = op(A) op(B) when accumulate is false (C's old contents are ignored, even NaN), else
// C += op(A) op(B). K == 0 gives C = 0 (or leaves C unchanged when accumulating).
// Instantiated for float, double and int64_t (the last on the plain kernel).
template <typename T>
void gemm(int64_t M, int64_t N, int64_t K, const T* A, int64_t lda, bool trans_a, const T* B,
          int64_t ldb, bool trans_b, T* C, int64_t ldc, bool accumulate);

// Flops above which gemm splits its work across threads: below it, starting a thread costs
// more than it saves. Callers that parallelise a batch of small products use the same bound.
constexpr int64_t gemm_flops_per_thread = int64_t(1) << 22;

} // namespace ssm::cpu
