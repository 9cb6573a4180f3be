"""Programs far bigger and deeper than a layer: compile-time walks must be loops, not recursion,
and linear (or nearly) in the program's size (graphc.ops.scalar keys, the memory plan's free
gaps, row chains, the cost model), so a 20,000-node graph and its gradient compile in seconds
and agree with the NumPy reference."""
import heapq
import random

import numpy as np

import graphc as gc
from graphc.ir.dtypes import float64
from graphc.lower.memory import _FreeGaps
from graphc.ops import scalar


STEPS = 1750   # about 11.6 graph nodes per step with the gradient


def _chain(x, steps):
    y = x
    for i in range(steps):
        y = y + 0.01 * gc.sin(y) if i % 2 == 0 else y - 0.01 * gc.tanh(y)
    return y


def test_a_20000_node_graph_and_its_gradient_compile_and_match_the_reference():
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float64, [16], name="x")
        y = _chain(x, STEPS)
        (dx,) = gc.gradients(gc.reduce_sum(y * y), [x])
    assert len(g.get_operations()) >= 20_000
    v = np.linspace(-2, 2, 16)
    results = {}
    for backend in ("llvm", "numpy"):
        with gc.Session(graph=g, backend=backend) as s:
            results[backend] = s.run([y, dx], {x: v})
    expected = v.copy()
    for i in range(STEPS):
        expected = expected + 0.01 * np.sin(expected) if i % 2 == 0 else expected - 0.01 * np.tanh(expected)
    np.testing.assert_allclose(results["numpy"][0], expected, rtol=1e-12)
    np.testing.assert_allclose(results["llvm"][0], results["numpy"][0], rtol=1e-10)
    np.testing.assert_allclose(results["llvm"][1], results["numpy"][1], rtol=1e-9)
    assert np.all(np.abs(results["numpy"][1]) > 1e-3)   # a gradient that did not vanish


def test_expression_keys_of_a_deeply_shared_expression_are_cheap_and_structural():
    def build(c):
        e = scalar.arg(0, float64)
        for _ in range(300):   # every level reads the one below twice: 2**300 paths
            e = e * e + scalar.const(c, float64)
        return e

    a, b, other = build(0.5), build(0.5), build(0.25)
    assert a is not b and a.key == b.key and a.key != other.key
    assert len(a.key) < 64


def test_free_gaps_place_temporaries_exactly_as_first_fit_over_live_ones():
    rng = random.Random(0)
    for _ in range(500):
        items = sorted(((f, f + rng.randint(0, 10), 64 * rng.randint(1, 5))
                        for f in (rng.randint(0, 30) for _ in range(rng.randint(1, 40)))), key=lambda t: t[0])
        placed, naive = [], []
        for first, last, need in items:
            offset = 0
            for start, end in sorted((s, e) for s, e, until in placed if until >= first):
                if offset + need <= start:
                    break
                offset = max(offset, end)
            placed.append((offset, offset + need, last))
            naive.append(offset)
        gaps, ends, planned = _FreeGaps(), [], []
        for first, last, need in items:
            while ends and ends[0][0] < first:
                _, start, end = heapq.heappop(ends)
                gaps.release(start, end)
            offset = gaps.take(need)
            heapq.heappush(ends, (last, offset, offset + need))
            planned.append(offset)
        assert planned == naive
