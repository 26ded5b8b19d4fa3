"""
=============================================
Regression of a noisy sine with three losses
=============================================

An ``MLPRegressor`` (identity output) fits a sine with noise and a few large
outliers. Squared error, scikit-learn's loss, is pulled toward the outliers;
absolute error fits the median and ignores them; Huber (``loss='huber'``) is
squared near zero and absolute beyond ``huber_delta``, so it keeps the
smooth fit and resists the outliers.
"""

import matplotlib.pyplot as plt
import numpy as np

from fastmlp import MLPRegressor

rng = np.random.RandomState(0)
X = np.sort(rng.uniform(-3, 3, size=(200, 1)), axis=0)
y = np.sin(X[:, 0]) + rng.normal(scale=0.1, size=200)
outliers = rng.choice(200, size=20, replace=False)
y[outliers] += rng.uniform(3, 6, size=20)  # pulled upward only

grid = np.linspace(-3, 3, 300)[:, None]
fig, ax = plt.subplots(figsize=(8, 4.5), constrained_layout=True)
ax.scatter(X[:, 0], y, s=10, color="gray", label="data (20 outliers above)")
ax.plot(grid, np.sin(grid), "k:", label="true sine")
for loss, color in [
    ("squared_error", "tab:red"),
    ("absolute_error", "tab:blue"),
    ("huber", "tab:green"),
]:
    model = MLPRegressor(
        hidden_layer_sizes=(32, 32),
        activation="tanh",
        loss=loss,
        huber_delta=0.3,
        learning_rate_init=0.01,
        max_iter=800,
        random_state=0,
    ).fit(X, y)
    error = np.mean(np.abs(model.predict(grid) - np.sin(grid[:, 0])))
    ax.plot(grid, model.predict(grid), color=color, label=f"{loss}: mean |error| {error:.2f}")
ax.set(xlabel="x", ylabel="y", title="MLPRegressor with three losses", ylim=(-2, 7))
ax.legend()
plt.show()
