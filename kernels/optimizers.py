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
from typing import NamedTuple

import numpy as np
from numba import prange

from ._jit import PRANGE_ONLY, jit, unliteral

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

# Reassociation lets the sum-of-squares reduction vectorize; it does not assume
# finite values. No "contract": LLVM fuses ``a * b + c`` into an FMA or not
# depending on how a function was compiled (freshly, or loaded from the on-disk
# cache, and what it was inlined into), so contraction made the bits depend on
# the state of the cache.
UPDATE_FASTMATH = {"reassoc"}


class Optimizer(NamedTuple):
    """An epoch's optimizer: which one, its learning rate, constants and state.

    Parameters
    ----------
    code : int
        Optimizer (:data:`OPTIMIZER_CODES`).
    learning_rate : float
        Learning rate of this epoch.
    hyper : ndarray of shape (N_HYPER,)
        Optimizer constants and ``alpha`` in the parameters' dtype
        (:func:`make_hyper`).
    state1 : ndarray of shape (n_params,)
        First optimizer state (velocities, first moments, ...); updated.
    state2 : ndarray of shape (n_params,)
        Second optimizer state (Adam, Adadelta); ``state1`` stands in for
        optimizers without one.
    step : ndarray of int64, shape (1,)
        Adam's step counter; advanced.
    """

    code: int
    learning_rate: float
    hyper: np.ndarray
    state1: np.ndarray
    state2: np.ndarray
    step: np.ndarray


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

    Parameters
    ----------
    momentum : float, default=0.9
        SGD's momentum.
    nesterov : bool, default=True
        Nesterov's momentum.
    beta_1, beta_2, epsilon : float
        Adam's constants (``epsilon`` is also RMSprop's, Adagrad's and
        Adadelta's).
    rho : float, default=0.9
        RMSprop's and Adadelta's decay.
    alpha : float, default=0.0
        L2 penalty.
    tiny : float
        The smallest normal number of the parameters' dtype: optimizer
        state that decays below it (velocities and moments of dead units) is
        flushed to zero, since subnormal arithmetic is 10-100x slower on x86.

    Returns
    -------
    hyper : list of float, of length N_HYPER
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
def zero_like(x):
    """0 in the float type of the finite scalar ``x``.

    ``x * 0`` would be float64 for a float32 ``x`` (Numba types ``int64``
    literals as int64, and float32 * int64 is float64), which silently turns
    float32 loops into float64 ones.

    Parameters
    ----------
    x : float32 or float64

    Returns
    -------
    float32 or float64
    """
    return x * np.float32(0)


@jit(inline="always")
def flush(x, tiny):
    """``x``, or 0 where ``|x|`` is subnormal (NaN and inf unchanged).

    Parameters
    ----------
    x : float
    tiny : float
        The smallest normal number of ``x``'s dtype.
    """
    return zero_like(x) if abs(x) < tiny else x


@jit
def adam_learning_rate(learning_rate, beta_1, beta_2, t):
    """Adam's step size at step ``t`` with bias correction, as scikit-learn computes it.

    Parameters
    ----------
    learning_rate : float
        ``learning_rate_init``.
    beta_1, beta_2 : float
        Adam's decay rates.
    t : int
        The step, from 1.

    Returns
    -------
    float
    """
    tf = float(t)
    return learning_rate * math.sqrt(1.0 - beta_2**tf) / (1.0 - beta_1**tf)


# SGD velocities are flushed every FLUSH_INTERVAL steps, not at every step
FLUSH_INTERVAL = 64


@jit
def velocity_flush_threshold(momentum, tiny):
    """Velocities below this magnitude are zeroed every ``FLUSH_INTERVAL`` steps.

    A velocity that only decays (``v <- momentum * v``: a dead unit, no L2
    term) falls by at most ``momentum ** FLUSH_INTERVAL`` between two flushes,
    so zeroing everything below ``tiny / momentum ** FLUSH_INTERVAL`` keeps it
    from ever going subnormal (subnormal arithmetic is 10-100x slower on x86,
    and with ``momentum > 0.5`` the smallest subnormal never rounds to zero).
    The factor is capped at ``2 ** 40``: a velocity that small cannot move a
    weight in either float type. With ``momentum = 0`` there are no velocities.

    Parameters
    ----------
    momentum : float
    tiny : float
        The smallest normal number of the velocities' dtype.

    Returns
    -------
    float
    """
    if momentum <= 0 or momentum >= 1:
        return tiny
    return tiny * min(momentum ** -float(FLUSH_INTERVAL), 2.0**40)


@jit
def flush_velocities(S, threshold):
    """Zero in place the elements of ``S`` whose magnitude is below ``threshold``.

    Parameters
    ----------
    S : ndarray, 1-D
        Velocities; updated.
    threshold : float
    """
    for i in range(S.shape[0]):
        if abs(S[i]) < threshold:
            S[i] = 0


