"""The kernel IR: what the code generators (graphc.codegen: LLVM and CUDA) render. It knows
nothing of either; it knows buffers, loops, index maps, scalar expressions and library calls.

A KernelProgram is a list of kernels over buffers:
  - LoopKernel: a loop nest over an iteration space in a given order. It reads slots (a buffer
    through an index map, optionally masked with a fill value), evaluates scalar expressions
    (graphc.ops.scalar.SExpr, whose "arg" leaves are slots, "acc" leaves accumulator results and
    "index" leaves loop variables), reduces over trailing loop axes into accumulators, stores
    values through index maps, and checks conditions (an index out of range sets an error).
  - GemmCall: C = op(A) @ op(B) (batched), for a BLAS or a generated GEMM.
Every buffer is C-contiguous; views exist only as index maps.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..ir.dtypes import DType
from ..ops.scalar import SExpr
from .index import IExpr, affine
from .reads import flatten

if TYPE_CHECKING:
    from .gemm_epilogue import GemmLayout

# The runtime's words a loop body reads to run a big product on graphc's thread pool: three
# 64-bit words (the native pool's state, its graphc_pool_run entry, the threads this run may use),
# zero where the body must run everything itself (graphc.codegen.llvm_control, graphc.runtime).
LOOP_POOL_SYMBOL = "graphc_loop_pool"
POOL_MAX_CHUNKS = 256   # chunks of one pool job at most (the native pool keeps a claim word per chunk)

# The runtime's entry for host calls (HostCall): `i64 graphc_host_call(i64 kind, i64 argument,
# i64 dtype, i64 count, i8* src, i8* dst, i8* key)`, 0 on success; on failure the kernel sets the
# error code HOST_CALL_FAILED and the runtime raises the error the call left (graphc.runtime.host_calls).
HOST_CALL_SYMBOL = "graphc_host_call"
HOST_CALL_FAILED = 1 << 40
HOST_KINDS = ("allreduce", "broadcast", "allgather", "allreduce_start", "allreduce_wait")
HOST_DTYPES = ("float32", "float64", "int32", "int64")

BUFFER_KINDS = ("input", "output", "const", "temp", "view")   # a view: a pointer a loop sets, no storage


@dataclass(eq=False)
class Buffer:
    id: int
    name: str
    dtype: DType
    shape: tuple[int, ...]
    kind: str                          # input | output | const | temp
    value: np.ndarray | None = None    # for constants
    offset: int | None = None          # workspace offset of a temp (memory plan)
    alias_of: "Buffer | None" = None   # storage shared with another buffer (in-place updates)

    @property
    def size(self) -> int:
        return int(math.prod(self.shape))   # far cheaper than np.prod on a short tuple

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize

    @property
    def strides(self) -> tuple[int, ...]:
        """Element strides of the C-contiguous layout."""
        out, step = [], 1
        for d in reversed(self.shape):
            out.append(step)
            step *= max(d, 1)
        return tuple(reversed(out))

    def __repr__(self) -> str:
        return f"<Buffer {self.id} {self.name} {self.kind} {self.dtype.name}{list(self.shape)}>"


@dataclass(eq=False)
class Slot:
    """A value read per iteration: buffer[index], or `fill` where `valid` is false. `index` is
    one IExpr per buffer dimension, or a single IExpr giving the flat element offset."""

    buffer: Buffer
    index: tuple[IExpr, ...] | IExpr
    valid: IExpr | None = None
    fill: Any = 0


@dataclass(eq=False)
class Accumulator:
    """A reduction over the kernel's reduced axes: combiner of `operand` values.
    argmax / argmin reduce one axis and give the index (int64) of the first extremum."""

    combiner: str        # sum | prod | max | min | any | all | argmax | argmin
    operand: SExpr
    dtype: DType         # of the result


@dataclass(eq=False)
class Store:
    """buffer[index] = value (mode "set") or += value (mode "add"); `inner` stores run inside
    the reduction loops (their index may use reduced axes), outer ones after them."""

    buffer: Buffer
    index: tuple[IExpr, ...]
    value: SExpr
    mode: str = "set"
    inner: bool = False


@dataclass(eq=False)
class Check:
    """A condition that must hold for every iteration; otherwise the run fails with `message`
    (a format string receiving the offending value) naming `node`."""

    condition: SExpr      # bool
    detail: SExpr | None  # int64 value reported in the message as {value}
    message: Any          # a str using {value} and {index} (the failing iteration, through `where`),
                          # or a function (value, index) -> str
    node: Any
    inner: bool = True
    where: Any = None     # iteration index -> the index reported as {index}


@dataclass(eq=False)
class LoopKernel:
    name: str
    space: tuple[int, ...]                 # extents of loop variables 0..n-1
    order: tuple[int, ...]                 # nesting order, outermost first; reduced axes last
    reduced: tuple[int, ...] = ()          # loop variables reduced over
    slots: list[Slot] = field(default_factory=list)
    accumulators: list[Accumulator] = field(default_factory=list)
    stores: list[Store] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    serial: bool = False                   # stores may collide (scatter): never split
    node: Any = None                       # the program node it mainly implements
    skip_on_error: bool = False            # writes in place: do nothing once a check failed

    @property
    def parallel_extent(self) -> int:
        """Iterations of the outermost loop, the one split across threads."""
        return self.space[self.order[0]] if self.order else 1

    @property
    def work(self) -> int:
        """A cost estimate: iterations of the whole nest."""
        return int(np.prod(self.space, dtype=np.int64)) if self.space else 1

    def reads(self) -> list[Buffer]:
        return [s.buffer for s in self.slots]

    def writes(self) -> list[Buffer]:
        return [s.buffer for s in self.stores]


@dataclass(frozen=True, eq=False)
class ConvWindows:
    """B of a GemmCall that is a convolution's patch matrix read where it lies, never built
    (graphc.lower.conv_direct): column p (an output pixel) of an image's B starts at
    (p // ow) * row_step + (p % ow) * col_step in the padded image, and reduction step s (a
    tap and an input channel) is koff[s] further on. A is the filter packed in panels of output
    channels (graphc.codegen.llvm_conv_direct)."""

    koff: Buffer    # int64 [k]
    ow: int
    row_step: int   # elements between output rows' windows (stride_h * padded width * channels)
    col_step: int   # elements between output columns' windows (stride_w * channels)
    # C's row r (an output channel) of column p (a pixel) at p * m + r (an NHWC output) instead
    # of the GEMM form's r * n + p (NCHW)
    channels_last: bool = False
    panel_bytes: int = 128   # bytes of output channels per panel of the packed filter (A)


@dataclass(frozen=True, eq=False)
class DepthwiseWindows:
    """A GemmCall that is an NCHW depthwise convolution (graphc.lower.conv_depthwise): C's row r
    (channel r) is B's plane r (h x w, unpadded) convolved with A's taps for channel r (the
    HWIO filter as it lies: tap (i, j) of channel r at A[(i * taps[1] + j) * m + r])."""

    h: int
    w: int
    oh: int
    ow: int
    taps: tuple[int, int]
    strides: tuple[int, int]
    dilations: tuple[int, int]
    pads: tuple[int, int]       # rows above, columns to the left
    # the flattened form (graphc.lower.conv_depthwise.flattened): bool [kh * kw, flat_stride],
    # whether output pixel q reads inside the plane at tap (i, j)
    flat_masks: Buffer | None = None
    flat_stride: int = 0
    # "sum": a convolution (A holds the taps); "max": a max pool (A is unused, taps outside count -inf)
    combiner: str = "sum"


@dataclass(eq=False)
class GemmCall:
    """C[b] = alpha * op(A[b]) @ op(B[b]) (+ C[b] if accumulate), for each batch index b of
    `batch`; a_batch / b_batch give each operand's batch element (broadcasting)."""

    name: str
    a: Buffer
    b: Buffer
    c: Buffer
    m: int
    n: int
    k: int
    transpose_a: bool
    transpose_b: bool
    batch: tuple[int, ...] = ()
    a_batch_strides: tuple[int, ...] = ()   # element offsets per batch index, 0 where broadcast
    b_batch_strides: tuple[int, ...] = ()
    node: Any = None
    # element offsets of A, B and C inside their buffers (a convolution cut into batch chunks
    # multiplies one chunk's patches into its rows of the output)
    offsets: tuple[int, int, int] = (0, 0, 0)
    # graphc's own generated GEMM (graphc.codegen.llvm_gemm_own) rather than a BLAS call
    generated: bool = False
    # how C's batch index, rows and columns lie over the axes of the tensor C holds (set by the
    # rule that emits the product; None where they do not map onto whole axes)
    layout: "GemmLayout | None" = None
    # an elementwise kernel over that tensor's space (the fusion group's bias, activation,
    # residual add), run on each block of C right after the block is computed, while it is in
    # cache (graphc.lower.gemm_epilogue); None: C is the result
    epilogue: "LoopKernel | None" = None
    # B read through a convolution's windows (a direct convolution; LLVM targets only)
    window: ConvWindows | None = None
    # elements between consecutive rows of A and of B as stored (0: the dense m or k, k or n):
    # an operand that is a strided view read where it lies (LLVM targets only)
    lda: int = 0
    ldb: int = 0
    # a 1x1 convolution over planar images (graphc.lower.conv_pointwise): A is the filter
    # packed in panels of rows, B each image read where it lies (LLVM targets only)
    pointwise: bool = False
    # a depthwise convolution over planar images (graphc.lower.conv_depthwise; LLVM targets only)
    depthwise: DepthwiseWindows | None = None

    @property
    def work(self) -> int:
        return int(np.prod(self.batch, dtype=np.int64)) * self.m * self.n * self.k

    @property
    def convolution_kernel(self) -> bool:
        """Whether one of graphc's convolution kernels (direct, pointwise, depthwise) runs it,
        not a matrix product (BLAS or the own GEMM)."""
        return self.window is not None or self.pointwise or self.depthwise is not None

    def reads(self) -> list[Buffer]:
        operands = [self.a, self.b] if self.window is None else [self.a, self.b, self.window.koff]
        if self.depthwise is not None and self.depthwise.flat_masks is not None:
            operands.append(self.depthwise.flat_masks)
        if self.epilogue is None:
            return operands
        return operands + self.epilogue.reads()

    def writes(self) -> list[Buffer]:
        if self.epilogue is None:
            return [self.c]
        return [self.c] + self.epilogue.writes()


