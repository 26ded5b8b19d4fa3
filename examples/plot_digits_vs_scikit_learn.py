"""
===================================================
Per-sample SGD on the digits, beside scikit-learn
===================================================

The same estimator, parameters and data in both libraries: a 64-unit
``MLPClassifier`` trained by stochastic gradient descent, one update per
sample (``batch_size=1``), for 10 epochs. scikit-learn runs each sample's
step from Python; fastmlp runs each epoch as one compiled call. Same
``random_state``, so both start from the same weights and visit the samples in
the same order: the weights agree to rounding (the sums run in another order),
the times do not. (With a learning rate near the edge of stability, e.g.
0.01 here, the loss spikes and such last-bit differences can grow over the
epochs, in either library's favour.)
"""

import time
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier as SklearnMLPClassifier

from fastmlp import MLPClassifier

warnings.filterwarnings("ignore", category=ConvergenceWarning)  # a fixed number of epochs
X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X / 16.0, y, random_state=0, stratify=y)
params = dict(
    hidden_layer_sizes=(64,),
    solver="sgd",
    batch_size=1,
    learning_rate_init=0.005,
    max_iter=10,
    random_state=0,
)
MLPClassifier(**{**params, "max_iter": 1}).fit(
    X_train, y_train
)  # load or compile the kernels first

results, models = {}, {}
for name, Estimator in [("scikit-learn", SklearnMLPClassifier), ("fastmlp", MLPClassifier)]:
    start = time.perf_counter()
    model = Estimator(**params).fit(X_train, y_train)
    results[name] = (time.perf_counter() - start, model.score(X_test, y_test))
    models[name] = model
    print(f"{name:12s} fit {results[name][0]:.2f} s, test accuracy {results[name][1]:.4f}")
difference = max(
    np.abs(a - b).max() for a, b in zip(models["scikit-learn"].coefs_, models["fastmlp"].coefs_)
)
print(f"largest difference between the two models' weights: {difference:.1e}")
speed_up = results["scikit-learn"][0] / results["fastmlp"][0]

fig, (times, scores) = plt.subplots(1, 2, figsize=(10, 3.8), constrained_layout=True)
names = list(results)
times.barh(names, [results[n][0] for n in names], color=["tab:gray", "tab:green"])
times.set(xlabel="fit time (s)", title=f"10 per-sample epochs: {speed_up:.0f}x faster")
scores.barh(names, [results[n][1] for n in names], color=["tab:gray", "tab:green"])
scores.set(xlabel="test accuracy", xlim=(0.9, 1.0), title="Same accuracy")
plt.show()
