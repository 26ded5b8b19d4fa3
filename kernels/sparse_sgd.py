"""SGD epochs on CSR input at a cost per step of O(non-zeros x width), not O(features x width).

With L2 (``alpha > 0``) or momentum, every weight of the first layer moves at
every step, even one whose input is zero in the whole batch: its data gradient
is zero, and its weight ``w`` and velocity ``v`` follow a linear recurrence,

    ``(w, v) <- M_t (w, v)``,

with ``c_t = lr_t * alpha / sum(batch weights)`` and ``m`` the momentum:

- plain SGD: ``w <- (1 - c) w`` (``v`` not used: ``M = [[1 - c, 0], [0, 1]]``);
- momentum: ``v <- m v - c w``, ``w <- w + v``: ``M = [[1 - c, m], [-c, m]]``;
- Nesterov: ``v <- m v - c w``, ``w <- (w - c w) + m v``:
  ``M = [[1 - c - m c, m^2], [-c, m]]``.

So a row of the first layer is left alone while its input is zero, and brought
up to date ("just in time") when a batch touches it, by the product of the
step matrices since it was last updated; then it takes its step from the data
gradient as the dense step would. The step matrices go into a segment tree
(``tree``: a product over any run of steps in O(log steps) 2x2 products,
without inverting anything: the products shrink like ``m ** steps`` and an
inverse would lose every digit). While every step has the same matrix (a
constant learning rate and full batches of equal weights: the usual case),
the products are its powers, kept in a table as the run grows (``powers``):
one lookup instead of a walk up the tree. Every ``SEGMENT_STEPS`` steps (which
bounds the tree) the rows touched so far are brought up to date and the
segment's product is kept as one matrix for the rows not touched yet in the
epoch, which all lag by the same steps. Every row is brought up to date at the
end of the epoch; so nothing outside the kernel ever sees a row that is behind.

An epoch that stops early (a non-finite loss or weights) is undone by the
kernel: before the epoch, the weights and velocities of the rows its data
reaches are copied (one pass along the first layer), and only those rows are
put back; the other rows were never written (not even by the velocity flush
that starts every epoch, which a row gets at its first touch instead). The
copy holds the rows the epoch's data reaches, not the whole first layer.

A wide first layer does not fit in cache, and a step is bound by how fast its
rows come from memory: the loops over the touched rows prefetch the rows a few
places ahead (``PREFETCH_AHEAD``), so that their cache misses overlap; and for a
layer partly held in the last-level cache (``PREFETCH_NEXT_BYTES``), the next
batch's rows are prefetched while this batch's rows take their step.

The L2 term of the loss needs ``sum(W0 ** 2)`` at every step. It is kept as
three running second moments of the first layer, ``sum(w^2)``, ``sum(w v)``
and ``sum(v^2)``, which a step matrix maps linearly; the rows a batch touches
are then corrected from their virtual (idle) contribution to their actual one.
They are recomputed exactly at every full catch-up.

Arguments as in :mod:`fastmlp.kernels.minibatch`.
"""

import numpy as np

from ._jit import jit, prefetch, unliteral
from .epoch import begin_epoch, end_step, loss_is_finite
from .optimizers import (
    H_ALPHA,
    H_MOMENTUM,
    H_NESTEROV,
    SGD,
    UPDATE_FASTMATH,
    step_learning_rate,
    update_rank1,
)
from .packing import batch_block, coef_sq_norm, layout, row_view, weight_view
from .passes import batch_loss_and_raw_gradients

# Steps between two full catch-ups of the first layer: the tree holds the step
# matrices of one such segment (2 * 65536 x 4 float64, 4 MB). A full catch-up
# costs one pass over the first layer, ~1/65536 of a dense step per step.
SEGMENT_STEPS = 65536


@jit(internal=True)
def _tree_reset(tree):
    """Every node of the step tree to the identity (no steps yet).

    Parameters
    ----------
    tree : ndarray of float64, shape (2 * capacity, 4)
        The segment's step tree (``capacity``: a power of two, at most
        ``SEGMENT_STEPS``): node ``r`` holds a 2x2 matrix, row-major.
    """
    for r in range(tree.shape[0]):
        tree[r, 0] = 1.0
        tree[r, 1] = 0.0
        tree[r, 2] = 0.0
        tree[r, 3] = 1.0


