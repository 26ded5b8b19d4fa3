"""Plain-NumPy twins of the kernels: the reference every kernel test compares to.

Written from the textbook formulas and scikit-learn's ``neural_network/_base.py``
(derivatives from the layer output, ``delta = a - y`` for canonical pairs,
L2 term ``0.5 * alpha * ||W||^2 / sum(w)``).
"""

import numpy as np
from scipy.special import expit, log_softmax, softmax

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def _gelu_u(z):
    return np.sqrt(2 / np.pi) * (z + 0.044715 * z**3)


def activation(name, z, slope=0.01):
    z = np.asarray(z, dtype=np.float64)
    return {
        "identity": lambda: z,
        "logistic": lambda: expit(z),
        "tanh": lambda: np.tanh(z),
        "relu": lambda: np.maximum(z, 0),
        "leaky_relu": lambda: np.where(z > 0, z, slope * z),
        "elu": lambda: np.where(z > 0, z, np.expm1(np.minimum(z, 0))),
        "selu": lambda: SELU_SCALE * np.where(z > 0, z, SELU_ALPHA * np.expm1(np.minimum(z, 0))),
        "exp": lambda: np.exp(z),
        "softplus": lambda: np.logaddexp(0, z),
        "gelu": lambda: 0.5 * z * (1 + np.tanh(_gelu_u(z))),
        "softmax": lambda: softmax(z, axis=-1),
    }[name]()


def derivative_from_z(name, z, slope=0.01):
    """Derivative written from z (independent of the kernels' from-output form)."""
    z = np.asarray(z, dtype=np.float64)
    s = expit(z)
    return {
        "identity": lambda: np.ones_like(z),
        "logistic": lambda: s * (1 - s),
        "tanh": lambda: 1 - np.tanh(z) ** 2,
        "relu": lambda: (z > 0).astype(float),
        "leaky_relu": lambda: np.where(z > 0, 1.0, slope),
        "elu": lambda: np.where(z > 0, 1.0, np.exp(np.minimum(z, 0))),
        "selu": lambda: SELU_SCALE * np.where(z > 0, 1.0, SELU_ALPHA * np.exp(np.minimum(z, 0))),
        "exp": lambda: np.exp(z),
        "softplus": lambda: s,
        # d/dz 0.5 z (1 + tanh u) = 0.5 (1 + tanh u) + 0.5 z sech(u)^2 u'
        "gelu": lambda: (
            0.5 * (1 + np.tanh(_gelu_u(z)))
            + 0.5 * z / np.cosh(_gelu_u(z)) ** 2 * np.sqrt(2 / np.pi) * (1 + 3 * 0.044715 * z**2)
        ),
    }[name]()


def huber(r, delta):
    """Huber loss of the residuals ``r`` (elementwise)."""
    return np.where(np.abs(r) <= delta, 0.5 * r**2, delta * (np.abs(r) - 0.5 * delta))


def output_loss(loss, out, z, y, huber_delta=1.0):
    """Per-row loss summed over outputs, from the logits ``z`` (rows, outputs)."""
    if loss == "log_loss" and out == "softmax":
        return -(y * log_softmax(z, axis=1)).sum(axis=1)
    if loss == "log_loss":
        return (np.logaddexp(0, z) - y * z).sum(axis=1)
    if loss == "poisson":
        ylogy = np.where(y > 0, y * np.log(np.where(y > 0, y, 1)), 0)
        return (ylogy - y * z - y + np.exp(z)).sum(axis=1)
    a = activation(out, z)
    if loss == "squared_error":
        return 0.5 * ((a - y) ** 2).sum(axis=1)
    if loss == "huber":
        return huber(a - y, huber_delta).sum(axis=1)
    return np.abs(a - y).sum(axis=1)


def forward(X, coefs, intercepts, hidden, out, masks=None):
    """Activations of every layer (input first), output activation applied.

    ``masks[i]`` (rows, units), when given, multiplies hidden layer ``i``'s
    activations (inverted dropout: 0 or ``1 / (1 - rate)``).
    """
    acts = [np.asarray(X, dtype=np.float64)]
    zs = []
    for i, (W, b) in enumerate(zip(coefs, intercepts)):
        z = acts[-1] @ W + b
        zs.append(z)
        name = out if i == len(coefs) - 1 else hidden[i]
        a = activation(name, z)
        if masks is not None and i < len(coefs) - 1:
            a = a * masks[i]
        acts.append(a)
    return acts, zs


