"""A product's operand that is a strided view of a stored tensor is read where it lies, through
a leading dimension and batch strides of its own (GemmCall.lda / ldb, graphc.lower.library.
_strided_operand), instead of being copied first: an attention block's transposed heads, a
transposed matrix (read as the transpose of a row-major one), a slice of columns. Against the
NumPy reference, on OpenBLAS and on graphc's own GEMM; views that are not affine, broadcast
or run backwards keep their copy."""
from __future__ import annotations

import numpy as np
import pytest

import graphc as gc
from tests.helpers import kernel_listing


def _check(fetches, feed) -> str:
    listing = kernel_listing(fetches, feed)
    got = gc.Session(backend="llvm").run(fetches, feed)
    want = gc.Session(backend="numpy").run(fetches, feed)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=2e-5, atol=2e-5)
    return listing


def _copies(listing: str) -> list[str]:
    """Kernels of the listing that only move a MatMul's operand."""
    return [line for line in listing.splitlines() if line.startswith("k") and " loop " in line and "# MatMul" in line]


@pytest.mark.parametrize("gemm", ["blas", "generated"])
def test_attention_heads_are_read_where_they_lie(gemm, monkeypatch):
    if gemm == "generated":
        monkeypatch.setenv("GRAPHC_GEMM", "generated")
    rng = np.random.default_rng(0)
    b, t, h, d = 2, 12, 3, 8
    x = gc.placeholder(gc.float32, [b * t, h * d])
    ws = [gc.constant(rng.normal(size=(h * d, h * d)).astype(np.float32) / 5) for _ in range(3)]

    def heads(m):
        return gc.transpose(gc.reshape(m, [b, t, h, d]), [0, 2, 1, 3])

    q, k, v = (heads(x @ w) for w in ws)
    scores = gc.nn.softmax(gc.matmul(q, k, transpose_b=True))
    out = gc.matmul(scores, v)
    listing = _check([out], {x: rng.normal(size=(b * t, h * d)).astype(np.float32)})
    assert _copies(listing) == [], listing
    assert listing.count("(ld 24, at 0)") == 3, listing   # q, k and v: rows h * d apart


def test_a_column_major_view_is_the_transpose_of_a_row_major_one():
    """x [20, 2, 9] seen as [2, 9, 20] (element (b, i, j) at x[j, b, i]): each batch element's
    matrix has unit steps down its columns, so it is read as the transpose of a row-major
    matrix with rows 18 apart, the product's transpose flag set."""
    rng = np.random.default_rng(1)
    x = gc.placeholder(gc.float32, [20, 2, 9])
    w = gc.constant(rng.normal(size=(20, 5)).astype(np.float32))
    out = gc.matmul(gc.transpose(x, [1, 2, 0]), w)
    listing = _check([out], {x: rng.normal(size=(20, 2, 9)).astype(np.float32)})
    assert _copies(listing) == [] and "%0ᵀ(ld 18, at 0)" in listing, listing


def test_a_slice_of_columns_is_read_with_its_offset():
    rng = np.random.default_rng(2)
    x = gc.placeholder(gc.float32, [16, 40])
    w = gc.constant(rng.normal(size=(12, 7)).astype(np.float32))
    out = x[:, 5:17] @ w
    listing = _check([out], {x: rng.normal(size=(16, 40)).astype(np.float32)})
    assert _copies(listing) == [] and "(ld 40, at 5)" in listing, listing


def test_views_that_are_not_strided_matrices_keep_their_copy():
    """A reversed slice (negative steps) and a reshape that splits rows across the product's
    rows are not strided matrices: copied, and still right."""
    rng = np.random.default_rng(3)
    x = gc.placeholder(gc.float32, [10, 12])
    w = gc.constant(rng.normal(size=(12, 4)).astype(np.float32))
    y = gc.placeholder(gc.float32, [4, 6, 5])
    v = gc.constant(rng.normal(size=(10, 3)).astype(np.float32))
    reversed_rows = x[::-1] @ w
    mixed = gc.reshape(gc.transpose(y, [1, 0, 2]), [12, 10]) @ v
    feed = {x: rng.normal(size=(10, 12)).astype(np.float32), y: rng.normal(size=(4, 6, 5)).astype(np.float32)}
    listing = _check([reversed_rows, mixed], feed)
    assert len(_copies(listing)) == 2, listing


def test_an_aot_library_reads_strided_operands(tmp_path):
    """The AOT target (graphc's own GEMM, libc only) takes the same leading dimensions."""
    rng = np.random.default_rng(4)
    x = gc.placeholder(gc.float32, [3, 8, 6])
    w = gc.constant(rng.normal(size=(8, 5)).astype(np.float32))
    out = gc.matmul(gc.transpose(x, [0, 2, 1]), w)
    xv = rng.normal(size=(3, 8, 6)).astype(np.float32)
    lib = gc.aot.compile(out, [x], tmp_path, "strided")
    np.testing.assert_allclose(lib.load()(xv)[0], gc.Session(backend="numpy").run(out, {x: xv}), rtol=2e-5, atol=2e-5)
