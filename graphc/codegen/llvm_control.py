"""Rendering loops and branches (LoopStep, BranchStep) and the kernels of their sub-programs.

A loop is one function `void name(i8** frame, i64 start, i64 end)` like any kernel: it binds
the views of its body (captured tensors; the sequences' rows, moved each iteration, so a step's
slice is never copied), copies the initial loop values in, then runs the condition's kernels and
the body's kernels once per iteration, in machine code, copying per-iteration values into their
stacks and new loop values into place. The body is rendered once, whatever the trip count. A
failed check inside the body stops the loop; the run then reports it as anywhere else.
A branch runs one sub-program's kernels and copies its results out.

A loop runs on the thread that calls it, but a product inside its body that is worth it runs
on graphc's thread pool: the body calls the pool through LOOP_POOL_SYMBOL (graphc.lower.kernel), three 64-bit words
(the native pool's state, its graphc_pool_run entry, how many threads this run may use) that
the runtime fills while it runs a program holding the pool (graphc.runtime.cpu). Where they
are zero (one thread, no native pool, an AOT library) the body calls the product itself.
"""
from __future__ import annotations

from typing import Any, Callable

from llvmlite import ir

from ..lower.kernel import LOOP_POOL_SYMBOL, POOL_MAX_CHUNKS, Buffer, BranchStep, GemmCall, HostCall, LoopKernel, LoopStep, SubProgram
from . import llvm_types
from .llvm_host import render_host_call
from .llvm_gemm import MIN_SPLIT_WORK, render_gemm
from .llvm_gemm import iterations as gemm_iterations
from .llvm_loops import FRAME_BUFFERS, FRAME_ERROR, LoopRenderer

I64 = llvm_types.I64
Codes = Callable[[Any], int]
POOL_CHUNKS_PER_THREAD = 4


def pooled_in_loops(k: Any) -> bool:
    """Whether a kernel of a loop body runs on the pool: a product big enough to be cut."""
    return isinstance(k, GemmCall) and k.m * k.n * k.k >= MIN_SPLIT_WORK and gemm_iterations(k) >= 2


def loop_pool_global(module: ir.Module) -> ir.GlobalVariable:
    """The module's declaration of the pool words (an AOT library defines them as zeros)."""
    g = module.globals.get(LOOP_POOL_SYMBOL)
    if g is None:
        g = ir.GlobalVariable(module, ir.ArrayType(I64, 3), LOOP_POOL_SYMBOL)
    return g


def kernel_extent(k: Any) -> int:
    """The range [0, extent) a whole call of kernel k covers."""
    if isinstance(k, GemmCall):
        return gemm_iterations(k)
    if isinstance(k, LoopKernel):
        return k.space[k.order[0]] if k.order else 1
    return 1


def render_kernel(module: ir.Module, name: str, k: Any, codes: Codes) -> None:
    """Define `name` for kernel k, whatever its kind."""
    if isinstance(k, GemmCall):
        render_gemm(module, name, k)
    elif isinstance(k, HostCall):
        render_host_call(module, name, k)
    elif isinstance(k, LoopStep):
        _LoopRenderer(module, name, k, codes).render()
    elif isinstance(k, BranchStep):
        _render_branch(module, name, k, codes)
    else:
        LoopRenderer(k, codes).render(module, name)


Step = tuple[ir.Function, int, bool]   # a sub-program's kernel, its extent, whether it runs on the pool


def _render_subprogram(module: ir.Module, prefix: str, sub: SubProgram, codes: Codes) -> list[Step]:
    fns = []
    for j, k in enumerate(sub.kernels):
        name = f"{prefix}{j}"
        render_kernel(module, name, k, codes)
        fn = module.globals[name]
        fn.attributes.add("noinline")
        fns.append((fn, kernel_extent(k), pooled_in_loops(k)))
    return fns


