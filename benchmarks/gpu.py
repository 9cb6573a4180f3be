"""GPU benchmarks of backend="cuda", side by side with PyTorch and CuPy in one process.

    python benchmarks/gpu.py [--quick]

Workloads: the elementwise chain tanh(0.5*x+0.1)*sigmoid(x) - exp(-x*x) on float32, row softmax
on float32, and SGEMM / DGEMM. Times are device times of the kernels alone (CUDA events, median
of repeats after warm-up; inputs already on the GPU), so graphc is compared with the others on
equal terms. Bandwidth counts the bytes a kernel must move (inputs read once, outputs written
once) against the peak from the device's memory clock and bus width, and against a
device-to-device copy measured in the same run. Each graphc result is also checked against
NumPy (max |graphc - numpy|).
"""
from __future__ import annotations

import argparse
import statistics
import sys

import numpy as np

import graphc as gc


def gpu_seconds(fn, repeats: int = 20, warmup: int = 3) -> float:
    """Median device time of fn() (PyTorch CUDA events)."""
    import torch

    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b) / 1e3)
    return statistics.median(times)


def graphc_program(fetch, feeds: dict):
    """(the compiled CUDA executable, its argument list, the fetched values) of one run."""
    sess = gc.Session(backend="cuda")
    compiled = sess.compile([fetch], feeds)
    args = [feeds[t] for t in compiled.feed_tensors]
    return compiled.executable, args, compiled.executable(args)[0]


def chain_for_cupy(v):
    import cupy as cp

    return cp.tanh(0.5 * v + 0.1) * (1 / (1 + cp.exp(-v))) - cp.exp(-v * v)


