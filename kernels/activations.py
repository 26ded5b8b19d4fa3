"""Activation functions and their derivatives, chosen by integer code.

Activations are applied in place to a 1-D buffer (a row, or a C-contiguous batch
seen flat); softmax works row by row on a 2-D view. Derivatives are computed
from the stored activation ``a`` (never from ``z``), so ``z`` need not be kept:
logistic ``a (1 - a)``, tanh ``1 - a**2``, relu ``a > 0``, leaky relu ``1`` or
``slope``, elu ``1`` or ``a + 1``, selu ``scale`` or ``a + scale * alpha``,
softplus ``1 - exp(-a)`` (the logistic of ``z``).

GELU (tanh approximation) is the exception: its derivative is not a function
of its output, so in training :func:`activate_hidden` stores ``act'(z)`` in a
*gate* buffer while ``z`` is at hand. The gate also carries inverted dropout:
``gate = act'(z) * mask`` with ``mask`` 0 or ``1 / (1 - rate)``, and the
backward pass (:func:`backprop_activation`) multiplies the delta by it.
"""

import math

from ._jit import jit
from .rng import next_uniform

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
GELU = 10

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
    "gelu": GELU,
}

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946
GELU_C = 0.7978845608028654  # sqrt(2 / pi)
GELU_K = 0.044715


@jit(inline="always")
def logistic(z):
    """Logistic sigmoid of a scalar, without overflow for large ``|z|``.

    Parameters
    ----------
    z : float

    Returns
    -------
    float
    """
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


@jit(inline="always")
def activate_scalar(z, code, param):
    """Value of an elementwise activation at ``z``.

    Parameters
    ----------
    z : float
        The pre-activation.
    code : int
        Activation code (:data:`ACTIVATION_CODES`).
    param : float
        Slope of leaky relu for negative inputs (unused by the others).

    Returns
    -------
    float
        NaN for a code that is not elementwise (softmax).
    """
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
    if code == GELU:
        return 0.5 * z * (1.0 + math.tanh(GELU_C * (z + GELU_K * z * z * z)))
    return math.nan


@jit(inline="always")
def gelu_derivative(z):
    """Derivative of the tanh-approximated GELU at ``z``.

    Parameters
    ----------
    z : float
        The pre-activation.

    Returns
    -------
    float
    """
    t = math.tanh(GELU_C * (z + GELU_K * z * z * z))
    return 0.5 * (1.0 + t) + 0.5 * z * (1.0 - t * t) * GELU_C * (1.0 + 3.0 * GELU_K * z * z)


@jit(inline="always")
def derivative_scalar(a, code, param):
    """Derivative of an activation expressed through its output ``a``.

    Parameters
    ----------
    a : float
        The activation's output.
    code : int
        Activation code (:data:`ACTIVATION_CODES`).
    param : float
        Slope of leaky relu for negative inputs (unused by the others).

    Returns
    -------
    float
        NaN for GELU, whose derivative is not a function of its output.
    """
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
    return math.nan  # GELU: not a function of the output (see the module docstring)


@jit
def softmax_rows(z):
    """Replace each row of the 2-D array ``z`` by its softmax (max-shifted).

    Parameters
    ----------
    z : ndarray of shape (n, m)
        Pre-activations; overwritten.
    """
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

    Parameters
    ----------
    z : ndarray of shape (n,)
        Pre-activations; overwritten.
    code : int
        Activation code (:data:`ACTIVATION_CODES`).
    param : float
        Slope of leaky relu for negative inputs (unused by the others).
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
    """``delta *= act'(a)`` in place.

    Parameters
    ----------
    a : ndarray of shape (n,)
        The layer's activations.
    delta : ndarray of shape (n,)
        dL/da; becomes dL/dz.
    code : int
        Activation code (:data:`ACTIVATION_CODES`).
    param : float
        Slope of leaky relu for negative inputs (unused by the others).
    """
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
    """Apply an activation in place to a batch (softmax row by row).

    Parameters
    ----------
    z : ndarray of shape (n, m), C-contiguous
        Pre-activations; overwritten.
    code : int
        Activation code (:data:`ACTIVATION_CODES`).
    param : float
        Slope of leaky relu for negative inputs (unused by the others).
    """
    if code == SOFTMAX:
        softmax_rows(z)
    else:
        activate_inplace(z.reshape(z.size), code, param)