@jit(internal=True)
def _tree_push(tree, t, m00, m01, m10, m11):
    """Record step ``t`` (from 1) of the segment: its leaf, then the products above it.

    A node holds the product of its children's steps, the later one on the
    left. (Scalars and indices throughout, no row views: a view costs two
    atomic reference counts, more than the arithmetic here.)

    Parameters
    ----------
    tree : ndarray of float64, shape (2 * capacity, 4)
        The segment's step tree (``capacity``: a power of two, at most
        ``SEGMENT_STEPS``): node ``r`` holds a 2x2 matrix, row-major.
    t : int
        The step, from 1.
    m00, m01, m10, m11 : float
        Its matrix.
    """
    capacity = tree.shape[0] // 2
    node = capacity + t - 1
    tree[node, 0] = m00
    tree[node, 1] = m01
    tree[node, 2] = m10
    tree[node, 3] = m11
    node //= 2
    while node >= 1:
        a = 2 * node + 1  # the later child
        b = 2 * node
        tree[node, 0] = tree[a, 0] * tree[b, 0] + tree[a, 1] * tree[b, 2]
        tree[node, 1] = tree[a, 0] * tree[b, 1] + tree[a, 1] * tree[b, 3]
        tree[node, 2] = tree[a, 2] * tree[b, 0] + tree[a, 3] * tree[b, 2]
        tree[node, 3] = tree[a, 2] * tree[b, 1] + tree[a, 3] * tree[b, 3]
        node //= 2


@jit(internal=True)
def _tree_product(tree, s, t):
    """``M_t @ ... @ M_{s+1}``, the steps after step ``s`` up to step ``t``, as
    ``(p00, p01, p10, p11)`` (the identity when ``s == t``).

    Parameters
    ----------
    tree : ndarray of float64, shape (2 * capacity, 4)
        The segment's step tree (``capacity``: a power of two, at most
        ``SEGMENT_STEPS``): node ``r`` holds a 2x2 matrix, row-major.
    s, t : int
        The steps, ``0 <= s <= t``.
    """
    capacity = tree.shape[0] // 2
    if t == s + 1:  # the common case: a row touched at the previous step
        leaf = capacity + s
        return tree[leaf, 0], tree[leaf, 1], tree[leaf, 2], tree[leaf, 3]
    # nodes gathered from the left end (earlier steps) and from the right end
    l0, l1, l2, l3 = 1.0, 0.0, 0.0, 1.0
    r0, r1, r2, r3 = 1.0, 0.0, 0.0, 1.0
    lo = capacity + s
    hi = capacity + t
    while lo < hi:
        if lo & 1:  # later than everything gathered on the left: multiply on the left
            n0, n1, n2, n3 = tree[lo, 0], tree[lo, 1], tree[lo, 2], tree[lo, 3]
            l0, l1, l2, l3 = (
                n0 * l0 + n1 * l2, n0 * l1 + n1 * l3, n2 * l0 + n3 * l2, n2 * l1 + n3 * l3
            )
            lo += 1
        if hi & 1:  # earlier than everything gathered on the right: on the right
            hi -= 1
            n0, n1, n2, n3 = tree[hi, 0], tree[hi, 1], tree[hi, 2], tree[hi, 3]
            r0, r1, r2, r3 = (
                r0 * n0 + r1 * n2, r0 * n1 + r1 * n3, r2 * n0 + r3 * n2, r2 * n1 + r3 * n3
            )
        lo //= 2
        hi //= 2
    return r0 * l0 + r1 * l2, r0 * l1 + r1 * l3, r2 * l0 + r3 * l2, r2 * l1 + r3 * l3


@jit(inline="always")  # in the hot path: a call costs ~10% per-sample
def _steps_product(s, t, tree, powers, run_start):
    """The product of the steps after step ``s`` up to step ``t`` of the segment,
    as ``(p00, p01, p10, p11)``.

    When every one of them has had the same matrix (steps ``run_start`` on:
    the usual case, a constant learning rate and full batches of equal
    weights), it is ``powers[t - s]``; otherwise it comes from the tree.

    Parameters
    ----------
    s, t : int
        The steps, ``0 <= s <= t``.
    tree : ndarray of float64, shape (2 * capacity, 4)
        The segment's step tree.
    powers : ndarray of float64, shape (capacity + 1, 4)
        Powers of the step matrix shared by steps ``run_start`` on.
    run_start : int
        The first step of the current run of equal step matrices.
    """
    if s + 1 >= run_start:
        g = t - s
        return powers[g, 0], powers[g, 1], powers[g, 2], powers[g, 3]
    return _tree_product(tree, s, t)


@jit(inline="always")
def _product(a00, a01, a10, a11, b00, b01, b10, b11):
    """The 2x2 product ``A @ B``, as ``(p00, p01, p10, p11)``.

    Parameters
    ----------
    a00, a01, a10, a11, b00, b01, b10, b11 : float
        ``A`` and ``B``, row-major.
    """
    return (
        a00 * b00 + a01 * b10, a00 * b01 + a01 * b11, a10 * b00 + a11 * b10, a10 * b01 + a11 * b11
    )