@dataclass(eq=False)
class SubProgram:
    """A loop's body or condition, or a branch, lowered: its kernels, the buffers its arguments
    are bound to and the buffers its results are in. `buffers` are its own (temporaries,
    arguments, results); they are part of the enclosing KernelProgram's buffers too (one frame
    slot each) and live in a region of the workspace of their own (graphc.lower.memory)."""

    kernels: list[Any]
    args: list[Buffer]
    results: list[Buffer]
    buffers: list[Buffer]
    region_bytes: int = 0   # its workspace region (temporaries, arguments, results, nested regions)


@dataclass(eq=False)
class LoopStep:
    """The While op (graphc/ops/loops.py) as one step of a kernel program: the code generator
    renders the loop itself (compiled once, whatever the trip count). Argument buffers of kind
    "view" hold no storage: the loop points them at a capture, or at row s(i) of a sequence,
    so a step's slice is never copied. `staging` gives a buffer to each loop value whose new
    value is another loop value's argument (a swap), copied there first."""

    name: str
    trip: Buffer
    carries: list[Buffer]
    sequences: list[Buffer]
    captures: list[Buffer]
    finals: list[Buffer]
    stacked: list[Buffer]
    count: Buffer
    history: list[Buffer]
    reverse: bool
    cond: SubProgram | None
    body: SubProgram
    staging: list[Buffer | None] = field(default_factory=list)
    node: Any = None

    @property
    def trips(self) -> int:
        """Iterations assumed by the cost model: the capacity when known, else a guess."""
        rows = [b.shape[0] for b in self.sequences + self.stacked + self.history if b.shape]
        return min(rows) if rows else 64

    @property
    def work(self) -> int:
        per = sum(k.work for k in self.body.kernels) + (sum(k.work for k in self.cond.kernels) if self.cond else 0)
        return self.trips * max(per, 1)

    def reads(self) -> list[Buffer]:
        return [self.trip, *self.carries, *self.sequences, *self.captures]

    def writes(self) -> list[Buffer]:
        return [*self.finals, *self.stacked, self.count, *self.history]

    def subprograms(self) -> list[SubProgram]:
        return [self.body] + ([self.cond] if self.cond is not None else [])


