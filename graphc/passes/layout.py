"""Channels-last regions: NCHW convolutions with constant filters, and the ops between them, run
in NHWC, with one transpose where a region meets the rest of the program.

Why: an imported CNN (ONNX, PyTorch's layout) is NCHW throughout, and graphc's direct
convolution (graphc.lower.conv_direct) reads its input channels last: each NCHW convolution
first copied its input to a padded NHWC buffer, a transposing copy of every activation, and
stored its output transposed back to NCHW. In resnet18 at 2 threads those copies took 0.67-0.77
ms of a 14 ms run and ran no faster than on one thread (a transposing copy of data the other
core just wrote); onnxruntime converts such models to its own blocked layout once (its NCHWc
transformer) and has no copies between convolutions. TF's layout optimizer does the same for
GPU convolutions. In a region the padding copies are plain row copies and the direct kernel
stores whole vectors of channels.

A region is a connected set of ops that can run in either layout: convolutions (NCHW, one
group, constant filter: an imported model's weights; grouped and depthwise ones have faster
NCHW kernels), max and average pools, elementwise ops, reductions keeping their axes (a global
average pool), concatenations and pads, linked by 4-D tensors. A region changes layout only
with at least MIN_CONVOLUTIONS spatial convolutions (1x1 stride-1 ones join regions but do not
count: NCHW has the faster kernel for them over small planes), and at least as many as the
planes that cross its edge, so the transposes there are paid for; a model whose convolutions
are separated by depthwise ones (mobilenet_v2) keeps NCHW. Inside a region every op gets the
same computation in NHWC: data_format NHWC, a reduction's, concatenation's or pad's axes
permuted, a broadcast operand (a bias [1, C, 1, 1]) transposed (constants at compile time).
Where a region's tensor leaves it (another op, a program output) it is transposed back, once
per tensor; where it is flattened into products with constant weights (a classifier after
vgg's last pool), the weights' rows are reordered instead.
"""
from __future__ import annotations

import networkx as nx
import numpy as np

from ..ir.node import Node
from ..ir.tensor import Tensor
from ..ops.base import ElementwiseOp
from ..program import Program
from .rewriter import Rewriter

TO_NHWC = (0, 2, 3, 1)
TO_NCHW = (0, 3, 1, 2)
MIN_CONVOLUTIONS = 2   # spatial convolutions a region needs to change layout
POOLS = ("MaxPool", "AvgPool")
KEPT_AXIS_REDUCTIONS = ("Sum", "Mean", "Max", "Min")


def _four_d(t: Tensor) -> bool:
    return t.shape is not None and len(t.shape) == 4


def _convolution(node: Node) -> bool:
    """An NCHW convolution graphc runs faster channels last: one group, a constant filter."""
    return (node.type == "Conv2D" and node.attrs["data_format"] == "NCHW" and node.attrs.get("groups", 1) == 1
            and node.inputs[1].node.type == "Const" and _four_d(node.inputs[0]))


def _spatial(node: Node) -> bool:
    """A convolution that is not a 1x1 stride-1 product."""
    kh, kw = node.inputs[1].shape[:2]
    return (kh, kw) != (1, 1) or tuple(node.attrs["strides"]) != (1, 1)


def _flexible(node: Node) -> bool:
    """Whether the op computes the same thing in NHWC with its attributes adapted."""
    if not node.outputs or not _four_d(node.outputs[0]) or len(node.outputs) != 1:
        return False
    if _convolution(node):
        return True
    if node.type in POOLS:
        return node.attrs["data_format"] == "NCHW"
    if node.type in KEPT_AXIS_REDUCTIONS:
        return bool(node.attrs.get("keepdims")) and node.attrs.get("axis") is not None and _four_d(node.inputs[0])
    if node.type == "Concat":
        return all(_four_d(t) for t in node.inputs)
    if node.type == "Pad":
        return len(node.inputs) == 1 and len(node.attrs["paddings"]) == 4
    if isinstance(node.op, ElementwiseOp):
        return all(t.shape is not None and len(t.shape) <= 4 for t in node.inputs)
    return False


