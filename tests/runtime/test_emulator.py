"""The CUDA emulator itself: blocks, threads, shared memory, barriers and warp shuffles behave as
on a GPU, and misuse that a GPU would hang on or silently tolerate is reported."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from graphc.errors import DeviceError

pytestmark = pytest.mark.skipif(shutil.which("g++") is None, reason="the CUDA emulator needs g++")

SOURCE = r'''
#include "graphc_cuda.cuh"
extern "C" __global__ void block_sum(const float* x, float* out, i64* err) {
    __shared__ float scratch[32];
    float v = x[blockIdx.x * blockDim.x + threadIdx.x];
    v = gc_block_reduce(v, gc_sum(), 0.0f, scratch);
    if (threadIdx.x == 0) out[blockIdx.x] = v;
}
extern "C" __global__ void shuffles(const int* x, int* down, int* xored, i64* err) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    down[i] = __shfl_down_sync(0xffffffffu, x[i], 3);
    xored[i] = __shfl_xor_sync(0xffffffffu, x[i], 5);
}
extern "C" __global__ void reverse(const float* x, float* out, i64* err) {
    __shared__ float tile[256];
    tile[threadIdx.x] = x[threadIdx.x];
    __syncthreads();
    out[threadIdx.x] = tile[blockDim.x - 1 - threadIdx.x];
}
extern "C" __global__ void diverged(const float* x, float* out, i64* err) {
    if (threadIdx.x < 32) {
        __syncthreads();
    } else {
        __syncthreads();
    }
}
extern "C" __global__ void early_exit(const float* x, float* out, i64* err) {
    if (threadIdx.x >= 64) return;
    __syncthreads();
}
extern "C" __global__ void deadlock(const float* x, float* out, i64* err) {
    if (threadIdx.x < 16) {   // half a warp shuffles while the other half waits at the barrier
        float v = __shfl_down_sync(0xffffffffu, x[threadIdx.x], 1);
        out[threadIdx.x] = v;
    }
    __syncthreads();
}
extern "C" __global__ void mixed_warp(const float* x, float* out, i64* err) {
    float v = x[threadIdx.x];
    if (threadIdx.x % 2) v = __shfl_down_sync(0xffffffffu, v, 1);
    else v = __shfl_xor_sync(0xffffffffu, v, 1);
    out[threadIdx.x] = v;
}
extern "C" __global__ void trap(const float* x, float* out, i64* err) { __trap(); }
'''
KERNELS = {"block_sum": 3, "shuffles": 4, "reverse": 3, "diverged": 3, "early_exit": 3, "deadlock": 3,
           "mixed_warp": 3, "trap": 3}


@pytest.fixture(scope="module")
def emu():
    from graphc.runtime.cuda_devices import EmulatedDevice

    device = EmulatedDevice()
    wrappers = []
    for name, n in KERNELS.items():
        casts = {"block_sum": ["const float*", "float*"], "shuffles": ["const int*", "int*", "int*"]}.get(
            name, ["const float*", "float*"])
        args = ", ".join(f"({t})p[{i}]" for i, t in enumerate(casts)) + f", (i64*)p[{n - 1}]"
        wrappers.append(f'extern "C" int {name}_emulate(void** p, unsigned gx, unsigned gy, unsigned gz, unsigned bx) '
                        f'{{ auto run = [&]() {{ {name}({args}); }}; return gc_emu::launch(dim3(gx, gy, gz), dim3(bx), '
                        f'gc_emu::thunk<decltype(run)>, &run); }}')
    module, _ = device.build(SOURCE + "\n".join(wrappers))
    return device, {name: device.function(module, name, n) for name, n in KERNELS.items()}


def run(emu, name, arrays, grid, block):
    device, fns = emu
    pointers = [a.ctypes.data for a in arrays] + [np.zeros(4, np.int64).ctypes.data]
    device.launch(fns[name], pointers, (grid, 1, 1), block)


def test_block_reduction_over_several_blocks(emu):
    x = np.random.default_rng(0).random(3 * 256).astype(np.float32)
    out = np.zeros(3, np.float32)
    run(emu, "block_sum", [x, out], 3, 256)
    np.testing.assert_allclose(out, x.reshape(3, 256).sum(axis=1), rtol=1e-5)


def test_warp_shuffles_follow_cuda_semantics(emu):
    x = np.arange(64, dtype=np.int32) * 7
    down, xored = np.zeros(64, np.int32), np.zeros(64, np.int32)
    run(emu, "shuffles", [x, down, xored], 1, 64)
    lane = np.arange(64) % 32
    expected_down = np.where(lane + 3 < 32, x[np.arange(64) + np.minimum(3, 31 - lane) * (lane + 3 < 32)], x)
    np.testing.assert_array_equal(down, expected_down)
    np.testing.assert_array_equal(xored, x[(np.arange(64) // 32) * 32 + (lane ^ 5)])


def test_shared_memory_is_shared_by_the_block_and_barriers_order_it(emu):
    x = np.arange(256, dtype=np.float32)
    out = np.zeros(256, np.float32)
    run(emu, "reverse", [x, out], 1, 256)
    np.testing.assert_array_equal(out, x[::-1])


@pytest.mark.parametrize("name, message", [
    ("diverged", "reached on different lines"),
    ("early_exit", "reached by 64 of 128 threads"),
    ("deadlock", "deadlock"),
    ("mixed_warp", "different lines"),
    ("trap", "__trap"),
])
def test_misuse_is_reported(emu, name, message):
    x = np.zeros(128, np.float32)
    out = np.zeros(128, np.float32)
    with pytest.raises(DeviceError, match=message):
        run(emu, name, [x, out], 1, 128)


def test_invalid_launch_is_reported(emu):
    with pytest.raises(DeviceError, match="invalid launch"):
        run(emu, "reverse", [np.zeros(4, np.float32), np.zeros(4, np.float32)], 1, 2048)
