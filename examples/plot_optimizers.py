"""
=====================================
Optimizers on one problem
=====================================

Plain SGD, SGD with momentum and with Nesterov momentum, Adam (scikit-learn's
solvers), and RMSprop, Adagrad and Adadelta (fastmlp's additions) train the
same network from the same initial weights on the digits, in mini-batches
of 32. Each has its own learning rate, a usual value for it.
"""

import warnings

import matplotlib.pyplot as plt
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning

from fastmlp import MLPClassifier

warnings.filterwarnings("ignore", category=ConvergenceWarning)  # a fixed number of epochs
X, y = load_digits(return_X_y=True)
X = X / 16.0

optimizers = {
    "SGD": dict(solver="sgd", momentum=0.0, learning_rate_init=0.05),
    "momentum": dict(
        solver="sgd", momentum=0.9, nesterovs_momentum=False, learning_rate_init=0.05
    ),
    "Nesterov": dict(solver="sgd", momentum=0.9, learning_rate_init=0.05),
    "Adam": dict(solver="adam", learning_rate_init=0.001),
    "RMSprop": dict(solver="rmsprop", learning_rate_init=0.001),
    "Adagrad": dict(solver="adagrad", learning_rate_init=0.05),
    "Adadelta": dict(solver="adadelta", learning_rate_init=1.0),
}

fig, ax = plt.subplots(figsize=(8, 4.5), constrained_layout=True)
for name, options in optimizers.items():
    model = MLPClassifier(
        hidden_layer_sizes=(64,),
        batch_size=32,
        max_iter=40,
        tol=0.0,
        n_iter_no_change=1000,
        random_state=0,
        **options,
    ).fit(X, y)
    ax.plot(
        range(1, model.n_iter_ + 1),
        model.loss_curve_,
        label=f"{name} (lr {options['learning_rate_init']})",
    )
ax.set(xlabel="epoch", ylabel="training loss", yscale="log", title="Seven optimizers, one network")
ax.legend()
plt.show()