@jit(inline="always")
def uses_gate(gate, code, rate):
    """Whether a hidden layer's backward pass takes its derivative from the gate.

    Parameters
    ----------
    gate : ndarray of shape (n,) or (0,)
        The layer's gate buffer (empty at predict time).
    code : int
        The layer's activation code.
    rate : float
        The layer's dropout rate.

    Returns
    -------
    bool
    """
    return gate.shape[0] > 0 and (code == GELU or rate > 0)


@jit(inline="always")
def activate_hidden(z, gate, code, param, rate, rng_state):
    """Hidden activation in place for training, with inverted dropout.

    Parameters
    ----------
    z : ndarray of shape (n,)
        Pre-activations (a row, or a batch seen flat); overwritten with the
        (dropped-out) activations.
    gate : ndarray of shape (n,) or (0,)
        Receives ``act'(z) * mask`` when the layer needs it (GELU, or
        ``rate > 0``); empty at predict time, which gives the plain activation.
    code, param : int, float
        Activation code and leaky relu slope.
    rate : float
        Dropout rate in ``[0, 1)``: each unit is zeroed with probability
        ``rate`` and the kept ones are scaled by ``1 / (1 - rate)``.
    rng_state : ndarray of uint64, shape (1,)
        The dropout stream (:func:`fastmlp.kernels.rng.next_uniform`).
    """
    if not uses_gate(gate, code, rate):
        activate_inplace(z, code, param)
    else:
        activate_with_gate(z, gate, code, param, rate, rng_state)


# compiled once rather than inlined into every forward pass: Numba re-reads and
# copies an inlined body at each call site, and this one (every activation and
# its derivative) cost 0.3-0.9 s of a first fit's compile; it is one call per
# layer, not per element
@jit(internal=True)
def activate_with_gate(z, gate, code, param, rate, rng_state):
    """:func:`activate_hidden` for a layer that keeps a gate (GELU, or dropout).

    Parameters
    ----------
    z : ndarray of shape (n,)
        Pre-activations; overwritten with the (dropped-out) activations.
    gate : ndarray of shape (n,)
        Receives ``act'(z) * mask``.
    code, param : int, float
        Activation code and leaky relu slope.
    rate : float
        Dropout rate in ``[0, 1)`` (0: no dropout).
    rng_state : ndarray of uint64, shape (1,)
        The dropout stream; advanced once per unit when ``rate > 0``.
    """
    keep_scale = 1.0 / (1.0 - rate)
    for i in range(z.shape[0]):
        zi = z[i]
        a = activate_scalar(zi, code, param)
        g = gelu_derivative(zi) if code == GELU else derivative_scalar(a, code, param)
        if rate > 0:
            if next_uniform(rng_state) < rate:
                z[i] = 0.0
                gate[i] = 0.0
                continue
            a = a * keep_scale
            g = g * keep_scale
        z[i] = a
        gate[i] = g


@jit(inline="always")
def backprop_activation(a, gate, delta, code, param, rate):
    """``delta`` (dL/da) becomes dL/dz in place: times the gate when the
    layer stored one (see :func:`activate_hidden`), else times ``act'(a)``.

    Parameters
    ----------
    a : ndarray of shape (n,)
        The layer's activations.
    gate : ndarray of shape (n,) or (0,)
        The layer's gates, as :func:`activate_hidden` left them.
    delta : ndarray of shape (n,)
        dL/da; becomes dL/dz.
    code, param : int, float
        Activation code and leaky relu slope.
    rate : float
        The layer's dropout rate.
    """
    if uses_gate(gate, code, rate):
        for i in range(delta.shape[0]):
            delta[i] = delta[i] * gate[i]
    else:
        multiply_by_derivative(a, delta, code, param)