def loss_and_gradients(
    X,
    Y,
    coefs,
    intercepts,
    hidden,
    out,
    loss,
    alpha=0.0,
    sw=None,
    scale=1.0,
    masks=None,
    huber_delta=1.0,
):
    """scikit-learn's ``_backprop``, generalized to any supported loss/output pair,
    Huber loss and dropout masks (see :func:`forward`)."""
    n = X.shape[0]
    sw = np.ones(n) if sw is None else np.asarray(sw, dtype=np.float64)
    acts, zs = forward(X, coefs, intercepts, hidden, out, masks)
    row_loss = output_loss(loss, out, zs[-1], Y, huber_delta)
    total = scale * (sw * row_loss).sum() / sw.sum()
    total += 0.5 * alpha * sum((W**2).sum() for W in coefs) / sw.sum()
    a = acts[-1]
    if loss == "absolute_error":
        delta = np.sign(a - Y) * derivative_from_z(out, zs[-1])
    elif loss == "squared_error" and out != "identity":
        delta = (a - Y) * derivative_from_z(out, zs[-1])
    elif loss == "huber":
        delta = np.clip(a - Y, -huber_delta, huber_delta)
        if out != "identity":
            delta = delta * derivative_from_z(out, zs[-1])
    else:
        delta = a - Y
    delta = delta * sw[:, None]
    cg, ig = [None] * len(coefs), [None] * len(coefs)
    for i in range(len(coefs) - 1, -1, -1):
        cg[i] = (acts[i].T @ delta + alpha * coefs[i]) / sw.sum()
        ig[i] = delta.sum(axis=0) / sw.sum()
        if i:
            delta = (delta @ coefs[i].T) * derivative_from_z(hidden[i - 1], zs[i - 1])
            if masks is not None:
                delta = delta * masks[i - 1]
    return total, cg, ig


class Optimizer:
    """scikit-learn's SGD and Adam, plus RMSprop, Adagrad, Adadelta, on lists of arrays."""

    def __init__(
        self,
        name,
        params,
        lr,
        momentum=0.9,
        nesterov=True,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        rho=0.9,
    ):
        self.name, self.lr, self.momentum, self.nesterov = name, lr, momentum, nesterov
        self.beta_1, self.beta_2, self.epsilon, self.rho = beta_1, beta_2, epsilon, rho
        self.s1 = [np.zeros_like(p) for p in params]
        self.s2 = [np.zeros_like(p) for p in params]
        self.t = 0

    def step(self, params, grads):
        for i, (p, g) in enumerate(zip(params, grads)):
            if self.name == "sgd":
                v = self.momentum * self.s1[i] - self.lr * g
                self.s1[i] = v
                p += self.momentum * v - self.lr * g if self.nesterov else v
            elif self.name == "adam":
                if i == 0:
                    self.t += 1
                lr = self.lr * np.sqrt(1 - self.beta_2**self.t) / (1 - self.beta_1**self.t)
                self.s1[i] = self.beta_1 * self.s1[i] + (1 - self.beta_1) * g
                self.s2[i] = self.beta_2 * self.s2[i] + (1 - self.beta_2) * g**2
                p += -lr * self.s1[i] / (np.sqrt(self.s2[i]) + self.epsilon)
            elif self.name in ("rmsprop", "adagrad"):
                if self.name == "rmsprop":
                    self.s1[i] = self.rho * self.s1[i] + (1 - self.rho) * g**2
                else:
                    self.s1[i] = self.s1[i] + g**2
                p -= self.lr * g / (np.sqrt(self.s1[i]) + self.epsilon)
            else:
                self.s1[i] = self.rho * self.s1[i] + (1 - self.rho) * g**2
                upd = -np.sqrt(self.s2[i] + self.epsilon) / np.sqrt(self.s1[i] + self.epsilon) * g
                self.s2[i] = self.rho * self.s2[i] + (1 - self.rho) * upd**2
                p += self.lr * upd


def splitmix64(state):
    """The dropout stream, in pure Python ints: ``(uniform in [0, 1), new state)``."""
    mask = (1 << 64) - 1
    state = (state + 0x9E3779B97F4A7C15) & mask
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
    z ^= z >> 31
    return (z >> 11) / 2.0**53, state


def dropout_masks(state, rates, rows, widths):
    """Masks for ``rows`` rows, drawn in the kernels' order: layer by layer, then row
    by row, then unit by unit. Returns ``(masks, new state)``."""
    masks = []
    for rate, width in zip(rates, widths):
        m = np.ones((rows, width))
        if rate > 0:
            for r in range(rows):
                for j in range(width):
                    u, state = splitmix64(state)
                    m[r, j] = 0.0 if u < rate else 1.0 / (1.0 - rate)
        masks.append(m)
    return masks, state
