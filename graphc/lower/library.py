"""Lowering of ops that are not elementwise or simple reductions into kernels: matmul (a GEMM
call for floats), gather and its gradient, one_hot, concat / stack / unstack / split, pad, tile,
slice gradients, argmax, random draws, checks, and the sparse cross-entropy. Convolution and
pooling are in library_nn.py; both register in library_table.py. Every function writes the
node's outputs into their buffers.
"""
from __future__ import annotations

import math

from typing import Any

import numpy as np

from ..errors import CompileError
from ..ir.dtypes import bool_, float32, float64, int64
from ..ir.node import Node
from ..ir.shapes import normalize_axis
from ..ops import scalar as sexpr
from ..ops.random import philox_key
from ..ops.slicing import expand_spec
from . import index as iexpr
from .loop_builder import condition, index_value
from .gemm_epilogue import GemmLayout, matmul_layout
from .kernel import HOST_DTYPES, GemmCall, HostCall, host_argument
from .library_table import copy_into, fill, kernel_builder, library, stored
from .matmul_direct import matmul_direct
from .reads import Dims, flatten, resolve, through_view

# --------------------------------------------------------------------------- matmul
@library("MatMul")
def _matmul(lw: Any, node: Node) -> None:
    a, b = node.inputs
    out = node.outputs[0]
    c = lw.buffer_of[out]
    ta, tb = node.attrs["transpose_a"], node.attrs["transpose_b"]
    a_shape = (1,) + tuple(a.shape) if a.ndim == 1 else tuple(a.shape)
    b_shape = tuple(b.shape) + (1,) if b.ndim == 1 else tuple(b.shape)
    m, k = (a_shape[-1], a_shape[-2]) if ta else (a_shape[-2], a_shape[-1])
    n = b_shape[-2] if tb else b_shape[-1]
    batch = tuple(out.shape[: len(out.shape) - (a.ndim > 1) - (b.ndim > 1)])
    # On the CPU (lw.vector_loops) a matrix-vector product (one row or one column) is a stream
    # over the matrix: a reduction loop reads it once, vectorized and split over the pool, 2-3x
    # sooner than a BLAS call per block, which packs the matrix first (a classifier's 1x1280 @
    # 1280x1000). Not for A^T @ column, whose loop reads across the reduction (2x slower).
    gemm = lw.blas and out.dtype in (float32, float64) and a.dtype is out.dtype and b.dtype is out.dtype
    if gemm and matmul_direct(lw, node, a, b, batch, m, k, n, ta, tb):
        return
    if gemm and _rows_fold(lw, a, a_shape, b, batch, m, ta):
        # a[*batch, m, k] @ w[k, n]: one product over all of a's rows, not one per batch element
        # (a sequence-first transformer's [128, 1, 256] @ [256, 768] ran as 128 matrix-vector
        # products, 2.3 ms, against 0.2 ms as one GEMM)
        rows = math.prod(batch) * m
        if not (lw.vector_loops and (rows == 1 or n == 1)):
            a_buf, a_off, _, lda, ta = _operand(lw, node, a, a_shape, batch, ta)
            b_buf, b_off, _, ldb, tb = _operand(lw, node, b, b_shape, (), tb)
            layout = GemmLayout((), tuple(range(len(batch) + 1)), (len(batch) + 1,))
            lw.kernels.append(GemmCall(f"k{len(lw.kernels)}_gemm", a_buf, b_buf, c, rows, n, k, ta, tb, (), (), (),
                                       node, (a_off, b_off, 0), generated=lw.generated_gemm, layout=layout, lda=lda,
                                       ldb=ldb))
            return
    vector = lw.vector_loops and (m == 1 or (n == 1 and not ta))
    if vector and not batch and m == 1 and tb and not ta and b.ndim == 2 and _rows_at_once(lw, node, a, b, c, n, k):
        return
    if gemm and not vector:
        a_buf, a_off, a_strides, lda, ta = _operand(lw, node, a, a_shape, batch, ta)
        b_buf, b_off, b_strides, ldb, tb = _operand(lw, node, b, b_shape, batch, tb)
        lw.kernels.append(GemmCall(f"k{len(lw.kernels)}_gemm", a_buf, b_buf, c, m, n, k, ta, tb, batch,
                                   a_strides, b_strides, node, (a_off, b_off, 0),
                                   generated=lw.generated_gemm, layout=matmul_layout(batch, out), lda=lda, ldb=ldb))
        return
    # vectors, integers, or mixed dtypes: a reduction kernel out[..., i, j] = sum_p a[..., i, p] * b[..., p, j]
    kb = kernel_builder(lw, node, batch + (m, n, k), reduced=(len(batch) + 2,))
    *bv, i, j, p = kb.vars
    ai = (p, i) if ta else (i, p)
    bi = (j, p) if tb else (p, j)
    a_idx = tuple(bv[len(batch) - (len(a_shape) - 2):]) + ai
    b_idx = tuple(bv[len(batch) - (len(b_shape) - 2):]) + bi
    a_idx = tuple(iexpr.const(0) if d == 1 else e for e, d in zip(a_idx, a_shape))
    b_idx = tuple(iexpr.const(0) if d == 1 else e for e, d in zip(b_idx, b_shape))
    av = sexpr.cast(kb.read(a, a_idx if a.ndim > 1 else a_idx[-1:]), out.dtype)
    bvl = sexpr.cast(kb.read(b, b_idx if b.ndim > 1 else b_idx[-2:-1]), out.dtype)
    acc = kb.accumulate("sum", av * bvl, out.dtype)
    out_idx = tuple(bv) + ((i,) if a.ndim > 1 else ()) + ((j,) if b.ndim > 1 else ())
    kb.store(c, out_idx, acc)
    kb.finish()


