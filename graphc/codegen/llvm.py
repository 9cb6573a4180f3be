"""The LLVM renderer: a whole KernelProgram becomes ONE module (the same module the AOT
compiler writes to an object file).

The module defines, for a program named P:
  P_k<i>(i8** frame, i64 start, i64 end)   each kernel, over [start, end) of its outer loop
  P_run(i8** frame)                         every kernel in order, whole ranges
  P_bind(i64* objects, i8** frame)          frame[2 + buffer] = data pointer of the NumPy array
                                            whose address (id) is objects[j], for each dynamic
                                            buffer j (inputs, then outputs)
  P_call(i64* objects, i8** frame) -> i64   clear the error record, bind, run; returns the error
                                            code (0 when every check held): one native call per run
  P_seg<j>(i8** frame)                      consecutive kernels the thread pool runs serially
  P_plan(i64* objects, i8** frame) -> i64   P_call with the kernels worth splitting run on the
                                            pool the runtime lends (JIT programs that split any)
  P_chain<j>(i8** frame, i64 start, i64 end) a row chain (graphc.lower.chains) over rows [start, end)
The frame holds the workspace pointer (slot 0), the error record (slot 1: code, value, where)
and one data pointer per buffer; constants and temporaries are bound once per executable.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from llvmlite import ir

from ..lower.chains import Chain, plan_steps, row_chains
from ..lower.kernel import BranchStep, GemmCall, HostCall, KernelProgram, LoopKernel, LoopStep, estimated_ns, number_checks
from . import llvm_types
from .llvm_control import call_on_pool, render_kernel
from .llvm_gemm import iterations as gemm_iterations
from .llvm_loops import FRAME_BUFFERS, FRAME_ERROR, counted_loop
from .llvm_shared import SharedBodies

NUMPY_DATA_OFFSET = 16
# Loop kernels with fewer iterations than this run in microseconds even unoptimized: they are
# marked optnone, which cuts a training step's compile time by half (the O3 pipeline and
# instruction selection are then spent only on the kernels whose speed matters).
SMALL_KERNEL_WORK = 1 << 12  # PyArrayObject: PyObject_HEAD (refcount, type), then char *data


@dataclass
class KernelInfo:
    name: str
    extent: int          # iterations of the outer loop (the range a call covers)
    splittable: bool     # may run as several [start, end) chunks at once
    work: int            # cost estimate (iterations of the whole nest, or multiply-adds)
    cost_ns: float = 0.0 # estimated serial run time (graphc.lower.kernel.estimated_ns)


@dataclass
class ModuleInfo:
    name: str
    kernels: list[KernelInfo]
    dynamic: list[int]                       # buffer ids bound per call, in `objects` order
    segments: list[tuple[int, int]] = field(default_factory=list)   # [first, last) kernel ranges
    chains: list[Chain] = field(default_factory=list)               # row chains (P_chain<j>)
    frame_size: int = 0                                              # pointer slots in a frame


def module_info(kp: KernelProgram, name: str) -> ModuleInfo:
    """What the runtime needs to know of the module render_module(kp, name) defines; cheap, so
    a cached program is loaded without rendering. Also numbers the program's checks (kp.errors:
    error code i + 1 is check i) in the order the renderer reports them."""
    infos: list[KernelInfo] = []
    for i, k in enumerate(kp.kernels):
        kname = f"{name}_k{i}"
        if isinstance(k, GemmCall):
            infos.append(KernelInfo(kname, gemm_iterations(k), True, k.work, estimated_ns(k)))
        elif isinstance(k, (LoopStep, BranchStep, HostCall)):   # a loop, a branch, a host call: one serial call
            infos.append(KernelInfo(kname, 1, False, k.work, estimated_ns(k)))
        else:
            extent = k.space[k.order[0]] if k.order else 1
            splittable = bool(k.order) and len(k.order) > len(k.reduced) and not k.serial
            infos.append(KernelInfo(kname, extent, splittable, k.work, estimated_ns(k)))
    number_checks(kp)
    dynamic = [b.id for b in kp.buffers if b.kind in ("input", "output")]
    return ModuleInfo(name, infos, dynamic, chains=row_chains(kp), frame_size=FRAME_BUFFERS + len(kp.buffers))


def renamed(info: ModuleInfo, name: str) -> ModuleInfo:
    """The same module description under another symbol prefix (the cache key names a module,
    and the key depends on the description: computing it twice cost seconds on big programs)."""
    kernels = [dataclasses.replace(k, name=f"{name}{k.name[len(info.name):]}") for k in info.kernels]
    return dataclasses.replace(info, name=name, kernels=kernels, segments=list(info.segments),
                               chains=list(info.chains))


def render_module(kp: KernelProgram, name: str = "graphc", triple: str | None = None,
                  info: ModuleInfo | None = None) -> tuple[ir.Module, ModuleInfo]:
    """The LLVM module of a kernel program; `info`, when given, is module_info(kp, name)."""
    module = ir.Module(name=name)
    if triple:
        module.triple = triple
    info = info if info is not None else module_info(kp, name)
    codes = {id(check): i + 1 for i, check in enumerate(kp.errors)}
    bodies = SharedBodies(module)
    for k, kinfo in zip(kp.kernels, info.kernels):
        render_kernel(module, kinfo.name, k, lambda check: codes[id(check)])
        # Entries call kernels; inlining them there would only compile each kernel twice more.
        entry, body = module.globals[kinfo.name], module.globals.get(f"{kinfo.name}_body")
        entry.attributes.add("noinline")
        if isinstance(k, LoopKernel) and k.work < SMALL_KERNEL_WORK:
            for fn in (entry, body):
                fn.attributes.add("noinline")
                fn.attributes.add("optnone")
        if body is not None:
            bodies.add(entry, body)
    _entries(module, info)
    return module, info


def _call_kernels(b: ir.IRBuilder, module: ir.Module, frame: ir.Value, info: ModuleInfo, first: int,
                  last: int) -> None:
    """Call kernels [first, last) over their whole ranges, a row chain as one call."""
    starts = {c.first: (j, c) for j, c in enumerate(info.chains)}
    i = first
    while i < last:
        if i in starts and starts[i][1].last <= last:
            j, chain = starts[i]
            fn, extent, i = module.globals[f"{info.name}_chain{j}"], chain.extent, chain.last
        else:
            fn, extent, i = module.globals[info.kernels[i].name], info.kernels[i].extent, i + 1
        b.call(fn, [frame, ir.Constant(llvm_types.I64, 0), ir.Constant(llvm_types.I64, extent)])


def _chain_function(module: ir.Module, info: ModuleInfo, j: int, chain: Chain) -> None:
    """P_chain<j>(frame, start, end): for each block of rows in [start, end), every member.
    The chain's private temporaries are redirected, block by block, to scratch space on this
    thread's stack through a private copy of the frame (other threads run other blocks)."""
    fn = ir.Function(
        module,
        ir.FunctionType(llvm_types.VOID, [llvm_types.I8PP, llvm_types.I64, llvm_types.I64]),
        name=f"{info.name}_chain{j}",
    )
    frame, start, end = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    scratch = []
    if chain.private:
        slots = ir.Constant(llvm_types.I64, info.frame_size)
        local = b.alloca(llvm_types.I8P, size=slots)
        # one copy call, not a load and store per slot: a program of thousands of buffers made
        # each chain function thousands of instructions long
        memcpy = module.declare_intrinsic("llvm.memcpy", [llvm_types.I8P, llvm_types.I8P, llvm_types.I64])
        size = ir.Constant(llvm_types.I64, info.frame_size * 8)
        b.call(memcpy, [b.bitcast(local, llvm_types.I8P), b.bitcast(frame, llvm_types.I8P), size,
                        ir.Constant(llvm_types.I1, 0)])
        for buffer_id, row_bytes in chain.private:
            area = b.alloca(llvm_types.I8, size=ir.Constant(llvm_types.I64, chain.block * row_bytes + 64))
            area.align = 64
            scratch.append((buffer_id, row_bytes, b.ptrtoint(area, llvm_types.I64)))
        frame = local

    def one_block(row: ir.Value) -> None:
        stop = b.add(row, ir.Constant(llvm_types.I64, chain.block))
        stop = b.select(b.icmp_signed("<", stop, end), stop, end)
        for buffer_id, row_bytes, area in scratch:  # row r of the buffer -> area + (r - row) * row_bytes
            base = b.sub(area, b.mul(row, ir.Constant(llvm_types.I64, row_bytes)))
            b.store(
                b.inttoptr(base, llvm_types.I8P), b.gep(frame, [ir.Constant(llvm_types.I64, FRAME_BUFFERS + buffer_id)])
            )
        for k in info.kernels[chain.first : chain.last]:
            b.call(module.globals[k.name], [frame, row, stop])

    counted_loop(b, fn, start, end, ir.Constant(llvm_types.I64, chain.block), one_block, name="block")
    b.ret_void()


