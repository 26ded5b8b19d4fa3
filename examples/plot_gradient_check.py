"""
==============================================
Checking gradients with finite differences
==============================================

Backpropagation is easy to get subtly wrong; the textbook check moves each
weight by :math:`\\pm\\varepsilon` and compares the central difference
:math:`(L(w + \\varepsilon) - L(w - \\varepsilon)) / 2\\varepsilon` with the
analytic gradient. :func:`fastmlp.gradient_check` does it for every
parameter and reports the relative error per layer: around 1e-7 or below,
the gradients agree.

To see it catch a bug, a network whose gradient forgets the L2 penalty's
term (``alpha * W``) goes through the same check.
"""

import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_iris
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import StandardScaler

from fastmlp import MLPClassifier, Network, gradient_check

warnings.filterwarnings("ignore", category=ConvergenceWarning)  # a few epochs are enough here
X, y = load_iris(return_X_y=True)
X = StandardScaler().fit_transform(X)
Y = np.eye(3)[y]  # one-hot targets for the Network

# %%
# A fitted estimator: backprop agrees with finite differences
model = MLPClassifier(hidden_layer_sizes=(8, 8), activation="tanh", max_iter=20, random_state=0)
model.fit(X, y)
report = gradient_check(model, X[:30], y[:30])
print("estimator, largest relative error:", report["max"])


# %%
# A network with a bug: the gradient misses the L2 term of its weights
class ForgetsL2(Network):
    def loss_and_flat_gradients(self, X, Y, alpha=0.0, sample_weight=None, loss_scale=1.0):
        loss, grads = super().loss_and_flat_gradients(X, Y, alpha, sample_weight, loss_scale)
        n_weights = sum(W.size for W in self.coefs_)  # weights come first in the flat vector
        grads[:n_weights] -= alpha * self.params[:n_weights] / len(X)
        return loss, grads


sizes = [4, 8, 8, 3]
options = dict(activation="tanh", output="softmax", loss="log_loss", random_state=0)
correct, buggy = Network(sizes, **options), ForgetsL2(sizes, **options)
reports = {
    "Network": gradient_check(correct, X[:30], Y[:30], alpha=1.0),
    "Network with the L2 bug": gradient_check(buggy, X[:30], Y[:30], alpha=1.0),
}
for name, r in reports.items():
    print(f"{name}: largest relative error {r['max']:.1e}")

fig, ax = plt.subplots(figsize=(8, 4), constrained_layout=True)
labels = [f"W{i + 1}" for i in range(3)] + [f"b{i + 1}" for i in range(3)]
position = np.arange(len(labels))
for shift, (name, r) in zip((-0.2, 0.2), reports.items()):
    ax.bar(position + shift, r["coefs"] + r["intercepts"], width=0.4, label=name)
ax.axhline(1e-7, color="k", linestyle=":", label="agreement (1e-7)")
ax.set_xticks(position, labels)
ax.set(yscale="log", ylabel="relative error", title="gradient_check per layer (alpha = 1)")
ax.legend()
plt.show()