def _planes(t: Tensor) -> bool:
    """A 4-D tensor whose transposition is a real copy (more than one pixel per channel)."""
    return _four_d(t) and t.shape[2] * t.shape[3] > 1 and t.node.type != "Const"


def _consumers(nodes: list[Node]) -> dict[Tensor, list[Node]]:
    readers: dict[Tensor, list[Node]] = {}
    for n in nodes:
        for t in n.inputs:
            readers.setdefault(t, []).append(n)
    return readers


def _regions(nodes: list[Node], consumers: dict[Tensor, list[Node]], results: set[Tensor]) -> list[set[int]]:
    """Connected sets of flexible nodes (linked by 4-D tensors) with at least MIN_CONVOLUTIONS
    spatial convolutions, and at least as many as the planes that cross their edge (each one
    a transposing copy: regnet's blocks, split by grouped convolutions, would pay two a block)."""
    g = nx.Graph()
    flexible = {n.id for n in nodes if _flexible(n)}
    g.add_nodes_from(flexible)
    for n in nodes:
        if n.id in flexible:
            g.add_edges_from((t.node.id, n.id) for t in n.inputs if t.node.id in flexible and _four_d(t))
    by_id = {n.id: n for n in nodes}
    chosen = []
    for region in nx.connected_components(g):
        members = [by_id[i] for i in region]
        entering = {t for n in members for t in n.inputs if t.node.id not in region and _planes(t)}
        leaving = {t for n in members for t in n.outputs if _planes(t) and (
            t in results or any(c.id not in region for c in consumers.get(t, ())))}
        convolutions = sum(_convolution(n) and _spatial(n) for n in members)
        if convolutions >= max(MIN_CONVOLUTIONS, len(entering) + len(leaving)):
            chosen.append(region)
    return chosen


