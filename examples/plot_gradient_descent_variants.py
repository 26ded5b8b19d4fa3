"""
==================================================
Batch, mini-batch and stochastic gradient descent
==================================================

The three textbook forms of gradient descent differ only in how many samples
each step averages over: all of them (batch), a few (mini-batch), or one
(stochastic). fastmlp runs all three as compiled epochs:
``solver='sgd'`` with ``batch_size=n_samples``, ``32`` and ``1``.

Per epoch, stochastic descent takes ``n_samples`` steps where batch descent
takes one, so it falls fastest. Per second the picture changes: a step on one
sample cannot use matrix-matrix products. All three use the same learning
rate here; batch descent would need a much larger one to catch up. A
callback records the loss and the time after every epoch.
"""

import time
import warnings

import matplotlib.pyplot as plt
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning

from fastmlp import MLPClassifier

warnings.filterwarnings("ignore", category=ConvergenceWarning)  # a fixed number of epochs
X, y = load_digits(return_X_y=True)
X = X / 16.0
variants = {"batch (all 1797)": len(X), "mini-batch (32)": 32, "stochastic (1)": 1}


def make_model(batch_size, max_iter, callbacks=None):
    return MLPClassifier(
        hidden_layer_sizes=(64,),
        solver="sgd",
        momentum=0.0,  # plain gradient descent
        learning_rate_init=0.05,
        batch_size=batch_size,
        max_iter=max_iter,
        tol=0.0,  # run every epoch
        n_iter_no_change=1000,
        random_state=0,
        callbacks=callbacks,
    )


curves = {}
for name, batch_size in variants.items():
    make_model(batch_size, 1).fit(X, y)  # load or compile the kernels before timing
    record = {"seconds": [], "loss": []}
    start = time.perf_counter()

    def log(model, info, record=record, start=start):
        record["seconds"].append(time.perf_counter() - start)
        record["loss"].append(info["loss"])

    make_model(batch_size, 30, [log]).fit(X, y)
    curves[name] = record

fig, (by_epoch, by_time) = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
for name, record in curves.items():
    epochs = range(1, len(record["loss"]) + 1)
    by_epoch.plot(epochs, record["loss"], marker=".", label=name)
    by_time.plot(record["seconds"], record["loss"], marker=".", label=name)
by_epoch.set(xlabel="epoch", ylabel="training loss", yscale="log", title="Loss per epoch")
by_time.set(xlabel="seconds", ylabel="training loss", yscale="log", title="Loss per second")
by_epoch.legend()
plt.show()
