"""Optimizer steps applied in place to blocks of the flat parameter vector.

The gradient of each element is formed on the fly in rank-1 form (see
:func:`update_rank1`), which covers per-sample SGD without a gradient buffer
and mini-batch steps on an accumulated gradient alike. The formulas are
scikit-learn's (SGD with momentum / Nesterov, Adam with bias correction folded
into the learning rate) plus RMSprop, Adagrad and Adadelta.

``hyper`` holds the optimizer constants in the parameters' dtype, indexed by
the ``H_*`` constants below.
"""

import math

import numpy as np

from ._jit import jit

SGD = 0
ADAM = 1
RMSPROP = 2
ADAGRAD = 3
ADADELTA = 4

OPTIMIZER_CODES = {
    "sgd": SGD,
    "adam": ADAM,
    "rmsprop": RMSPROP,
    "adagrad": ADAGRAD,
    "adadelta": ADADELTA,
}

H_MOMENTUM = 0
H_NESTEROV = 1
H_BETA_1 = 2
H_BETA_2 = 3
H_EPSILON = 4
H_RHO = 5
H_ONE_MINUS_BETA_1 = 6
H_ONE_MINUS_BETA_2 = 7
H_ONE_MINUS_RHO = 8
H_ALPHA = 9
H_TINY = 10
N_HYPER = 11


def make_hyper(
    momentum=0.9,
    nesterov=True,
    beta_1=0.9,
    beta_2=0.999,
    epsilon=1e-8,
    rho=0.9,
    alpha=0.0,
    tiny=2.2250738585072014e-308,
):
    """Optimizer constants as a list in ``H_*`` order (complements in float64).

    ``tiny`` is the smallest normal number of the parameters' dtype: optimizer
    state that decays below it (velocities and moments of dead units) is
    flushed to zero, since subnormal arithmetic is 10-100x slower on x86.
    """
    hyper = [0.0] * N_HYPER
    hyper[H_MOMENTUM] = momentum
    hyper[H_NESTEROV] = 1.0 if nesterov else 0.0
    hyper[H_BETA_1] = beta_1
    hyper[H_BETA_2] = beta_2
    hyper[H_EPSILON] = epsilon
    hyper[H_RHO] = rho
    hyper[H_ONE_MINUS_BETA_1] = 1.0 - beta_1
    hyper[H_ONE_MINUS_BETA_2] = 1.0 - beta_2
    hyper[H_ONE_MINUS_RHO] = 1.0 - rho
    hyper[H_ALPHA] = alpha
    hyper[H_TINY] = tiny
    return hyper


@jit(inline="always")
def flush(x, tiny):
    """``x``, or 0 where ``|x|`` is subnormal (NaN and inf unchanged)."""
    return x * 0 if abs(x) < tiny else x


@jit
def adam_learning_rate(learning_rate, beta_1, beta_2, t):
    """Adam's step size at step ``t`` with bias correction, as scikit-learn computes it."""
    tf = float(t)
    return learning_rate * math.sqrt(1.0 - beta_2**tf) / (1.0 - beta_1**tf)