def peak_bandwidth() -> float:
    import pycuda.driver as drv

    from graphc.runtime.cuda_devices import device

    dev = device("gpu").device
    clock = dev.get_attribute(drv.device_attribute.MEMORY_CLOCK_RATE) * 1e3   # Hz
    width = dev.get_attribute(drv.device_attribute.GLOBAL_MEMORY_BUS_WIDTH)    # bits
    return 2 * clock * width / 8


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes")
    opts = parser.parse_args()
    import cupy as cp
    import torch

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    rows: list[tuple[str, ...]] = []
    peak = peak_bandwidth()
    n_copy = 1 << 28
    src = torch.empty(n_copy, dtype=torch.float32, device="cuda")
    dst = torch.empty_like(src)
    copy_bw = 2 * 4 * n_copy / gpu_seconds(lambda: dst.copy_(src))
    print(f"device: {torch.cuda.get_device_name()}  peak {peak / 1e12:.2f} TB/s (memory clock x bus width), "
          f"device-to-device copy {copy_bw / 1e12:.2f} TB/s (torch, same run)")

    # ------------------------------------------------------------- elementwise chain
    for n in ([1 << 24] if opts.quick else [1 << 24, 1 << 27]):
        gc.reset_default_graph()
        x = gc.placeholder(gc.float32, [n], name="x")
        y = gc.tanh(0.5 * x + 0.1) * gc.sigmoid(x) - gc.exp(-x * x)
        xv = np.random.default_rng(0).standard_normal(n).astype(np.float32)
        ex, args, got = graphc_program(y, {x: xv})
        want = np.tanh(0.5 * xv.astype(np.float64) + 0.1) / (1 + np.exp(-xv.astype(np.float64))) - np.exp(-xv.astype(np.float64) ** 2)
        err = float(np.max(np.abs(got - want)))
        t_gc = ex.device_seconds(args)
        xt = torch.from_numpy(xv).cuda()
        t_torch = gpu_seconds(lambda: torch.tanh(0.5 * xt + 0.1) * torch.sigmoid(xt) - torch.exp(-xt * xt))
        xc = cp.asarray(xv)
        fused = cp.fuse(chain_for_cupy)
        t_cupy = gpu_seconds(lambda: fused(xc))
        moved = 8 * n
        rows.append((f"chain {n:.0e} f32", f"{t_gc * 1e6:.0f}", f"{moved / t_gc / 1e9:.0f}", f"{moved / t_gc / peak:.0%}",
                     f"{moved / t_gc / copy_bw:.0%}", f"torch {t_torch * 1e6:.0f} / cupy.fuse {t_cupy * 1e6:.0f}",
                     f"{t_gc / min(t_torch, t_cupy):.2f}", f"{err:.1e}"))

    # ------------------------------------------------------------- softmax
    for r, c in ([(4096, 1024)] if opts.quick else [(4096, 1024), (32768, 4096)]):
        gc.reset_default_graph()
        x = gc.placeholder(gc.float32, [r, c], name="x")
        y = gc.nn.softmax(x)
        xv = np.random.default_rng(1).standard_normal((r, c)).astype(np.float32)
        ex, args, got = graphc_program(y, {x: xv})
        e = np.exp(xv - xv.max(axis=1, keepdims=True))
        err = float(np.max(np.abs(got - e / e.sum(axis=1, keepdims=True))))
        t_gc = ex.device_seconds(args)
        xt = torch.from_numpy(xv).cuda()
        t_torch = gpu_seconds(lambda: torch.softmax(xt, dim=1))
        moved = 8 * r * c
        rows.append((f"softmax {r}x{c} f32", f"{t_gc * 1e6:.0f}", f"{moved / t_gc / 1e9:.0f}", f"{moved / t_gc / peak:.0%}",
                     f"{moved / t_gc / copy_bw:.0%}", f"torch {t_torch * 1e6:.0f}", f"{t_gc / t_torch:.2f}", f"{err:.1e}"))

    # ------------------------------------------------------------- a long reduction
    gc.reset_default_graph()
    n = 1 << 27
    x = gc.placeholder(gc.float32, [n], name="x")
    xv = np.random.default_rng(3).standard_normal(n).astype(np.float32)
    ex, args, got = graphc_program(gc.reduce_sum(x), {x: xv})
    err = abs(float(got) - float(xv.astype(np.float64).sum()))
    t_gc = ex.device_seconds(args)
    xt = torch.from_numpy(xv).cuda()
    t_torch = gpu_seconds(lambda: torch.sum(xt))
    moved = 4 * n
    rows.append((f"sum {n:.0e} f32", f"{t_gc * 1e6:.0f}", f"{moved / t_gc / 1e9:.0f}", f"{moved / t_gc / peak:.0%}",
                 f"{moved / t_gc / copy_bw:.0%}", f"torch {t_torch * 1e6:.0f}", f"{t_gc / t_torch:.2f}", f"{err:.1e}"))

    # ------------------------------------------------------------- GEMM
    for dtype, sizes in (("float32", [1024, 4096] if not opts.quick else [1024]), ("float64", [2048])):
        for s in sizes:
            gc.reset_default_graph()
            a = gc.placeholder(dtype, [s, s], name="a")
            b = gc.placeholder(dtype, [s, s], name="b")
            rng = np.random.default_rng(2)
            av, bv = rng.standard_normal((s, s)).astype(dtype), rng.standard_normal((s, s)).astype(dtype)
            ex, args, got = graphc_program(gc.matmul(a, b), {a: av, b: bv})
            err = float(np.max(np.abs(got - av.astype(np.float64) @ bv.astype(np.float64))))
            t_gc = ex.device_seconds(args, repeats=10)
            at, bt = torch.from_numpy(av).cuda(), torch.from_numpy(bv).cuda()
            t_torch = gpu_seconds(lambda: at @ bt, repeats=10)
            ac, bc = cp.asarray(av), cp.asarray(bv)
            t_cupy = gpu_seconds(lambda: ac @ bc, repeats=10)
            flops = 2 * s ** 3
            rows.append((f"{'S' if dtype == 'float32' else 'D'}GEMM {s}", f"{t_gc * 1e6:.0f}",
                         f"{flops / t_gc / 1e12:.1f} TFLOP/s", "", "",
                         f"cuBLAS via torch {flops / t_torch / 1e12:.1f} / cupy {flops / t_cupy / 1e12:.1f} TFLOP/s",
                         f"{t_gc / min(t_torch, t_cupy):.2f} ({min(t_torch, t_cupy) / t_gc:.0%} of cuBLAS)", f"{err:.1e}"))
    header = ("workload", "graphc µs", "graphc GB/s", "of peak", "of copy", "peers µs", "graphc / best peer",
              "max |err|")
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    line = lambda r: "| " + " | ".join(str(v).ljust(w) for v, w in zip(r, widths)) + " |"  # noqa: E731
    print("\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|"] + [line(r) for r in rows]))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
