"""Lowering: a fused Program (graphc.passes.fuse ran) becomes a KernelProgram.

Each fusion group becomes one loop kernel (elementwise, or a reduction with its prologue and
epilogue), or a library kernel followed by an elementwise epilogue kernel (or, with
`gemm_epilogues`, a GEMM running that epilogue on each block of C: graphc.lower.gemm_epilogue);
a materialized view becomes a copy kernel. Program inputs, constants and every value a group stores get a buffer;
results get output buffers, the rest temporaries placed by the memory plan.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import CompileError
from ..ir.aligned import aligned
from ..ir.node import Node
from ..ir.shapes import normalize_axes
from ..ir.tensor import Tensor
from ..ops import scalar as sexpr
from ..program import FusionGroup, Program
from . import index as iexpr
from .loop_builder import LoopBuilder, substitute
from . import library, library_loops, library_nn  # noqa: F401  (their @library rules fill the table)
from .kernel import Buffer, GemmCall, KernelProgram, LoopKernel
from .kernel import NS_PER_PRIM, schedule_host_calls
from .chains import row_chains
from .gemm_epilogue import attach_epilogue
from .library_table import lower_library
from .reads import Dims, broadcast_index, through_view

COMBINERS = {"Sum": "sum", "Prod": "prod", "Max": "max", "Min": "min", "Any": "any", "All": "all"}


# scalar primitives that make an epilogue too heavy to ride along a loop that vectorizes
EXPENSIVE_PRIMS = frozenset(p for p, ns in NS_PER_PRIM.items() if ns >= 0.05)


def cheap(nodes: list[Node]) -> bool:
    """Whether the elementwise nodes use only cheap primitives (adds, products, min / max,
    selects): no transcendental, division, square root or random draw."""
    exprs = [n.op.scalar_expr([t.dtype for t in n.inputs], dict(n.attrs)) for n in nodes]
    return not any(e.prim in EXPENSIVE_PRIMS or e.prim.startswith("philox") for x in exprs for e in sexpr.nodes_of(x))


DEPTHWISE_ANY_TAIL = True   # False: only cheap tails, as for the other products (to measure)


def _depthwise(kernels: list) -> bool:
    """Whether a rule's kernels are a depthwise convolution (graphc.lower.conv_depthwise): any
    tail rides in its blocks, a swish included, as it rode in the loop kernels' chain over
    channels before. Its blocks are a few planes, still in L1 / L2 when the tail runs; in
    efficientnet_b0 (in-process A/B, one thread) the same time either way (0.997 both ways),
    and one pass fewer per block."""
    return DEPTHWISE_ANY_TAIL and any(isinstance(k, GemmCall) and k.depthwise is not None for k in kernels)


class Lowering:
    def __init__(self, program: Program, blas: bool = True, vector_loops: bool = False,
                 generated_gemm: bool = False, gemm_epilogues: bool = False, direct_conv: bool = False,
                 strided_operands: bool = False) -> None:
        if program.groups is None:
            raise CompileError("internal: the program must be fused before lowering")
        self.program = program
        self.buffers: list[Buffer] = []
        self.buffer_of: dict[Tensor, Buffer] = {}
        self.stored: set[Tensor] = set()
        self.kernels: list[Any] = []
        self.results = set(program.results)
        self.blas = blas  # float matmuls become GemmCalls (else generated loop kernels)
        self.generated_gemm = generated_gemm   # GemmCalls run graphc's own GEMM, not a BLAS
        self.inline_epilogue: FusionGroup | None = None   # the library group being lowered (store_result)
        # matrix-vector products become reduction loops even where GEMMs are calls (a CPU BLAS
        # packs the matrix before streaming it; see library._matmul)
        self.vector_loops = vector_loops
        # a library group's elementwise tail runs inside the GEMM it follows, block by block
        self.gemm_epilogues = gemm_epilogues
        # NCHW convolutions with a constant filter run graphc's direct kernel (graphc.lower.conv_direct)
        self.direct_conv = direct_conv
        # a product's operand that is a strided view of a stored tensor is read where it lies
        # (GemmCall.lda / ldb) instead of copied first (graphc.lower.library._strided_operand)
        self.strided_operands = strided_operands
        # (a rule's kernels, its output, its tail kernel, the tail's nodes)
        self.gemm_tails: list[tuple[list, Buffer, LoopKernel, list[Node]]] = []

    # ---------------------------------------------------------------- buffers
    def new_buffer(self, name: str, t_or_dtype: Any, shape: tuple[int, ...] | None = None, kind: str = "temp",
                   value: Any = None) -> Buffer:
        dtype = t_or_dtype.dtype if isinstance(t_or_dtype, Tensor) else t_or_dtype
        shape = tuple(t_or_dtype.shape) if shape is None else tuple(shape)
        if kind == "const" and isinstance(value, np.ndarray):
            value = aligned(value)   # made here (a packed filter): its only copy is aligned
        buf = Buffer(len(self.buffers), name, dtype, shape, kind, value)
        self.buffers.append(buf)
        return buf

    def bind(self, t: Tensor, kind: str | None = None) -> Buffer:
        """The buffer holding t (created on first use)."""
        buf = self.buffer_of.get(t)
        if buf is None:
            buf = self.new_buffer(t.name, t, kind=kind or ("output" if t in self.results else "temp"))
            self.buffer_of[t] = buf
            self.stored.add(t)
        return buf

    # ---------------------------------------------------------------- main
    def lower(self) -> KernelProgram:
        p = self.program
        inputs = [self.bind(i.tensor, "input") for i in p.inputs]
        for n in p.nodes():
            if n.type == "Const":
                self.bind(n.outputs[0], "const").value = n.attrs["value"]   # aligned where the graph made it
        for g in p.groups:
            for t in g.stores:
                self.bind(t)
        for g in p.groups:
            lower_group = {"elementwise": self.elementwise_group, "reduction": self.reduction_group,
                           "library": self.library_group, "copy": self.copy_group}[g.kind]
            lower_group(g)
        results = [self.buffer_of[t] for t in p.results]
        self.fuse_gemm_epilogues()
        kp = KernelProgram(self.buffers, schedule_host_calls(self.kernels), inputs, results)
        slot_of = {i.key: j for j, i in enumerate(p.inputs) if i.kind == "variable"}
        kp.updates = [(slot_of[name], len(p.outputs) + j) for j, (name, _) in enumerate(p.updates) if name in slot_of]
        return kp

    def fuse_gemm_epilogues(self) -> None:
        """Each library group's tail that may run inside the GEMM before it does
        (graphc.lower.gemm_epilogue), unless it is part of a row chain or costly. Chained with
        the kernel after it (an NHWC pool), the tail's rows are still in cache when that kernel
        reads them, which the fused form would give up (the small CNN's Adam step: 5-14% slower
        fused). A costly tail (an Adam update: square roots, divisions, five arrays) ran slower
        in the GEMM's blocks than as a kernel of its own (the MLP step's dW1: 561 us against
        413 + 85); bias, batch norm, clipped activations and residual adds are cheap. Chains over
        the channels of one image (a leading axis of size 1) do not count: a pointwise
        convolution's clip fused in its blocks, then a chain of the depthwise convolution's
        padding, planes and epilogue after it, ran mobilenet_v2's blocks in 0.82-0.99 of the time
        of the clip chained with the padding."""
        if not self.gemm_tails:
            return
        chained = {id(k) for chain in row_chains(KernelProgram(self.buffers, self.kernels, [], []), unit_lead=False)
                   for k in self.kernels[chain.first:chain.last]}
        fused = {id(tail) for rule_kernels, c, tail, nodes in self.gemm_tails
                 if id(tail) not in chained and (cheap(nodes) or _depthwise(rule_kernels))
                 and attach_epilogue(rule_kernels, c, tail)}
        self.kernels = [k for k in self.kernels if id(k) not in fused]
        self.gemm_tails = []

    # ---------------------------------------------------------------- expressions
    def elementwise_value(
        self, kb: LoopBuilder, node: Node, out_index: Dims, env: dict[Tensor, sexpr.SExpr]
    ) -> sexpr.SExpr:
        """node's scalar expression at `out_index`, reading members from env, the rest from memory."""
        expr = node.op.scalar_expr([t.dtype for t in node.inputs], dict(node.attrs))
        out_shape = tuple(node.outputs[0].shape)
        args = []
        for t in node.inputs:
            if t in env:
                args.append(env[t])
            else:
                args.append(kb.read(t, broadcast_index(out_index, out_shape, tuple(t.shape))))
        return substitute(expr, args)

    def run_members(self, kb: LoopBuilder, nodes: list[Node], index: Dims, env: dict[Tensor, sexpr.SExpr]) -> None:
        for n in nodes:
            env[n.outputs[0]] = self.elementwise_value(kb, n, index, env)

    # ---------------------------------------------------------------- groups
    def elementwise_group(self, g: FusionGroup) -> None:
        kb = LoopBuilder(self, f"k{len(self.kernels)}_{g.nodes[-1].type}", g.space, node=g.nodes[-1])
        env: dict[Tensor, sexpr.SExpr] = {}
        self.run_members(kb, g.nodes, kb.vars, env)
        for t in g.stores:
            kb.store(self.buffer_of[t], kb.vars, env[t])
        kb.finish()

    def reduction_group(self, g: FusionGroup) -> None:
        anchor = g.anchor
        x = anchor.inputs[0]
        space = tuple(x.shape)
        axes = normalize_axes(anchor.attrs["axis"], len(space))
        kb = LoopBuilder(self, f"k{len(self.kernels)}_{anchor.type}", space, reduced=axes, node=anchor)
        split = g.nodes.index(anchor)
        env: dict[Tensor, sexpr.SExpr] = {}
        self.run_members(kb, g.nodes[:split], kb.vars, env)
        out = anchor.outputs[0]
        operand = env[x] if x in env else kb.read(x, kb.vars)
        if anchor.type in ("Sum", "Prod") and operand.dtype is not out.dtype:
            operand = sexpr.cast(operand, out.dtype)
        acc = kb.accumulate(COMBINERS[anchor.type], operand, out.dtype)
        if anchor.attrs["keepdims"]:
            out_index = tuple(iexpr.const(0) if a in axes else v for a, v in enumerate(kb.vars))
        else:
            out_index = tuple(v for a, v in enumerate(kb.vars) if a not in axes)
        outer: dict[Tensor, sexpr.SExpr] = {out: acc}
        self.run_members(kb, g.nodes[split + 1 :], out_index, outer)
        for t in g.stores:
            if t in env:
                kb.store(self.buffer_of[t], kb.vars, env[t], inner=True)
            else:
                kb.store(self.buffer_of[t], out_index, outer[t])
        kb.finish()

    def library_group(self, g: FusionGroup) -> None:
        anchor = g.anchor
        for t in anchor.outputs:
            self.bind(t)
        self.inline_epilogue = g if g.epilogue else None
        first = len(self.kernels)
        lower_library(self, anchor)
        if self.inline_epilogue is not None:   # the library kernel did not take it
            self.inline_epilogue = None
            tail = self.elementwise_tail(g.epilogue, g, tuple(anchor.outputs[0].shape))
            if self.gemm_epilogues:   # perhaps into the GEMM's blocks (fuse_gemm_epilogues)
                self.gemm_tails.append((self.kernels[first:-1], self.buffer_of[anchor.outputs[0]], tail, g.epilogue))

    def store_result(self, kb: LoopBuilder, t: Tensor, index: Dims, value: sexpr.SExpr,
                     inline: bool | str = True) -> None:
        """Store library output t's `value` at `index` (t's own coordinates). A library rule whose
        kernel computes its output element by element (a direct or depthwise convolution, a
        pool) stores through here, and the group's elementwise epilogue (bias, batch norm,
        activation) runs in the same kernel on the value still in a register, instead of in a
        second pass over memory. `inline=False` keeps the separate pass: a rule passes it where
        the fused kernel measured slower (an NCHW depthwise convolution with stride 2, whose
        strided inner loop stopped vectorizing with the epilogue in it: 2x slower);
        `inline="cheap"` fuses only an epilogue without transcendentals or divisions (NCHW
        depthwise with stride 1: bias + ReLU6 inside measured 0.85-0.91 of the two passes,
        a SiLU inside 1.3x)."""
        g = self.inline_epilogue
        if g is None or t is not g.anchor.outputs[0] or not inline or (inline == "cheap" and not cheap(g.epilogue)):
            kb.store(self.buffer_of[t], index, value)
            return
        self.inline_epilogue = None
        env: dict[Tensor, sexpr.SExpr] = {t: value}
        self.run_members(kb, g.epilogue, index, env)
        if t in g.stores or t in self.results:
            kb.store(self.buffer_of[t], index, value)
        for s in g.stores:
            if s in env and s is not t:
                kb.store(self.buffer_of[s], index, env[s])

    def elementwise_tail(self, nodes: list[Node], g: FusionGroup, space: tuple[int, ...]) -> LoopKernel:
        kb = LoopBuilder(self, f"k{len(self.kernels)}_{nodes[-1].type}", space, node=nodes[-1])
        env: dict[Tensor, sexpr.SExpr] = {}
        self.run_members(kb, nodes, kb.vars, env)
        for t in g.stores:
            if t in env:
                kb.store(self.buffer_of[t], kb.vars, env[t])
        return kb.finish()

    def copy_group(self, g: FusionGroup) -> None:
        (view,) = g.nodes
        t = view.outputs[0]
        kb = LoopBuilder(self, f"k{len(self.kernels)}_copy", t.shape, node=view)
        src, idx = through_view(t, kb.vars)
        kb.store(self.buffer_of[t], kb.vars, kb.read(src, idx))
        kb.finish()


def lower_program(program: Program, blas: bool = True, vector_loops: bool = False,
                  generated_gemm: bool = False, gemm_epilogues: bool = False, direct_conv: bool = False,
                  strided_operands: bool = False) -> KernelProgram:
    return Lowering(program, blas, vector_loops, generated_gemm, gemm_epilogues, direct_conv, strided_operands).lower()
