// Device helpers that graphc's generated CUDA kernels call (graphc/codegen/cuda.py).
//
// Every primitive keeps NumPy's meaning, exactly as the LLVM backend does: integer arithmetic
// wraps, integer division and remainder by zero give 0, INT_MIN // -1 wraps, floats convert to
// ints as x86 does (NaN and out-of-range values give INT_MIN, where a GPU would saturate),
// maximum and minimum propagate NaN, float floor division and remainder follow npy_divmod.
// Transcendentals are CUDA's own device functions (no -use_fast_math): their documented error
// bounds are listed in graphc/codegen/cuda_expr.py.
#pragma once
// No system headers: NVRTC (which builds these modules in milliseconds) has none.
#ifndef INFINITY
#define INFINITY __int_as_float(0x7f800000)
#endif
#ifndef NAN
#define NAN __int_as_float(0x7fffffff)
#endif

typedef long long i64;
typedef unsigned long long u64;

// --------------------------------------------------------------------------- integers
template <class T> struct gc_unsigned;
template <> struct gc_unsigned<int> { typedef unsigned type; };
template <> struct gc_unsigned<i64> { typedef u64 type; };

template <class T> __device__ __forceinline__ T gc_add(T a, T b) {
    typedef typename gc_unsigned<T>::type U;
    return (T)((U)a + (U)b);
}
template <class T> __device__ __forceinline__ T gc_sub(T a, T b) {
    typedef typename gc_unsigned<T>::type U;
    return (T)((U)a - (U)b);
}
template <class T> __device__ __forceinline__ T gc_mul(T a, T b) {
    typedef typename gc_unsigned<T>::type U;
    return (T)((U)a * (U)b);
}
template <class T> __device__ __forceinline__ T gc_neg(T a) { return gc_sub((T)0, a); }
template <class T> __device__ __forceinline__ T gc_iabs(T a) { return a < 0 ? gc_neg(a) : a; }

template <class T> __device__ __forceinline__ T gc_int_min();
template <> __device__ __forceinline__ int gc_int_min<int>() { return (int)0x80000000u; }
template <> __device__ __forceinline__ i64 gc_int_min<i64>() { return (i64)0x8000000000000000ull; }

// NumPy floor division / remainder of ints: by zero gives 0, INT_MIN // -1 wraps to INT_MIN.
template <class T> __device__ __forceinline__ T gc_ifloordiv(T x, T y) {
    if (y == 0) return 0;
    if (y == -1) return gc_neg(x);
    T q = x / y, r = x % y;
    return (r != 0 && ((r < 0) != (y < 0))) ? q - 1 : q;
}
template <class T> __device__ __forceinline__ T gc_imod(T x, T y) {
    if (y == 0 || y == -1) return 0;
    T r = x % y;
    return (r != 0 && ((r < 0) != (y < 0))) ? r + y : r;
}

// Floor division / modulo of index values by a positive constant (Python semantics).
template <class T> __device__ __forceinline__ T gc_idx_floordiv(T a, T d) {
    T q = a / d;
    return (a % d < 0) ? q - 1 : q;
}
template <class T> __device__ __forceinline__ T gc_idx_mod(T a, T d) {
    T r = a % d;
    return r < 0 ? r + d : r;
}

// x ** y for ints by squaring, wrapping; negative y gives 1 for x == 1, +-1 for x == -1, else 0.
template <class T> __device__ __forceinline__ T gc_ipow(T x, T y) {
    if (y < 0) return x == 1 ? 1 : (x == -1 ? ((y & 1) ? -1 : 1) : 0);
    T acc = 1;
    while (y) {
        if (y & 1) acc = gc_mul(acc, x);
        x = gc_mul(x, x);
        y >>= 1;
    }
    return acc;
}

// --------------------------------------------------------------------------- floats
__device__ __forceinline__ float gc_max(float a, float b) { return (a != a || b != b) ? a + b : (a > b ? a : b); }
__device__ __forceinline__ double gc_max(double a, double b) { return (a != a || b != b) ? a + b : (a > b ? a : b); }
__device__ __forceinline__ float gc_min(float a, float b) { return (a != a || b != b) ? a + b : (a < b ? a : b); }
__device__ __forceinline__ double gc_min(double a, double b) { return (a != a || b != b) ? a + b : (a < b ? a : b); }
template <class T> __device__ __forceinline__ T gc_max(T a, T b) { return a > b ? a : b; }
template <class T> __device__ __forceinline__ T gc_min(T a, T b) { return a < b ? a : b; }

