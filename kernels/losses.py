"""Output losses fused with the output activation, and their gradient ``dL/dz``.

Each function works on one output row ``z`` (the pre-activation), overwrites it
with the output activation, writes ``delta = dL/dz`` and returns the row's loss
summed over outputs. All are computed from the logit, so they stay finite and
exact for ``|z|`` up to 1e4 and beyond: softmax cross-entropy through
log-sum-exp, binary cross-entropy through ``max(z, 0) - y z + log1p(exp(-|z|))``,
Poisson deviance through ``y log y - y z - y + exp(z)``. No probability clipping.

Huber loss (threshold ``loss_param``): ``r**2 / 2`` for ``|r| <= delta``, else
``delta * (|r| - delta / 2)``; its gradient is ``r`` clipped to ``+-delta``.

For the canonical pairs (softmax or logistic with log loss, identity with
squared error, exp with Poisson) ``delta = a - y``; squared and absolute error
also work with any other elementwise output activation.
"""

import math

from ._jit import jit
from .activations import (
    EXP,
    GELU,
    IDENTITY,
    LOGISTIC,
    SOFTMAX,
    activate_scalar,
    derivative_scalar,
    logistic,
)

SQUARED_ERROR = 0
LOG_LOSS = 1
ABSOLUTE_ERROR = 2
POISSON = 3
HUBER = 4

LOSS_CODES = {
    "squared_error": SQUARED_ERROR,
    "log_loss": LOG_LOSS,
    "absolute_error": ABSOLUTE_ERROR,
    "poisson": POISSON,
    "huber": HUBER,
}


@jit(inline="always")
def _xlogy(x, y):
    """``x * log(y)``, 0 where ``x == 0`` (as ``scipy.special.xlogy``)."""
    return 0.0 if x == 0 else x * math.log(y)


@jit
def output_loss_and_delta(z, y, delta, out_code, loss_code, act_param, loss_param):
    """Loss of one output row, its gradient with respect to ``z``, and the output.

    Parameters
    ----------
    z : ndarray of shape (n_outputs,)
        Pre-activation of the output layer; overwritten with the activation.
    y : ndarray of shape (n_outputs,)
        Target row (one-hot or 0/1 indicators for log loss).
    delta : ndarray of shape (n_outputs,)
        Receives ``dL/dz``.
    out_code, loss_code : int
        Output activation and loss codes.
    act_param : float
        Slope of leaky relu (when used as output activation).
    loss_param : float
        Threshold ``delta`` of the Huber loss (unused by the other losses).

    Returns
    -------
    loss : float
        Loss of the row, summed over outputs.
    """
    n = z.shape[0]
    loss = 0.0
    if loss_code == LOG_LOSS and out_code == SOFTMAX:
        m = z[0]
        for j in range(1, n):
            if z[j] > m:
                m = z[j]
        # one exp per output (kept in delta), then p = e / sum as scikit-learn's
        # softmax; the loss is taken from the log-sum-exp, not from log(p)
        total = 0.0
        for j in range(n):
            e = math.exp(z[j] - m)
            delta[j] = e
            total += e
        lse = m + math.log(total)
        for j in range(n):
            if y[j] != 0:
                loss += y[j] * (lse - z[j])
            p = delta[j] / total
            z[j] = p
            delta[j] = p - y[j]
        return loss
    if loss_code == LOG_LOSS:  # logistic output: binary / multilabel
        for j in range(n):
            zj = z[j]
            loss += max(zj, 0.0) - y[j] * zj + math.log1p(math.exp(-abs(zj)))
            p = logistic(zj)
            z[j] = p
            delta[j] = p - y[j]
        return loss
    if loss_code == POISSON:  # exp output
        for j in range(n):
            zj = z[j]
            p = math.exp(zj)
            loss += _xlogy(y[j], y[j]) - y[j] * zj - y[j] + p
            z[j] = p
            delta[j] = p - y[j]
        return loss
    for j in range(n):
        p = activate_scalar(z[j], out_code, act_param)
        z[j] = p
        r = p - y[j]
        if loss_code == SQUARED_ERROR:
            loss += 0.5 * r * r
            d = r
        elif loss_code == HUBER:
            if abs(r) <= loss_param:
                loss += 0.5 * r * r
                d = r
            else:
                loss += loss_param * (abs(r) - 0.5 * loss_param)
                d = loss_param if r > 0 else -loss_param
        else:
            loss += abs(r)
            d = 1.0 if r > 0 else (-1.0 if r < 0 else 0.0)
        if out_code != IDENTITY:
            d = d * derivative_scalar(p, out_code, act_param)
        delta[j] = d
    return loss


def is_supported_pair(out_code, loss_code):
    """Whether an output activation can be trained with a loss.

    Parameters
    ----------
    out_code : int
        Output activation code
        (:data:`~fastmlp.kernels.activations.ACTIVATION_CODES`).
    loss_code : int
        Loss code (:data:`LOSS_CODES`).

    Returns
    -------
    bool
    """
    if loss_code == LOG_LOSS:
        return out_code in (SOFTMAX, LOGISTIC)
    if loss_code == POISSON:
        return out_code == EXP
    return out_code not in (SOFTMAX, GELU)