GEMV_ROWS = 8   # rows of W per pass of a row-times-matrix loop, at most (1: one row at a time, to measure)


def _rows_at_once(lw: Any, node: Node, a, b, c, n: int, k: int) -> bool:
    """x[1, k] @ W[n, k]^T (a classifier) as a reduction loop over k that runs GEMV_ROWS rows of
    W at once (or 4, or 2: the most that divides n), one accumulator each: as many streams from
    memory at once, where one row at a time read W as one stream. [1, 1280] @ [1000, 1280]^T
    with W evicted to L3 first: 490 -> 368 us at one thread, 330 -> 274 at two (4 rows: 422 and
    288). In-process A/B (benchmarks/ab.py GEMV_ROWS 1 8, both ways): mobilenet_v2 0.989 / 0.973
    at one thread, 1.000 / 0.996 at two; efficientnet_b0 0.986 / 0.981 at one; resnet18 (a
    [1, 512] classifier) within noise."""
    rows = next((r for r in (GEMV_ROWS, 4, 2) if 1 < r <= GEMV_ROWS and n % r == 0 and n >= 2 * r), 1)
    if rows <= 1:
        return False
    kb = kernel_builder(lw, node, (n // rows, k), reduced=(1,))
    group, p = kb.vars
    x = kb.read(a, (iexpr.const(0), p) if a.ndim > 1 else (p,))
    for r in range(rows):
        row = iexpr.add(iexpr.mul(group, rows), r)
        acc = kb.accumulate("sum", sexpr.cast(x, c.dtype) * sexpr.cast(kb.read(b, (row, p)), c.dtype), c.dtype)
        kb.store(c, (iexpr.const(0), row) if len(c.shape) > 1 else (row,), acc)
    kb.finish()
    return True


def _rows_fold(lw: Any, a, a_shape: tuple[int, ...], b, batch: tuple[int, ...], m: int, ta: bool) -> bool:
    """Whether a[*batch, m, k] @ b (2-D, the same for every batch element) is one product over
    a's rows: a is not transposed and its matrices' rows follow each other one fixed stride
    apart (stored contiguously, or a view such as a transpose that moves an axis of one)."""
    if ta or b.ndim != 2 or a.ndim < 3 or not batch:
        return False
    found = _strided_operand(lw, a, a_shape, batch) if lw.strided_operands and a not in lw.buffer_of else None
    if found is None:
        return True   # _operand gives a's contiguous buffer
    _, _, strides, ld, flipped = found
    if flipped:
        return False
    step = ld * m
    for extent, stride in zip(reversed(batch), reversed(strides)):
        if extent != 1 and stride != step:
            return False
        step *= extent
    return True


def _operand(lw: Any, node: Node, t, shape: tuple[int, ...], batch: tuple[int, ...],
             transposed: bool) -> tuple[Any, int, tuple[int, ...], int, bool]:
    """(buffer, element offset, batch strides, leading dimension (0: dense), transposed) of a
    product's operand: where it lies when it is a strided view (_strided_operand), else its
    stored (contiguous) buffer."""
    if lw.strided_operands and t.ndim >= 2 and t not in lw.buffer_of:
        found = _strided_operand(lw, t, shape, batch)
        if found is not None:
            buf, offset, strides, ld, flipped = found
            return buf, offset, strides, ld, transposed != flipped
    return stored(lw, node, t), 0, _batch_strides(shape, batch), 0, transposed


def _strided_operand(lw: Any, t, shape: tuple[int, ...], batch: tuple[int, ...]) -> tuple[Any, int, tuple[int, ...], int, bool] | None:
    """A view whose matrices lie in a stored tensor one row (or one column) per fixed stride:
    (buffer, offset, batch strides, leading dimension, stored transposed). An attention
    block's heads, transpose(reshape(x @ w, [b, t, h, d]), [0, 2, 1, 3]), are [t, d] matrices
    with rows h * d apart: BLAS reads them there, where a copy cost a pass over each (4 of the
    block's copies, ~170 us each on the 2-core VM). None where the view is not affine."""
    rank = len(shape)
    base, index = resolve(t, tuple(iexpr.var(a) for a in range(rank)), lw.stored)
    buf = lw.buffer_of.get(base)
    if buf is None or buf.dtype is not t.dtype:
        return None
    form = iexpr.affine(index if not isinstance(index, tuple) else flatten(index, tuple(base.shape)))
    if form is None or form[1] < 0:
        return None
    coeffs, offset = form
    rows, cols = shape[-2], shape[-1]
    row_step = coeffs.get(rank - 2, 0) if rows > 1 else cols
    col_step = coeffs.get(rank - 1, 0) if cols > 1 else 1
    if col_step == 1 and row_step >= max(cols, 1):
        ld, flipped = row_step, False
    elif row_step == 1 and col_step >= max(rows, 1) and cols > 1:
        ld, flipped = col_step, True    # column-major: the transpose of a row-major matrix
    else:
        return None
    own = shape[:-2]
    lead = len(batch) - len(own)
    strides = [0] * len(batch)
    for i, extent in enumerate(own):
        step = coeffs.get(i, 0) if extent != 1 else 0
        if step < 0:
            return None
        strides[lead + i] = step
    return buf, offset, tuple(strides), ld, flipped


def _batch_strides(shape: tuple[int, ...], batch: tuple[int, ...]) -> tuple[int, ...]:
    """Element offset per batch index for an operand of `shape` (0 where it broadcasts)."""
    mat = shape[-1] * shape[-2]
    own = shape[:-2]
    lead = len(batch) - len(own)
    strides, step = [0] * len(batch), mat
    for i in range(len(own) - 1, -1, -1):
        strides[lead + i] = 0 if own[i] == 1 else step
        step *= own[i]
    return tuple(strides)


# --------------------------------------------------------------------------- gathers
@library("Gather")
def _gather(lw: Any, node: Node) -> None:
    params, indices = node.inputs
    out = node.outputs[0]
    axis = normalize_axis(node.attrs["axis"], params.ndim)
    n = params.shape[axis]
    kb = kernel_builder(lw, node, out.shape)
    v = kb.vars
    mid = v[axis: axis + indices.ndim]
    raw = kb.read_int(indices, tuple(mid))
    ok = iexpr.logical_and(iexpr.greater_equal(raw, 0), iexpr.less(raw, n)) or iexpr.const(1)
    safe = iexpr.select(ok, raw, 0)
    value = kb.read(params, tuple(v[:axis]) + (safe,) + tuple(v[axis + indices.ndim:]))
    kb.check(condition(ok), index_value(raw), f"indices{{index}} = {{value}} is not in [0, {n})", node,
             where=lambda it: it[axis: axis + indices.ndim])
    kb.store(lw.buffer_of[out], v, value)
    kb.finish()


@library("GatherGrad")
def _gather_grad(lw: Any, node: Node) -> None:
    g, indices = node.inputs[0], node.inputs[1]
    out = lw.buffer_of[node.outputs[0]]
    axis = normalize_axis(node.attrs["axis"], len(out.shape))
    fill(lw, node, out, 0)
    kb = kernel_builder(lw, node, g.shape, serial=True)
    v = kb.vars
    raw = kb.read_int(indices, tuple(v[axis: axis + indices.ndim]))
    ok = iexpr.logical_and(iexpr.greater_equal(raw, 0), iexpr.less(raw, out.shape[axis])) or iexpr.const(1)
    kb.check(condition(ok), index_value(raw), f"indices{{index}} = {{value}} is not in [0, {out.shape[axis]})", node,
             where=lambda it: it[axis: axis + indices.ndim])
    target = tuple(v[:axis]) + (iexpr.select(ok, raw, 0),) + tuple(v[axis + indices.ndim:])
    kb.store(out, target, sexpr.select(condition(ok), kb.read(g, v), sexpr.const(0, out.dtype)), mode="add")
    kb.finish()


@library("OneHot")
def _one_hot(lw: Any, node: Node) -> None:
    (indices,) = node.inputs
    out = node.outputs[0]
    axis = normalize_axis(node.attrs["axis"], out.ndim)
    kb = kernel_builder(lw, node, out.shape)
    v = kb.vars
    idx = sexpr.cast(kb.read(indices, tuple(v[:axis]) + tuple(v[axis + 1:])), int64)
    hot = sexpr.call("eq", idx, index_value(v[axis]))
    kb.store(lw.buffer_of[out], v, sexpr.select(hot, sexpr.const(node.attrs["on_value"], out.dtype),
                                            sexpr.const(node.attrs["off_value"], out.dtype)))
    kb.finish()


# --------------------------------------------------------------------------- joining and splitting
@library("Concat")
def _concat(lw: Any, node: Node) -> None:
    out = node.outputs[0]
    axis = normalize_axis(node.attrs["axis"], out.ndim)
    buf = lw.buffer_of[out]
    offset = 0
    for t in node.inputs:
        shift = offset
        copy_into(lw, node, t, buf, tuple(t.shape),
                  lambda v, shift=shift: tuple(iexpr.add(e, shift) if a == axis else e for a, e in enumerate(v)))
        offset += t.shape[axis]


@library("Pack")
def _pack(lw: Any, node: Node) -> None:
    out = node.outputs[0]
    axis = normalize_axis(node.attrs["axis"], out.ndim)
    for i, t in enumerate(node.inputs):
        copy_into(lw, node, t, lw.buffer_of[out], tuple(t.shape),
                  lambda v, i=i: tuple(v[:axis]) + (iexpr.const(i),) + tuple(v[axis:]))


@library("Unpack")
def _unpack(lw: Any, node: Node) -> None:
    (x,) = node.inputs
    axis = normalize_axis(node.attrs["axis"], x.ndim)
    for i, t in enumerate(node.outputs):
        copy_into(lw, node, x, lw.buffer_of[t], tuple(t.shape), lambda v: v,
                  src_index=lambda v, i=i: tuple(v[:axis]) + (iexpr.const(i),) + tuple(v[axis:]))


@library("Split")
def _split(lw: Any, node: Node) -> None:
    x = node.inputs[0]
    axis = normalize_axis(node.attrs["axis"], x.ndim)
    offset = 0
    for t in node.outputs:
        shift = offset
        copy_into(lw, node, x, lw.buffer_of[t], tuple(t.shape), lambda v: v,
                  src_index=lambda v, shift=shift: tuple(iexpr.add(e, shift) if a == axis else e for a, e in enumerate(v)))
        offset += t.shape[axis]


@library("Pad")
def _pad(lw: Any, node: Node) -> None:
    (x,) = node.inputs
    out = node.outputs[0]
    mode = node.attrs["mode"]
    kb = kernel_builder(lw, node, out.shape)
    src, valid = [], None
    for e, (before, _), n in zip(kb.vars, node.attrs["paddings"], x.shape):
        r = iexpr.add(e, -before)
        if mode == "CONSTANT":
            valid = iexpr.logical_and(valid, iexpr.in_range(r, 0, n))
            src.append(iexpr.select(iexpr.in_range(r, 0, n) or iexpr.const(1), r, 0))
        elif mode == "REFLECT":
            src.append(
                iexpr.select(
                    iexpr.less(r, 0),
                    iexpr.mul(r, -1),
                    iexpr.select(iexpr.less(r, n), r, iexpr.add(2 * n - 2, iexpr.mul(r, -1))),
                )
            )
        else:
            src.append(
                iexpr.select(
                    iexpr.less(r, 0),
                    iexpr.add(-1, iexpr.mul(r, -1)),
                    iexpr.select(iexpr.less(r, n), r, iexpr.add(2 * n - 1, iexpr.mul(r, -1))),
                )
            )
    fill_value = node.attrs["constant_values"] if mode == "CONSTANT" else 0
    kb.store(lw.buffer_of[out], kb.vars, kb.read(x, tuple(src), valid, fill_value))
    kb.finish()


@library("Tile")
def _tile(lw: Any, node: Node) -> None:
    x = node.inputs[0]
    out = node.outputs[0]
    copy_into(
        lw,
        node,
        x,
        lw.buffer_of[out],
        tuple(out.shape),
        lambda v: v,
        src_index=lambda v: tuple(iexpr.mod(e, n) for e, n in zip(v, x.shape)),
    )


@library("StridedSliceGrad")
def _strided_slice_grad(lw: Any, node: Node) -> None:
    g = node.inputs[0]
    out = lw.buffer_of[node.outputs[0]]
    fill(lw, node, out, 0)
    spec = node.attrs["spec"]

    def target(v: Dims) -> Dims:
        src, it, dims = [], iter(v), iter(out.shape)
        for entry in expand_spec(spec, len(out.shape)):
            if entry[0] == "newaxis":
                next(it)
                continue
            n = next(dims)
            if entry[0] == "index":
                src.append(iexpr.const(entry[1] % n))
                continue
            start, _, step = slice(entry[1], entry[2], entry[3]).indices(n)
            src.append(iexpr.add(start, iexpr.mul(next(it), step)))
        return tuple(src)

    copy_into(lw, node, g, out, tuple(g.shape), target)


@library(
    "Fill",
    "Identity",
    "StopGradient",
    "PlaceholderWithDefault",
    "BroadcastTo",
    "Reshape",
    "Transpose",
    "ExpandDims",
    "Squeeze",
    "StridedSlice",
)
def _as_copy(lw: Any, node: Node) -> None:
    """Views and identities that reach a library group (no pipeline simplified them)."""
    out = node.outputs[0]
    kb = kernel_builder(lw, node, out.shape)
    if node.type == "Fill":
        value = kb.read(node.inputs[0], ())
    elif node.type in ("Identity", "StopGradient", "PlaceholderWithDefault"):
        value = kb.read(node.inputs[0], kb.vars)
    else:
        src, idx = through_view(out, kb.vars)
        value = kb.read(src, idx)
    kb.store(lw.buffer_of[out], kb.vars, value)
    kb.finish()


@library("Shape")
def _shape(lw: Any, node: Node) -> None:
    out = lw.buffer_of[node.outputs[0]]
    for i, d in enumerate(node.inputs[0].shape):
        kb = kernel_builder(lw, node, ())
        kb.store(out, (iexpr.const(i),), sexpr.const(d, out.dtype))
        kb.finish()


@library("CheckNumerics")
def _check_numerics(lw: Any, node: Node) -> None:
    """A copy that also reduces (any NaN, any Inf) over the whole tensor, then checks both."""
    (x,) = node.inputs
    kb = kernel_builder(lw, node, x.shape, reduced=tuple(range(x.ndim)))
    value = kb.read(x, kb.vars)
    kb.store(lw.buffer_of[node.outputs[0]], kb.vars, value, inner=True)
    nan = kb.accumulate("any", sexpr.call("isnan", value), bool_)
    inf = kb.accumulate("any", sexpr.call("isinf", value), bool_)
    prefix = f"{node.attrs['message']}: " if node.attrs["message"] else ""
    kinds = {1: "NaN", 2: "Inf", 3: "NaN and Inf"}
    detail = sexpr.cast(nan, int64) + sexpr.cast(inf, int64) * 2
    kb.check(
        sexpr.call("not", sexpr.call("or", nan, inf)),
        detail,
        lambda value, index: f"{prefix}tensor had {kinds[value]} values",
        node,
        inner=False,
    )
    kb.finish()


# --------------------------------------------------------------------------- reductions with indices
@library("ArgMax", "ArgMin")
def _argmax(lw: Any, node: Node) -> None:
    (x,) = node.inputs
    out = node.outputs[0]
    axis = normalize_axis(node.attrs["axis"], x.ndim)
    kb = kernel_builder(lw, node, x.shape, reduced=(axis,))
    acc = kb.accumulate(node.type.lower(), kb.read(x, kb.vars), int64)
    kb.store(lw.buffer_of[out], tuple(v for a, v in enumerate(kb.vars) if a != axis), acc)
    kb.finish()


@library("SparseSoftmaxCrossEntropyWithLogits")
def _sparse_xent(lw: Any, node: Node) -> None:
    labels, logits = node.inputs
    out = node.outputs[0]
    classes = logits.shape[-1]
    rows = tuple(logits.shape[:-1])
    m_buf = lw.new_buffer(f"{node.name}/max", logits.dtype, rows)
    kb = kernel_builder(lw, node, logits.shape, reduced=(logits.ndim - 1,))
    m = kb.accumulate("max", kb.read(logits, kb.vars), logits.dtype)
    kb.store(m_buf, kb.vars[:-1], sexpr.select(sexpr.call("isfinite", m), m, sexpr.const(0, m.dtype)))
    kb.finish()
    kb = kernel_builder(lw, node, logits.shape, reduced=(logits.ndim - 1,))
    row = kb.vars[:-1]
    shift = kb.load(m_buf, row)
    total = kb.accumulate("sum", sexpr.call("exp", kb.read(logits, kb.vars) - shift), logits.dtype)
    label = kb.read_int(labels, row)
    ok = iexpr.logical_and(iexpr.greater_equal(label, 0), iexpr.less(label, classes)) or iexpr.const(1)
    kb.check(
        condition(ok),
        index_value(label),
        f"label value {{value}} is outside the valid range [0, {classes})",
        node,
        inner=False,
    )
    picked = kb.read(logits, row + (iexpr.select(ok, label, 0),))
    kb.store(lw.buffer_of[out], row, sexpr.call("log", total) + shift - picked)
    kb.finish()


# --------------------------------------------------------------------------- random draws
@library("RandomUniform", "RandomStandardNormal")
def _random(lw: Any, node: Node) -> None:
    out = node.outputs[0]
    counter = node.inputs[-1]
    kb = kernel_builder(lw, node, out.shape)
    run = sexpr.cast(kb.read(counter, ()), int64)
    key = philox_key(node.attrs["seed"], node.attrs["seed2"])
    flat = flatten(kb.vars, tuple(out.shape))
    prim = "philox_uniform" if node.type == "RandomUniform" else "philox_normal"
    kb.store(lw.buffer_of[out], kb.vars, sexpr.SExpr(prim, (run,), out.dtype, (key[0], key[1], flat)))
    kb.finish()


def float_const(value: float, dtype) -> sexpr.SExpr:
    return sexpr.const(np.asarray(value, dtype.np).item(), dtype)


# --------------------------------------------------------------------------- collectives
@library("MpiAllreduce", "MpiBroadcast", "MpiAllgather")
def _collective(lw: Any, node: Node) -> None:
    """A host call: the runtime exchanges the input with the other processes (ops/collective.py)."""
    x = node.inputs[0]
    kind = {"MpiAllreduce": "allreduce", "MpiBroadcast": "broadcast", "MpiAllgather": "allgather"}[node.type]
    if x.dtype.name not in HOST_DTYPES:
        raise CompileError(f"{node.type} exchanges {', '.join(HOST_DTYPES)} tensors, got {x.dtype.name}",
                           op_type=node.type, node_name=node.name, source=node.source, hint="cast it first")
    argument = host_argument(kind, node.attrs)
    # the node's name: unique in the program (a start and its wait pair by it), the same on every rank
    key, src, dst = node.name, stored(lw, node, x), lw.buffer_of[node.outputs[0]]
    if kind == "allreduce":   # started when its input is ready, waited for when its result is needed
        lw.kernels.append(HostCall(f"k{len(lw.kernels)}_allreduce_start", "allreduce_start", src, None, key,
                                   argument, node))
        lw.kernels.append(HostCall(f"k{len(lw.kernels)}_allreduce_wait", "allreduce_wait", None, dst, key,
                                   argument, node))
        return
    lw.kernels.append(HostCall(f"k{len(lw.kernels)}_{kind}", kind, src, dst, key, argument, node))
