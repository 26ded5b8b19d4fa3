"""Mini-batch training epochs: one pass over the shuffled rows, a step per batch.

:func:`minibatch_epoch` takes each batch whole; :func:`minibatch_epoch_split`
splits each (dense) batch in two halves that can run on two threads. Arguments
as in :mod:`fastmlp.kernels.passes`; optimizer codes, hyper-parameters and
state as in :mod:`fastmlp.kernels.optimizers`.
"""


import numpy as np
from numba import prange

from ._jit import PRANGE_ONLY, jit, unliteral
from .blas import gemm_rows_at_b
from .epoch import begin_epoch, end_step, loss_is_finite
from .optimizers import (
    H_ALPHA,
    step_learning_rate,
    update_rank1,
    zero_like,
)
from .packing import (
    coef_sq_norm,
    layout,
    row_view,
)
from .passes import batch_loss_and_raw_gradients
from .thread_policy import begin_call, cycles, record_step, use_threads


@jit
def minibatch_epoch(
    X, Y, sample_weight, order, batch_size, params, spec, loss_scale, optimizer, work, info
):
    """One epoch of mini-batch training over ``order``, one optimizer step per batch.

    Batches are ``order[s:s + batch_size]`` (the last one possibly shorter), as
    scikit-learn's ``gen_batches``; each step uses the batch's gradient
    ``(A.T @ delta + alpha * W) / sum(w)``. A full-batch epoch is
    ``batch_size = len(order)``. SGD velocities are flushed as in
    :func:`sgd_epoch`, at the start and every ``FLUSH_INTERVAL`` steps.

    Returns the sum over batches of ``batch_loss * batch_rows`` (divide by the
    number of rows for scikit-learn's ``loss_``). ``optimizer.step[0]`` (Adam's step
    counter) is advanced. ``info[0]`` receives the number of rows done,
    ``info[1]`` a status: 0 ok, 1 a non-finite loss (stopped before updating),
    2 a step produced non-finite weights.

    Parameters
    ----------
    X : tuple
        The input, ``(X_dense, X_data, X_indices, X_indptr, is_sparse)``
        (:mod:`fastmlp.kernels.passes`).
    Y : ndarray of shape (n_samples, n_outputs)
        Targets: one-hot for softmax, 0/1 for logistic, real otherwise.
    sample_weight : ndarray of shape (n_samples,)
        Weight of every row.
    order : ndarray of int64
        Rows to take, in this order (the epoch's shuffle).
    batch_size : int
        Rows per batch (the last batch may be shorter).
    params : ndarray of shape (n_params,)
        Weights then intercepts, packed (:mod:`fastmlp.kernels.packing`);
        updated in place.
    spec : NetworkSpec
        The network (:class:`~fastmlp.kernels.passes.NetworkSpec`); its
        dropout stream is advanced.
    loss_scale : float
        Factor on the data term of the reported loss (not on the gradient).
    optimizer : Optimizer
        The optimizer, this epoch's learning rate, its constants and state
        (:class:`~fastmlp.kernels.optimizers.Optimizer`); the state is updated.
    work : tuple of ndarray
        Work arrays ``(grads, abuf, dbuf, gbuf, xbuf)``: the gradient, packed
        as ``params``; activations (:mod:`fastmlp.kernels.packing`), deltas
        and gates (GELU, dropout; empty when no layer needs them) laid out as
        the activations, for ``batch_size`` rows; the batch's gathered input
        rows.
    info : ndarray of int64, shape (2,)
        Receives the rows done and a status (:mod:`fastmlp.kernels.epoch`).
    """
    layer_sizes = spec.layer_sizes
    opt, lr, hyper, state1, state2, step = optimizer
    grads = work[0]
    offsets = layout(layer_sizes)
    n = order.shape[0]
    n_coef = offsets[1][0]
    alpha = hyper[H_ALPHA]
    zero = zero_like(alpha)
    one = zero + np.float32(1)
    n_params = params.shape[0]
    unit = np.ones(1, dtype=params.dtype)
    scratch = np.empty(1, dtype=params.dtype)
    sq = coef_sq_norm(params, n_coef)
    total = 0.0
    flush_at = begin_epoch(info, opt, hyper, state1)
    n_steps = 0
    for start in range(0, n, batch_size):
        nb = min(batch_size, n - start)
        loss_sum, sw_sum = batch_loss_and_raw_gradients(
            X, Y, sample_weight, order, unliteral(False), start, nb, params, spec, offsets,
            batch_size, work[1:], grads, unliteral(0), unliteral(False),
        )
        if sw_sum == 0:  # a batch of zero-weight rows carries no gradient
            info[0] = start + nb
            continue
        batch_loss = loss_scale * loss_sum / sw_sum + 0.5 * alpha * sq / sw_sum
        if not loss_is_finite(info, batch_loss):
            return total
        total += batch_loss * nb
        lr_t = step_learning_rate(opt, lr, hyper, step, scratch)
        inv = one / sw_sum
        sq = update_rank1(
            opt, row_view(params, 0, n_coef), row_view(state1, 0, n_coef),
            row_view(state2, 0, n_coef),
            unit, grads[:n_coef], alpha, inv, lr_t, hyper,
        )
        bsq = update_rank1(
            opt, row_view(params, n_coef, n_params), row_view(state1, n_coef, n_params),
            row_view(state2, n_coef, n_params), unit, grads[n_coef:], zero, inv, lr_t, hyper,
        )
        n_steps += 1
        if not end_step(info, start + nb, sq, bsq, n_steps, flush_at, state1):
            return total
    return total


