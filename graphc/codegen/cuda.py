"""The CUDA renderer: a KernelProgram becomes one CUDA C source (one module per program) and a
launch plan, for graphc.runtime.cuda to build with nvcc (or with g++ against the emulation
header, kernels/cuda/emulate.h) and run.

Loop kernels are rendered by graphc.codegen.cuda_loops; GEMM calls instantiate the tiled
template of kernels/cuda/gemm.cuh. Loops and branches (LoopStep, BranchStep) run on the host:
their sub-programs' kernels are rendered once, like any others, and the plan holds a HostStep
that the runtime runs (graphc.runtime.cuda: it walks the trip count, points the body's views
at sequence rows and captures, and copies loop values between iterations), so nothing is
compiled per trip count. It shares the kernel IR with the LLVM renderer and nothing
else. Each kernel also gets, under GRAPHC_EMULATE, a C entry `NAME_emulate(args, grid, block)`
through which the emulator launches it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from typing import Any

from ..lower.kernel import BranchStep, GemmCall, HostCall, KernelProgram, LoopStep, number_checks, walk_kernels
from .cuda_expr import memory_type
from ..lower.chains import row_chains
from .cuda_chains import ChainWriter, chain_worthwhile
from .cuda_loops import Launch, LoopWriter, storage
from .cuda_split import render_split

GEMM_THREADS = 256
# (tile M, tile N, tile K, per-thread M, per-thread N) per dtype
GEMM_TILES = {"float32": (128, 128, 8, 8, 8), "float64": (64, 64, 8, 4, 4)}
MAX_GRID_YZ = 65535


@dataclass
class HostStep:
    """A loop, a branch or a host call, run by the host: `kernel` is the LoopStep / BranchStep /
    HostCall, `plans` the steps of each of its sub-programs ("body", "cond"; "then", "else"),
    each a list of launch indices (into CudaModule.launches) and nested HostSteps."""

    kernel: Any
    plans: dict[str, list[Any]]


@dataclass
class CudaModule:
    source: str
    launches: list[Launch]
    # the kernels [first, last) each launch implements (a row chain implements several)
    kernels_of_launch: list[tuple[int, int]] = field(default_factory=list)
    # what a run does, in order: launch indices and HostSteps (None: every launch in order)
    steps: list[Any] | None = None


def render_cuda(kp: KernelProgram, prefix: str = "graphc") -> CudaModule:
    number_checks(kp)
    codes = {id(check): i + 1 for i, check in enumerate(kp.errors)}
    parts = ['#include "graphc_cuda.cuh"']
    if any(isinstance(k, GemmCall) for k in walk_kernels(kp.kernels)):
        parts.append('#include "gemm.cuh"')
    out = _Rendered(kp, codes, parts)
    chains = {c.first: c for c in row_chains(kp)
              if chain_worthwhile(kp.kernels[c.first:c.last])}   # type: ignore[arg-type]
    steps = out.kernels(kp.kernels, prefix, chains)
    parts.append("#ifdef GRAPHC_EMULATE\n" + "\n".join(out.emulation) + "#endif\n")
    has_host_steps = any(isinstance(s, HostStep) for s in steps)
    return CudaModule("\n".join(parts), out.launches, out.owners, steps if has_host_steps else None)


class _Rendered:
    """The module being rendered: sources, launches, the kernels each launch implements."""

    def __init__(self, kp: KernelProgram, codes: dict[int, int], parts: list[str]) -> None:
        self.kp, self.codes, self.parts = kp, codes, parts
        self.launches: list[Launch] = []
        self.owners: list[tuple[int, int]] = []
        self.emulation: list[str] = []

    def add(self, source: str | None, launch: Launch, span: tuple[int, int]) -> int:
        if source is not None:
            self.parts.append(source)
        self.launches.append(launch)
        self.owners.append(span)
        self.emulation.append(_emulation_entry(self.kp, launch))
        return len(self.launches) - 1

    def kernels(self, kernels: list[Any], prefix: str, chains: dict[int, Any], span: tuple[int, int] | None = None
                ) -> list[Any]:
        """Render `kernels` (the program's, or a sub-program's: then `span` is the top-level
        kernel owning them, for labels); their steps."""
        steps: list[Any] = []
        code = lambda check: self.codes[id(check)]   # noqa: E731
        i = 0
        while i < len(kernels):
            k = kernels[i]
            owner = span or (i, i + 1)
            chain = chains.get(i)
            if chain is not None:
                writer = ChainWriter(kernels[chain.first:chain.last], f"{prefix}_c{i}", code, chain.private)
                steps.append(self.add(writer.source(), writer.launch(), span or (chain.first, chain.last)))
                i = chain.last
                continue
            if isinstance(k, (LoopStep, BranchStep)):
                subs = (("body", k.body), ("cond", k.cond)) if isinstance(k, LoopStep) else (
                    ("then", k.then_branch), ("else", k.else_branch))
                plans = {tag: self.kernels(sub.kernels, f"{prefix}_{tag[0]}{i}", {}, owner)
                         for tag, sub in subs if sub is not None}
                steps.append(HostStep(k, plans))
            elif isinstance(k, HostCall):   # an exchange with other processes: staged through the host
                steps.append(HostStep(k, {}))
            elif isinstance(k, GemmCall):
                source, launch = _gemm(k, f"{prefix}_k{i}")
                steps.append(self.add(source, launch, owner))
            else:
                loop = LoopWriter(k, f"{prefix}_k{i}", code)
                if loop.mode == "split":
                    sources, stages = render_split(loop, f"{prefix}_k{i}")
                    self.parts.extend(sources)
                    steps.extend(self.add(None, stage, owner) for stage in stages)
                else:
                    steps.append(self.add(loop.source(), loop.launch(), owner))
            i += 1
        return steps


def _gemm(k: GemmCall, name: str) -> tuple[str, Launch]:
    assert k.epilogue is None, "the CUDA target lowers without gemm_epilogues"
    dtype = k.c.dtype
    t = memory_type(dtype)
    bm, bn, bk, tm, tn = GEMM_TILES[dtype.name]
    full = k.m % bm == 0 and k.n % bn == 0 and k.k % bk == 0
    batch = 1
    for d in k.batch:
        batch *= d
    if -(-k.m // bm) > MAX_GRID_YZ or batch > MAX_GRID_YZ:
        from ..errors import CompileError
        raise CompileError(f"the cuda backend cannot tile a matmul of {batch} x {k.m} rows", op_type="MatMul",
                           node_name=getattr(k.node, "name", None), source=getattr(k.node, "source", None))
    a, b, c = storage(k.a), storage(k.b), storage(k.c)
    ids = list(dict.fromkeys([a.id, b.id, c.id]))
    params = [f"{'' if i == c.id else 'const '}{t}* __restrict__ p{i}" for i in ids] + ["i64* __restrict__ gc_error"]
    lines = ["    const i64 z = blockIdx.z;", f"    i64 off_a = {k.offsets[0]}LL, off_b = {k.offsets[1]}LL;"]
    if k.batch:
        lines.append("    i64 rest = z;")
    for d, sa, sb in reversed(list(zip(k.batch, k.a_batch_strides, k.b_batch_strides))):
        lines.append(f"    {{ const i64 d = rest % {d}; rest /= {d}; off_a += d * {sa}LL; off_b += d * {sb}LL; }}")
    ta, tb = str(k.transpose_a).lower(), str(k.transpose_b).lower()
    operands = f"(p{a.id} + off_a, p{b.id} + off_b, p{c.id} + {k.offsets[2]}LL + z * {k.m * k.n}LL, {k.m}, {k.n}, {k.k});"
    if full and dtype.name == "float32":
        lines.append(f"    gc_sgemm128<{ta}, {tb}>{operands}")
    else:
        lines.append(f"    gc_gemm<{t}, {bm}, {bn}, {bk}, {tm}, {tn}, {ta}, {tb}, {str(full).lower()}>{operands}")
    source = (f'extern "C" __global__ void __launch_bounds__({GEMM_THREADS}) {name}({", ".join(params)}) {{\n'
              + "\n".join(lines) + "\n}\n")
    grid = (-(-k.n // bn), -(-k.m // bm), batch)
    units = k.m * k.n * batch
    return source, Launch(name, ids, GEMM_THREADS, units, 1, grid, "gemm")


def _emulation_entry(kp: KernelProgram, launch: Launch) -> str:
    by_id = {b.id: b for b in kp.buffers}
    args = [f"({memory_type(by_id[i].dtype)}*)p[{j}]" for j, i in enumerate(launch.buffers)]
    if launch.scratch:
        args.append(f"(char*)p[{len(launch.buffers)}]")
    args.append(f"(i64*)p[{launch.n_args - 1}]")
    return (f'extern "C" int {launch.name}_emulate(void** p, unsigned gx, unsigned gy, unsigned gz, unsigned bx) {{\n'
            f"    auto run = [&]() {{ {launch.name}({', '.join(args)}); }};\n"
            f"    return gc_emu::launch(dim3(gx, gy, gz), dim3(bx), gc_emu::thunk<decltype(run)>, &run);\n}}\n")
