"""GEMM epilogues (graphc.lower.gemm_epilogue, graphc.codegen.llvm_gemm_epilogue): a conv's or a
matmul's elementwise tail runs on each block of C inside the GEMM kernel. Every case is compared
with the NumPy reference backend, and the kernel program is checked to hold the fused form (so
that a test cannot pass on the separate-kernel path it replaces)."""
from __future__ import annotations

import numpy as np
import pytest

import graphc as gc
from graphc.lower import index as iexpr
from graphc.lower.gemm_epilogue import GemmLayout, attach_epilogue
from graphc.lower.loop_merge import merge_target
from graphc.lower.kernel import Buffer, GemmCall, LoopKernel, Slot, Store
from graphc.ir.dtypes import float32
from graphc.ops import scalar as sexpr


def _kernels(sess: gc.Session) -> list:
    return [k for c in sess._cache.values() for k in c.executable.kp.kernels]


def _compare(build, feeds, rtol=2e-5, atol=2e-5, generated=False, monkeypatch=None):
    """Run build()'s fetches on the reference and the LLVM backend; the LLVM session. Products
    are OpenBLAS calls, graphc's own GEMM (generated=True), or, for convolutions, the direct
    kernel (generated="direct"; graphc.lower.conv_direct)."""
    if generated is True:
        monkeypatch.setenv("GRAPHC_GEMM", "generated")
    if generated != "direct" and monkeypatch is not None:
        monkeypatch.setenv("GRAPHC_DIRECT_CONV", "0")
    g = gc.Graph()
    with g.as_default():
        placeholders, fetches = build()
    feed = dict(zip(placeholders, feeds))
    want = gc.Session(graph=g, backend="numpy").run(fetches, feed)
    sess = gc.Session(graph=g, backend="llvm")
    got = sess.run(fetches, feed)
    for w, v in zip(want, got):
        np.testing.assert_allclose(v, w, rtol=rtol, atol=atol)
    return sess


def _fused(sess: gc.Session) -> list[GemmCall]:
    gemms = [k for k in _kernels(sess) if isinstance(k, GemmCall)]
    assert gemms, "no GEMM was compiled"
    return [k for k in gemms if k.epilogue is not None]


CONVS = [  # (fmt, input shape, taps, output channels, stride)
    ("NCHW", (2, 16, 14, 14), 1, 24, 1),
    ("NCHW", (1, 8, 9, 11), 3, 12, 1),
    ("NCHW", (3, 6, 10, 10), 3, 5, 2),
    ("NHWC", (2, 14, 14, 16), 1, 24, 1),
    ("NHWC", (2, 9, 11, 8), 3, 12, 2),
]


@pytest.mark.parametrize("generated", [False, True, "direct"])
@pytest.mark.parametrize("fmt,shape,taps,co,stride", CONVS)
def test_conv_bias_relu6_and_residual_run_in_the_gemm(fmt, shape, taps, co, stride, generated, monkeypatch):
    rng = np.random.default_rng(1)
    ci = shape[1] if fmt == "NCHW" else shape[3]
    x = rng.normal(size=shape).astype(np.float32)
    w = rng.normal(size=(taps, taps, ci, co)).astype(np.float32)
    bias = rng.normal(size=co).astype(np.float32)

    def build():
        xp = gc.placeholder(gc.float32, shape)
        y = gc.nn.conv2d(xp, gc.constant(w), strides=stride, padding="SAME", data_format=fmt)
        y = gc.nn.bias_add(y, bias, data_format=fmt)
        residual = gc.constant(rng.normal(size=tuple(y.shape)).astype(np.float32))
        return [xp], [gc.minimum(gc.nn.relu(y + residual), 6.0)]

    sess = _compare(build, [x], generated=generated, monkeypatch=monkeypatch)
    fused = _fused(sess)
    assert fused and all(k.generated == (generated is True) for k in fused)
    # 1x1 stride-1 convolutions are plain GEMMs in NCHW; in NHWC they run the direct kernel too
    direct = generated == "direct" and ((taps, stride) != (1, 1) or fmt == "NHWC")
    assert all((k.window is not None) == direct for k in fused)
    # the tail is gone as a kernel of its own, and C lives in the result's memory
    assert [k for k in _kernels(sess) if isinstance(k, LoopKernel) and k.node is not None
            and k.node.type == "Minimum"] == []
    assert all(k.c.alias_of is not None for k in fused)


