"""
========================================
A single neuron, XOR and a hidden layer
========================================

Rosenblatt's perceptron is one neuron with a step activation, trained by the
perceptron rule: on each mistake, ``w += lr * (y - y_hat) * x``. With a
sigmoid instead of the step it is logistic regression, which fastmlp trains
as ``MLPClassifier(hidden_layer_sizes=())``: a network with no hidden layer.

Either neuron draws one straight line, so it separates two blobs but not
XOR, whose classes sit on the two diagonals of a square. One hidden layer of two units
(a 2-2-1 network) bends the boundary and solves XOR.
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import make_blobs
from sklearn.inspection import DecisionBoundaryDisplay

from fastmlp import MLPClassifier

X_blobs, y_blobs = make_blobs(n_samples=200, centers=[(-2, -2), (2, 2)], random_state=0)

# %%
# The perceptron rule with a step activation, in NumPy
w, b = np.zeros(2), 0.0
for _ in range(10):  # epochs
    for x, target in zip(X_blobs, y_blobs):
        predicted = 1 if x @ w + b > 0 else 0  # step activation
        w += 0.1 * (target - predicted) * x
        b += 0.1 * (target - predicted)
print("perceptron (step) accuracy:", np.mean((X_blobs @ w + b > 0) == y_blobs))

# %%
# A sigmoid neuron trained by fastmlp, on the blobs and on XOR
sigmoid_neuron = MLPClassifier(hidden_layer_sizes=(), solver="lbfgs").fit(X_blobs, y_blobs)
print("sigmoid neuron accuracy on the blobs:", sigmoid_neuron.score(X_blobs, y_blobs))

# XOR: the four corners of the unit square (with some noise); the class is
# 1 where exactly one coordinate is 1
rng = np.random.RandomState(0)
corners = rng.randint(0, 2, size=(200, 2))
y_xor = corners[:, 0] ^ corners[:, 1]
X_xor = corners + rng.normal(scale=0.12, size=corners.shape)
neuron_on_xor = MLPClassifier(hidden_layer_sizes=(), solver="lbfgs").fit(X_xor, y_xor)
print("sigmoid neuron accuracy on XOR:", neuron_on_xor.score(X_xor, y_xor))

# %%
# A 2-2-1 network solves XOR
mlp_on_xor = MLPClassifier(
    hidden_layer_sizes=(2,), activation="tanh", solver="lbfgs", max_iter=2000, random_state=3
).fit(X_xor, y_xor)
print("2-2-1 network accuracy on XOR:", mlp_on_xor.score(X_xor, y_xor))

# %%
# The decision boundaries
fig, axes = plt.subplots(1, 3, figsize=(12, 4), constrained_layout=True)
grid = np.linspace(-5, 5, 2)
axes[0].scatter(*X_blobs.T, c=y_blobs, cmap="coolwarm", s=12, edgecolor="k", linewidth=0.3)
axes[0].plot(grid, -(w[0] * grid + b) / w[1], "k--", label="perceptron (step)")
coef, intercept = sigmoid_neuron.coefs_[0].ravel(), sigmoid_neuron.intercepts_[0][0]
axes[0].plot(grid, -(coef[0] * grid + intercept) / coef[1], "g-", label="sigmoid neuron")
axes[0].set(xlim=(-5, 5), ylim=(-5, 5), title="One neuron: linearly separable")
axes[0].legend(loc="lower right")
for ax, model, title in [
    (axes[1], neuron_on_xor, f"One neuron on XOR: {neuron_on_xor.score(X_xor, y_xor):.2f}"),
    (axes[2], mlp_on_xor, f"2-2-1 network on XOR: {mlp_on_xor.score(X_xor, y_xor):.2f}"),
]:
    DecisionBoundaryDisplay.from_estimator(model, X_xor, ax=ax, cmap="coolwarm", alpha=0.3)
    ax.scatter(*X_xor.T, c=y_xor, cmap="coolwarm", s=12, edgecolor="k", linewidth=0.3)
    ax.set_title(title)
plt.show()