template <class T> __device__ __forceinline__ T gc_fsign(T x) { return x > 0 ? (T)1 : (x < 0 ? (T)-1 : x); }

// 1 / (1 + e^-x) for x >= 0, e^x / (1 + e^x) below (no cancellation), one exponential and one
// correctly rounded reciprocal, no branch.
__device__ __forceinline__ float gc_sigmoid(float x) {
    const float e = expf(-fabsf(x));
    const float r = __frcp_rn(1.0f + e);
    return x >= 0.0f ? r : e * r;
}
__device__ __forceinline__ double gc_sigmoid(double x) {
    if (x >= 0.0) return 1.0 / (1.0 + exp(-x));
    double e = exp(x);
    return e / (1.0 + e);
}

// npy_divmod: floor division and remainder of floats, fmod-based.
template <class T> __device__ __forceinline__ T gc_fmod_floor(T x, T y) {
    T mod = fmod(x, y);
    if (y == 0) return mod;
    if (mod != 0) {
        if ((y < 0) != (mod < 0)) mod += y;
        return mod;
    }
    return copysign((T)0, y);
}
template <class T> __device__ __forceinline__ T gc_ffloordiv(T x, T y) {
    if (y == 0) return x / y;
    T mod = fmod(x, y);
    T div = (x - mod) / y;
    if (mod != 0 && ((y < 0) != (mod < 0))) div -= 1;
    if (div == 0) return copysign((T)0, x / y);
    T fl = floor(div);
    if (div - fl > (T)0.5) fl += 1;
    return fl;
}

// float -> int as x86 converts: NaN and out-of-range values give the most negative int.
template <class I, class F> __device__ __forceinline__ I gc_ftoi(F v) {
    const F lo = -(F)((u64)1 << (sizeof(I) * 8 - 1)), hi = (F)((u64)1 << (sizeof(I) * 8 - 1));
    return (v >= lo && v < hi) ? (I)v : gc_int_min<I>();
}

// --------------------------------------------------------------------------- random (Philox4x32-10)
struct gc_words { unsigned w[4]; };

