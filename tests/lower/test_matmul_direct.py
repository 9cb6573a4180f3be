"""Products with a constant right operand run as direct kernels over all of the left operand's
rows (graphc.lower.matmul_direct), against the NumPy reference: 2-D and batched left operands,
a transposed constant, float64, epilogues, one and two threads; and where the rule stays out."""
from __future__ import annotations

import numpy as np
import pytest

import graphc as gc
from tests.helpers import assert_close, kernel_listing

# (left operand's shape, k, n, transpose_b, dtype, epilogue)
CASES = [
    ((128, 256), 256, 1024, False, "float32", "bias-relu"),
    ((2, 64, 96), 96, 300, True, "float32", "none"),       # batched rows, a transposed constant, a partial panel
    ((8, 1, 256), 256, 768, False, "float32", "bias"),    # sequence first: 8 rows over a batch axis
    ((37, 200), 200, 100, False, "float64", "residual"),  # float64 panels, a partial tile of rows
]


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{'x'.join(map(str, c[0]))}-n{c[2]}-tb{int(c[3])}-{c[4]}-{c[5]}")
def test_a_product_with_constant_weights_runs_direct_and_matches_the_reference(case, threads):
    shape, k, n, tb, dtype, epilogue = case
    rng = np.random.default_rng(3)
    x = gc.placeholder(dtype, shape)
    w = gc.constant(rng.uniform(-1, 1, (n, k) if tb else (k, n)).astype(dtype))
    y = gc.matmul(x, w, transpose_b=tb)
    if epilogue == "bias-relu":
        y = gc.nn.relu(y + gc.constant(rng.uniform(-1, 1, n).astype(dtype)))
    elif epilogue == "bias":
        y = y + gc.constant(rng.uniform(-1, 1, n).astype(dtype))
    elif epilogue == "residual":
        y = y + gc.constant(rng.uniform(-1, 1, tuple(y.shape)).astype(dtype))
    feed = {x: rng.uniform(-1, 1, shape).astype(dtype)}
    listing = kernel_listing(y, feed)
    assert " direct-conv " in listing and "row_step=0" in listing, listing
    if epilogue != "none":
        assert "then on each block" in listing, listing
    got = gc.Session(backend="llvm", config=gc.ConfigProto(intra_op_parallelism_threads=threads)).run(y, feed)
    want = gc.Session(backend="numpy").run(y, feed)
    assert_close(got, want, dtype=dtype, rtol=1e-4 if dtype == "float32" else None,
                 atol=k * 1e-6 if dtype == "float32" else None)


def test_it_stays_out_of_variables_single_rows_and_transposed_left_operands():
    rng = np.random.default_rng(4)
    x = gc.placeholder(gc.float32, (64, 256))
    v = gc.Variable(rng.normal(size=(256, 512)).astype(np.float32), name="trained")
    w = gc.constant(rng.normal(size=(256, 512)).astype(np.float32))
    row = gc.placeholder(gc.float32, (1, 256))
    xt = gc.placeholder(gc.float32, (256, 64))
    feed = {x: rng.normal(size=(64, 256)).astype(np.float32), row: rng.normal(size=(1, 256)).astype(np.float32),
            xt: rng.normal(size=(256, 64)).astype(np.float32)}
    sess = gc.Session(backend="llvm")
    sess.run(gc.global_variables_initializer())
    for product in (gc.matmul(x, v), gc.matmul(row, w), gc.matmul(xt, w, transpose_a=True)):
        assert " direct-conv " not in kernel_listing(product, feed)
        got = sess.run(product, feed)
        ref = gc.Session(backend="numpy")
        ref.run(gc.global_variables_initializer())
        assert_close(got, ref.run(product, feed), dtype="float32", rtol=1e-4, atol=1e-3)