class _Relayout:
    def __init__(self, program: Program) -> None:
        self.rw = Rewriter(program, "layout")
        self.nhwc: dict[Tensor, Tensor] = {}    # a region's NCHW tensor -> its NHWC stand-in
        self.back: dict[Tensor, Tensor] = {}    # ... -> transposed back, for consumers outside
        self.entering: dict[Tensor, Tensor] = {}   # a tensor from outside -> channels last, once
        self.rows: dict[int, np.ndarray] = {}     # a product's node id -> its B's rows, reordered

    def nchw(self, t: Tensor, like: Node) -> Tensor:
        """t as the rest of the program sees it (a region's tensor transposed back, once)."""
        t = self.rw.value(t)
        if t not in self.nhwc:
            return t
        if t not in self.back:
            self.back[t] = self.rw.emit("Transpose", [self.nhwc[t]], {"perm": TO_NCHW}, like)
        return self.back[t]

    def operand(self, t: Tensor, like: Node) -> Tensor:
        """An input of a region's op, channels last: a region's tensor as it is; anything else
        broadcast to rank 4 (a scalar stays one) and transposed; constants at compile time."""
        t = self.rw.value(t)
        if t in self.nhwc:
            return self.nhwc[t]
        if len(t.shape) == 0:
            return t
        if t not in self.entering:
            self.entering[t] = self._channels_last(t, like)
        return self.entering[t]

    def _channels_last(self, t: Tensor, like: Node) -> Tensor:
        shape4 = (1,) * (4 - len(t.shape)) + tuple(t.shape)
        if t.node.type == "Const":
            value = np.transpose(np.asarray(t.node.attrs["value"]).reshape(shape4), TO_NHWC)
            return self.rw.constant(value, t.dtype, like)
        if len(t.shape) < 4:
            t = self.rw.emit("Reshape", [t], {"shape": shape4}, like)
        return self.rw.emit("Transpose", [t], {"perm": TO_NHWC}, like)

    def relayout(self, node: Node) -> None:
        """node's NHWC stand-in, from its operands channels last."""
        attrs = dict(node.attrs)
        if "data_format" in attrs:
            attrs["data_format"] = "NHWC"
        if node.type == "Concat":
            attrs["axis"] = TO_NCHW[attrs["axis"] % 4]
        if node.type == "Pad":
            attrs["paddings"] = tuple(tuple(attrs["paddings"][a]) for a in TO_NHWC)
        if node.type in KEPT_AXIS_REDUCTIONS:
            axes = (attrs["axis"],) if isinstance(attrs["axis"], int) else attrs["axis"]
            attrs["axis"] = tuple(sorted(TO_NCHW[a % 4] for a in axes))
        inputs = [self.operand(t, node) for t in node.inputs]
        if node.type == "Conv2D":   # the filter is HWIO in either layout
            inputs[1] = self.rw.value(node.inputs[1])
        out = self.rw.graph.create_node(node.op, inputs, attrs, node.name, source=node.source,
                                        exact_name=True).outputs[0]
        self.nhwc[node.outputs[0]] = out

    def flattens_into_products(self, node: Node, consumers: dict[Tensor, list[Node]], results: set[Tensor]) -> bool:
        """Whether node flattens a region's (n, c, h, w) planes to (n, c * h * w) read only as
        the left operand of products with a constant right one (a classifier after vgg's or
        alexnet's last pool)."""
        if node.type != "Reshape" or len(node.inputs) != 1 or node.inputs[0] not in self.nhwc:
            return False
        n, c, h, w = node.inputs[0].shape
        flat = node.outputs[0]
        readers = consumers.get(flat, [])
        return (tuple(flat.shape) == (n, c * h * w) and h * w > 1 and flat not in results and bool(readers)
                and all(r.type == "MatMul" and r.inputs[0] is flat and r.inputs[1] is not flat
                        and not r.attrs["transpose_a"] and r.inputs[1].node.type == "Const" for r in readers))

    def flatten_channels_last(self, node: Node, consumers: dict[Tensor, list[Node]]) -> None:
        """Flatten the NHWC planes as they lie, and have the products read their constant's rows
        in (h, w, c) order. Why: transposed back to NCHW, the flattened vector reached the
        product as a view, and vgg11's 25088 x 4096 matrix-vector product ran 1.25x slower."""
        n, c, h, w = node.inputs[0].shape
        flat = self.rw.emit("Reshape", [self.nhwc[node.inputs[0]]], {"shape": tuple(node.outputs[0].shape)}, node)
        self.rw.replace(node, [flat])
        order = np.arange(c * h * w).reshape(c, h, w).transpose(1, 2, 0).reshape(-1)
        for reader in consumers[node.outputs[0]]:
            self.rows[reader.id] = order
        self.rw.note("flattened")

    def reordered_rows(self, node: Node, inputs: list[Tensor]) -> list[Tensor]:
        """A product's operands with its constant's rows in the order of a flattened NHWC input."""
        order = self.rows[node.id]
        b = np.asarray(node.inputs[1].node.attrs["value"])
        b = b[:, order] if node.attrs["transpose_b"] else b[order]
        return [inputs[0], self.rw.constant(b, node.inputs[1].dtype, node)] + inputs[2:]

    def run(self) -> Program:
        p = self.rw.program
        nodes = p.nodes()
        consumers = _consumers(nodes)
        results = set(p.results + p.effects)
        members = set().union(*_regions(nodes, consumers, results))
        if not members:
            return p.derive(list(p.outputs), list(p.updates), list(p.effects), note="layout: nothing")
        for node in nodes:
            if node.id in members:
                self.relayout(node)
                self.rw.note("to NHWC")
            elif self.flattens_into_products(node, consumers, results):
                self.flatten_channels_last(node, consumers)
            elif node.type != "Placeholder":
                inputs = [self.nchw(t, node) for t in node.inputs]
                if node.id in self.rows:
                    inputs = self.reordered_rows(node, inputs)
                self.rw.replace(node, self.rw.copy(node, inputs).outputs)
        like = nodes[-1]
        return p.derive([self.nchw(t, like) for t in p.outputs], [(v, self.nchw(t, like)) for v, t in p.updates],
                        [self.nchw(t, like) for t in p.effects], note=f"layout: {len(members)} ops to NHWC"
                        + (f", {self.rw.fired['flattened']} flattened channels last" if self.rw.fired["flattened"] else ""))


def channels_last(program: Program) -> Program:
    """The program with its convolution regions channels last (see the module docstring)."""
    return _Relayout(program).run()
