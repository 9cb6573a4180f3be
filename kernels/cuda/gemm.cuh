// A register-tiled, shared-memory GEMM template: C = op(A) @ op(B) for one matrix of a batch.
// graphc/codegen/cuda.py instantiates it per GemmCall (float: 128x128 tiles, 8x8 per thread;
// double: 64x64 tiles, 4x4 per thread; both 256 threads) inside a generated kernel whose grid
// is (column tiles, row tiles, batch).
//
// Each block stages a BM x BK slice of op(A) and a BK x BN slice of op(B) in shared memory
// (A transposed, so that a thread's reads along M are one broadcast per warp), while the
// next slices are already being fetched into registers (double buffering through registers).
// A thread owns TM x TN outputs spaced 16 (= BN / TN) columns and BM / TM rows apart, so that
// its shared-memory reads of B are conflict-free and its stores to C coalesce.
#pragma once

template <class T, int BM, int BN, int BK, int TM, int TN, bool TA, bool TB, bool FULL>
__device__ __forceinline__ void gc_gemm(const T* __restrict__ A, const T* __restrict__ B, T* __restrict__ C,
                                        int M, int N, int K) {
    const int THREADS = (BM / TM) * (BN / TN);
    const int A_LOADS = BM * BK / THREADS, B_LOADS = BK * BN / THREADS;
    __shared__ T As[BK][BM + 1];
    __shared__ T Bs[BK][BN];
    const int tid = threadIdx.x;
    const int tx = tid % (BN / TN), ty = tid / (BN / TN);
    const int row0 = blockIdx.y * BM, col0 = blockIdx.x * BN;
    const int lda = TA ? M : K, ldb = TB ? K : N;

    T acc[TM][TN];
#pragma unroll
    for (int i = 0; i < TM; ++i)
#pragma unroll
        for (int j = 0; j < TN; ++j) acc[i][j] = 0;

    T a_next[A_LOADS], b_next[B_LOADS];
    // Element q of this thread's share of the A (B) slice at k0: its (m, k) ((k, n)) position.
    auto fetch = [&](int k0) {
#pragma unroll
        for (int q = 0; q < A_LOADS; ++q) {
            int idx = tid + q * THREADS;
            int m = TA ? idx % BM : idx / BK, k = TA ? idx / BM : idx % BK;
            int gm = row0 + m, gk = k0 + k;
            bool ok = FULL || (gm < M && gk < K);
            a_next[q] = ok ? (TA ? A[(long long)gk * lda + gm] : A[(long long)gm * lda + gk]) : (T)0;
        }
#pragma unroll
        for (int q = 0; q < B_LOADS; ++q) {
            int idx = tid + q * THREADS;
            int k = TB ? idx % BK : idx / BN, n = TB ? idx / BK : idx % BN;
            int gk = k0 + k, gn = col0 + n;
            bool ok = FULL || (gk < K && gn < N);
            b_next[q] = ok ? (TB ? B[(long long)gn * ldb + gk] : B[(long long)gk * ldb + gn]) : (T)0;
        }
    };
    auto stage = [&]() {
#pragma unroll
        for (int q = 0; q < A_LOADS; ++q) {
            int idx = tid + q * THREADS;
            int m = TA ? idx % BM : idx / BK, k = TA ? idx / BM : idx % BK;
            As[k][m] = a_next[q];
        }
#pragma unroll
        for (int q = 0; q < B_LOADS; ++q) {
            int idx = tid + q * THREADS;
            int k = TB ? idx % BK : idx / BN, n = TB ? idx / BK : idx % BN;
            Bs[k][n] = b_next[q];
        }
    };

    fetch(0);
    for (int k0 = 0; k0 < K; k0 += BK) {
        stage();
        __syncthreads();
        if (k0 + BK < K) fetch(k0 + BK);   // in flight while this slice is multiplied
#pragma unroll
        for (int k = 0; k < BK; ++k) {
            T ra[TM], rb[TN];
#pragma unroll
            for (int i = 0; i < TM; ++i) ra[i] = As[k][ty + i * (BM / TM)];
#pragma unroll
            for (int j = 0; j < TN; ++j) rb[j] = Bs[k][tx + j * (BN / TN)];
#pragma unroll
            for (int i = 0; i < TM; ++i)
#pragma unroll
                for (int j = 0; j < TN; ++j) acc[i][j] += ra[i] * rb[j];
        }
        __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < TM; ++i) {
        int gm = row0 + ty + i * (BM / TM);
#pragma unroll
        for (int j = 0; j < TN; ++j) {
            int gn = col0 + tx + j * (BN / TN);
            if (FULL || (gm < M && gn < N)) C[(long long)gm * N + gn] = acc[i][j];
        }
    }
}
