"""
==========================================
Decision boundaries of wider hidden layers
==========================================

One hidden layer of 1, 2, 4 and 32 ReLU units on two classic 2-D problems:
half moons and concentric circles. One unit draws a single line; every unit
adds a fold to the boundary, until it follows the shape of the data.
"""

import matplotlib.pyplot as plt
from sklearn.datasets import make_circles, make_moons
from sklearn.inspection import DecisionBoundaryDisplay
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from fastmlp import MLPClassifier

datasets = {
    "moons": make_moons(n_samples=300, noise=0.2, random_state=0),
    "circles": make_circles(n_samples=300, noise=0.1, factor=0.5, random_state=0),
}
widths = [1, 2, 4, 32]

fig, axes = plt.subplots(2, len(widths), figsize=(13, 6.5), constrained_layout=True)
for row, (name, (X, y)) in zip(axes, datasets.items()):
    for ax, width in zip(row, widths):
        model = make_pipeline(
            StandardScaler(),
            MLPClassifier(
                hidden_layer_sizes=(width,), solver="lbfgs", max_iter=1000, random_state=0
            ),
        ).fit(X, y)
        DecisionBoundaryDisplay.from_estimator(
            model, X, ax=ax, cmap="RdBu", alpha=0.4, response_method="predict_proba"
        )
        ax.scatter(*X.T, c=y, cmap="RdBu", s=10, edgecolor="k", linewidth=0.3)
        ax.set_title(f"{name}, {width} hidden unit{'s' * (width > 1)}: {model.score(X, y):.2f}")
        ax.set_xticks([])
        ax.set_yticks([])
plt.show()