class _Frame:
    """Reading and writing a frame's buffer slots, and copying between buffers."""

    def __init__(self, module: ir.Module, b: ir.IRBuilder, frame: ir.Value) -> None:
        self.module, self.b, self.frame = module, b, frame
        self.memcpy = module.declare_intrinsic("llvm.memcpy", [llvm_types.I8P, llvm_types.I8P, I64])
        self.memset = module.declare_intrinsic("llvm.memset", [llvm_types.I8P, I64])

    def slot(self, buf: Buffer) -> ir.Value:
        storage = buf.alias_of if buf.alias_of is not None else buf   # computed in another's memory
        return self.b.gep(self.frame, [ir.Constant(I64, FRAME_BUFFERS + storage.id)])

    def ptr(self, buf: Buffer, row: ir.Value | None = None, row_bytes: int = 0) -> ir.Value:
        p = self.b.load(self.slot(buf))
        if row is None:
            return p
        return self.b.gep(p, [self.b.mul(row, ir.Constant(I64, row_bytes))])

    def point(self, view: Buffer, target: ir.Value) -> None:
        self.b.store(target, self.slot(view))

    def copy(self, dst: ir.Value, src: ir.Value, nbytes: int | ir.Value) -> None:
        size = nbytes if isinstance(nbytes, ir.Value) else ir.Constant(I64, nbytes)
        self.b.call(self.memcpy, [dst, src, size, ir.Constant(llvm_types.I1, 0)])

    def zero(self, dst: ir.Value, nbytes: ir.Value) -> None:
        self.b.call(self.memset, [dst, ir.Constant(llvm_types.I8, 0), nbytes, ir.Constant(llvm_types.I1, 0)])

    def error_code(self) -> ir.Value:
        record = self.b.bitcast(self.b.load(self.b.gep(self.frame, [ir.Constant(I64, FRAME_ERROR)])), llvm_types.I64P)
        return self.b.load(record)

    def run(self, fns: list[Step]) -> None:
        for fn, extent, pooled in fns:
            if pooled:
                call_on_pool(self.module, self.b, fn, self.frame, extent)
            else:
                self.b.call(fn, [self.frame, ir.Constant(I64, 0), ir.Constant(I64, extent)])


def call_on_pool(module: ir.Module, b: ir.IRBuilder, fn: ir.Function, frame: ir.Value, extent: int) -> None:
    """fn over [0, extent) on the pool when the runtime lent it (LOOP_POOL_SYMBOL), else here:
    how a loop body runs its big products, and how a program's plan (graphc.codegen.llvm) runs
    the kernels worth splitting without a return to Python between kernels."""
    words = loop_pool_global(module)
    word = lambda i: b.load(b.gep(words, [ir.Constant(I64, 0), ir.Constant(I64, i)]))   # noqa: E731
    state, entry, threads = word(0), word(1), word(2)
    lent = b.and_(b.icmp_unsigned("!=", state, ir.Constant(I64, 0)), b.icmp_signed(">", threads, ir.Constant(I64, 1)))
    with b.if_else(lent) as (pooled, serial):
        with pooled:
            chunks = b.mul(threads, ir.Constant(I64, POOL_CHUNKS_PER_THREAD))
            limit = ir.Constant(I64, min(extent, POOL_MAX_CHUNKS))
            chunks = b.select(b.icmp_signed("<", chunks, limit), chunks, limit)
            i8p = llvm_types.I8P
            run_t = ir.FunctionType(llvm_types.VOID, [i8p, i8p, i8p, I64, I64, I64])
            run = b.inttoptr(entry, run_t.as_pointer())
            b.call(run, [b.inttoptr(state, i8p), b.bitcast(fn, i8p), b.bitcast(frame, i8p),
                         ir.Constant(I64, extent), chunks, threads])
        with serial:
            b.call(fn, [frame, ir.Constant(I64, 0), ir.Constant(I64, extent)])


def _row_bytes(buf: Buffer) -> int:
    return buf.nbytes // buf.shape[0] if buf.shape and buf.shape[0] else 0