@dataclass(eq=False)
class BranchStep:
    """The If op as one step: runs one of two sub-programs, then copies its results out."""

    name: str
    pred: Buffer
    captures: list[Buffer]
    outputs: list[Buffer]
    then_branch: SubProgram
    else_branch: SubProgram
    node: Any = None

    @property
    def work(self) -> int:
        return max(sum(k.work for k in p.kernels) for p in self.subprograms())

    def reads(self) -> list[Buffer]:
        return [self.pred, *self.captures]

    def writes(self) -> list[Buffer]:
        return list(self.outputs)

    def subprograms(self) -> list[SubProgram]:
        return [self.then_branch, self.else_branch]


@dataclass(eq=False)
class HostCall:
    """A call into the runtime between kernels: a collective exchange with the other processes
    (graphc/ops/collective.py). The runtime reads `src` and fills `dst`; `argument` is the
    reduction (0 sum, 1 average) of an allreduce or the root of a broadcast. One serial call.
    An allreduce is two calls: "allreduce_start" hands `src` over (no dst) as soon as it is
    computed, "allreduce_wait" fills `dst` (no src) just before it is needed, and the exchange
    runs in between, beside the kernels (schedule_host_calls places them)."""

    name: str
    kind: str          # one of HOST_KINDS
    src: Buffer | None
    dst: Buffer | None
    key: str           # the node's name, for messages and for matching the call across processes
    argument: int = 0
    node: Any = None

    @property
    def work(self) -> int:
        return (self.dst or self.src).size

    def reads(self) -> list[Buffer]:
        return [self.src] if self.src is not None else []

    def writes(self) -> list[Buffer]:
        return [self.dst] if self.dst is not None else []