__device__ __forceinline__ gc_words gc_philox(u64 block, u64 run, unsigned k0, unsigned k1) {
    unsigned c0 = (unsigned)block, c1 = (unsigned)(block >> 32), c2 = (unsigned)run, c3 = (unsigned)(run >> 32);
    for (int i = 0; i < 10; ++i) {
        unsigned hi0 = __umulhi(c0, 0xD2511F53u), lo0 = c0 * 0xD2511F53u;
        unsigned hi1 = __umulhi(c2, 0xCD9E8D57u), lo1 = c2 * 0xCD9E8D57u;
        unsigned n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1;
        c0 = n0; c1 = lo1; c2 = n2; c3 = lo0;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    gc_words out = {{c0, c1, c2, c3}};
    return out;
}
__device__ __forceinline__ double gc_unit53(unsigned hi, unsigned lo) {
    return ((double)(hi >> 5) * 67108864.0 + (double)(lo >> 6)) * 1.1102230246251565e-16;
}
__device__ __forceinline__ float gc_uniform_f32(u64 flat, u64 run, unsigned k0, unsigned k1) {
    gc_words w = gc_philox(flat >> 2, run, k0, k1);
    return (float)(w.w[flat & 3] >> 8) * 5.9604644775390625e-08f;
}
__device__ __forceinline__ double gc_uniform_f64(u64 flat, u64 run, unsigned k0, unsigned k1) {
    gc_words w = gc_philox(flat >> 1, run, k0, k1);
    return (flat & 1) ? gc_unit53(w.w[2], w.w[3]) : gc_unit53(w.w[0], w.w[1]);
}
__device__ __forceinline__ double gc_normal_f64(u64 flat, u64 run, unsigned k0, unsigned k1) {
    gc_words w = gc_philox(flat >> 1, run, k0, k1);
    double u1 = gc_unit53(w.w[0], w.w[1]), u2 = gc_unit53(w.w[2], w.w[3]);
    double radius = sqrt(-2.0 * log1p(-u1));
    double angle = 6.283185307179586 * u2;
    return radius * ((flat & 1) ? sin(angle) : cos(angle));
}

// --------------------------------------------------------------------------- errors
// error[0]: the code of the first failed check (0: none), error[1]: its value, error[2]: the
// failing iteration (flat). The first thread to fail wins.
__device__ __forceinline__ void gc_fail(i64* error, i64 code, i64 value, i64 where) {
    if (atomicCAS((u64*)error, 0ull, (u64)code) == 0ull) {
        error[1] = value;
        error[2] = where;
    }
}

// --------------------------------------------------------------------------- reductions
// Combiners over (value) or (value, index) pairs; identities come from the generator.
struct gc_sum { template <class T> __device__ __forceinline__ T operator()(T a, T b) const { return a + b; } };
struct gc_prod { template <class T> __device__ __forceinline__ T operator()(T a, T b) const { return a * b; } };
struct gc_imax { template <class T> __device__ __forceinline__ T operator()(T a, T b) const { return gc_max(a, b); } };
struct gc_imin { template <class T> __device__ __forceinline__ T operator()(T a, T b) const { return gc_min(a, b); } };
struct gc_or { template <class T> __device__ __forceinline__ T operator()(T a, T b) const { return a | b; } };
struct gc_and { template <class T> __device__ __forceinline__ T operator()(T a, T b) const { return a & b; } };
struct gc_wsum { template <class T> __device__ __forceinline__ T operator()(T a, T b) const { return gc_add(a, b); } };
struct gc_wprod { template <class T> __device__ __forceinline__ T operator()(T a, T b) const { return gc_mul(a, b); } };

// Shuffles move bools as ints.
template <class T> __device__ __forceinline__ T gc_shfl_down(T v, int delta) { return __shfl_down_sync(0xffffffffu, v, delta); }
__device__ __forceinline__ bool gc_shfl_down(bool v, int delta) { return __shfl_down_sync(0xffffffffu, (int)v, delta) != 0; }

// The combination of every thread's `v` in a block (blockDim.x a multiple of 32, at most
// 1024), returned to every thread. `scratch` holds 32 values; the block must reach this call
// together.
template <class T, class Op> __device__ __forceinline__ T gc_block_reduce(T v, Op op, T identity, T* scratch) {
    for (int offset = 16; offset > 0; offset >>= 1) v = op(v, gc_shfl_down(v, offset));
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    if (warp == 0) {
        v = lane < (int)(blockDim.x >> 5) ? scratch[lane] : identity;
        for (int offset = 16; offset > 0; offset >>= 1) v = op(v, gc_shfl_down(v, offset));
        if (lane == 0) scratch[0] = v;
    }
    __syncthreads();
    v = scratch[0];
    __syncthreads();
    return v;
}

// argmax / argmin over (value, position) pairs: the first extremum wins, a NaN counts as the
// extremum (NumPy). `better(x, cur)` as in the thread-local loop, ties to the lower position.
template <class T> __device__ __forceinline__ bool gc_arg_better(T x, i64 xi, T cur, i64 ci, bool is_max) {
    bool x_nan = x != x, c_nan = cur != cur;
    if (x_nan || c_nan) return x_nan && (!c_nan || xi < ci);
    if (x == cur) return xi < ci;
    return is_max ? x > cur : x < cur;
}
template <class T> __device__ __forceinline__ void gc_block_argreduce(T& v, i64& at, bool is_max, T* scratch, i64* where) {
    for (int offset = 16; offset > 0; offset >>= 1) {
        T ov = gc_shfl_down(v, offset);
        i64 oi = gc_shfl_down(at, offset);
        if (gc_arg_better(ov, oi, v, at, is_max)) { v = ov; at = oi; }
    }
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    if (lane == 0) { scratch[warp] = v; where[warp] = at; }
    __syncthreads();
    if (warp == 0) {
        int n = (int)(blockDim.x >> 5);
        v = scratch[lane < n ? lane : 0];
        at = where[lane < n ? lane : 0];
        for (int offset = 16; offset > 0; offset >>= 1) {
            T ov = gc_shfl_down(v, offset);
            i64 oi = gc_shfl_down(at, offset);
            if (gc_arg_better(ov, oi, v, at, is_max)) { v = ov; at = oi; }
        }
        if (lane == 0) { scratch[0] = v; where[0] = at; }
    }
    __syncthreads();
    v = scratch[0];
    at = where[0];
    __syncthreads();
}
