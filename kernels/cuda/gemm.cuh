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
    // Element q of this thread's share of the A (B) slice: its (m, k) ((k, n)) position in the
    // tile, walking memory's contiguous direction so that neighbouring threads load neighbours.
    auto a_at = [&](int q, int& m, int& k) {
        const int idx = tid + q * THREADS;
        m = TA ? idx % BM : idx / BK;
        k = TA ? idx / BM : idx % BK;
    };
    auto b_at = [&](int q, int& k, int& n) {
        const int idx = tid + q * THREADS;
        k = TB ? idx % BK : idx / BN;
        n = TB ? idx / BK : idx % BN;
    };
    auto fetch = [&](int k0) {
#pragma unroll
        for (int q = 0; q < A_LOADS; ++q) {
            int m, k;
            a_at(q, m, k);
            int gm = row0 + m, gk = k0 + k;
            bool ok = FULL || (gm < M && gk < K);
            a_next[q] = ok ? (TA ? A[(long long)gk * lda + gm] : A[(long long)gm * lda + gk]) : (T)0;
        }
#pragma unroll
        for (int q = 0; q < B_LOADS; ++q) {
            int k, n;
            b_at(q, k, n);
            int gk = k0 + k, gn = col0 + n;
            bool ok = FULL || (gk < K && gn < N);
            b_next[q] = ok ? (TB ? B[(long long)gn * ldb + gk] : B[(long long)gk * ldb + gn]) : (T)0;
        }
    };
    auto stage = [&]() {
#pragma unroll
        for (int q = 0; q < A_LOADS; ++q) {
            int m, k;
            a_at(q, m, k);
            As[k][m] = a_next[q];
        }
#pragma unroll
        for (int q = 0; q < B_LOADS; ++q) {
            int k, n;
            b_at(q, k, n);
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

// The float32 fast path, for matrices that are whole tiles (M, N multiples of 128, K of 8):
// 128 x 128 x 8 tiles, two shared-memory stages (one barrier per slice), 16-byte loads from
// global memory (one float4 of A and one of B per thread per slice) and from shared memory
// (four per k step: a thread's 8 rows and 8 columns are two runs of 4, 64 apart, so that a
// half-warp's float4 reads of B cover 256 contiguous bytes without bank conflicts).
template <bool TA, bool TB>
__device__ __forceinline__ void gc_sgemm128(const float* __restrict__ A, const float* __restrict__ B,
                                            float* __restrict__ C, int M, int N, int K) {
    __shared__ __align__(16) float As[2][8][128];
    __shared__ __align__(16) float Bs[2][8][128];
    const int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
    const int row0 = blockIdx.y * 128, col0 = blockIdx.x * 128;
    const int lda = TA ? M : K, ldb = TB ? K : N;
    // This thread's float4 of each slice: (A) 4 consecutive k of row am (!TA) or 4 consecutive
    // rows at k = ak (TA); (B) 4 consecutive columns at k = bk (!TB) or 4 consecutive k of
    // column bn (TB).
    const int am = TA ? (tid % 32) * 4 : tid / 2, ak = TA ? tid / 32 : (tid % 2) * 4;
    const int bn = TB ? tid / 2 : (tid % 32) * 4, bk = TB ? (tid % 2) * 4 : tid / 32;
    const float* a_ptr = TA ? A + (long long)ak * lda + row0 + am : A + (long long)(row0 + am) * lda + ak;
    const float* b_ptr = TB ? B + (long long)(col0 + bn) * ldb + bk : B + (long long)bk * ldb + col0 + bn;
    const long long a_step = TA ? 8LL * lda : 8, b_step = TB ? 8 : 8LL * ldb;

    float acc[8][8];
#pragma unroll
    for (int i = 0; i < 8; ++i)
#pragma unroll
        for (int j = 0; j < 8; ++j) acc[i][j] = 0.0f;

    float4 a_next = *reinterpret_cast<const float4*>(a_ptr);
    float4 b_next = *reinterpret_cast<const float4*>(b_ptr);
    int stage = 0;
    for (int k0 = 0; k0 < K; k0 += 8) {
        if (TA) {
            *reinterpret_cast<float4*>(&As[stage][ak][am]) = a_next;
        } else {
            As[stage][ak + 0][am] = a_next.x; As[stage][ak + 1][am] = a_next.y;
            As[stage][ak + 2][am] = a_next.z; As[stage][ak + 3][am] = a_next.w;
        }
        if (TB) {
            Bs[stage][bk + 0][bn] = b_next.x; Bs[stage][bk + 1][bn] = b_next.y;
            Bs[stage][bk + 2][bn] = b_next.z; Bs[stage][bk + 3][bn] = b_next.w;
        } else {
            *reinterpret_cast<float4*>(&Bs[stage][bk][bn]) = b_next;
        }
        __syncthreads();
        if (k0 + 8 < K) {   // the next slice is in flight while this one is multiplied
            a_ptr += a_step;
            b_ptr += b_step;
            a_next = *reinterpret_cast<const float4*>(a_ptr);
            b_next = *reinterpret_cast<const float4*>(b_ptr);
        }
#pragma unroll
        for (int k = 0; k < 8; ++k) {
            const float4 a0 = *reinterpret_cast<const float4*>(&As[stage][k][ty * 4]);
            const float4 a1 = *reinterpret_cast<const float4*>(&As[stage][k][64 + ty * 4]);
            const float4 b0 = *reinterpret_cast<const float4*>(&Bs[stage][k][tx * 4]);
            const float4 b1 = *reinterpret_cast<const float4*>(&Bs[stage][k][64 + tx * 4]);
            const float ra[8] = {a0.x, a0.y, a0.z, a0.w, a1.x, a1.y, a1.z, a1.w};
            const float rb[8] = {b0.x, b0.y, b0.z, b0.w, b1.x, b1.y, b1.z, b1.w};
#pragma unroll
            for (int i = 0; i < 8; ++i)
#pragma unroll
                for (int j = 0; j < 8; ++j) acc[i][j] += ra[i] * rb[j];
        }
        stage ^= 1;
    }
#pragma unroll
    for (int i = 0; i < 8; ++i) {
        const int r = row0 + (i < 4 ? ty * 4 + i : 64 + ty * 4 + i - 4);
        float* c = C + (long long)r * N + col0;
        *reinterpret_cast<float4*>(c + tx * 4) = make_float4(acc[i][0], acc[i][1], acc[i][2], acc[i][3]);
        *reinterpret_cast<float4*>(c + 64 + tx * 4) = make_float4(acc[i][4], acc[i][5], acc[i][6], acc[i][7]);
    }
}
