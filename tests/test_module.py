"""gc.Module: variables, layers and submodules found by attribute (also in lists), names from
the attributes, __call__ inside the module's scope (calling again reuses the variables), and a
module trained by an optimizer over its trainable_variables."""
from __future__ import annotations

import numpy as np

import graphc as gc

TESTED_OPS = {"MatMul", "Mul"}


class MLP(gc.Module):
    def __init__(self):
        super().__init__()
        self.hidden = [gc.layers.Dense(8, activation="relu"), gc.layers.Dense(8, activation="relu")]
        self.out = gc.layers.Dense(2)
        self.scale = gc.Variable(1.0, name="scale", trainable=False)

    def __call__(self, x):
        for layer in self.hidden:
            x = layer(x)
        return self.out(x) * self.scale


class Net(gc.Module):
    def __init__(self):
        super().__init__()
        self.encoder = MLP()
        self.head = gc.layers.Dense(1)

    def __call__(self, x):
        return self.head(self.encoder(x))


def test_variables_and_names_come_from_the_attributes():
    gc.set_random_seed(0)
    x = gc.placeholder(gc.float32, [None, 4])
    net = Net()
    y = net(x)
    y2 = net(x)                                          # a second call reuses every variable
    names = [v.op.name for v in net.variables]
    assert names == ["net/encoder/hidden_0/kernel", "net/encoder/hidden_0/bias", "net/encoder/hidden_1/kernel",
                     "net/encoder/hidden_1/bias", "net/encoder/out/kernel", "net/encoder/out/bias", "scale",
                     "net/head/kernel", "net/head/bias"]
    assert len(gc.global_variables()) == len(names)
    assert [m.name for m in net.submodules] == ["encoder"] and len(net.layers) == 4
    assert "scale" not in [v.op.name for v in net.trainable_variables]
    sess = gc.Session()
    sess.run(gc.global_variables_initializer())
    xv = np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32)
    a, b = sess.run([y, y2], {x: xv})
    np.testing.assert_array_equal(a, b)


def test_a_module_trains():
    gc.set_random_seed(1)
    x = gc.placeholder(gc.float32, [None, 4])
    t = gc.placeholder(gc.float32, [None, 1])
    net = Net()
    loss = gc.reduce_mean(gc.square(net(x) - t))
    step = gc.train.AdamOptimizer(0.01).minimize(loss, var_list=net.trainable_variables)
    rng = np.random.default_rng(2)
    xv = rng.normal(size=(64, 4)).astype(np.float32)
    tv = (xv @ np.array([[1.0], [-2.0], [0.5], [0.0]], np.float32))
    with gc.Session() as sess:
        sess.run(gc.global_variables_initializer())
        first = sess.run(loss, {x: xv, t: tv})
        for _ in range(300):
            sess.run(step, {x: xv, t: tv})
        assert sess.run(loss, {x: xv, t: tv}) < first / 10