def host_argument(kind: str, attrs: dict[str, Any]) -> int:
    """The one integer a HostCall passes besides its buffers: an allreduce's reduction (bit 0:
    average) and root + 1 (the other bits; 0 when every rank keeps the result), a broadcast's
    root, an allgather's world size."""
    if kind.startswith("allreduce"):
        return int(attrs.get("reduce") == "average") | ((attrs.get("root", -1) + 1) << 1)
    return int(attrs.get("root", 0) if kind == "broadcast" else attrs.get("size", 1))


def host_attrs(kind: str, argument: int, key: str) -> dict[str, Any]:
    """host_argument's inverse: the attributes graphc.ops.collective.run_collective takes."""
    attrs: dict[str, Any] = {"key": key}
    if kind.startswith("allreduce"):
        attrs.update(reduce="average" if argument & 1 else "sum", root=(argument >> 1) - 1)
    elif kind == "broadcast":
        attrs["root"] = argument
    else:
        attrs["size"] = argument
    return attrs


Kernel = LoopKernel | GemmCall | LoopStep | BranchStep | HostCall


def schedule_host_calls(kernels: list[Any]) -> list[Any]:
    """Each allreduce_start moved up to just after the kernel that last writes what it sends,
    each allreduce_wait down to just before the first kernel that uses its result: an exchange
    of the last layer's gradients starts while earlier layers are still being differentiated.
    Deterministic, so every process issues its exchanges in the same order. With
    GRAPHC_OVERLAP_EXCHANGES=0 each start is directly followed by its wait (to measure the gain)."""
    if os.environ.get("GRAPHC_OVERLAP_EXCHANGES", "1") == "0":
        return list(kernels)
    out = [k for k in kernels if not (isinstance(k, HostCall) and k.kind == "allreduce_start")]

    def after_last_writer(reads: list[Buffer], before: int) -> int:
        wanted = {id(b) for b in reads}
        writers = [i for i, k in enumerate(out[:before]) if any(id(b) in wanted for b in k.writes())]
        return writers[-1] + 1 if writers else 0

    for start in (k for k in kernels if isinstance(k, HostCall) and k.kind == "allreduce_start"):
        sent = {id(b) for b in start.reads()}
        packers = [k for k in out if any(id(b) in sent for b in k.writes())]
        for packer in packers:
            # the kernels filling the message (the parts of a bucket's concatenation) move up
            # too, each right after the last kernel computing what it copies (only the start
            # reads the message)
            if isinstance(packer, LoopKernel) and all(id(b) in sent for b in packer.writes()):
                at = out.index(packer)
                out.pop(at)
                out.insert(after_last_writer(packer.reads(), at), packer)
        producers = [i for i, k in enumerate(out) if any(id(b) in sent for b in k.writes())]
        position = producers[-1] + 1 if producers else 0
        while position < len(out) and isinstance(out[position], HostCall) and out[position].kind == "allreduce_start":
            position += 1   # keep the starts in program order
        out.insert(position, start)
    waits = [k for k in out if isinstance(k, HostCall) and k.kind == "allreduce_wait"]
    for wait in waits:
        out.remove(wait)
        made = {id(b) for b in wait.writes()}
        users = [i for i, k in enumerate(out) if any(id(b) in made for b in k.reads() + k.writes())]
        out.insert(users[0] if users else len(out), wait)
    return out


