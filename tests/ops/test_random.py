"""Random ops: the Philox4x32-10 generator against Random123's known answers, the statistics of
gc.random_uniform / gc.random_normal, and TF1 seed semantics."""
from __future__ import annotations

import math

import numpy as np
import pytest

import graphc as gc
from graphc.ops import all_ops
from graphc.ops.random import philox4x32
from tests.helpers import run

TESTED_OPS = {"RandomUniform", "RandomStandardNormal"}

FLOATS = ["float32", "float64"]
N_SAMPLES = 100_000
KS_BOUND = 1.95 / math.sqrt(N_SAMPLES)  # Kolmogorov-Smirnov critical value at alpha ~ 0.001


# --------------------------------------------------------------------------- Philox known answers
# From Random123's kat_vectors (philox4x32 10 rounds): counter words, key words, expected output.
PHILOX_KAT = [
    ((0x00000000, 0x00000000, 0x00000000, 0x00000000), (0x00000000, 0x00000000),
     (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF), (0xFFFFFFFF, 0xFFFFFFFF),
     (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]


@pytest.mark.parametrize("ctr,key,expected", PHILOX_KAT, ids=["zeros", "ones", "pi"])
def test_philox4x32_10_known_answers(ctr, key, expected):
    counter = np.array(ctr, dtype=np.uint32).reshape(4, 1)
    out = philox4x32(counter, key)
    assert out.dtype == np.uint32
    assert out.shape == (4, 1)
    assert [int(v) for v in out[:, 0]] == list(expected), [hex(int(v)) for v in out[:, 0]]


def test_philox4x32_vectorized_over_counters():
    """Columns are independent: a batch of counters gives each one's known answer."""
    for key in {k for _, k, _ in PHILOX_KAT}:
        cases = [c for c in PHILOX_KAT if c[1] == key]
        counter = np.array([c[0] for c in cases] * 3, dtype=np.uint32).T
        out = philox4x32(counter, key)
        expected = np.array([c[2] for c in cases] * 3, dtype=np.uint32).T
        np.testing.assert_array_equal(out, expected)


def test_philox4x32_is_sensitive_to_every_word():
    base = philox4x32(np.zeros((4, 1), np.uint32), (0, 0))[:, 0]
    for i in range(4):
        ctr = np.zeros((4, 1), np.uint32)
        ctr[i] = 1
        assert not np.array_equal(philox4x32(ctr, (0, 0))[:, 0], base)
    assert not np.array_equal(philox4x32(np.zeros((4, 1), np.uint32), (1, 0))[:, 0], base)
    assert not np.array_equal(philox4x32(np.zeros((4, 1), np.uint32), (0, 1))[:, 0], base)


# --------------------------------------------------------------------------- statistics
def _ks_statistic(samples: np.ndarray, cdf) -> float:
    x = np.sort(samples.astype(np.float64).reshape(-1))
    n = x.size
    f = cdf(x)
    upper = np.arange(1, n + 1) / n - f
    lower = f - np.arange(0, n) / n
    return float(max(upper.max(), lower.max()))


_erf = np.frompyfunc(math.erf, 1, 1)


def _normal_cdf(x: np.ndarray, mean: float, std: float) -> np.ndarray:
    return 0.5 * (1.0 + _erf((x - mean) / (std * math.sqrt(2.0))).astype(np.float64))


@pytest.mark.parametrize("minval,maxval", [(0.0, None), (-2.0, 3.0), (5.0, 5.5), (-1e3, -10.0)], ids=str)
@pytest.mark.parametrize("dtype", FLOATS)
def test_random_uniform_statistics(backend, dtype, minval, maxval):
    kwargs = {} if maxval is None else {"maxval": maxval}
    u = gc.random_uniform([100, N_SAMPLES // 100], minval=minval, dtype=dtype, seed=11, **kwargs)
    assert u.dtype == gc.as_dtype(dtype) and u.shape == (100, N_SAMPLES // 100)
    got = run(u, None, backend)
    lo, hi = minval, 1.0 if maxval is None else maxval
    assert got.dtype == np.dtype(dtype) and got.shape == (100, N_SAMPLES // 100)
    assert got.min() >= np.asarray(lo, dtype) and got.max() < np.asarray(hi, dtype)
    width = hi - lo
    assert abs(got.mean(dtype=np.float64) - (lo + hi) / 2) < 5 * width / math.sqrt(12 * N_SAMPLES)
    assert abs(got.std(dtype=np.float64) / (width / math.sqrt(12)) - 1) < 0.01
    assert _ks_statistic(got, lambda x: (x - lo) / width) < KS_BOUND
    if dtype == "float64" or width >= 1:  # enough representable values for few collisions
        assert len(np.unique(got)) > 0.99 * N_SAMPLES


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("as_tensor", [False, True], ids=["scalar-bounds", "tensor-bounds"])
def test_random_uniform_never_reaches_maxval(backend, dtype, as_tensor):
    # u * (maxval - minval) + minval rounds up to maxval for u close to 1 when the interval is
    # narrow next to its magnitude; the result must still lie in [minval, maxval).
    lo = np.asarray(1.0, dtype)
    hi = np.nextafter(np.nextafter(lo, np.inf), np.inf)  # two ulps above minval
    minval, maxval = (gc.constant(lo), gc.constant(hi)) if as_tensor else (float(lo), float(hi))
    got = run(gc.random_uniform([4000], minval=minval, maxval=maxval, dtype=dtype, seed=1), None, backend)
    assert got.dtype == np.dtype(dtype)
    assert got.min() >= lo
    assert got.max() < hi, f"{np.sum(got >= hi)} of 4000 values equal maxval"
    assert len(np.unique(got)) == 2  # both minval and the value one ulp above it occur


@pytest.mark.parametrize("mean,stddev", [(0.0, 1.0), (3.0, 0.5), (-10.0, 4.0)], ids=str)
@pytest.mark.parametrize("dtype", FLOATS)
def test_random_normal_statistics(backend, dtype, mean, stddev):
    z = gc.random_normal([N_SAMPLES], mean=mean, stddev=stddev, dtype=dtype, seed=5)
    assert z.dtype == gc.as_dtype(dtype) and z.shape == (N_SAMPLES,)
    got = run(z, None, backend)
    assert got.dtype == np.dtype(dtype)
    assert np.all(np.isfinite(got))
    assert abs(got.mean(dtype=np.float64) - mean) < 5 * stddev / math.sqrt(N_SAMPLES)
    assert abs(got.std(dtype=np.float64) / stddev - 1) < 0.015
    assert _ks_statistic(got, lambda x: _normal_cdf(x, mean, stddev)) < KS_BOUND
    # pairs come from Box-Muller: neighbours must not be correlated
    assert abs(np.corrcoef(got[0::2], got[1::2])[0, 1]) < 0.02


def test_random_normal_odd_and_small_sizes(backend):
    for n in (1, 3, 7):
        got = run(gc.random_normal([n], seed=1), None, backend)
        assert got.shape == (n,) and np.all(np.isfinite(got))
    assert run(gc.random_uniform([0, 3]), None, backend).shape == (0, 3)
    assert np.shape(run(gc.random_normal([]), None, backend)) == ()


def test_random_normal_prefix_is_stable_across_sizes(backend):
    """Element i depends only on (seed, run, i), not on the total size."""
    a = run(gc.random_normal([9], seed=3), None, backend)
    b = run(gc.random_normal([20], seed=3), None, backend)
    np.testing.assert_array_equal(a, b[:9])


@pytest.mark.parametrize("dtype", FLOATS)
def test_numpy_scalar_parameters_keep_the_requested_dtype(backend, dtype):
    # Initializers are often written with NumPy scalars (stddev=np.sqrt(2 / fan_in)); they must
    # not turn a float32 draw into float64, as TF converts them to the requested dtype.
    z = gc.random_normal([400], mean=np.float64(1.0), stddev=np.sqrt(2.0 / 3.0), dtype=dtype, seed=4)
    u = gc.random_uniform([400], minval=np.float64(-0.5), maxval=np.float64(0.5), dtype=dtype, seed=4)
    assert z.dtype == gc.as_dtype(dtype) and u.dtype == gc.as_dtype(dtype)
    gz, gu = run([z, u], None, backend)
    assert gz.dtype == np.dtype(dtype) and gu.dtype == np.dtype(dtype)
    assert abs(gz.mean() - 1.0) < 5 * np.sqrt(2.0 / 3.0) / 20
    assert gu.min() >= -0.5 and gu.max() < 0.5


def test_random_normal_matches_the_standard_draw_scaled(backend):
    """mean + stddev * z, with z the RandomStandardNormal draw of the same seeds."""
    gc.set_random_seed(8)
    a = gc.random_normal([50], seed=1, dtype=gc.float64)
    b = gc.random_normal([50], mean=2.0, stddev=3.0, seed=1, dtype=gc.float64)
    va, vb = run([a, b], None, backend)
    np.testing.assert_allclose(vb, 2.0 + 3.0 * va, rtol=1e-15, atol=1e-15)


@pytest.mark.parametrize("fn", [gc.random_uniform, gc.random_normal], ids=["uniform", "normal"])
@pytest.mark.parametrize("dtype", ["int32", "int64", "bool", gc.int32])
def test_random_with_int_dtype_is_a_dtype_error(fn, dtype):
    with pytest.raises(gc.DTypeError):
        fn([3], dtype=dtype)


@pytest.mark.parametrize("fn", [gc.random_uniform, gc.random_normal], ids=["uniform", "normal"])
def test_random_negative_shape_is_a_shape_error(fn):
    with pytest.raises(gc.ShapeError):
        fn([2, -1])


# --------------------------------------------------------------------------- TF1 seed semantics
def _draw_in_new_graph(graph_seed=None, op_seed=None, extra_ops=0, backend="numpy"):
    g = gc.Graph()
    with g.as_default():
        if graph_seed is not None:
            gc.set_random_seed(graph_seed)
        for _ in range(extra_ops):
            gc.constant(1.0)
        u = gc.random_uniform([6], seed=op_seed)
        z = gc.random_normal([6], seed=op_seed)
    with gc.Session(graph=g, backend=backend) as sess:
        return sess.run([u, z])


def test_graph_seed_makes_rebuilding_reproducible(backend):
    a = _draw_in_new_graph(graph_seed=42, backend=backend)
    b = _draw_in_new_graph(graph_seed=42, backend=backend)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    c = _draw_in_new_graph(graph_seed=43, backend=backend)
    assert not np.array_equal(a[0], c[0]) and not np.array_equal(a[1], c[1])


def test_graph_seed_gives_distinct_ops_distinct_numbers(backend):
    gc.set_random_seed(1)
    a, b = gc.random_uniform([8]), gc.random_uniform([8])
    va, vb = run([a, b], None, backend)
    assert not np.array_equal(va, vb)


def test_op_seed_alone_is_deterministic(backend):
    a = _draw_in_new_graph(op_seed=7, backend=backend)
    b = _draw_in_new_graph(op_seed=7, extra_ops=3, backend=backend)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    c = _draw_in_new_graph(op_seed=8, backend=backend)
    assert not np.array_equal(a[0], c[0])


def test_graph_and_op_seed_together(backend):
    a = _draw_in_new_graph(graph_seed=3, op_seed=9, backend=backend)
    b = _draw_in_new_graph(graph_seed=3, op_seed=9, extra_ops=2, backend=backend)
    np.testing.assert_array_equal(a[0], b[0])
    c = _draw_in_new_graph(graph_seed=4, op_seed=9, backend=backend)
    assert not np.array_equal(a[0], c[0])


def test_no_seeds_differ_between_graphs(backend):
    a = _draw_in_new_graph(backend=backend)
    b = _draw_in_new_graph(backend=backend)
    assert not np.array_equal(a[0], b[0])
    assert not np.array_equal(a[1], b[1])


@pytest.mark.parametrize("seed", [None, 5], ids=["unseeded", "seeded"])
def test_each_run_in_a_session_draws_new_numbers(backend, seed):
    u = gc.random_uniform([16], seed=seed)
    z = gc.random_normal([16], seed=seed)
    with gc.Session(backend=backend) as sess:
        draws = [sess.run([u, z]) for _ in range(4)]
    for i in range(4):
        for j in range(i):
            assert not np.array_equal(draws[i][0], draws[j][0])
            assert not np.array_equal(draws[i][1], draws[j][1])


@pytest.mark.parametrize("graph_seed", [None, 17], ids=["no-graph-seed", "graph-seed"])
def test_two_sessions_on_one_graph_give_the_same_sequence(backend, graph_seed):
    if graph_seed is not None:
        gc.set_random_seed(graph_seed)
    u = gc.random_uniform([5])
    z = gc.random_normal([3, 2], dtype=gc.float64)
    sequences = []
    for _ in range(2):
        with gc.Session(backend=backend) as sess:
            sequences.append([sess.run([u, z]) for _ in range(3)])
    for (u1, z1), (u2, z2) in zip(*sequences):
        np.testing.assert_array_equal(u1, u2)
        np.testing.assert_array_equal(z1, z2)
    assert not np.array_equal(sequences[0][0][0], sequences[0][1][0])


def test_random_shape_from_unknown_placeholder_dim(backend):
    x = gc.placeholder(gc.float32, [None, 3])
    u = gc.random_uniform(gc.shape(x), minval=-1.0, maxval=1.0, seed=2)
    z = gc.random_normal([gc.shape(x)[0], 2], dtype=gc.float64, seed=2)
    assert u.shape == (None, 3) and z.shape == (None, 2)
    with gc.Session(backend=backend) as sess:
        for batch in (4, 1, 0, 7):
            gu, gz = sess.run([u, z], {x: np.zeros((batch, 3), np.float32)})
            assert gu.shape == (batch, 3) and gu.dtype == np.float32
            assert gz.shape == (batch, 2) and gz.dtype == np.float64
            assert np.all((gu >= -1) & (gu < 1))
            assert np.all(np.isfinite(gz))


def test_random_shape_known_from_a_static_shape_tensor():
    x = gc.placeholder(gc.float32, [2, 5])
    assert gc.random_uniform(gc.shape(x)).shape == (2, 5)
    assert gc.random_normal(gc.shape(x)).shape == (2, 5)


def test_tested_ops_are_registered():
    assert TESTED_OPS <= set(all_ops())