@jit(internal=True)
def _split_half(
    h, X, Y, sample_weight, order, start, nb, params, spec, offsets, half_max, work, half_loss,
    half_weight,
):
    """Half ``h`` of the batch ``order[start:start + nb]`` (its first ``ceil(nb / 2)``
    rows, then the rest): forward pass, loss and backward pass on the half's
    row of each work array, every gradient but the first layer's into
    ``upper_grads[h]``; its loss and weight sums into ``half_loss[h]`` and
    ``half_weight[h]``.

    Parameters
    ----------
    h : int
        The half, 0 or 1.
    X, Y, sample_weight, order, params, spec, work
        As for :func:`minibatch_epoch_split` (``X`` as the input tuple).
    start, nb : int
        The batch: ``order[start:start + nb]``.
    offsets : tuple of ndarray
        The offsets of :func:`~fastmlp.kernels.packing.layout`.
    half_max : int
        The rows a half's work arrays hold, ``ceil(batch_size / 2)``.
    half_loss, half_weight : ndarray of shape (2,)
        Receive the half's loss and weight sums.
    """
    first_grad, upper_grads, abuf, dbuf, gbuf, xbuf, _ = work
    first = (nb + 1) // 2
    h_rows = first if h == 0 else nb - first
    if h_rows > 0:
        # the first layer's weight gradient is left out (formed by row blocks)
        result = batch_loss_and_raw_gradients(
            X, Y, sample_weight, order, unliteral(False), start + h * first, h_rows, params,
            spec, offsets, half_max, (abuf[h], dbuf[h], gbuf[h], xbuf[h]), upper_grads[h],
            first_grad.shape[0], unliteral(True),
        )
        half_loss[h] = result[0]
        half_weight[h] = result[1]
    else:
        half_loss[h] = 0.0
        half_weight[h] = 0.0


