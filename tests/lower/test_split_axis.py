"""The pool splits a kernel's outermost loop: leading axes of extent 1 (an NCHW batch of one)
move inside (graphc.lower.loop_builder.split_first), so batch-1 kernels run on every thread,
while the innermost axis (the one that vectorizes) stays put."""
import numpy as np
import pytest

import graphc as gc
from graphc.lower.kernel import LoopKernel
from graphc.lower.loop_builder import split_first


@pytest.mark.parametrize("space,order,reduced,keep_last,want", [
    ((1, 96, 56, 56), (0, 1, 2, 3), (), True, (1, 0, 2, 3)),
    ((1, 1, 8, 5), (0, 1, 2, 3), (), True, (2, 0, 1, 3)),
    ((1, 4096), (0, 1), (), True, (0, 1)),                # one axis > 1: it stays innermost
    ((1, 512, 1024), (0, 2, 1), (1,), True, (0, 2, 1)),   # a column sum keeps its blocked axis
    ((1, 24, 400), (0, 1, 2), (2,), False, (1, 0, 2)),    # a row sum: the reduced axis is innermost
    ((8, 1, 16), (0, 1, 2), (), True, (0, 1, 2)),         # already split over 8
    ((1, 1, 1), (0, 1, 2), (), False, (0, 1, 2)),
    ((1, 6, 7, 9), (0, 1, 2, 3), (3,), True, (1, 0, 2, 3)),
])
def test_split_first(space, order, reduced, keep_last, want):
    assert split_first(space, order, reduced, keep_last) == want


def test_a_batch_one_nchw_kernel_is_split_across_threads_and_matches_the_reference():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1, 24, 20, 20)).astype(np.float32)
    g = gc.Graph()
    with g.as_default():
        xp = gc.placeholder(gc.float32, x.shape)
        y = gc.minimum(gc.nn.relu(xp * 3.0 + 0.5), 6.0) + gc.reduce_sum(xp, axis=[2, 3], keepdims=True)
    want = gc.Session(graph=g, backend="numpy").run(y, {xp: x})
    sess = gc.Session(graph=g, backend="llvm", config=gc.ConfigProto(intra_op_parallelism_threads=2))
    np.testing.assert_allclose(sess.run(y, {xp: x}), want, rtol=1e-5, atol=1e-5)
    (compiled,) = sess._cache.values()
    loops = [k for k in compiled.executable.kp.kernels if isinstance(k, LoopKernel)]
    assert loops and all(k.parallel_extent == 24 for k in loops)