def test_a_convolution_cut_into_batch_chunks_runs_its_tail_on_every_chunk(monkeypatch):
    import graphc.lower.conv_gemm as conv_gemm
    monkeypatch.setattr(conv_gemm, "PATCH_BYTES", 8 * 9 * 6 * 6 * 4)   # one image per chunk
    rng = np.random.default_rng(2)
    for fmt, shape in (("NCHW", (4, 6, 6, 6)), ("NHWC", (4, 6, 6, 6))):
        x = rng.normal(size=shape).astype(np.float32)
        w = rng.normal(size=(3, 3, 6, 8)).astype(np.float32)

        def build():
            xp = gc.placeholder(gc.float32, shape)
            y = gc.nn.conv2d(xp, gc.constant(w), strides=1, padding="SAME", data_format=fmt)
            return [xp], [gc.nn.relu6(gc.nn.bias_add(y, np.arange(8, dtype=np.float32), data_format=fmt))]

        fused = _fused(_compare(build, [x], monkeypatch=monkeypatch))   # the GEMM form (not direct)
        assert len(fused) == 4 and len({id(k.epilogue) for k in fused}) == 1


def test_a_costly_tail_stays_a_kernel_of_its_own():
    """tanh (a transcendental per element) ran slower inside the GEMM's blocks than after it."""
    rng = np.random.default_rng(8)
    a = rng.normal(size=(40, 30)).astype(np.float32)
    b = rng.normal(size=(30, 50)).astype(np.float32)

    def build():
        ap, bp = gc.placeholder(gc.float32, a.shape), gc.placeholder(gc.float32, b.shape)
        return [ap, bp], [gc.tanh(gc.matmul(ap, bp) + 1.0)]

    assert _fused(_compare(build, [a, b])) == []


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batched_matmul_bias_leaky_relu(dtype):
    rng = np.random.default_rng(3)
    a = rng.normal(size=(3, 70, 33)).astype(dtype)
    b = rng.normal(size=(33, 129)).astype(dtype)
    bias = rng.normal(size=129).astype(dtype)

    def build():
        ap, bp = gc.placeholder(gc.as_dtype(dtype), a.shape), gc.placeholder(gc.as_dtype(dtype), b.shape)
        h = gc.matmul(ap, bp) + bias
        return [ap, bp], [gc.maximum(h, 0.1 * h)]

    assert len(_fused(_compare(build, [a, b], rtol=1e-5, atol=1e-5))) == 1


def test_a_matrix_vector_product_keeps_its_tail():
    rng = np.random.default_rng(4)
    a = rng.normal(size=(40, 30)).astype(np.float32)
    v = rng.normal(size=(30,)).astype(np.float32)

    def build():
        ap, vp = gc.placeholder(gc.float32, a.shape), gc.placeholder(gc.float32, v.shape)
        return [ap, vp], [gc.nn.relu(gc.tensordot(ap, vp, 1) + 1.0)]

    sess = _compare(build, [a, v])
    assert not [k for k in _kernels(sess) if isinstance(k, GemmCall) and k.epilogue is not None]