@jit(inline="always")  # (as _steps_product)
def _apply_to_row(W0, V0, k, p00, p01, p10, p11, with_velocity):
    """``(w, v) <- P (w, v)`` on row ``k`` of the first layer (and its velocities).

    Parameters
    ----------
    W0, V0 : ndarray of shape (n_features, n_units)
        The first layer's weights and velocities; updated.
    k : int
        The row (an input column).
    p00, p01, p10, p11 : float
        ``P``, row-major.
    with_velocity : bool
        Whether there are velocities (momentum > 0).
    """
    n = W0.shape[1]
    if with_velocity:
        for j in range(n):
            w = np.float64(W0[k, j])
            v = np.float64(V0[k, j])
            W0[k, j] = p00 * w + p01 * v
            V0[k, j] = p10 * w + p11 * v
    else:
        for j in range(n):
            W0[k, j] = p00 * np.float64(W0[k, j])


@jit(internal=True)
def _catch_up_row(W0, V0, k, s, t, tree, powers, run_start, with_velocity):
    """Row ``k`` of the first layer (and its velocities), last brought up to
    date after step ``s`` of the segment, brought up to date after step ``t``.

    Parameters
    ----------
    W0, V0 : ndarray of shape (n_features, n_units)
        The first layer's weights and velocities; updated.
    k : int
        The row (an input column).
    s, t, tree, powers, run_start
        As for :func:`_steps_product`.
    with_velocity : bool
        Whether there are velocities (momentum > 0).
    """
    if s == t:
        return
    p00, p01, p10, p11 = _steps_product(s, t, tree, powers, run_start)
    _apply_to_row(W0, V0, k, p00, p01, p10, p11, with_velocity)


@jit(internal=True)
def _first_catch_up(W0, V0, k, t, tree, powers, run_start, with_velocity, before, flush_at):
    """Row ``k``, not touched yet in this epoch (as it was before the epoch),
    brought up to date after step ``t`` of the segment: its velocities flushed
    (as every epoch starts), then the product of the epoch's earlier segments
    (``before``) and of this one's steps so far applied.

    Parameters
    ----------
    W0, V0, k, tree, powers, run_start, with_velocity
        As for :func:`_catch_up_row`.
    t : int
        The segment's steps so far.
    before : ndarray of float64, shape (4,)
        The product of the epoch's earlier segments.
    flush_at : float
        The velocity flush threshold (0: none).
    """
    if flush_at > 0:
        for j in range(V0.shape[1]):
            if abs(V0[k, j]) < flush_at:
                V0[k, j] = 0
    b00, b01, b10, b11 = before[0], before[1], before[2], before[3]
    if t == 0:
        if b00 == 1.0 and b01 == 0.0 and b10 == 0.0 and b11 == 1.0:
            return  # the epoch's first step: nothing to catch up
    else:
        p00, p01, p10, p11 = _steps_product(0, t, tree, powers, run_start)
        b00, b01, b10, b11 = _product(p00, p01, p10, p11, b00, b01, b10, b11)
    _apply_to_row(W0, V0, k, b00, b01, b10, b11, with_velocity)


@jit(internal=True)
def _catch_up_all(W0, V0, last, t, tree, powers, run_start, with_velocity, before, flush_at):
    """Every row of the first layer brought up to date after step ``t`` of the
    segment (the epoch's end).

    Parameters
    ----------
    W0, V0 : ndarray of shape (n_features, n_units)
        The first layer's weights and velocities; updated.
    last : ndarray of int64, shape (n_features,)
        The step after which each row was last brought up to date in this
        segment (-1: not touched yet in the epoch); the touched rows' set
        to ``t``.
    t : int
        The segment's steps so far.
    tree, powers, run_start, with_velocity, before, flush_at
        As for :func:`_first_catch_up`.
    """
    for k in range(W0.shape[0]):
        if last[k] < 0:
            _first_catch_up(
                W0, V0, k, t, tree, powers, run_start, with_velocity, before, flush_at
            )
        else:
            _catch_up_row(W0, V0, k, last[k], t, tree, powers, run_start, with_velocity)
            last[k] = t


@jit(internal=True)
def _end_segment(W0, V0, last, logged, n_logged, t, tree, powers, run_start, with_velocity,
                 before):
    """The segment ends after step ``t``: the rows touched in this epoch are
    brought up to date, the segment's product joins ``before`` (that of the
    epoch's earlier segments, for the rows not touched yet), and the tree is
    emptied for the next segment.

    Parameters
    ----------
    W0, V0 : ndarray of shape (n_features, n_units)
        The first layer's weights and velocities; updated.
    last : ndarray of int64, shape (n_features,)
        As for :func:`_catch_up_all`; the touched rows' set to 0.
    logged : ndarray of int64
        The rows the epoch's data reaches (:func:`_copy_touched_rows`).
    n_logged : int
        How many.
    t : int
        The segment's last step.
    tree, powers, run_start, with_velocity
        As for :func:`_catch_up_row`.
    before : ndarray of float64, shape (4,)
        The product of the epoch's earlier segments; this one's joins it.
    """
    for q in range(n_logged):
        k = logged[q]
        if last[k] >= 0:
            _catch_up_row(W0, V0, k, last[k], t, tree, powers, run_start, with_velocity)
            last[k] = 0
    p00, p01, p10, p11 = _steps_product(0, t, tree, powers, run_start)
    before[0], before[1], before[2], before[3] = _product(
        p00, p01, p10, p11, before[0], before[1], before[2], before[3]
    )
    _tree_reset(tree)