@jit(fastmath=UPDATE_FASTMATH, internal=True)
def update_rank1_fused(
    opt, W, S1, S2, a, d, alpha, inv_weight, lr, hyper, x_next, out_next, k0, k1
):
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
    x_next : ndarray of shape (m,) or (0,)
        When not empty, the next sample's input: each updated
        row ``W[k]`` is added to ``out_next`` times ``x_next[k]`` while it is
        still in L1 cache, which gives ``out_next += x_next @ W_new`` without a
        second pass over ``W`` (zero inputs skipped, rows in order).
    out_next : ndarray of shape (n,) or (0,)
    k0, k1 : int
        The rows to update, ``W[k0:k1]`` (the whole block is ``0, m``): row
        blocks are independent, which lets threads share a layer.

    Returns
    -------
    sq_norm : float
        Sum of the squares of the updated parameters (non-finite if any is).

    Notes
    -----
    Compiled with ``fastmath`` reassoc only (see ``UPDATE_FASTMATH``): the
    sum of squares vectorizes, so the reported L2 term may differ from
    scikit-learn's in the last bits; NaN and inf keep their meaning, which
    the epoch loops rely on to stop.

    Optimizer state below ``hyper[H_TINY]`` is flushed to zero here, except
    SGD's velocities: the epoch loops flush those every ``FLUSH_INTERVAL``
    steps (:func:`flush_velocities`), which keeps the per-weight SGD loop to
    its arithmetic.
    """
    n = W.shape[1]
    fuse = x_next.shape[0] > 0
    zero = zero_like(alpha)
    sq = zero_like(alpha)
    alpha_w = alpha * inv_weight
    tiny = hyper[H_TINY]
    if opt == SGD:
        mom = hyper[H_MOMENTUM]
        nesterov = hyper[H_NESTEROV] != 0
        # SGD, the per-sample workhorse, is kept to the fewest operations per
        # weight: the learning rate is folded into the gradient's two terms
        # (``lg = lr * g``), velocities are flushed by flush_velocities every
        # FLUSH_INTERVAL steps rather than here, and the next sample's forward
        # is added inside the update loop (``xk * q``: one pass over the row
        # instead of two); each loop is written twice, with and without it
        law = lr * alpha_w
        for k in range(np.uint64(k0), np.uint64(k1)):
            lak = lr * (a[k] * inv_weight)
            xk = x_next[k] if fuse else zero
            if mom == 0:
                if xk != 0:
                    for j in range(n):
                        w = W[k, j]
                        q = w - (lak * d[j] + law * w)
                        W[k, j] = q
                        sq += q * q
                        out_next[j] += xk * q
                else:
                    for j in range(n):
                        w = W[k, j]
                        q = w - (lak * d[j] + law * w)
                        W[k, j] = q
                        sq += q * q
            elif nesterov:
                if xk != 0:
                    for j in range(n):
                        w = W[k, j]
                        lg = lak * d[j] + law * w
                        v = mom * S1[k, j] - lg
                        q = (w - lg) + mom * v
                        S1[k, j] = v
                        W[k, j] = q
                        sq += q * q
                        out_next[j] += xk * q
                else:
                    for j in range(n):
                        w = W[k, j]
                        lg = lak * d[j] + law * w
                        v = mom * S1[k, j] - lg
                        q = (w - lg) + mom * v
                        S1[k, j] = v
                        W[k, j] = q
                        sq += q * q
            else:
                if xk != 0:
                    for j in range(n):
                        w = W[k, j]
                        v = mom * S1[k, j] - (lak * d[j] + law * w)
                        q = w + v
                        S1[k, j] = v
                        W[k, j] = q
                        sq += q * q
                        out_next[j] += xk * q
                else:
                    for j in range(n):
                        w = W[k, j]
                        v = mom * S1[k, j] - (lak * d[j] + law * w)
                        q = w + v
                        S1[k, j] = v
                        W[k, j] = q
                        sq += q * q
    elif opt == ADAM:
        b1 = hyper[H_BETA_1]
        b2 = hyper[H_BETA_2]
        c1 = hyper[H_ONE_MINUS_BETA_1]
        c2 = hyper[H_ONE_MINUS_BETA_2]
        eps = hyper[H_EPSILON]
        for k in range(np.uint64(k0), np.uint64(k1)):
            ak = a[k] * inv_weight
            for j in range(n):
                w = W[k, j]
                g = ak * d[j] + alpha_w * w
                m = flush(b1 * S1[k, j] + c1 * g, tiny)
                v = flush(b2 * S2[k, j] + c2 * (g * g), tiny)
                S1[k, j] = m
                S2[k, j] = v
                q = w + (-lr * m) / (np.sqrt(v) + eps)
                W[k, j] = q
                sq += q * q
            # the next sample's forward, while W[k] is in L1 (written out, not
            # a helper: an inlined call would incref the arrays every row)
            xk = x_next[k] if fuse else zero
            if xk != 0:
                for j in range(n):
                    out_next[j] += xk * W[k, j]
    elif opt == RMSPROP or opt == ADAGRAD:
        one = zero_like(alpha) + np.float32(1)
        rho = hyper[H_RHO] if opt == RMSPROP else one
        c = hyper[H_ONE_MINUS_RHO] if opt == RMSPROP else one
        eps = hyper[H_EPSILON]
        for k in range(np.uint64(k0), np.uint64(k1)):
            ak = a[k] * inv_weight
            for j in range(n):
                w = W[k, j]
                g = ak * d[j] + alpha_w * w
                s = flush(rho * S1[k, j] + c * (g * g), tiny)
                S1[k, j] = s
                q = w - lr * g / (np.sqrt(s) + eps)
                W[k, j] = q
                sq += q * q
            # the next sample's forward, while W[k] is in L1 (written out, not
            # a helper: an inlined call would incref the arrays every row)
            xk = x_next[k] if fuse else zero
            if xk != 0:
                for j in range(n):
                    out_next[j] += xk * W[k, j]
    else:  # ADADELTA
        rho = hyper[H_RHO]
        c = hyper[H_ONE_MINUS_RHO]
        eps = hyper[H_EPSILON]
        for k in range(np.uint64(k0), np.uint64(k1)):
            ak = a[k] * inv_weight
            for j in range(n):
                w = W[k, j]
                g = ak * d[j] + alpha_w * w
                s = flush(rho * S1[k, j] + c * (g * g), tiny)
                S1[k, j] = s
                step = -np.sqrt(S2[k, j] + eps) / np.sqrt(s + eps) * g
                S2[k, j] = flush(rho * S2[k, j] + c * (step * step), tiny)
                q = w + lr * step
                W[k, j] = q
                sq += q * q
            # the next sample's forward, while W[k] is in L1 (written out, not
            # a helper: an inlined call would incref the arrays every row)
            xk = x_next[k] if fuse else zero
            if xk != 0:
                for j in range(n):
                    out_next[j] += xk * W[k, j]
    return sq


@jit(fastmath=UPDATE_FASTMATH, inline="always")
def update_rank1(opt, W, S1, S2, a, d, alpha, inv_weight, lr, hyper):
    """:func:`update_rank1_fused` on the whole block, without the next
    sample's forward pass.

    Parameters
    ----------
    opt, W, S1, S2, a, d, alpha, inv_weight, lr, hyper
        As for :func:`update_rank1_fused`.

    Returns
    -------
    sq_norm : float
        Sum of the squares of the updated parameters.
    """
    return update_rank1_fused(
        opt, W, S1, S2, a, d, alpha, inv_weight, lr, hyper, a[:0], d[:0], unliteral(0),
        W.shape[0],
    )


ROW_BLOCKS = 8
# weights from which a layer is updated in blocks (a parallel region costs ~1.5 us)
BLOCKED_LAYER_SIZE = 32768


@jit(internal=True)
def update_layer(
    opt, W, S1, S2, a, d, alpha, inv_weight, lr, hyper, x_next, out_next, threaded,
    sq_parts, out_parts,
):
    """:func:`update_rank1_fused` on a whole layer, in ``ROW_BLOCKS`` blocks of rows.

    Layers of fewer than ``BLOCKED_LAYER_SIZE`` weights are one block. With
    ``threaded`` the blocks run on Numba's thread pool; ``threaded=None``
    compiles a version without the parallel region at all (Numba drops the
    branch: less to compile where threads are never used). Each block keeps its
    own sum of squares and its own part of ``out_next``, and the parts are
    added in block order, so the result is the same bit for bit whether
    threaded or not, and for any thread count.

    Parameters
    ----------
    opt, W, S1, S2, a, d, alpha, inv_weight, lr, hyper
        As for :func:`update_rank1_fused`.
    x_next : ndarray of shape (m,) or (0,)
        The next sample's input, or empty.
    out_next : ndarray of shape (n,) or (0,)
        Receives ``x_next @ W_new`` when ``x_next`` is not empty.
    threaded : bool or None
        Run the blocks on the thread pool; None compiles no parallel region.
    sq_parts : ndarray of shape (ROW_BLOCKS,)
        Scratch: each block's sum of squares.
    out_parts : ndarray of shape (ROW_BLOCKS, >= n)
        Scratch: each block's part of ``out_next``.

    Returns
    -------
    sq_norm : float
        Sum of the squares of the updated weights.
    """
    m_rows, n = W.shape
    fuse = x_next.shape[0] > 0
    if m_rows * n < BLOCKED_LAYER_SIZE:  # one block: straight through (the bits are the same)
        if fuse:
            out_next[:n] = 0
        return update_rank1_fused(
            opt, W, S1, S2, a, d, alpha, inv_weight, lr, hyper, x_next, out_next, unliteral(0),
            m_rows,
        )
    # blocks only where a layer is big enough for the threads to pay; the
    # count depends on the shape alone, never on the thread count
    n_blocks = min(ROW_BLOCKS, m_rows)
    if fuse:
        out_parts[:n_blocks, :n] = 0
    run_threaded = False
    if threaded is not None:
        run_threaded = threaded and n_blocks > 1
        if run_threaded:
            _update_blocks_threaded(
                opt, W, S1, S2, a, d, alpha, inv_weight, lr, hyper, x_next, n_blocks, sq_parts,
                out_parts,
            )
    if not run_threaded:
        for c in range(n_blocks):
            sq_parts[c] = update_rank1_fused(
                opt, W, S1, S2, a, d, alpha, inv_weight, lr, hyper, x_next, out_parts[c, :n],
                c * m_rows // n_blocks, (c + 1) * m_rows // n_blocks,
            )
    return sum_block_parts(sq_parts, out_parts, n_blocks, out_next if fuse else out_next[:0])


@jit(internal=True)
def sum_block_parts(sq_parts, out_parts, n_blocks, out_next):
    """The row blocks' results, added in block order (whatever thread ran them).

    Parameters
    ----------
    sq_parts : ndarray of shape (>= n_blocks,)
        Each block's sum of squares.
    out_parts : ndarray of shape (>= n_blocks, >= n)
        Each block's part of the next sample's forward pass.
    n_blocks : int
        The blocks.
    out_next : ndarray of shape (n,) or (0,)
        When not empty, receives the sum of the blocks' rows of ``out_parts``.

    Returns
    -------
    sq_norm : float
        The sum of ``sq_parts[:n_blocks]``.
    """
    sq = zero_like(sq_parts[0])
    for c in range(n_blocks):
        sq += sq_parts[c]
    n = out_next.shape[0]
    if n > 0:
        for j in range(n):
            out_next[j] = out_parts[0, j]
        for c in range(1, n_blocks):
            for j in range(n):
                out_next[j] += out_parts[c, j]
    return sq


@jit(parallel=PRANGE_ONLY, internal=True)
def _update_blocks_threaded(
    opt, W, S1, S2, a, d, alpha, inv_weight, lr, hyper, x_next, n_blocks, sq_parts, out_parts
):
    """:func:`update_layer`'s row blocks as tasks on the thread pool.

    Parameters as :func:`update_layer`'s, and ``n_blocks`` (int), the row
    blocks; each block's results go to ``sq_parts`` and ``out_parts``.
    """
    m_rows, n = W.shape
    for task in prange(n_blocks):
        c = np.int64(task)  # prange's index is unsigned: one compiled callee
        sq_parts[c] = update_rank1_fused(
            opt, W, S1, S2, a, d, alpha, inv_weight, lr, hyper, x_next, out_parts[c, :n],
            c * m_rows // n_blocks, (c + 1) * m_rows // n_blocks,
        )


@jit(inline="always")
def step_learning_rate(opt, lr, hyper, step, scratch):
    """Learning rate of the next step in the parameters' dtype; advances Adam's counter.

    Parameters
    ----------
    opt : int
        Optimizer code.
    lr : float
        The epoch's learning rate.
    hyper : ndarray of shape (N_HYPER,)
        Optimizer constants.
    step : ndarray of int64, shape (1,)
        Adam's step counter; advanced for Adam.
    scratch : ndarray of shape (1,)
        In the parameters' dtype: the value goes through it so that float32
        update loops stay float32 instead of promoting to float64.

    Returns
    -------
    float
        In the parameters' dtype.
    """
    if opt == ADAM:
        step[0] += 1
        lr = adam_learning_rate(lr, hyper[H_BETA_1], hyper[H_BETA_2], step[0])
    scratch[0] = lr
    return scratch[0]


@jit
def epoch_flush_threshold(opt, hyper, state1):
    """SGD with momentum: the velocity flush threshold, after flushing ``state1``
    once (each epoch starts flushed); 0 for the optimizers that flush at every
    step (or, plain SGD, keep no state).

    Parameters
    ----------
    opt : int
        Optimizer code.
    hyper : ndarray of shape (N_HYPER,)
        Optimizer constants.
    state1 : ndarray, 1-D
        SGD's velocities; flushed in place.

    Returns
    -------
    float
    """
    if opt != SGD or hyper[H_MOMENTUM] == 0:
        return 0.0
    threshold = velocity_flush_threshold(float(hyper[H_MOMENTUM]), float(hyper[H_TINY]))
    flush_velocities(state1, threshold)
    return threshold