def test_columns_that_do_not_merge_come_in_whole_rows():
    """An addend broadcast along w but not h moves with h alone: the h x w columns cannot run as
    one counter, so blocks hold whole image rows and the epilogue loops h, then w."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=(1, 16, 30, 30)).astype(np.float32)
    w = rng.normal(size=(1, 1, 16, 64)).astype(np.float32)
    per_row = rng.normal(size=(1, 64, 30, 1)).astype(np.float32)

    def build():
        xp = gc.placeholder(gc.float32, x.shape)
        y = gc.nn.conv2d(xp, gc.constant(w), strides=1, padding="VALID", data_format="NCHW")
        return [xp], [gc.nn.relu(y + per_row)]

    (g,) = _fused(_compare(build, [x]))
    assert merge_target(g.epilogue, g.layout.col_axes) is None and merge_target(g.epilogue, g.layout.row_axes) == 1


def test_a_fused_update_is_computed_in_place_and_matches_the_reference():
    """SGD on a filter: the update is the filter gradient's tail; the variable keeps its array."""
    rng = np.random.default_rng(6)
    x = rng.normal(size=(4, 10, 10, 3)).astype(np.float32)
    built = {}
    sessions = {}
    for backend in ("numpy", "llvm"):
        g = gc.Graph()
        with g.as_default():
            xp = gc.placeholder(gc.float32, x.shape)
            f = gc.Variable(rng.normal(size=(3, 3, 3, 8)).astype(np.float32) * 0 + 0.1, name="f")
            y = gc.nn.relu(gc.nn.conv2d(xp, f, strides=1, padding="SAME"))
            loss = gc.reduce_mean(y * y)
            step = gc.train.GradientDescentOptimizer(0.05).minimize(loss)
            init = gc.global_variables_initializer()
        s = gc.Session(graph=g, backend=backend)
        s.run(init)
        built[backend], sessions[backend] = (xp, step, loss), s
    before = id(sessions["llvm"]._state.variables["f"])
    for _ in range(3):
        for backend, s in sessions.items():
            xp, step, loss = built[backend]
            s.run(step, {xp: x})
    np.testing.assert_allclose(sessions["llvm"]._state.variables["f"], sessions["numpy"]._state.variables["f"],
                               rtol=1e-5, atol=1e-6)
    fused = [k for k in _kernels(sessions["llvm"]) if isinstance(k, GemmCall) and k.epilogue is not None
             and any(s.buffer.kind == "output" for s in k.epilogue.stores)]
    assert fused, "the update did not run in the filter gradient's GEMM"
    assert id(sessions["llvm"]._state.variables["f"]) == before


def test_attach_refuses_a_tail_that_reads_c_elsewhere():
    c = Buffer(0, "c", float32, (4, 6), "temp")
    a = Buffer(1, "a", float32, (4, 3), "input")
    b = Buffer(2, "b", float32, (3, 6), "input")
    out = Buffer(3, "out", float32, (4, 6), "output")
    gemm = GemmCall("g", a, b, c, 4, 6, 3, False, False, layout=GemmLayout((), (0,), (1,)))
    i0, i1 = iexpr.var(0), iexpr.var(1)
    shifted = LoopKernel("t", (4, 6), (0, 1), slots=[Slot(c, (i0, iexpr.mod(iexpr.add(i1, 1), 6)))],
                         stores=[Store(out, (i0, i1), sexpr.SExpr("arg", (), float32, 0))])
    assert not attach_epilogue([gemm], c, shifted) and gemm.epilogue is None
    own = LoopKernel("t", (4, 6), (0, 1), slots=[Slot(c, (i0, i1))],
                     stores=[Store(out, (i0, i1), sexpr.SExpr("arg", (), float32, 0))])
    assert attach_epilogue([gemm], c, own) and gemm.epilogue is own
    unlaid = GemmCall("g", a, b, c, 4, 6, 3, False, False)
    assert not attach_epilogue([unlaid], c, own)


def test_gemm_epilogues_can_be_switched_off(monkeypatch):
    monkeypatch.setenv("GRAPHC_GEMM_EPILOGUES", "0")
    rng = np.random.default_rng(7)
    a = rng.normal(size=(20, 30)).astype(np.float32)
    b = rng.normal(size=(30, 40)).astype(np.float32)

    def build():
        ap, bp = gc.placeholder(gc.float32, a.shape), gc.placeholder(gc.float32, b.shape)
        return [ap, bp], [gc.nn.relu(gc.matmul(ap, bp) - 0.5)]

    assert _fused(_compare(build, [a, b])) == []
