"""Activation functions and their derivatives, chosen by integer code.

Activations are applied in place to a 1-D buffer (a row, or a C-contiguous batch
seen flat); softmax works row by row on a 2-D view. Derivatives are computed
from the stored activation ``a`` (never from ``z``), so ``z`` need not be kept:
logistic ``a (1 - a)``, tanh ``1 - a**2``, relu ``a > 0``, leaky relu ``1`` or
``slope``, elu ``1`` or ``a + 1``, selu ``scale`` or ``a + scale * alpha``,
softplus ``1 - exp(-a)`` (the logistic of ``z``).
"""

import math

from ._jit import jit

IDENTITY = 0
LOGISTIC = 1
TANH = 2
RELU = 3
LEAKY_RELU = 4
ELU = 5
SELU = 6
SOFTMAX = 7
EXP = 8
SOFTPLUS = 9

ACTIVATION_CODES = {
    "identity": IDENTITY,
    "logistic": LOGISTIC,
    "tanh": TANH,
    "relu": RELU,
    "leaky_relu": LEAKY_RELU,
    "elu": ELU,
    "selu": SELU,
    "softmax": SOFTMAX,
    "exp": EXP,
    "softplus": SOFTPLUS,
}

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


@jit(inline="always")
def logistic(z):
    """Logistic sigmoid of a scalar, without overflow for large ``|z|``."""
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


@jit(inline="always")
def activate_scalar(z, code, param):
    """Value of elementwise activation ``code`` at ``z`` (``param``: leaky relu slope)."""
    if code == RELU:
        return z if (z > 0 or math.isnan(z)) else 0.0
    if code == IDENTITY:
        return z
    if code == LOGISTIC:
        return logistic(z)
    if code == TANH:
        return math.tanh(z)
    if code == LEAKY_RELU:
        return z if z > 0 else param * z
    if code == ELU:
        return z if z > 0 else math.expm1(z)
    if code == SELU:
        return SELU_SCALE * z if z > 0 else SELU_SCALE * SELU_ALPHA * math.expm1(z)
    if code == EXP:
        return math.exp(z)
    if code == SOFTPLUS:  # log(1 + e^z) without overflow
        return max(z, 0.0) + math.log1p(math.exp(-abs(z)))
    return math.nan


@jit(inline="always")
def derivative_scalar(a, code, param):
    """Derivative of activation ``code`` expressed through its output ``a``."""
    if code == RELU:
        return 1.0 if a > 0 else 0.0
    if code == IDENTITY:
        return 1.0
    if code == LOGISTIC:
        return a * (1.0 - a)
    if code == TANH:
        return 1.0 - a * a
    if code == LEAKY_RELU:
        return 1.0 if a > 0 else param
    if code == ELU:
        return 1.0 if a > 0 else a + 1.0
    if code == SELU:
        return SELU_SCALE if a > 0 else a + SELU_SCALE * SELU_ALPHA
    if code == EXP:
        return a
    if code == SOFTPLUS:
        return -math.expm1(-a)
    return math.nan


@jit
def softmax_rows(z):
    """Replace each row of the 2-D array ``z`` by its softmax (max-shifted)."""
    for r in range(z.shape[0]):
        row = z[r]
        m = row[0]
        for j in range(1, row.shape[0]):
            if row[j] > m:
                m = row[j]
        total = 0.0
        for j in range(row.shape[0]):
            e = math.exp(row[j] - m)
            row[j] = e
            total += e
        for j in range(row.shape[0]):
            row[j] = row[j] / total


@jit
def activate_inplace(z, code, param):
    """Apply elementwise activation ``code`` in place to the 1-D array ``z``.

    Softmax is row-wise and is applied by :func:`softmax_rows`; passing
    ``SOFTMAX`` here treats ``z`` as one row.
    """
    if code == IDENTITY:
        return
    if code == SOFTMAX:
        softmax_rows(z.reshape((1, z.shape[0])))
        return
    if code == RELU:
        for i in range(z.shape[0]):
            if z[i] < 0:
                z[i] = 0.0
        return
    for i in range(z.shape[0]):
        z[i] = activate_scalar(z[i], code, param)


@jit
def multiply_by_derivative(a, delta, code, param):
    """``delta *= act'(a)`` in place, for 1-D ``a`` and ``delta`` of equal length."""
    if code == IDENTITY:
        return
    if code == RELU:
        for i in range(a.shape[0]):
            if not a[i] > 0:
                delta[i] = 0.0
        return
    for i in range(a.shape[0]):
        delta[i] = delta[i] * derivative_scalar(a[i], code, param)


@jit
def activate_2d(z, code, param):
    """Apply activation ``code`` in place to the C-contiguous 2-D array ``z``."""
    if code == SOFTMAX:
        softmax_rows(z)
    else:
        activate_inplace(z.reshape(z.size), code, param)