def _entries(module: ir.Module, info: ModuleInfo) -> None:
    for j, chain in enumerate(info.chains):
        _chain_function(module, info, j, chain)
    run = ir.Function(module, ir.FunctionType(llvm_types.VOID, [llvm_types.I8PP]), name=f"{info.name}_run")
    b = ir.IRBuilder(run.append_basic_block("entry"))
    _call_kernels(b, module, run.args[0], info, 0, len(info.kernels))
    b.ret_void()

    bind = ir.Function(
        module, ir.FunctionType(llvm_types.VOID, [llvm_types.I64P, llvm_types.I8PP]), name=f"{info.name}_bind"
    )
    b = ir.IRBuilder(bind.append_basic_block("entry"))
    objects, frame = bind.args
    for j, buffer_id in enumerate(info.dynamic):
        address = b.load(b.gep(objects, [ir.Constant(llvm_types.I64, j)]))
        field_ptr = b.inttoptr(b.add(address, ir.Constant(llvm_types.I64, NUMPY_DATA_OFFSET)), llvm_types.I8PP)
        b.store(b.load(field_ptr), b.gep(frame, [ir.Constant(llvm_types.I64, FRAME_BUFFERS + buffer_id)]))
    b.ret_void()

    # call: clear the error record, bind, run, and return the error code (0: success), so a
    # plain run costs Python one foreign call and no reads of the record.
    call = ir.Function(
        module, ir.FunctionType(llvm_types.I64, [llvm_types.I64P, llvm_types.I8PP]), name=f"{info.name}_call"
    )
    b = ir.IRBuilder(call.append_basic_block("entry"))
    slot = b.gep(call.args[1], [ir.Constant(llvm_types.I64, FRAME_ERROR)])
    record = b.bitcast(b.load(slot), llvm_types.I64P)
    b.store(ir.Constant(llvm_types.I64, 0), record)
    b.call(bind, list(call.args))
    b.call(run, [call.args[1]])
    b.ret(b.load(record))