@jit(internal=True)
def _undo_epoch(
    W0, V0, logged, n_logged, log_w, log_v, with_velocity, upper, saved_upper, upper_state,
    saved_state, rng_state, saved_rng,
):
    """The network put back as it was before the epoch: the first-layer rows
    its data reaches from their copy (the others were never written), the
    layers above (``upper``, ``upper_state``) and the dropout stream.

    Parameters
    ----------
    W0, V0 : ndarray of shape (n_features, n_units)
        The first layer's weights and velocities; restored.
    logged, n_logged, log_w, log_v
        The rows copied before the epoch and their copies
        (:func:`_copy_touched_rows`).
    with_velocity : bool
        Whether there are velocities (momentum > 0).
    upper, saved_upper : ndarray
        The parameters after the first layer's weights, and their copy.
    upper_state, saved_state : ndarray
        Their velocities, and their copy.
    rng_state : ndarray of uint64, shape (1,)
        The dropout stream; restored.
    saved_rng : uint64
        Its value before the epoch.
    """
    for q in range(n_logged):
        k = logged[q]
        for j in range(W0.shape[1]):
            W0[k, j] = log_w[q, j]
            if with_velocity:
                V0[k, j] = log_v[q, j]
    upper[:] = saved_upper
    upper_state[:] = saved_state
    rng_state[0] = saved_rng


@jit(fastmath=UPDATE_FASTMATH, internal=True)
def _exact_moments(W0, V0, with_velocity, flush_at, moments):
    """``moments = [sum(W0 ** 2), sum(W0 * V0), sum(V0 ** 2)]`` (float64), with
    the velocities below ``flush_at`` counted as the zeros they become.

    Parameters
    ----------
    W0, V0 : ndarray of shape (n_features, n_units)
        The first layer's weights and velocities.
    with_velocity : bool
        Whether there are velocities (momentum > 0).
    flush_at : float
        The velocity flush threshold (0: none).
    moments : ndarray of float64, shape (3,)
        Receives the three sums.
    """
    ww = 0.0
    wv = 0.0
    vv = 0.0
    for k in range(W0.shape[0]):
        for j in range(W0.shape[1]):
            w = np.float64(W0[k, j])
            ww += w * w
            if with_velocity:
                v = np.float64(V0[k, j])
                if abs(V0[k, j]) < flush_at:
                    v = 0.0
                wv += w * v
                vv += v * v
    moments[0] = ww
    moments[1] = wv
    moments[2] = vv


@jit(fastmath=UPDATE_FASTMATH, internal=True)
def _step_touched_row(
    W0, V0, k, g, one, alpha, inv_weight, lr, mom, nesterov, with_velocity, m00, m01, m10,
    m11, moments,
):
    """Row ``k``'s SGD step from its data gradient ``g``, with the arithmetic of
    :func:`~fastmlp.kernels.optimizers.update_rank1`; ``moments``, which
    counted the row as idle under the step ``M``, is corrected to its actual
    values (one pass over the row).

    Parameters
    ----------
    W0, V0 : ndarray of shape (n_features, n_units)
        The first layer's weights and velocities; updated.
    k : int
        The row (an input column).
    g : ndarray of shape (n_units,)
        The row's data gradient (unscaled).
    one : float
        1 in the parameters' dtype.
    alpha, inv_weight, lr : float
        L2 penalty, inverse of the batch's weight sum, step's learning rate.
    mom : float
        Momentum.
    nesterov : bool
        Nesterov's momentum.
    with_velocity : bool
        Whether there are velocities (momentum > 0).
    m00, m01, m10, m11 : float
        The step's matrix, under which ``moments`` counted the row.
    moments : ndarray of float64, shape (3,)
        The first layer's running second moments; corrected.
    """
    lak = lr * (one * inv_weight)
    law = lr * (alpha * inv_weight)
    ww = 0.0
    wv = 0.0
    vv = 0.0
    for j in range(W0.shape[1]):
        w = W0[k, j]
        if with_velocity:
            v = V0[k, j]
            wi = m00 * np.float64(w) + m01 * np.float64(v)
            vi = m10 * np.float64(w) + m11 * np.float64(v)
            if nesterov:
                lg = lak * g[j] + law * w
                v = mom * v - lg
                q = (w - lg) + mom * v
            else:
                v = mom * v - (lak * g[j] + law * w)
                q = w + v
            V0[k, j] = v
            W0[k, j] = q
            qd = np.float64(q)
            vd = np.float64(v)
            ww += qd * qd - wi * wi
            wv += qd * vd - wi * vi
            vv += vd * vd - vi * vi
        else:
            wi = m00 * np.float64(w)
            q = w - (lak * g[j] + law * w)
            W0[k, j] = q
            qd = np.float64(q)
            ww += qd * qd - wi * wi
    moments[0] += ww
    moments[1] += wv
    moments[2] += vv