def walk_kernels(kernels: list[Any]) -> list[Any]:
    """Every kernel, those inside loop bodies and branches included, in program order."""
    out = []
    for k in kernels:
        out.append(k)
        for sub in getattr(k, "subprograms", lambda: [])():
            out.extend(walk_kernels(sub.kernels))
    return out


@dataclass
class KernelProgram:
    buffers: list[Buffer]
    kernels: list[Kernel]
    inputs: list[Buffer]        # in Program.inputs order
    results: list[Buffer]       # in Program.results order (outputs, then updates)
    workspace_bytes: int = 0
    errors: list[Any] = field(default_factory=list)   # Check objects, by error code - 1
    # (index into inputs, index into results) of each variable read and its new value: the
    # memory plan may compute the new value in place (graphc.lower.memory.plan_in_place)
    updates: list[tuple[int, int]] = field(default_factory=list)

    def describe(self) -> str:
        lines = []
        for k in self.kernels:
            if isinstance(k, GemmCall):
                lines.append(f"{k.name}: gemm {k.batch}x[{k.m}x{k.k}]@[{k.k}x{k.n}] -> {k.c.name}")
            elif isinstance(k, HostCall):
                lines.append(f"{k.name}: host {k.kind} {k.key}")
            else:
                lines.append(f"{k.name}: loop {k.space} order {k.order} reduce {k.reduced} "
                             f"reads {len(k.slots)} stores {len(k.stores)}")
        return "\n".join(lines)


def columnar_axis(k: LoopKernel) -> int | None:
    """The kept loop axis to run innermost, across a block of accumulators, when a reduction
    walks memory with a stride (a column sum: rows reduced, columns contiguous). Summing one
    column at a time touches one element per cache line; summing a block of columns row by row
    reads whole lines and vectorizes. None when the kernel's own order is already right."""
    if not k.accumulators or not k.reduced or k.serial:
        return None
    n_outer = len(k.order) - len(k.reduced)
    if n_outer == 0:
        return None
    kept, reduced = k.order[n_outer - 1], k.order[-1]
    if k.space[kept] < 8:
        return None
    unit_kept = strided_reduced = False
    for s in k.slots:
        form = affine(s.index if not isinstance(s.index, tuple) else flatten(s.index, s.buffer.shape))
        if form is None:
            continue
        coeffs = form[0]
        if abs(coeffs.get(reduced, 0)) == 1 and coeffs.get(kept, 0) != 0:
            return None   # an operand is contiguous along the reduction: keep the row order
        # (one that does not vary along the kept axis, like A[m, k] in A @ B, is loaded once per
        # reduction step and broadcast across the block: that is the fast matmul order)
        unit_kept |= coeffs.get(kept, 0) == 1
        strided_reduced |= coeffs.get(reduced, 0) != 0
    return kept if unit_kept and strided_reduced else None


