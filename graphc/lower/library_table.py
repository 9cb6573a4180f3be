"""The table of library kernels: how each op that is not elementwise or a simple reduction is
lowered (graphc/lower/library.py for array ops, library_nn.py for convolution and pooling; both
register here with @library and neither imports the other), and the helpers they share.

A rule is `rule(lowering, node)`: it writes the node's outputs into their buffers by appending
kernels to the lowering.
"""
from __future__ import annotations

import math
from typing import Any, Callable

from ..errors import CompileError
from ..ir.node import Node
from ..ops import scalar as sexpr
from . import index as iexpr
from .loop_builder import LoopBuilder
from .reads import Dims, flatten, resolve

Lower = Callable[[Any, Node], None]
_LIBRARY: dict[str, Lower] = {}


def library(*names: str) -> Callable[[Lower], Lower]:
    """Register the decorated function as the lowering of the ops `names`."""
    def deco(fn: Lower) -> Lower:
        for n in names:
            _LIBRARY[n] = fn
        return fn
    return deco


def lower_library(lw: Any, node: Node) -> None:
    fn = _LIBRARY.get(node.type)
    if fn is None:
        raise CompileError(f"no kernel lowering exists for {node.type} yet, so compiled backends cannot run it",
                           op_type=node.type, node_name=node.name, source=node.source,
                           hint="run it with backend='numpy'")
    fn(lw, node)


def kernel_builder(lw: Any, node: Node, space: Any, **options: Any) -> LoopBuilder:
    """A LoopBuilder for the next kernel of `node`, named after its position and op."""
    return LoopBuilder(lw, f"k{len(lw.kernels)}_{node.type}", space, node=node, **options)


def fill(lw: Any, node: Node, buf: Any, value: Any) -> None:
    """A kernel setting every element of `buf` to `value`."""
    kb = kernel_builder(lw, node, buf.shape)
    kb.store(buf, kb.vars, sexpr.const(value, buf.dtype))
    kb.finish()


def copy_into(lw: Any, node: Node, src, out_buf, space, out_index: Callable[[Dims], Dims], src_index=None,
              mode: str = "set", serial: bool = False) -> None:
    """A kernel over `space` storing src (a tensor) into out_buf at out_index(loop vars)."""
    kb = kernel_builder(lw, node, space, serial=serial)
    value = kb.read(src, kb.vars if src_index is None else src_index(kb.vars))
    kb.store(out_buf, out_index(kb.vars), value, mode=mode)
    kb.finish()


def stored(lw: Any, node: Node, t) -> Any:
    """The buffer holding t's data contiguously (materializing a view when t is one). A view
    whose elements lie in a program input in the same order (a reshape of a fed or variable
    array: the flattened images an MLP multiplies, an attention block's [batch * tokens, d]
    input) is that input's memory under another shape, not a copy."""
    if t in lw.buffer_of:
        return lw.buffer_of[t]
    base = _same_order_input(lw, t)
    if base is not None:
        buf = lw.new_buffer(f"{t.name}/view", t)
        buf.alias_of = base
        return buf
    buf = lw.new_buffer(f"{t.name}/contiguous", t)
    copy_into(lw, node, t, buf, tuple(t.shape), lambda v: v)
    return buf


def _same_order_input(lw: Any, t) -> Any:
    """The input buffer whose element j is t's element j (row-major), if t is such a view."""
    shape = tuple(t.shape)
    base, index = resolve(t, tuple(iexpr.var(a) for a in range(len(shape))), lw.stored)
    buf = lw.buffer_of.get(base)
    if buf is None or buf.kind != "input" or buf.dtype is not t.dtype or buf.size != math.prod(shape):
        return None
    flat = index if not isinstance(index, tuple) else flatten(index, tuple(base.shape))
    form = iexpr.affine(flat)
    step, want = 1, {}
    for a in range(len(shape) - 1, -1, -1):
        if shape[a] != 1:
            want[a] = step
        step *= shape[a]
    if form is None or form[1] != 0 or {a: c for a, c in form[0].items() if c and shape[a] != 1} != want:
        return None
    return buf
