"""Row chains over the channels of one image (graphc.lower.chains): at batch 1, an NCHW depthwise
convolution's padded copy, its planes and its epilogue run channel block by channel block, their
temporaries in per-thread scratch, while the pointwise convolution before them keeps its clip in
its GEMM blocks. Compared with the NumPy reference backend, serially and split over the pool
(bit for bit), and the chain's structure is checked: which kernels, which temporaries private,
a result that the memory plan put over the chain's input."""
from __future__ import annotations

import numpy as np
import pytest

import graphc as gc
import graphc.lower.conv_depthwise as conv_depthwise
from graphc.lower.chains import row_chains
from graphc.lower.kernel import GemmCall
from graphc.runtime import cpu, native_pool, threads


@pytest.fixture(autouse=True)
def _loop_kernel_depthwise(monkeypatch):
    """These tests are about the loop-kernel forms of grouped and depthwise convolutions (NHWC,
    channel multipliers, column strides past 2, GRAPHC_DIRECT_CONV=0 keep them); an NCHW
    depthwise convolution takes the depthwise kernel otherwise (tests/lower/test_conv_depthwise.py)."""
    monkeypatch.setattr(conv_depthwise, "ENABLED", False)

TESTED_OPS = {"Conv2D", "Relu6"}


def _block(rng, n: int, ci: int, side: int, expand: int, stride: int, dtype: str = "float32"):
    """A mobilenet_v2 block: pointwise expansion + relu6, depthwise 3x3 + relu6, pointwise
    projection."""
    hidden = ci * expand
    x = gc.placeholder(dtype, (n, ci, side, side), name="x")

    def weights(*shape):
        return gc.constant(rng.uniform(-0.5, 0.5, shape).astype(dtype))

    h = gc.nn.relu6(gc.nn.conv2d(x, weights(1, 1, ci, hidden), 1, "VALID", data_format="NCHW")
                    + weights(hidden, 1, 1))
    h = gc.nn.relu6(gc.nn.conv2d(h, weights(3, 3, 1, hidden), stride, [(1, 1), (1, 1)], data_format="NCHW",
                                 groups=hidden) + weights(hidden, 1, 1))
    y = gc.nn.conv2d(h, weights(1, 1, hidden, ci), 1, "VALID", data_format="NCHW")
    feed = {x: rng.uniform(-1, 1, (n, ci, side, side)).astype(dtype)}
    return y, feed


def _executable(sess: gc.Session, y, feed):
    return sess.compile([y], feed).executable


@pytest.mark.parametrize("side", [28, 13])
def test_a_depthwise_convolution_runs_as_one_chain_over_channels(side):
    y, feed = _block(np.random.default_rng(3), 1, 16, side, 6, 1)
    want = gc.Session(backend="numpy", pipeline=None).run(y, feed)
    sess = gc.Session(backend="llvm")
    np.testing.assert_allclose(sess.run(y, feed), want, rtol=2e-4, atol=2e-4)
    kp = _executable(sess, y, feed).kp
    chains = row_chains(kp)
    assert len(chains) == 1 and chains[0].extent == 96
    chain = chains[0]
    members = kp.kernels[chain.first:chain.last]
    assert len(members) >= 3 and all(m.node.type == "Conv2D" for m in members)   # padding, planes, epilogue
    assert len(chain.private) >= 2                     # the padded planes and the flat planes
    gemms = [k for k in kp.kernels if isinstance(k, GemmCall)]
    assert gemms[0].epilogue is not None               # the expansion keeps its relu6 in its blocks
    # the depthwise result lies over its input (the memory plan's reuse): row c of one is row c
    # of the other, which the chain allows
    outside = {id(b): b for m in members for b in m.reads() + m.writes()
               if b.kind == "temp" and b.id not in dict(chain.private)}
    spans = [(b.offset, b.nbytes) for b in outside.values()]
    assert len(spans) == 2 and spans[0] == spans[1]


def test_without_leading_unit_axes_nothing_changes():
    """unit_lead=False is the rule the GEMM epilogues ask for: no chain over channels there."""
    y, feed = _block(np.random.default_rng(4), 1, 16, 14, 6, 1)
    sess = gc.Session(backend="llvm")
    sess.run(y, feed)
    kp = _executable(sess, y, feed).kp
    assert row_chains(kp) and not row_chains(kp, unit_lead=False)


@pytest.mark.parametrize("n,stride,dtype", [(1, 2, "float32"), (1, 1, "float64"), (2, 1, "float32")])
def test_blocks_agree_with_the_reference(n, stride, dtype):
    y, feed = _block(np.random.default_rng(5), n, 8, 15, 4, stride, dtype)
    want = gc.Session(backend="numpy", pipeline=None).run(y, feed)
    got = gc.Session(backend="llvm").run(y, feed)
    tol = 1e-4 if dtype == "float32" else 1e-10
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


@pytest.mark.skipif(not native_pool.supported(), reason="the native pool needs Linux on x86-64/AArch64")
def test_the_chain_split_over_the_pool_gives_the_serial_bits(monkeypatch):
    y, feed = _block(np.random.default_rng(6), 1, 24, 28, 6, 1)
    monkeypatch.setattr(cpu, "PARALLEL_NS", 1 << 60)
    serial = gc.Session(backend="llvm").run(y, feed)
    monkeypatch.setattr(threads, "_pool", native_pool.NativePool(3))
    monkeypatch.setattr(cpu, "PARALLEL_NS", 0)
    sess = gc.Session(backend="llvm")
    split = sess.run(y, feed)
    executable = _executable(sess, y, feed)
    assert executable.info.chains and any(extent == executable.info.chains[0].extent
                                          for _, extent in executable._steps)
    assert np.array_equal(split, serial)


def test_buffers_at_one_place_share_it_only_when_every_one_is_touched_at_its_row():
    """graphc.lower.chains._overlap: buffers the memory plan put at the same offset with the
    same size are no obstacle while each is touched at the computed row only; one touched off
    its row (a neighbour's channel, say), among any number there, is."""
    from graphc.ir.dtypes import float32
    from graphc.lower.chains import _overlap
    from graphc.lower.kernel import Buffer

    same = [Buffer(i, f"b{i}", float32, (1, 8, 4, 4), "temp", offset=0) for i in range(3)]
    elsewhere = Buffer(3, "b3", float32, (1, 8, 4, 4), "temp", offset=512)
    partly = Buffer(4, "b4", float32, (1, 8, 4, 4), "temp", offset=256)
    assert not _overlap(same + [elsewhere], off_row=set())
    for off in range(3):   # whichever of the three is read off its row
        assert _overlap(same, off_row={id(same[off])})
    assert _overlap([same[0], partly], off_row=set())   # a partial overlap always is