@jit(fastmath={"reassoc"})
def update_rank1(opt, W, S1, S2, a, d, alpha, inv_weight, lr, hyper):
    """Apply one optimizer step in place to the 2-D block ``W``.

    The gradient is the rank-1 form of backprop,
    ``g[k, j] = (a[k] * d[j] + alpha * W[k, j]) * inv_weight``: for one sample
    ``a`` is the layer's input and ``d`` its delta; for a batch gradient ``G``
    already summed, pass ``W`` and ``G`` as ``(1, n)`` views and ``a = [1]``.

    Parameters
    ----------
    opt : int
        Optimizer code (``SGD``, ``ADAM``, ``RMSPROP``, ``ADAGRAD``, ``ADADELTA``).
    W, S1, S2 : ndarray of shape (m, n)
        Parameters and optimizer state (velocity; Adam's m and v;
        squared-gradient averages), views of one dtype.
    a : ndarray of shape (m,)
    d : ndarray of shape (n,)
    alpha, inv_weight : float
        L2 penalty and the inverse of the batch's sample-weight sum.
    lr : float
        Learning rate of this step (for Adam, the bias-corrected one).
    hyper : ndarray of shape (N_HYPER,)
        Optimizer constants in the parameters' dtype.

    Returns
    -------
    sq_norm : float
        Sum of the squares of the updated parameters (non-finite if any is).

    Notes
    -----
    Only the reduction ``sq_norm`` may be reassociated (``fastmath`` reassoc,
    so that the loops vectorize); every parameter update is computed exactly
    in scikit-learn's order, and NaN/inf keep their meaning.
    """
    m_rows, n = W.shape
    sq = alpha * 0
    tiny = hyper[H_TINY]
    if opt == SGD:
        mom = hyper[H_MOMENTUM]
        nesterov = hyper[H_NESTEROV] != 0
        for k in range(m_rows):
            ak = a[k]
            Wk = W[k]
            Vk = S1[k]
            if mom == 0:
                for j in range(n):
                    q = Wk[j] - lr * ((ak * d[j] + alpha * Wk[j]) * inv_weight)
                    Wk[j] = q
                    sq += q * q
            elif nesterov:
                for j in range(n):
                    g = (ak * d[j] + alpha * Wk[j]) * inv_weight
                    v = flush(mom * Vk[j] - lr * g, tiny)
                    Vk[j] = v
                    q = Wk[j] + (mom * v - lr * g)
                    Wk[j] = q
                    sq += q * q
            else:
                for j in range(n):
                    g = (ak * d[j] + alpha * Wk[j]) * inv_weight
                    v = flush(mom * Vk[j] - lr * g, tiny)
                    Vk[j] = v
                    q = Wk[j] + v
                    Wk[j] = q
                    sq += q * q
    elif opt == ADAM:
        b1 = hyper[H_BETA_1]
        b2 = hyper[H_BETA_2]
        c1 = hyper[H_ONE_MINUS_BETA_1]
        c2 = hyper[H_ONE_MINUS_BETA_2]
        eps = hyper[H_EPSILON]
        for k in range(m_rows):
            ak = a[k]
            Wk = W[k]
            Mk = S1[k]
            Vk = S2[k]
            for j in range(n):
                g = (ak * d[j] + alpha * Wk[j]) * inv_weight
                m = flush(b1 * Mk[j] + c1 * g, tiny)
                v = flush(b2 * Vk[j] + c2 * (g * g), tiny)
                Mk[j] = m
                Vk[j] = v
                q = Wk[j] + (-lr * m) / (np.sqrt(v) + eps)
                Wk[j] = q
                sq += q * q
    elif opt == RMSPROP or opt == ADAGRAD:
        one = alpha * 0 + 1
        rho = hyper[H_RHO] if opt == RMSPROP else one
        c = hyper[H_ONE_MINUS_RHO] if opt == RMSPROP else one
        eps = hyper[H_EPSILON]
        for k in range(m_rows):
            ak = a[k]
            Wk = W[k]
            Sk = S1[k]
            for j in range(n):
                g = (ak * d[j] + alpha * Wk[j]) * inv_weight
                s = flush(rho * Sk[j] + c * (g * g), tiny)
                Sk[j] = s
                q = Wk[j] - lr * g / (np.sqrt(s) + eps)
                Wk[j] = q
                sq += q * q
    else:  # ADADELTA
        rho = hyper[H_RHO]
        c = hyper[H_ONE_MINUS_RHO]
        eps = hyper[H_EPSILON]
        for k in range(m_rows):
            ak = a[k]
            Wk = W[k]
            Sk = S1[k]
            Uk = S2[k]
            for j in range(n):
                g = (ak * d[j] + alpha * Wk[j]) * inv_weight
                s = flush(rho * Sk[j] + c * (g * g), tiny)
                Sk[j] = s
                step = -np.sqrt(Uk[j] + eps) / np.sqrt(s + eps) * g
                Uk[j] = flush(rho * Uk[j] + c * (step * step), tiny)
                q = Wk[j] + lr * step
                Wk[j] = q
                sq += q * q
    return sq
