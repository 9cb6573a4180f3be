"""Build a small digits MLP (64-32-10), train it a little with graphc, and compile its forward
pass ahead of time into BUILD/mlp.h, BUILD/mlp.o and BUILD/libmlp.so (see Makefile)."""
import sys

import numpy as np

import graphc as gc
from graphc.demo import load_digits

build = sys.argv[1] if len(sys.argv) > 1 else "build"
images, labels = load_digits()
images = (images.reshape(len(images), 64) / 16.0).astype(np.float32)
x = gc.placeholder(gc.float32, [None, 64], name="x")
y = gc.placeholder(gc.int32, [None], name="y")
w1 = gc.Variable(gc.random_normal([64, 32], stddev=0.1, seed=1), name="w1")
b1 = gc.Variable(gc.zeros([32]), name="b1")
w2 = gc.Variable(gc.random_normal([32, 10], stddev=0.1, seed=2), name="w2")
logits = gc.identity(gc.nn.relu(x @ w1 + b1) @ w2, name="logits")
loss = gc.reduce_mean(gc.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))
train = gc.train.AdamOptimizer(0.01).minimize(loss)
with gc.Session() as sess:
    sess.run(gc.global_variables_initializer())
    for _ in range(200):
        sess.run(train, {x: images[:1024], y: labels[:1024].astype(np.int32)})
    lib = gc.aot.compile([gc.nn.softmax(logits, name="probs")], {x: (4, 64)}, build, "mlp", session=sess)
    images[1024:1028].tofile(f"{build}/digits.bin")   # four held-out digits for main.c
    print("labels of the four digits:", labels[1024:1028].tolist())
print("wrote", lib.header, lib.object, lib.shared)
