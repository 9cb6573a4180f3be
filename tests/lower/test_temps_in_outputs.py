"""Temporaries placed in an output's memory (graphc.lower.memory.plan_temps_in_outputs): the
CPU plan writes softmax's exponentials straight into the result and rescales them there; a
temporary that anything else reads, or that its reader reads at another index, keeps its own
memory; the CUDA plan never does it. Every case matches NumPy."""
import numpy as np
import pytest

import graphc as gc
from graphc.lower import lower_program, plan_memory
from graphc.lower.chains import row_chains
from graphc.passes import DEFAULT_PIPELINE, run_pipeline
from graphc.program.from_graph import build_program


def _plan(outputs, feeds, temps_in_outputs=True):
    graph = outputs[0].node.graph
    program = run_pipeline(build_program(graph, outputs, [(t, t.dtype, v.shape) for t, v in feeds.items()]),
                           DEFAULT_PIPELINE)
    return plan_memory(lower_program(program, blas=True), temps_in_outputs=temps_in_outputs)


def _aliased(kp):
    return [b for b in kp.buffers if b.kind == "temp" and b.alias_of is not None]


def _softmax_ref(a):
    e = np.exp(a - a.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_softmax_exponentials_live_in_the_result():
    x = gc.placeholder(gc.float32, [37, 300])
    a = np.random.default_rng(0).normal(size=(37, 300)).astype(np.float32) * 20
    y = gc.nn.softmax(x)
    kp = _plan([y], {x: a})
    (temp,) = _aliased(kp)
    assert temp.alias_of in kp.results and temp.shape == (37, 300)
    assert temp.offset is None and kp.workspace_bytes < temp.nbytes   # no workspace for it
    (chain,) = row_chains(kp)
    assert temp.id not in dict(chain.private)   # the chain still forms, without scratch for it
    got = gc.function([x], y, backend="llvm")(a)
    np.testing.assert_allclose(got, _softmax_ref(a), rtol=2e-6, atol=1e-9)
    np.testing.assert_allclose(gc.function([x], y, backend="numpy")(a), _softmax_ref(a), rtol=2e-6, atol=1e-9)


def test_cuda_plan_keeps_temporaries_on_chip():
    x = gc.placeholder(gc.float32, [8, 64])
    a = np.ones((8, 64), np.float32)
    assert not _aliased(_plan([gc.nn.softmax(x)], {x: a}, temps_in_outputs=False))


def test_a_temporary_read_twice_keeps_its_memory():
    x = gc.placeholder(gc.float32, [16, 40])
    a = np.random.default_rng(1).normal(size=(16, 40)).astype(np.float32)
    e = gc.exp(x - gc.reduce_max(x, axis=1, keepdims=True))
    s = gc.reduce_sum(e, axis=1, keepdims=True)
    outputs = [e * s, gc.reduce_sum(e, axis=0)]   # the column sums read the exponentials too
    kp = _plan(outputs, {x: a})
    assert sum(any(sl.buffer.shape == (16, 40) and sl.buffer.kind == "temp" for sl in k.slots)
               for k in kp.kernels) == 2
    assert not _aliased(kp)
    got = gc.function([x], outputs, backend="llvm")(a)
    ref_e = np.exp(a - a.max(axis=1, keepdims=True))
    np.testing.assert_allclose(got[0], ref_e * ref_e.sum(axis=1, keepdims=True), rtol=2e-6)
    np.testing.assert_allclose(got[1], ref_e.sum(axis=0), rtol=2e-6)


@pytest.mark.parametrize("backend", ["llvm", "numpy"])
def test_a_temporary_read_at_another_index_keeps_its_memory(backend):
    x = gc.placeholder(gc.float32, [24, 24])
    a = np.random.default_rng(2).normal(size=(24, 24)).astype(np.float32)
    e = gc.exp(x - gc.reduce_max(x, axis=1, keepdims=True))
    s = gc.reduce_sum(e, axis=1, keepdims=True)
    y = gc.transpose(e) / gc.transpose(s)     # the output's element (i, j) reads e[j, i]
    kp = _plan([y], {x: a})
    assert any(sl.buffer.kind == "temp" and sl.buffer.shape == (24, 24) for k in kp.kernels for sl in k.slots)
    assert not _aliased(kp)
    np.testing.assert_allclose(gc.function([x], y, backend=backend)(a), _softmax_ref(a).T, rtol=2e-6)


def test_log_softmax_and_training_step_agree_with_reference():
    """A training step whose loss goes through softmax cross-entropy, on both CPU paths."""
    x = gc.placeholder(gc.float32, [32, 12])
    labels = gc.placeholder(gc.int32, [32])
    w = gc.Variable(np.linspace(-1, 1, 12 * 10, dtype=np.float32).reshape(12, 10))
    logits = x @ w
    probs = gc.nn.softmax(logits)
    loss = gc.reduce_mean(gc.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))
    train = gc.train.GradientDescentOptimizer(0.5).minimize(loss)
    rng = np.random.default_rng(3)
    feed = {x: rng.normal(size=(32, 12)).astype(np.float32), labels: rng.integers(0, 10, 32).astype(np.int32)}
    results = {}
    for backend in ("llvm", "numpy"):
        sess = gc.Session(backend=backend)
        sess.run(gc.global_variables_initializer())
        for _ in range(3):
            sess.run(train, feed)
        results[backend] = sess.run([probs, loss], feed)
    np.testing.assert_allclose(results["llvm"][0], results["numpy"][0], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(results["llvm"][1], results["numpy"][1], rtol=1e-5)


def test_a_reshaped_product_is_computed_in_the_result():
    """A result that reshapes a product's C ([batch * tokens, d] back to [batch, tokens, d]):
    the product writes into the result's memory and the copy kernel is gone."""
    rng = np.random.default_rng(6)
    x = gc.placeholder(gc.float32, [48, 16])
    w = gc.constant(rng.normal(size=(16, 24)).astype(np.float32))
    y = gc.reshape(x @ w, [4, 12, 24])
    xv = rng.normal(size=(48, 16)).astype(np.float32)
    kp = _plan([y], {x: xv})
    (temp,) = _aliased(kp)
    assert temp.alias_of in kp.results and temp.shape == (48, 24)
    assert len(kp.kernels) == 1, kp.kernels   # the product alone
    got = gc.Session(backend="llvm").run(y, {x: xv})
    np.testing.assert_allclose(got, gc.Session(backend="numpy").run(y, {x: xv}), rtol=1e-5, atol=1e-5)