def identity(combiner: str, dtype: Any) -> Any:
    """The value a reduction with `combiner` starts from (the result of an empty reduction)."""
    if combiner in ("sum", "any"):
        return 0
    if combiner in ("prod", "all"):
        return 1
    big = float("inf") if dtype.is_floating else (True if dtype.is_bool else dtype.max)
    small = float("-inf") if dtype.is_floating else (False if dtype.is_bool else dtype.min)
    return small if combiner in ("max", "argmax") else big


def number_checks(kp: KernelProgram) -> list[Check]:
    """Every check of the program in kernel order: error code i + 1 reports check i (kp.errors).
    Both code generators report failures by these codes."""
    kp.errors = [c for k in walk_kernels(kp.kernels) if isinstance(k, LoopKernel) for c in k.checks]
    return kp.errors


# --------------------------------------------------------------------------- cost model
# Nanoseconds per vectorized iteration, measured on the development machine (a 2-core Zen 4):
# streaming memory costs ~0.0125 ns per byte; an inline transcendental ~0.4 ns; a division or
# square root ~0.06; other primitives ~0.01. Only ratios matter: they decide whether a kernel is
# worth splitting across threads (a pool round trip costs tens of microseconds).
NS_PER_BYTE = 0.0125
NS_PER_PRIM = {"exp": 0.4, "expm1": 0.4, "log": 0.4, "log1p": 0.4, "tanh": 0.45, "sigmoid": 0.4, "erf": 0.45,
               "sin": 0.5, "cos": 0.5, "pow": 0.8, "div": 0.06, "sqrt": 0.06, "rsqrt": 0.07, "mod": 0.1,
               "floordiv": 0.1}
NS_PHILOX = 0.5   # a random draw (primitives named philox*)
NS_OTHER_PRIM = 0.01
NS_PER_MAC = 0.05


def estimated_ns(k: Kernel) -> float:
    """A rough serial run time of the kernel, for the threading cost model."""
    if isinstance(k, GemmCall):   # one thread of an AVX2 BLAS: ~40 GFLOP/s
        return k.work * NS_PER_MAC + (estimated_ns(k.epilogue) if k.epilogue is not None else 0.0)
    if isinstance(k, LoopStep):
        return k.trips * sum(estimated_ns(x) for p in k.subprograms() for x in p.kernels)
    if isinstance(k, BranchStep):
        return max(sum(estimated_ns(x) for x in p.kernels) for p in k.subprograms())
    if isinstance(k, HostCall):
        return 10_000.0 + k.work * 4 * NS_PER_BYTE * 4   # a message: latency, then bandwidth
    seen: set[int] = set()

    def cost(root: SExpr) -> float:
        """The cost of the expression's nodes not counted yet (shared subexpressions once); a
        loop, not recursion: a fused expression can be thousands of levels deep."""
        total, stack = 0.0, [root]
        while stack:
            e = stack.pop()
            if id(e) in seen:
                continue
            seen.add(id(e))
            if e.prim not in ("arg", "const", "acc", "index"):
                total += NS_PHILOX if e.prim.startswith("philox") else NS_PER_PRIM.get(e.prim, NS_OTHER_PRIM)
            stack.extend(a for a in e.args if isinstance(a, SExpr))
        return total

    per_iteration = sum(s.buffer.dtype.itemsize for s in k.slots) * NS_PER_BYTE
    per_iteration += sum(cost(a.operand) for a in k.accumulators)
    per_iteration += sum(cost(s.value) + s.buffer.dtype.itemsize * NS_PER_BYTE for s in k.stores if s.inner
                         or not k.accumulators)
    per_iteration += sum(cost(c.condition) for c in k.checks if c.inner)
    return k.work * per_iteration