# Rows prefetched ahead of the one being worked on (a row of 64 float64 units
# and its velocities are 16 cache lines)
PREFETCH_AHEAD = 4
# First layers (weights alone) from which the next batch's rows are prefetched
# during this batch's step: a layer larger than the last-level cache but partly
# held in it (10^5 columns x 64 units: +5-10% in float64, +10-15% in float32).
# Smaller, the rows are in cache anyway (10^4 columns: -1% to -6%); larger,
# nearly every row comes from memory and the extra misses slow the step itself
# as much as they save (10^6 columns: 0 to -5%). asv_benchmarks/README.md.
PREFETCH_NEXT_BYTES = (1 << 24, 1 << 28)


@jit(inline="always")
def _prefetch_row(W0, V0, k, with_velocity):
    """Start loading row ``k`` of ``W0`` (and ``V0``) into cache, without waiting.

    Parameters
    ----------
    W0, V0 : ndarray of shape (n_features, n_units)
        The first layer's weights and velocities.
    k : int
        The row.
    with_velocity : bool
        Whether there are velocities (momentum > 0).
    """
    n = W0.shape[1]
    line = max(64 // W0.itemsize, 1)
    for j in range(0, n, line):
        prefetch(W0, k, j)
    if with_velocity:
        for j in range(0, n, line):
            prefetch(V0, k, j)


@jit(internal=True)
def _max_touched_rows(X_indptr, order, batch_size, n_features):
    """An upper bound on the first-layer rows a batch of ``order`` can touch.

    Parameters
    ----------
    X_indptr : ndarray of int64
        The CSR input's row pointers.
    order : ndarray of int64
        The epoch's rows, in order.
    batch_size : int
    n_features : int

    Returns
    -------
    int
    """
    n = order.shape[0]
    bound = 0
    for start in range(0, n, batch_size):
        count = 0
        for r in range(start, min(n, start + batch_size)):
            i = order[r]
            count += X_indptr[i + 1] - X_indptr[i]
        bound = max(bound, count)
    return min(bound, n_features)


@jit(internal=True)
def _copy_touched_rows(X_indices, X_indptr, order, marker, W0, V0, with_velocity, log_rows,
                       log_w, log_v):
    """Copy the first-layer rows that the rows ``order`` of X reach (weights and
    velocities) into the log, in column order; returns how many.

    One pass before the epoch, along the first layer: far cheaper than copying
    each row at its first touch inside the epoch, where the stores compete
    with the step's own cache misses.

    Parameters
    ----------
    X_indices, X_indptr : ndarray of int64
        The CSR input's column indices and row pointers.
    order : ndarray of int64
        The epoch's rows.
    marker : ndarray of int64, shape (n_features,)
        Scratch, all -1 on entry and on return.
    W0, V0 : ndarray of shape (n_features, n_units)
        The first layer's weights and velocities.
    with_velocity : bool
        Whether there are velocities (momentum > 0).
    log_rows : ndarray of int64
        Receives the rows copied, in column order.
    log_w, log_v : ndarray of shape (len(log_rows), n_units)
        Receive their weights and velocities.

    Returns
    -------
    n_logged : int

    Raises
    ------
    ValueError
        When ``log_rows`` is too short.
    """
    for r in range(order.shape[0]):
        i = order[r]
        for p in range(X_indptr[i], X_indptr[i + 1]):
            marker[X_indices[p]] = 0
    n_logged = 0
    for k in range(W0.shape[0]):
        if marker[k] < 0:
            continue
        marker[k] = -1
        if n_logged == log_rows.shape[0]:
            raise ValueError("sparse_sgd_epoch: log_rows holds fewer rows than the epoch touches")
        log_rows[n_logged] = k
        for j in range(W0.shape[1]):
            log_w[n_logged, j] = W0[k, j]
        if with_velocity:
            for j in range(W0.shape[1]):
                log_v[n_logged, j] = V0[k, j]
        n_logged += 1
    return n_logged


@jit
def sparse_sgd_epoch(
    X, Y, sample_weight, order, batch_size, params, spec, loss_scale, optimizer, work, info,
    outcome,
):
    """One SGD epoch (plain, momentum or Nesterov) on CSR input, with lazy first-layer rows.

    The same epoch as :func:`~fastmlp.kernels.minibatch.minibatch_epoch`
    (``batch_size > 1``) or :func:`~fastmlp.kernels.per_sample.sgd_epoch`
    (``batch_size = 1``: rows of weight 0 are skipped before their forward
    pass, as there) with ``opt = SGD``, to rounding: rows of the first layer
    whose inputs are all zero in a batch are not touched then but caught up
    exactly later (see the module docstring). A step costs O(non-zeros of the
    batch x first-layer width + the upper layers), whatever the number of
    features; the loss reported is the same, its L2 term included.

    An epoch that stops early (a non-finite loss or weights) is undone here:
    the first-layer rows its data reaches are put back from a copy taken at
    the start, and so is the rest of the network; the other rows were never
    written. So no copy of the whole first layer is needed, only of the rows
    the epoch's data reaches.

    Parameters
    ----------
    X : tuple
        The input, ``(X_dense, X_data, X_indices, X_indptr, is_sparse)``
        (:mod:`fastmlp.kernels.passes`); CSR (``is_sparse`` true).
    Y : ndarray of shape (n_samples, n_outputs)
        Targets: one-hot for softmax, 0/1 for logistic, real otherwise.
    sample_weight : ndarray of shape (n_samples,)
        Weight of every row.
    order : ndarray of int64
        Rows to take, in this order (the epoch's shuffle).
    batch_size : int
        Rows per batch (the last batch may be shorter); 1 for per-sample SGD.
    params : ndarray of shape (n_params,)
        Weights then intercepts, packed (:mod:`fastmlp.kernels.packing`);
        updated in place.
    spec : NetworkSpec
        The network (:class:`~fastmlp.kernels.passes.NetworkSpec`); its
        dropout stream is advanced.
    loss_scale : float
        Factor on the data term of the reported loss (not on the gradient).
    optimizer : Optimizer
        SGD's learning rate, constants and velocities (``state1``; updated,
        not used with ``momentum = 0``), as
        :class:`~fastmlp.kernels.optimizers.Optimizer`; its ``code``,
        ``state2`` and ``step`` are not read.
    work : tuple of ndarray
        Work arrays ``(upper_grads, abuf, dbuf, gbuf, log_rows, log_values)``:

        - ``upper_grads``, shape ``(n_params - layer_sizes[0] * layer_sizes[1],)``:
          the gradients of everything but the first layer's weights;
        - ``abuf``, ``dbuf``, ``gbuf``: activations
          (:mod:`fastmlp.kernels.packing`), deltas and gates (GELU, dropout;
          empty when no layer needs them) for ``batch_size`` rows;
        - ``log_rows``, int64, shape ``(capacity,)``: the first-layer rows the
          epoch's data reaches; ``capacity`` at least the number of distinct
          columns of the rows in ``order`` (``min(n_features, non-zeros of
          X)`` always is);
        - ``log_values``, shape ``(2, capacity, layer_sizes[1])``: those rows'
          weights (``[0]``) and velocities (``[1]``; shape ``(1, ...)``
          without momentum) as they were before the epoch. Only its first
          rows are written: pages beyond take no memory.
    info : ndarray of int64, shape (2,)
        Receives the rows done and a status (:mod:`fastmlp.kernels.epoch`).
    outcome : ndarray of float64, shape (2,)
        Receives ``[total, 1]`` when the epoch has finished and kept its
        steps (``[0, 0]`` until then, and after an epoch undone), so that a
        caller interrupted as the call returns knows what happened.

    Returns
    -------
    total : float
        The sum over batches of ``batch_loss * batch_rows``.
    """
    X_dense, X_data, X_indices, X_indptr, is_sparse = X
    layer_sizes, rng_state = spec.layer_sizes, spec.rng_state
    lr, hyper, state1 = optimizer.learning_rate, optimizer.hyper, optimizer.state1
    upper_grads, abuf, dbuf, gbuf, log_rows, log_values = work
    w_off, b_off, unit_off = layout(layer_sizes)
    n = order.shape[0]
    n_in = layer_sizes[0]
    n_first = layer_sizes[1]
    size0 = n_in * n_first
    n_coef = b_off[0]
    n_params = params.shape[0]
    alpha = hyper[H_ALPHA]
    mom = np.float64(hyper[H_MOMENTUM])
    nesterov = hyper[H_NESTEROV] != 0
    with_velocity = mom != 0
    opt = unliteral(SGD)  # one compiled update loop, shared with the other epochs
    zero = alpha * np.float32(0)
    one = zero + np.float32(1)
    unit = np.ones(1, dtype=params.dtype)
    scratch = np.empty(1, dtype=params.dtype)
    step = np.zeros(1, dtype=np.int64)  # (Adam's counter: unused by SGD)
    W0 = weight_view(params, w_off, layer_sizes, 0)
    V0 = weight_view(state1, w_off, layer_sizes, 0)
    no_rows = np.empty((0, 0), dtype=params.dtype)

    outcome[0] = 0.0
    outcome[1] = 0.0
    upper_state = state1[size0:]  # flushed every FLUSH_INTERVAL steps; the first layer per epoch
    # to undo an epoch that stops early: the network above the first layer
    # here, the first layer's rows that the epoch reaches in the log below
    saved_params = params[size0:].copy()
    saved_state = upper_state.copy()
    saved_rng = rng_state[0]
    flush_at = begin_epoch(info, opt, hyper, upper_state)
    slot = np.full(n_in, -1, dtype=np.int64)  # a touched row's place in ``grad0``
    log_w = log_values[0]
    log_v = log_values[log_values.shape[0] - 1]
    n_logged = _copy_touched_rows(
        X_indices, X_indptr, order, slot, W0, V0, with_velocity, log_rows, log_w, log_v
    )
    n_batches = (n + batch_size - 1) // batch_size
    capacity = 1
    while capacity < min(max(n_batches, 1), SEGMENT_STEPS):
        capacity *= 2
    tree = np.empty((2 * capacity, 4))
    _tree_reset(tree)
    powers = np.empty((capacity + 1, 4))  # M^g for the run of equal steps
    run_start = 1  # the first step of that run
    run_c = -1.0
    before = np.array([1.0, 0.0, 0.0, 1.0])  # the epoch's earlier segments, for untouched rows
    moments = np.empty(3)
    _exact_moments(W0, V0, with_velocity, flush_at, moments)
    upper_sq = coef_sq_norm(params[size0:], n_coef - size0)
    # the segment step each row is at; -1: not touched yet in this epoch (as
    # before it, velocities not yet flushed)
    last = np.full(n_in, -1, dtype=np.int64)
    last_2d = last.reshape((n_in, 1))  # (for prefetch)
    max_touched = _max_touched_rows(X_indptr, order, batch_size, n_in)
    touched = np.empty(max_touched, dtype=np.int64)
    grad0 = np.empty((max_touched, n_first), dtype=params.dtype)
    upcoming = np.empty(max_touched, dtype=np.int64)
    layer_bytes = W0.shape[0] * W0.shape[1] * W0.itemsize
    prefetch_next = PREFETCH_NEXT_BYTES[0] <= layer_bytes < PREFETCH_NEXT_BYTES[1]

    t = 0  # steps done in this segment
    n_steps = 0
    total = 0.0
    for start in range(0, n, batch_size):
        nb = min(batch_size, n - start)
        if batch_size == 1 and sample_weight[order[start]] == 0:
            info[0] = start + 1
            continue
        # the rows this batch reads and steps, brought up to date first
        n_touched = 0
        for r in range(nb):
            i = order[start + r]
            for p in range(X_indptr[i], X_indptr[i + 1]):
                k = X_indices[p]
                if slot[k] < 0:
                    slot[k] = n_touched
                    touched[n_touched] = k
                    n_touched += 1
        # a wide first layer does not fit in cache: the rows a few places ahead
        # are prefetched (and the step each is at, further ahead), so that
        # their cache misses overlap instead of being waited on one by one
        for q in range(min(n_touched, 2 * PREFETCH_AHEAD)):
            prefetch(last_2d, touched[q], 0)
        for q in range(min(n_touched, PREFETCH_AHEAD)):
            _prefetch_row(W0, V0, touched[q], with_velocity)
        for q in range(n_touched):
            if q + 2 * PREFETCH_AHEAD < n_touched:
                prefetch(last_2d, touched[q + 2 * PREFETCH_AHEAD], 0)
            if q + PREFETCH_AHEAD < n_touched:
                _prefetch_row(W0, V0, touched[q + PREFETCH_AHEAD], with_velocity)
            k = touched[q]
            if last[k] < 0:  # its first touch in this epoch
                _first_catch_up(
                    W0, V0, k, t, tree, powers, run_start, with_velocity, before, flush_at
                )
            else:
                _catch_up_row(W0, V0, k, last[k], t, tree, powers, run_start, with_velocity)
            last[k] = t
        loss_sum, sw_sum = batch_loss_and_raw_gradients(
            X, Y, sample_weight, order, unliteral(False), start, nb, params, spec,
            (w_off, b_off, unit_off), batch_size, (abuf, dbuf, gbuf, no_rows), upper_grads, size0,
            unliteral(True),
        )
        sq = moments[0] + upper_sq
        if sw_sum == 0:  # a batch of zero-weight rows carries no gradient
            for q in range(n_touched):
                slot[touched[q]] = -1
            info[0] = start + nb
            continue
        batch_loss = loss_scale * loss_sum / sw_sum + 0.5 * alpha * sq / sw_sum
        if not loss_is_finite(info, batch_loss):
            _undo_epoch(
                W0, V0, log_rows, n_logged, log_w, log_v, with_velocity, params[size0:],
                saved_params, upper_state, saved_state, rng_state, saved_rng,
            )
            return total
        total += batch_loss * nb
        lr_t = step_learning_rate(opt, lr, hyper, step, scratch)
        inv = one / sw_sum
        # the first layer's gradient on the touched rows, summed in the order
        # of the dense step (passes.backward_batch)
        delta0 = batch_block(dbuf, batch_size, unit_off, layer_sizes, 1, nb)
        for q in range(n_touched):
            for j in range(n_first):
                grad0[q, j] = 0
        for r in range(nb):
            i = order[start + r]
            for p in range(X_indptr[i], X_indptr[i + 1]):
                q = slot[X_indices[p]]
                x = X_data[p]
                for j in range(n_first):
                    grad0[q, j] += x * delta0[r, j]
        # this step's matrix for the idle rows (c as the dense step forms it)
        scratch[0] = lr_t * (alpha * inv)
        c = np.float64(scratch[0])
        if not with_velocity:
            m00, m01, m10, m11 = 1.0 - c, 0.0, 0.0, 1.0
        elif nesterov:
            m00, m01, m10, m11 = 1.0 - c - mom * c, mom * mom, -c, mom
        else:
            m00, m01, m10, m11 = 1.0 - c, mom, -c, mom
        t += 1
        _tree_push(tree, t, m00, m01, m10, m11)
        if t == 1 or c != run_c:
            run_start = t
            run_c = c
            powers[0, 0] = 1.0
            powers[0, 1] = 0.0
            powers[0, 2] = 0.0
            powers[0, 3] = 1.0
        g = t - run_start + 1
        powers[g, 0] = m00 * powers[g - 1, 0] + m01 * powers[g - 1, 2]
        powers[g, 1] = m00 * powers[g - 1, 1] + m01 * powers[g - 1, 3]
        powers[g, 2] = m10 * powers[g - 1, 0] + m11 * powers[g - 1, 2]
        powers[g, 3] = m10 * powers[g - 1, 1] + m11 * powers[g - 1, 3]
        ww, wv, vv = moments[0], moments[1], moments[2]
        moments[0] = m00 * m00 * ww + 2.0 * m00 * m01 * wv + m01 * m01 * vv
        moments[1] = m00 * m10 * ww + (m00 * m11 + m01 * m10) * wv + m01 * m11 * vv
        moments[2] = m10 * m10 * ww + 2.0 * m10 * m11 * wv + m11 * m11 * vv
        # the touched rows: their step, and their moments from idle to actual
        mom_t = hyper[H_MOMENTUM]
        # the next batch's rows, fetched from memory while this batch's rows
        # (in cache by now) take their step: a wide layer only
        n_upcoming = 0
        if prefetch_next:
            for r in range(min(batch_size, n - start - nb)):
                i = order[start + nb + r]
                for p in range(X_indptr[i], X_indptr[i + 1]):
                    if n_upcoming < upcoming.shape[0]:
                        upcoming[n_upcoming] = X_indices[p]
                        n_upcoming += 1
        u = 0
        for q in range(min(n_touched, PREFETCH_AHEAD)):
            _prefetch_row(W0, V0, touched[q], with_velocity)
        for q in range(n_touched):
            if q + PREFETCH_AHEAD < n_touched:
                _prefetch_row(W0, V0, touched[q + PREFETCH_AHEAD], with_velocity)
            due = ((q + 1) * n_upcoming) // n_touched
            while u < due:
                prefetch(last_2d, upcoming[u], 0)
                _prefetch_row(W0, V0, upcoming[u], with_velocity)
                u += 1
            k = touched[q]
            _step_touched_row(
                W0, V0, k, grad0[q], unit[0], alpha, inv, lr_t, mom_t, nesterov, with_velocity,
                m00, m01, m10, m11, moments,
            )
            last[k] = t
            slot[k] = -1
        upper_sq = update_rank1(
            opt, row_view(params, size0, n_coef), row_view(state1, size0, n_coef),
            row_view(state1, size0, n_coef), unit, upper_grads[: n_coef - size0], alpha, inv,
            lr_t, hyper,
        )
        bsq = update_rank1(
            opt, row_view(params, n_coef, n_params), row_view(state1, n_coef, n_params),
            row_view(state1, n_coef, n_params), unit, upper_grads[n_coef - size0 :], zero,
            inv, lr_t, hyper,
        )
        n_steps += 1
        if t == capacity:
            _end_segment(
                W0, V0, last, log_rows, n_logged, t, tree, powers, run_start, with_velocity,
                before,
            )
            t = 0
        if not end_step(
            info, start + nb, moments[0] + upper_sq, bsq, n_steps, flush_at, upper_state
        ):
            _undo_epoch(
                W0, V0, log_rows, n_logged, log_w, log_v, with_velocity, params[size0:],
                saved_params, upper_state, saved_state, rng_state, saved_rng,
            )
            return total
    _catch_up_all(W0, V0, last, t, tree, powers, run_start, with_velocity, before, flush_at)
    outcome[0] = total
    outcome[1] = 1.0
    return total
