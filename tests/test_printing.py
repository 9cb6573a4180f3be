"""gc.Print (TF1: an identity that prints data when computed, first_n, summarize) and gc.print
(tf.print: an op that prints when it runs, through control dependencies): the values printed
are the run's, on every backend, and a run that does not reach a print prints nothing."""
from __future__ import annotations

import io

import numpy as np
import pytest

import graphc as gc

TESTED_OPS = {"Identity", "NoOp"}


def test_print_shows_the_values_of_the_run(backend, capsys):
    with gc.Graph().as_default():
        x = gc.placeholder(gc.float32, [2, 4], name="x")
        doubled = gc.Print(x * 2.0, [gc.reduce_sum(x), x], message="sum, x: ", first_n=2, summarize=3)
        mean = gc.reduce_mean(doubled)
        other = gc.reduce_max(x)
        with gc.Session(backend=backend) as sess:
            values = [np.arange(8, dtype=np.float32).reshape(2, 4) + i for i in range(3)]
            got = [sess.run(mean, {x: v}) for v in values]
            assert sess.run(other, {x: values[0]}) == 7.0              # reaches no print
    np.testing.assert_allclose(got, [2 * v.mean() for v in values])   # the identity passes its input on
    assert capsys.readouterr().err.splitlines() == ["sum, x: [28.0][0.0 1.0 2.0...]",
                                                    "sum, x: [36.0][1.0 2.0 3.0...]"]   # first_n=2


def test_tf_print_runs_with_its_control_dependents(backend):
    out = io.StringIO()
    with gc.Graph().as_default():
        x = gc.placeholder(gc.float64, [3], name="x")
        w = gc.Variable(np.zeros(3), name="w")
        show = gc.print("w before:", w, "step", gc.reduce_sum(x), output_stream=out)
        with gc.control_dependencies([show]):
            step = w.assign_add(x)
        with gc.Session(backend=backend) as sess:
            sess.run(gc.global_variables_initializer())
            sess.run(step, {x: [1.0, 2.0, 3.0]})
            sess.run(step, {x: [1.0, 1.0, 1.0]})
            sess.run(show, {x: [0.5, 0.5, 0.5]})
    assert out.getvalue().splitlines() == ["w before: [0. 0. 0.] step 6.0", "w before: [1. 2. 3.] step 3.0",
                                           "w before: [2. 3. 4.] step 1.5"]


def test_summarize_and_the_function_api(capsys):
    with gc.Graph().as_default():
        x = gc.placeholder(gc.int32, [10], name="x")
        y = gc.Print(x, [x], "x=", summarize=-1) + 1
        f = gc.function([x], y)
        np.testing.assert_array_equal(f(np.arange(10, dtype=np.int32)), np.arange(1, 11))
    assert capsys.readouterr().err == "x=[0 1 2 3 4 5 6 7 8 9]\n"


def test_a_print_in_a_loop_body_is_refused():
    with gc.Graph().as_default():
        with pytest.raises(gc.GraphcError, match="inside a loop body.*not supported"):
            gc.while_loop(lambda i: i < 3, lambda i: gc.Print(i + 1, [i]), [gc.constant(0)])
