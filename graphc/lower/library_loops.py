"""Lowering of loops and branches (the While and If ops) into LoopStep / BranchStep.

Each sub-graph (body, condition, branch) is a Program that went through the pipeline already;
it is lowered by the same Lowering as its owner into a kernel program of its own, whose buffers
join the owner's (one frame slot each). Its temporaries, arguments and results get a region of
the workspace (planned here, placed by graphc.lower.memory after the owner's temporaries).

Arguments that only point somewhere are "view" buffers: captured tensors (the weights), a
sequence's row for this iteration, and every argument of a loop's condition (it reads the body's
arguments). The iteration index and the loop values own storage: the loop copies a carry's new
value there after each iteration (through a staging buffer when that value is another carry's
argument: a swap).
"""
from __future__ import annotations

from typing import Any

from ..ir.node import Node
from .kernel import Buffer, BranchStep, LoopStep, SubProgram
from .library_table import library, stored
from .memory import ALIGN, plan_memory


def _lower_function(lw: Any, fn: Any, views: set[int]) -> SubProgram:
    """The sub-program of Function `fn`; argument positions in `views` become views."""
    sub = lw.__class__(fn.program, lw.blas, lw.vector_loops, lw.generated_gemm, lw.gemm_epilogues,
                        lw.direct_conv).lower()
    plan_memory(sub)
    for b in sub.buffers:
        b.id = len(lw.buffers)
        lw.buffers.append(b)
    offset = _aligned(sub.workspace_bytes)
    for position, b in enumerate(sub.inputs):
        if position in views:
            b.kind = "view"
        else:
            b.kind, b.offset = "temp", offset
            offset = _aligned(offset + b.nbytes)
    for b in sub.results:
        if b.kind == "output":
            b.kind, b.offset = "temp", offset
            offset = _aligned(offset + b.nbytes)
    program = SubProgram(sub.kernels, list(sub.inputs), list(sub.results), list(sub.buffers), offset)
    return program


def _aligned(n: int) -> int:
    return -(-max(n, 0) // ALIGN) * ALIGN


def _staging(lw: Any, body: SubProgram, n: int) -> list[Buffer | None]:
    """A staging buffer for each loop value whose new value is another loop value's argument."""
    carried = {id(b): k for k, b in enumerate(body.args[1:1 + n])}
    out: list[Buffer | None] = []
    for k, result in enumerate(body.results[:n]):
        source = carried.get(id(result))
        if source is None or source == k:
            out.append(None)
            continue
        buf = lw.new_buffer(f"{result.name}/staged", result.dtype, result.shape, kind="temp")
        buf.offset = body.region_bytes
        body.region_bytes = _aligned(body.region_bytes + buf.nbytes)
        body.buffers.append(buf)
        out.append(buf)
    return out


@library("While")
def _while(lw: Any, node: Node) -> None:
    attrs = node.attrs
    n, m = attrs["n_carries"], attrs["n_sequences"]
    trip, carries, sequences, captures = node.op.split(node.inputs, attrs)
    first_view = 1 + n   # sequences' rows and captures point elsewhere
    body = _lower_function(lw, attrs["body"], set(range(first_view, 1 + n + m + len(captures))))
    cond = None
    if attrs["cond"] is not None:
        cond = _lower_function(lw, attrs["cond"], set(range(1 + n + m + len(captures))))
    n_values = len(attrs["body"].results) - n
    outs = [lw.buffer_of[t] for t in node.outputs]
    step = LoopStep(
        f"k{len(lw.kernels)}_while", stored(lw, node, trip), [stored(lw, node, t) for t in carries],
        [stored(lw, node, t) for t in sequences], [stored(lw, node, t) for t in captures],
        outs[:n], outs[n:n + n_values], outs[n + n_values], outs[n + n_values + 1:], bool(attrs["reverse"]),
        cond, body, node=node)
    step.staging = _staging(lw, body, n)
    lw.kernels.append(step)


@library("If")
def _if(lw: Any, node: Node) -> None:
    captures = node.inputs[1:]
    views = set(range(len(captures)))
    then_p = _lower_function(lw, node.attrs["then_branch"], views)
    else_p = _lower_function(lw, node.attrs["else_branch"], views)
    lw.kernels.append(BranchStep(f"k{len(lw.kernels)}_if", stored(lw, node, node.inputs[0]),
                                 [stored(lw, node, t) for t in captures], [lw.buffer_of[t] for t in node.outputs],
                                 then_p, else_p, node=node))
