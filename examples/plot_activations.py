"""
=======================================
Activation functions and how they train
=======================================

fastmlp has scikit-learn's hidden activations (logistic, tanh, ReLU) and
five more: leaky ReLU, ELU, SELU, softplus and GELU. The curves on the left
come from the library itself: a network with one hidden unit of weight 1
and bias 0 hands back the activation through ``transform``, and its
derivative is taken by central differences. On the right, the same 64-unit
network trains on the digits with each activation.
"""

import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning

from fastmlp import MLPClassifier, MLPRegressor

warnings.filterwarnings("ignore", category=ConvergenceWarning)  # a fixed number of epochs
activations = ["logistic", "tanh", "relu", "leaky_relu", "elu", "selu", "softplus", "gelu"]
z = np.linspace(-4, 4, 401)[:, None]

fig, (curves, derivatives, training) = plt.subplots(
    1, 3, figsize=(15, 4.5), constrained_layout=True
)
X, y = load_digits(return_X_y=True)
X = X / 16.0
for name in activations:
    unit = MLPRegressor(hidden_layer_sizes=(1,), activation=name, max_iter=1).fit(z, z[:, 0])
    unit.coefs_[0][:] = 1.0  # the hidden unit computes activation(1 * z + 0)
    unit.intercepts_[0][:] = 0.0
    values = unit.transform(z)[:, 0]
    (line,) = curves.plot(z, values, label=name)
    derivatives.plot(z, np.gradient(values, z[:, 0]), color=line.get_color())
    model = MLPClassifier(
        hidden_layer_sizes=(64,),
        activation=name,
        batch_size=32,
        max_iter=30,
        tol=0.0,
        random_state=0,
    ).fit(X, y)
    training.plot(
        range(1, model.n_iter_ + 1), model.loss_curve_, color=line.get_color(), label=name
    )
curves.set(xlabel="z", ylabel="activation(z)", ylim=(-2, 4), title="Activations")
derivatives.set(xlabel="z", ylabel="derivative", ylim=(-0.2, 1.9), title="Their derivatives")
training.set(xlabel="epoch", ylabel="training loss", yscale="log", title="Digits, Adam, 64 units")
curves.legend()
plt.show()