@jit(internal=True)
def _split_step_task(
    c, nb, params, layer_sizes, offsets, optimizer, lr_t, inv, half_max, work, gemm_scalars,
    unit, upper_sq,
):
    """Task ``c`` of a split batch's step. Task 0: the upper layers and every
    intercept (the halves' gradients added, then stepped; sums of squares into
    ``upper_sq``). Task ``c >= 1``: row block ``c - 1`` of the first layer, its
    gradient formed by one gemm per half and stepped at once (its sum of
    squares into ``sq_parts[c - 1]``).

    Parameters
    ----------
    c : int
        The task, from 0 to the number of the first layer's row blocks
        (``sq_parts.shape[0]``; ``sq_parts[c - 1]`` receives block ``c - 1``'s
        sum of squares).
    nb : int
        The batch's rows.
    params, optimizer, work
        As for :func:`minibatch_epoch_split` (the work arrays as
        :func:`_split_half` left them).
    layer_sizes : ndarray of int64
        As in :class:`~fastmlp.kernels.passes.NetworkSpec`.
    offsets : tuple of ndarray
        The offsets of :func:`~fastmlp.kernels.packing.layout`.
    lr_t, inv : float
        The step's learning rate and the inverse of the batch's weight sum.
    half_max : int
        The rows a half's work arrays hold.
    gemm_scalars : ndarray of shape (3,)
        ``[1, 0, 1]`` in the parameters' dtype
        (:func:`~fastmlp.kernels.blas.gemm_rows_at_b`).
    unit : ndarray of shape (1,)
        Holds 1 in the parameters' dtype.
    upper_sq : ndarray of shape (2,)
        Receives the upper layers' and the intercepts' sums of squares.
    """
    opt, _, hyper, state1, state2, _ = optimizer
    first_grad, upper_grads, _, dbuf, _, xbuf, sq_parts = work
    n_blocks = sq_parts.shape[0]
    n_in = layer_sizes[0]
    n_first = layer_sizes[1]
    unit_off = offsets[2]
    n_coef = offsets[1][0]
    alpha = hyper[H_ALPHA]
    n_params = params.shape[0]
    size0 = first_grad.shape[0]
    first = (nb + 1) // 2
    if c == 0:  # upper layers and every intercept: small, one task
        if nb > first:
            for i in range(upper_grads.shape[1]):
                upper_grads[0, i] += upper_grads[1, i]
        ug = upper_grads[0]
        upper_sq[0] = update_rank1(
            opt, row_view(params, size0, n_coef), row_view(state1, size0, n_coef),
            row_view(state2, size0, n_coef), unit, ug[: n_coef - size0], alpha, inv, lr_t, hyper,
        )
        upper_sq[1] = update_rank1(
            opt, row_view(params, n_coef, n_params), row_view(state1, n_coef, n_params),
            row_view(state2, n_coef, n_params), unit, ug[n_coef - size0 :], zero_like(alpha), inv,
            lr_t, hyper,
        )
    else:
        k0 = (c - 1) * n_in // n_blocks
        k1 = c * n_in // n_blocks
        for h in range(2):
            h_rows = first if h == 0 else nb - first
            if h_rows > 0:
                gemm_rows_at_b(
                    dbuf[h], half_max * unit_off[1], n_first, xbuf[h], k0, k1, n_in, h_rows,
                    first_grad, gemm_scalars, 1 if h == 0 else 2,
                )
            elif h == 0:
                for i in range(k0 * n_first, k1 * n_first):
                    first_grad[i] = 0
        i0 = k0 * n_first
        i1 = k1 * n_first
        sq_parts[c - 1] = update_rank1(
            opt, row_view(params, i0, i1), row_view(state1, i0, i1), row_view(state2, i0, i1),
            unit,
            first_grad[i0:i1], alpha, inv, lr_t, hyper,
        )


# The prange loops live in these two small functions, not in the epoch: Numba's
# parallel pipeline and parfor lowering cost grow with the size of the function
# that holds the loop. The loop index is passed on as int64 (prange's is
# unsigned), so the serial and threaded callers share one compiled callee.
@jit(parallel=PRANGE_ONLY, internal=True)
def _split_halves_threaded(
    X, Y, sample_weight, order, start, nb, params, spec, offsets, half_max, work, half_loss,
    half_weight,
):
    """Both :func:`_split_half` calls of a batch as two tasks on the thread pool.

    Parameters as :func:`_split_half`'s, without ``h``.
    """
    for h in prange(2):
        _split_half(
            np.int64(h), X, Y, sample_weight, order, start, nb, params, spec, offsets, half_max,
            work, half_loss, half_weight,
        )