class _LoopRenderer:
    def __init__(self, module: ir.Module, name: str, step: LoopStep, codes: Codes) -> None:
        self.module, self.name, self.step, self.codes = module, name, step, codes

    def render(self) -> None:
        s, module = self.step, self.module
        body_fns = _render_subprogram(module, f"{self.name}_b", s.body, self.codes)
        cond_fns = _render_subprogram(module, f"{self.name}_c", s.cond, self.codes) if s.cond else []
        fn = ir.Function(module, ir.FunctionType(llvm_types.VOID, [llvm_types.I8PP, I64, I64]), name=self.name)
        b = ir.IRBuilder(fn.append_basic_block("entry"))
        f = _Frame(module, b, fn.args[0])
        n, m = len(s.carries), len(s.sequences)
        body_args, cond_args = s.body.args, (s.cond.args if s.cond else None)
        # views: captures, and the condition's view of the body's index and loop values
        for c, cap in enumerate(s.captures):
            target = f.ptr(cap)
            f.point(body_args[1 + n + m + c], target)
            if cond_args:
                f.point(cond_args[1 + n + m + c], target)
        if cond_args:
            for k in range(1 + n):
                f.point(cond_args[k], f.ptr(body_args[k]))
        for k, init in enumerate(s.carries):
            f.copy(f.ptr(body_args[1 + k]), f.ptr(init), init.nbytes)
        trip = b.load(b.bitcast(f.ptr(s.trip), llvm_types.I64P))
        for q in s.sequences:
            length = ir.Constant(I64, q.shape[0])
            trip = b.select(b.icmp_signed("<", length, trip), length, trip)
        counter = b.alloca(I64)
        b.store(ir.Constant(I64, 0), counter)
        head, work, cont, latch, done = (fn.append_basic_block(x) for x in ("head", "work", "cont", "latch", "done"))
        b.branch(head)
        b.position_at_end(head)
        i = b.load(counter)
        b.cbranch(b.icmp_signed("<", i, trip), work, done)
        b.position_at_end(work)
        at = b.sub(b.sub(trip, ir.Constant(I64, 1)), i) if s.reverse else i
        b.store(i, b.bitcast(f.ptr(body_args[0]), llvm_types.I64P))
        for q_index, q in enumerate(s.sequences):
            row = f.ptr(q, at, _row_bytes(q))
            f.point(body_args[1 + n + q_index], row)
            if cond_args:
                f.point(cond_args[1 + n + q_index], row)
        if s.cond is not None:
            f.run(cond_fns)
            holds = b.icmp_unsigned("!=", b.load(f.ptr(s.cond.results[0])), ir.Constant(llvm_types.I8, 0))
            clean = b.icmp_signed("==", f.error_code(), ir.Constant(I64, 0))
            b.cbranch(b.and_(holds, clean), cont, done)
        else:
            b.branch(cont)
        b.position_at_end(cont)
        for k, hist in enumerate(s.history):
            f.copy(f.ptr(hist, at, _row_bytes(hist)), f.ptr(body_args[1 + k]), body_args[1 + k].nbytes)
        f.run(body_fns)
        b.cbranch(b.icmp_signed("==", f.error_code(), ir.Constant(I64, 0)), latch, done)
        b.position_at_end(latch)
        for v, stack in enumerate(s.stacked):
            f.copy(f.ptr(stack, at, _row_bytes(stack)), f.ptr(s.body.results[n + v]), _row_bytes(stack))
        for k, staged in enumerate(s.staging):
            if staged is not None:
                f.copy(f.ptr(staged), f.ptr(s.body.results[k]), staged.nbytes)
        for k in range(n):
            source = s.staging[k] if s.staging and s.staging[k] is not None else s.body.results[k]
            if source is not body_args[1 + k]:
                f.copy(f.ptr(body_args[1 + k]), f.ptr(source), body_args[1 + k].nbytes)
        b.store(b.add(i, ir.Constant(I64, 1)), counter)
        b.branch(head)
        b.position_at_end(done)
        count = b.load(counter)
        b.store(count, b.bitcast(f.ptr(s.count), llvm_types.I64P))
        for k, final in enumerate(s.finals):
            f.copy(f.ptr(final), f.ptr(body_args[1 + k]), final.nbytes)
        for stack in s.stacked + s.history:   # rows past the count are zeros
            rows = stack.shape[0]
            row_bytes = _row_bytes(stack)
            if not rows or not row_bytes:
                continue
            written = b.select(b.icmp_signed("<", count, ir.Constant(I64, rows)), count, ir.Constant(I64, rows))
            rest = b.mul(b.sub(ir.Constant(I64, rows), written), ir.Constant(I64, row_bytes))
            f.zero(f.ptr(stack, written, row_bytes), rest)
        b.ret_void()


def _render_branch(module: ir.Module, name: str, step: BranchStep, codes: Codes) -> None:
    branches = [(_render_subprogram(module, f"{name}_{tag}", sub, codes), sub)
                for tag, sub in (("t", step.then_branch), ("e", step.else_branch))]
    fn = ir.Function(module, ir.FunctionType(llvm_types.VOID, [llvm_types.I8PP, I64, I64]), name=name)
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    f = _Frame(module, b, fn.args[0])
    for _, sub in branches:
        for view, cap in zip(sub.args, step.captures):
            f.point(view, f.ptr(cap))
    taken = b.icmp_unsigned("!=", b.load(f.ptr(step.pred)), ir.Constant(llvm_types.I8, 0))
    blocks = [fn.append_basic_block("then"), fn.append_basic_block("else")]
    done = fn.append_basic_block("done")
    b.cbranch(taken, *blocks)
    for block, (fns, sub) in zip(blocks, branches):
        b.position_at_end(block)
        f.run(fns)
        for out, result in zip(step.outputs, sub.results):
            f.copy(f.ptr(out), f.ptr(result), out.nbytes)
        b.branch(done)
    b.position_at_end(done)
    b.ret_void()