def add_segments(module: ir.Module, info: ModuleInfo, segments: list[tuple[int, int]]) -> None:
    """Define P_seg<j> for each [first, last) range of kernels that run serially, and P_plan,
    the whole run with the other kernels split over the pool."""
    info.segments = segments
    for j, (first, last) in enumerate(segments):
        fn = ir.Function(module, ir.FunctionType(llvm_types.VOID, [llvm_types.I8PP]), name=f"{info.name}_seg{j}")
        b = ir.IRBuilder(fn.append_basic_block("entry"))
        _call_kernels(b, module, fn.args[0], info, first, last)
        b.ret_void()
    if len(segments) != 1 or segments[0] != (0, len(info.kernels)):
        _plan_function(module, info)


def _plan_function(module: ir.Module, info: ModuleInfo) -> None:
    """P_plan(i64* objects, i8** frame) -> i64: P_call, but each kernel (or row chain) that is
    worth splitting runs on the pool lent through LOOP_POOL_SYMBOL (serially where none is lent)
    and each run of the others is one P_seg call. A run costs Python one foreign call instead
    of one per step: about 2 us a step, during which the pool's workers only spin."""
    fn = ir.Function(module, ir.FunctionType(llvm_types.I64, [llvm_types.I64P, llvm_types.I8PP]),
                     name=f"{info.name}_plan")
    objects, frame = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    record = b.bitcast(b.load(b.gep(frame, [ir.Constant(llvm_types.I64, FRAME_ERROR)])), llvm_types.I64P)
    b.store(ir.Constant(llvm_types.I64, 0), record)
    b.call(module.globals[f"{info.name}_bind"], [objects, frame])
    for kind, j in plan_steps(len(info.kernels), info.segments, info.chains):
        if kind == "segment":
            b.call(module.globals[f"{info.name}_seg{j}"], [frame])
        elif kind == "chain":
            call_on_pool(module, b, module.globals[f"{info.name}_chain{j}"], frame, info.chains[j].extent)
        else:
            call_on_pool(module, b, module.globals[info.kernels[j].name], frame, info.kernels[j].extent)
    b.ret(b.load(record))


__all__ = ["KernelInfo", "ModuleInfo", "module_info", "renamed", "render_module", "add_segments", "LoopKernel"]
