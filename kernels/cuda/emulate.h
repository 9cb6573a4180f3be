// graphc's CUDA emulation header: compiles CUDA C kernels with g++ so that they run on the CPU.
//
// Why: CI has no GPU, yet every kernel graphc generates must be checked against the NumPy
// reference. The generated source is compiled twice: by nvcc for the GPU, and by g++ with
// -include emulate.h for this emulator. The emulator runs a launch's blocks one after another;
// the threads of a block are fibers (ucontext) that switch only at __syncthreads, __syncwarp and
// warp shuffles, so shared memory, barriers and shuffles behave as on the device, and misuse
// that a GPU would silently tolerate or hang on is an error here:
//   - a __syncthreads reached on different source lines by threads of one block,
//   - a __syncthreads reached by only part of a block (the others exited),
//   - the lanes of a warp waiting at different synchronization points (deadlock).
// The scheduler lives in emulate_runtime.cpp (compiled once, linked into every module).
#pragma once

// No <math.h>: in C++ it pulls in <cmath>, which triples the compile time of a small module.
// The device functions the generated code uses are declared here, with CUDA's overloads.
extern "C" {
#define GC_EMU_MATH(name) float name##f(float); double name(double);
GC_EMU_MATH(exp) GC_EMU_MATH(expm1) GC_EMU_MATH(log) GC_EMU_MATH(log1p) GC_EMU_MATH(tanh) GC_EMU_MATH(sin)
GC_EMU_MATH(cos) GC_EMU_MATH(erf) GC_EMU_MATH(sqrt) GC_EMU_MATH(floor) GC_EMU_MATH(ceil) GC_EMU_MATH(rint)
GC_EMU_MATH(fabs)
#undef GC_EMU_MATH
float powf(float, float); double pow(double, double);
float fmodf(float, float); double fmod(double, double);
float copysignf(float, float); double copysign(double, double);
}
inline float exp(float x) { return expf(x); }
inline float log1p(float x) { return log1pf(x); }
inline float sqrt(float x) { return sqrtf(x); }
inline float floor(float x) { return floorf(x); }
inline float fmod(float a, float b) { return fmodf(a, b); }
inline float copysign(float a, float b) { return copysignf(a, b); }
#define INFINITY (__builtin_inff())
#define NAN (__builtin_nanf(""))
#define memcpy __builtin_memcpy

struct dim3 {
    unsigned x, y, z;
    dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};

namespace gc_emu {
const dim3& thread_idx();
const dim3& block_idx();
const dim3& block_dim();
const dim3& grid_dim();
void sync_block(int line);
void sync_warp(int line);
// Publish `bits` for this lane, wait for the whole warp, return lane `src`'s bits (own bits
// when src is outside the warp).
unsigned long long exchange(unsigned long long bits, int src, int line);
int lane();
void fail(const char* message);
int launch(dim3 grid, dim3 block, void (*body)(void*), void* closure);

template <class F> void thunk(void* f) { (*static_cast<F*>(f))(); }

template <class T> T shuffle(int line, T v, int src) {
    unsigned long long bits = 0;
    memcpy(&bits, &v, sizeof(T));
    bits = exchange(bits, src, line);
    T out;
    memcpy(&out, &bits, sizeof(T));
    return out;
}
template <class T> T shfl_down_at(int line, unsigned, T v, int delta, int width = 32) {
    int l = lane(), seg = l % width;
    return shuffle(line, v, seg + delta < width ? l + delta : l);
}
template <class T> T shfl_xor_at(int line, unsigned, T v, int mask, int width = 32) {
    int l = lane(), src = (l % width) ^ mask;
    return shuffle(line, v, src < width ? l - l % width + src : l);
}
template <class T> T shfl_at(int line, unsigned, T v, int src, int width = 32) {
    int l = lane();
    return shuffle(line, v, l - l % width + src % width);
}
}  // namespace gc_emu

#define threadIdx (gc_emu::thread_idx())
#define blockIdx (gc_emu::block_idx())
#define blockDim (gc_emu::block_dim())
#define gridDim (gc_emu::grid_dim())
#define warpSize 32
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__
#define __restrict__ __restrict
#define __shared__ static
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
#define __syncthreads() gc_emu::sync_block(__LINE__)
#define __syncwarp(...) gc_emu::sync_warp(__LINE__)
#define __shfl_down_sync(...) gc_emu::shfl_down_at(__LINE__, __VA_ARGS__)
#define __shfl_xor_sync(...) gc_emu::shfl_xor_at(__LINE__, __VA_ARGS__)
#define __shfl_sync(...) gc_emu::shfl_at(__LINE__, __VA_ARGS__)
#define __trap() gc_emu::fail("__trap() called")

struct __attribute__((aligned(16))) float4 { float x, y, z, w; };
struct __attribute__((aligned(16))) int4 { int x, y, z, w; };
inline float4 make_float4(float x, float y, float z, float w) { float4 r = {x, y, z, w}; return r; }
inline int4 make_int4(int x, int y, int z, int w) { int4 r = {x, y, z, w}; return r; }

inline void __threadfence() {}
inline void __threadfence_block() {}
template <class T> inline T __ldg(const T* p) { return *p; }
inline unsigned __umulhi(unsigned a, unsigned b) { return (unsigned)(((unsigned long long)a * b) >> 32); }
inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline float __frcp_rn(float x) { return 1.0f / x; }
inline double rsqrt(double x) { return 1.0 / sqrt(x); }

// Atomics: fibers switch only at synchronization points, so plain read-modify-write is atomic.
template <class T> inline T gc_emu_atomic_add(T* p, T v) { T old = *p; *p = old + v; return old; }
inline float atomicAdd(float* p, float v) { return gc_emu_atomic_add(p, v); }
inline double atomicAdd(double* p, double v) { return gc_emu_atomic_add(p, v); }
inline int atomicAdd(int* p, int v) { return gc_emu_atomic_add(p, v); }
inline unsigned atomicAdd(unsigned* p, unsigned v) { return gc_emu_atomic_add(p, v); }
inline unsigned long long atomicAdd(unsigned long long* p, unsigned long long v) { return gc_emu_atomic_add(p, v); }
inline int atomicCAS(int* p, int cmp, int v) { int old = *p; if (old == cmp) *p = v; return old; }
inline unsigned long long atomicCAS(unsigned long long* p, unsigned long long cmp, unsigned long long v) {
    unsigned long long old = *p;
    if (old == cmp) *p = v;
    return old;
}
