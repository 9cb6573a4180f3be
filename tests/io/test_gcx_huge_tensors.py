"""A graph (here a loaded one) that declares a tensor too big to allocate fails at run time with
ResourceExhaustedError naming the node, on the reference and the compiled backend, instead of
NumPy's MemoryError from deep inside graphc."""
from __future__ import annotations

import numpy as np
import pytest

import graphc as gc

TESTED_OPS = {"Fill", "RandomUniform", "MatMul"}
HUGE = [1 << 20, 1 << 20]   # 2**40 float32 elements: 4 TiB


def _loaded(tmp_path, build) -> gc.Graph:
    g = gc.Graph()
    with g.as_default():
        build()
    gc.save_graph(tmp_path / "huge.gcx", g)
    return gc.load_graph(tmp_path / "huge.gcx")


def _exhausted(graph: gc.Graph, fetch: str, backend: str, feeds: dict | None = None) -> gc.ResourceExhaustedError:
    with gc.Session(graph, backend=backend) as sess, pytest.raises(gc.ResourceExhaustedError) as info:
        sess.run(graph.get_tensor_by_name(fetch), {graph.get_tensor_by_name(k): v for k, v in (feeds or {}).items()})
    return info.value


@pytest.mark.parametrize("backend", ["numpy", "llvm"])
@pytest.mark.parametrize("op", ["fill", "random"])
def test_result_too_big_to_allocate(tmp_path, backend, op):
    names = []

    def build():
        t = gc.fill(HUGE, 1.0) if op == "fill" else gc.random_uniform(HUGE, seed=1)
        names.append(t.name)
    graph = _loaded(tmp_path, build)
    err = _exhausted(graph, names[0], backend)
    node = graph.get_operation_by_name(err.node_name)     # a node of the graph, named in the message
    assert f"{err.op_type} '{node.name}'" in str(err) and "memory" in str(err)
    # (the compiled backend names the node as its program has it: a Fill becomes a BroadcastTo)
    assert err.op_type in (("RandomUniform",) if op == "random" else ("Fill", "BroadcastTo"))


@pytest.mark.parametrize("backend", ["numpy", "llvm"])
def test_temporary_too_big_to_allocate(tmp_path, backend):
    """An intermediate of a fused program (in the compiled backend's workspace) names the node
    whose temporary is the biggest."""
    def build():
        x = gc.placeholder(gc.float32, [None, 4], name="x")
        big = gc.multiply(gc.fill([1 << 18, 1 << 20], 1.0), gc.reduce_sum(x), name="scaled")
        gc.reduce_sum(gc.matmul(big, gc.fill([1 << 20, 4], 1.0)), name="total")
    err = _exhausted(_loaded(tmp_path, build), "total:0", backend, {"x:0": np.ones((2, 4), np.float32)})
    assert err.node_name is not None and err.node_name in str(err)
    assert "memory" in str(err)