@jit(parallel=PRANGE_ONLY, internal=True)
def _split_step_threaded(
    nb, params, layer_sizes, offsets, optimizer, lr_t, inv, half_max, work, gemm_scalars, unit,
    upper_sq,
):
    """Every :func:`_split_step_task` of a batch as tasks on the thread pool.

    Parameters as :func:`_split_step_task`'s, without ``c``.
    """
    for c in prange(work[6].shape[0] + 1):
        _split_step_task(
            np.int64(c), nb, params, layer_sizes, offsets, optimizer, lr_t, inv, half_max, work,
            gemm_scalars, unit, upper_sq,
        )


@jit
def minibatch_epoch_split(
    X_dense, Y, sample_weight, order, batch_size, params, spec, loss_scale, optimizer, work, info,
    policy,
):
    """:func:`minibatch_epoch` on dense X, each batch split in two halves.

    Each half (the batch's first ``ceil(nb / 2)`` rows, then the rest) goes
    through the forward pass, loss and backward pass with the gradients of
    every layer but the first (:func:`_split_half`). The first layer's
    gradient (the big one) is then formed in ``sq_parts.shape[0]`` row
    blocks, each ``X0[:, rows].T @ D0 + X1[:, rows].T @ D1`` by one BLAS call
    per half, and each block stepped at once while it is in cache; the upper
    layers and the intercepts are one more task (:func:`_split_step_task`).

    Per batch, ``policy`` (:mod:`fastmlp.kernels.thread_policy`) runs the two
    halves and then the step's tasks on Numba's thread pool, or the same
    work in the same order on this thread: the split depends on the shapes
    alone, so the results do not depend on the mode, the number of threads or
    the machine's load. They equal :func:`minibatch_epoch`'s up to rounding
    (the gradient is summed in two parts). BLAS is called from both threads:
    limit it to one thread for the call (its results also depend on its own
    thread count).

    Dropout must be off (its stream is drawn in row order). Returns, and
    fills ``info`` and ``optimizer.step``, as :func:`minibatch_epoch`.

    Parameters
    ----------
    X_dense : ndarray of shape (n_samples, n_features), C-contiguous
        Dense input; an empty placeholder when ``is_sparse``.
    Y : ndarray of shape (n_samples, n_outputs)
        Targets: one-hot for softmax, 0/1 for logistic, real otherwise.
    sample_weight : ndarray of shape (n_samples,)
        Weight of every row.
    order : ndarray of int64
        Rows to take, in this order (the epoch's shuffle).
    batch_size : int
        Rows per batch (the last batch may be shorter).
    params : ndarray of shape (n_params,)
        Weights then intercepts, packed (:mod:`fastmlp.kernels.packing`);
        updated in place.
    spec : NetworkSpec
        The network (:class:`~fastmlp.kernels.passes.NetworkSpec`); its
        dropout stream is advanced.
    loss_scale : float
        Factor on the data term of the reported loss (not on the gradient).
    optimizer : Optimizer
        The optimizer, this epoch's learning rate, its constants and state
        (:class:`~fastmlp.kernels.optimizers.Optimizer`); the state is updated.
    work : tuple of ndarray
        Work arrays ``(first_grad, upper_grads, abuf, dbuf, gbuf, xbuf,
        sq_parts)``:

        - ``first_grad``, shape ``(n_features * n_hidden1,)``: the first
          layer's weight gradient;
        - ``upper_grads``, shape ``(2, n_params - first_grad.size)``: each
          half's gradient of everything but the first layer's weights (the
          packed layout without them);
        - ``abuf``, ``dbuf``, ``gbuf``, shape ``(2, m)``: each half's
          activations, deltas and gates (empty rows when no layer needs
          them), as :func:`minibatch_epoch`'s for ``ceil(batch_size / 2)``
          rows;
        - ``xbuf``, shape ``(2, ceil(batch_size / 2), n_features)``: each
          half's gathered input rows;
        - ``sq_parts``, shape ``(n_blocks,)``: each first-layer row block's
          sum of squares.
    info : ndarray of int64, shape (2,)
        Receives the rows done and a status (:mod:`fastmlp.kernels.epoch`).
    policy : ndarray of float64 or None
        Thread policy of this kind of step (:mod:`fastmlp.kernels.thread_policy`);
        updated. None: never threaded, and Numba compiles a version without
        the parallel regions (less to compile: where threads cannot be used,
        or until the threaded version is worth compiling).
    """
    layer_sizes = spec.layer_sizes
    opt, lr, hyper, state1, _, step = optimizer
    sq_parts = work[6]
    offsets = layout(layer_sizes)
    n = order.shape[0]
    n_coef = offsets[1][0]
    half_max = (batch_size + 1) // 2
    n_blocks = sq_parts.shape[0]
    alpha = hyper[H_ALPHA]
    zero = zero_like(alpha)
    one = zero + np.float32(1)
    unit = np.ones(1, dtype=params.dtype)
    scratch = np.empty(1, dtype=params.dtype)
    gemm_scalars = np.array([1.0, 0.0, 1.0], dtype=params.dtype)  # alpha, beta 0, beta 1
    # the input tuple of the other kernels, CSR arrays empty: one compiled callee
    no_index = np.empty(0, dtype=np.int64)
    X = (X_dense, np.empty(0, dtype=params.dtype), no_index, no_index, unliteral(False))
    half_loss = np.zeros(2)
    half_weight = np.zeros(2)
    upper_sq = np.zeros(2)
    sq = coef_sq_norm(params, n_coef)
    total = 0.0
    flush_at = begin_epoch(info, opt, hyper, state1)
    n_steps = 0
    # (``policy is not None``: Numba compiles the threaded branches only then)
    if policy is not None:
        begin_call(policy, (n + batch_size - 1) // batch_size)
    for start in range(0, n, batch_size):
        nb = min(batch_size, n - start)
        threaded = False
        if policy is not None:
            threaded = use_threads(policy)
        started = cycles()
        if policy is not None:
            if threaded:
                _split_halves_threaded(
                    X, Y, sample_weight, order, start, nb, params, spec, offsets, half_max, work,
                    half_loss, half_weight,
                )
        if not threaded:
            for h in range(2):
                _split_half(
                    h, X, Y, sample_weight, order, start, nb, params, spec, offsets, half_max,
                    work, half_loss, half_weight,
                )
        loss_sum = half_loss[0] + half_loss[1]
        sw_sum = half_weight[0] + half_weight[1]
        if sw_sum == 0:  # a batch of zero-weight rows carries no gradient
            info[0] = start + nb
            continue
        batch_loss = loss_scale * loss_sum / sw_sum + 0.5 * alpha * sq / sw_sum
        if not loss_is_finite(info, batch_loss):
            return total
        total += batch_loss * nb
        lr_t = step_learning_rate(opt, lr, hyper, step, scratch)
        inv = one / sw_sum
        if policy is not None:
            if threaded:
                _split_step_threaded(
                    nb, params, layer_sizes, offsets, optimizer, lr_t, inv, half_max, work,
                    gemm_scalars, unit, upper_sq,
                )
        if not threaded:
            for c in range(n_blocks + 1):
                _split_step_task(
                    c, nb, params, layer_sizes, offsets, optimizer, lr_t, inv, half_max, work,
                    gemm_scalars, unit, upper_sq,
                )
        if policy is not None:
            record_step(policy, threaded, cycles() - started, nb)
        sq = upper_sq[0]
        for c in range(n_blocks):
            sq += sq_parts[c]
        bsq = upper_sq[1]
        n_steps += 1
        if not end_step(info, start + nb, sq, bsq, n_steps, flush_at, state1):
            return total
    return total
