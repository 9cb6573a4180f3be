"""Variables updated in place (graphc.lower.memory.plan_in_place): same results as the NumPy
reference, the session's arrays are reused, a failed check leaves every variable as it was,
old values fetched in the same run stay old, and initial values are never mutated."""
import io

import numpy as np
import pytest

import graphc as gc


def _adam_model(n=300):
    x = gc.placeholder(gc.float32, [64, 5], name="x")
    labels = gc.placeholder(gc.int32, [64], name="labels")
    w = gc.Variable(np.linspace(-1, 1, 5 * n, dtype=np.float32).reshape(5, n), name="w")
    logits = (x @ w)[:, :10]
    loss = gc.reduce_mean(gc.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))
    return x, labels, w, loss, gc.train.AdamOptimizer(0.01).minimize(loss)


def _feed(x, labels, bad=False):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 10, 64).astype(np.int32)
    if bad:
        y[7] = 12
    return {x: rng.normal(size=(64, 5)).astype(np.float32), labels: y}


def test_adam_in_place_matches_reference_and_reuses_arrays():
    x, labels, w, loss, train = _adam_model(n=1 << 12)
    fast, ref = gc.Session(backend="llvm"), gc.Session(backend="numpy")
    for s in (fast, ref):
        s.run(gc.global_variables_initializer())
    fast.run(train, _feed(x, labels))
    ids = {k: id(v) for k, v in fast._state.variables.items()}
    ref.run(train, _feed(x, labels))
    for _ in range(3):
        fast.run(train, _feed(x, labels))
        ref.run(train, _feed(x, labels))
    for name, value in ref._state.variables.items():
        np.testing.assert_allclose(fast._state.variables[name], value, rtol=2e-5, atol=1e-6, err_msg=name)
    kept = [k for k, v in fast._state.variables.items() if ids[k] == id(v)]
    assert {"w", "w/Adam", "w/Adam_1"} <= set(kept)   # updated in the session's own arrays


def test_a_failed_check_leaves_every_variable_unchanged():
    x, labels, w, loss, train = _adam_model()
    sess = gc.Session(backend="llvm")
    sess.run(gc.global_variables_initializer())
    sess.run(train, _feed(x, labels))
    before = {k: v.copy() for k, v in sess._state.variables.items()}
    with pytest.raises(gc.errors.InvalidArgumentError, match="12"):
        sess.run([train, loss], _feed(x, labels, bad=True))   # the label check runs before the updates
    for name, value in sess._state.variables.items():
        assert np.array_equal(value, before[name]), name
    (run,) = [c for c in sess._cache.values() if len(c.program.outputs) == 1 and c.program.updates]
    guarded = [k for k in run.executable.kp.kernels if getattr(k, "skip_on_error", False)]
    assert guarded, "no in-place writer was guarded: the test would not test the guard"
    sess.run(train, _feed(x, labels))                     # and the session goes on
    assert not np.array_equal(sess._state.variables["w"], before["w"])


def test_old_value_fetched_with_its_update_and_initial_values_stay():
    v = gc.Variable(np.zeros(1000, np.float32), name="v")
    bump = v.assign(v * 2.0 + 1.0)
    runs = {}
    for backend in ("llvm", "numpy"):
        sess = gc.Session(backend=backend)
        sess.run(v.initializer)
        first = sess.run([v, bump])                        # v: the value the run started from
        for _ in range(3):
            sess.run(bump)
        final = sess.run(v)
        sess.run(v.initializer)                            # the constant was never written
        runs[backend] = (first, final, sess.run(v))
    (old, new), final, again = runs["llvm"]
    assert np.array_equal(old, np.zeros(1000, np.float32)) and np.array_equal(new, np.ones(1000, np.float32))
    assert np.array_equal(final, np.full(1000, 15.0, np.float32)) and np.array_equal(again, np.zeros(1000, np.float32))
    assert all(np.array_equal(a, b) for a, b in zip(runs["numpy"][0] + [runs["numpy"][1], runs["numpy"][2]],
                                                     [old, new, final, again]))


def test_variables_initialized_from_one_value_stay_independent():
    shared = gc.zeros([500])
    a, b = gc.Variable(shared, name="a"), gc.Variable(shared, name="b")
    step = gc.group(a.assign(a + 1.0), b.assign(b - 1.0))
    sess = gc.Session(backend="llvm")
    sess.run(gc.global_variables_initializer())
    for _ in range(2):
        sess.run(step)
    assert np.array_equal(sess.run(a), np.full(500, 2.0, np.float32))
    assert np.array_equal(sess.run(b), np.full(500, -2.0, np.float32))


@pytest.mark.parametrize("backend", ["llvm", "numpy"])
def test_training_without_the_loss_still_rejects_bad_labels(backend):
    x, labels, w, loss, train = _adam_model()
    sess = gc.Session(backend=backend)
    sess.run(gc.global_variables_initializer())
    before = {k: v.copy() for k, v in sess._state.variables.items()}
    with pytest.raises(gc.errors.InvalidArgumentError, match="12"):
        sess.run(train, _feed(x, labels, bad=True))        # only the gradient needs the labels
    assert all(np.array_equal(v, before[k]) for k, v in sess._state.variables.items())


@pytest.mark.parametrize("strided", [True, False], ids=["strided-operands", "stored-view"])
def test_a_product_reading_a_reshaped_variable_sees_its_old_value(strided, monkeypatch):
    """A matmul operand that is a reshape of a variable reads the variable's memory (no copy:
    a strided operand, or through stored()'s view of it where a target reads operands only
    dense). Fetched with the variable's update in one run, the product must see the value the
    run started from: the update may not then be written in place before the product reads it."""
    from graphc.backends.llvm import LLVMTarget
    monkeypatch.setattr(LLVMTarget, "strided_operands", strided)
    rng = np.random.default_rng(3)
    v = gc.Variable(rng.normal(size=(4, 64)).astype(np.float32), name="v")
    x = gc.placeholder(gc.float32, [16, 32], name="x")
    bump = v.assign(v * 2.0 + 1.0)
    # the product's other operand needs the new value, so the product runs after the update
    product = (x @ gc.reshape(bump, [32, 8])) @ gc.transpose(gc.reshape(v, [32, 8]))
    update = gc.group(bump)   # the new value is not fetched: it may be written in place
    xv = rng.normal(size=(16, 32)).astype(np.float32)
    runs = {}
    for backend in ("llvm", "numpy"):
        sess = gc.Session(backend=backend)
        sess.run(v.initializer)
        runs[backend] = [sess.run([update, product], {x: xv})[1], sess.run(v)]
    for got, want in zip(runs["llvm"], runs["numpy"]):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    listing = gc.debugprint([update, product], {x: xv}, level="kernels", backend="llvm", file=io.StringIO())
    # the reshape of the old value is not copied
    assert ("%1ᵀ(ld 8, at 0)" in listing) == strided and ("Reshape_1:0/view" in listing) != strided, listing
