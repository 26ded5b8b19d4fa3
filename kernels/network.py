"""Whole-network kernels on a flat parameter vector.

Parameters are packed as scikit-learn's ``_pack`` does: every layer's weights
(row-major ``(fan_in, fan_out)``) one after another, then every layer's
intercepts. ``layer_sizes`` (int64) gives the width of every layer, inputs
first; ``act_codes`` (int64) has one activation per weight layer, the output
activation last.

Input ``X`` is either dense (``X_dense`` 2-D, C-contiguous) or CSR
(``X_data``, ``X_indices``, ``X_indptr``); ``is_sparse`` says which, the other
arrays being empty placeholders, so one compiled function serves both.

Activation buffers are flat: layer ``l`` (1..L) of a batch of ``nb`` rows lives
at ``buf[batch_max * unit_off[l]:][:nb * layer_sizes[l]]`` as a C-contiguous
``(nb, layer_sizes[l])`` block; the per-sample kernels use ``batch_max = 1``.
The gate buffer ``gbuf`` has the same layout (see
:func:`fastmlp.kernels.activations.activate_hidden`); it is empty when no hidden
layer needs it (no GELU, no dropout).

``drop_rates`` (float64) holds one dropout rate per hidden layer and
``rng_state`` (uint64[1]) the dropout stream; ``loss_param`` is the Huber
threshold.
"""

import math

import numpy as np
from numba import prange, set_parallel_chunksize

from .activations import activate_2d, activate_hidden, backprop_activation
from .dense import add_bias_rows, affine_csr_row, affine_vector
from .losses import output_loss_and_delta
from .blas import gemm_rows_at_b
from .optimizers import (
    ADAM,
    H_ALPHA,
    H_BETA_1,
    H_BETA_2,
    H_MOMENTUM,
    SGD,
    adam_learning_rate,
    BLOCKED_LAYER_SIZE,
    FLUSH_INTERVAL,
    H_TINY,
    ROW_BLOCKS,
    flush_velocities,
    sum_block_parts,
    update_layer,
    update_rank1,
    update_rank1_fused,
    velocity_flush_threshold,
    zero_like,
)
from ._jit import PRANGE_ONLY, jit, unliteral
from .threads import begin_call, cycles, record_step, use_threads

STATUS_OK = 0
STATUS_NONFINITE_LOSS = 1
STATUS_NONFINITE_WEIGHTS = 2


@jit
def layout(layer_sizes):
    """Offsets of each layer's weights, intercepts and units in the flat arrays.

    Returns
    -------
    w_off, b_off : ndarray of shape (n_layers - 1,)
        Start of each weight matrix / intercept vector in the parameter vector.
    unit_off : ndarray of shape (n_layers,)
        Start of each layer's units in an activation buffer (``unit_off[0]`` = 0
        is unused: the input is not copied); ``unit_off[-1]`` plus the last
        width is the buffer size per sample.
    """
    n_weight_layers = layer_sizes.shape[0] - 1
    w_off = np.empty(n_weight_layers, np.int64)
    b_off = np.empty(n_weight_layers, np.int64)
    unit_off = np.empty(n_weight_layers + 1, np.int64)
    pos = 0
    for l in range(n_weight_layers):
        w_off[l] = pos
        pos += layer_sizes[l] * layer_sizes[l + 1]
    for l in range(n_weight_layers):
        b_off[l] = pos
        pos += layer_sizes[l + 1]
    unit_off[0] = 0
    units = 0
    for l in range(1, n_weight_layers + 1):
        unit_off[l] = units
        units += layer_sizes[l]
    return w_off, b_off, unit_off


@jit
def coef_sq_norm(params, n_coef):
    """Sum of squares of the weights (the first ``n_coef`` parameters)."""
    sq = zero_like(params[0])
    for i in range(n_coef):
        sq += params[i] * params[i]
    return sq


@jit(inline="always")
def weight_view(params, w_off, layer_sizes, l):
    """Layer ``l``'s weights as a C-contiguous ``(fan_in, fan_out)`` view of ``params``."""
    fi = layer_sizes[l]
    fo = layer_sizes[l + 1]
    return params[w_off[l] : w_off[l] + fi * fo].reshape((fi, fo))


@jit(inline="always")
def bias_view(params, b_off, layer_sizes, l):
    """Layer ``l``'s intercepts as a view of ``params``."""
    return params[b_off[l] : b_off[l] + layer_sizes[l + 1]]


@jit(inline="always")
def _step_learning_rate(opt, lr, hyper, step, scratch):
    """Learning rate of the next step in the parameters' dtype; advances Adam's counter.

    The value goes through ``scratch`` (1 element, parameters' dtype) so that
    float32 update loops stay float32 instead of promoting to float64.
    """
    if opt == ADAM:
        step[0] += 1
        lr = adam_learning_rate(lr, hyper[H_BETA_1], hyper[H_BETA_2], step[0])
    scratch[0] = lr
    return scratch[0]


@jit
def _flush_threshold(opt, hyper, state1):
    """SGD with momentum: the velocity flush threshold, after flushing ``state1``
    once (each epoch starts flushed); 0 for the optimizers that flush at every
    step (or, plain SGD, keep no state)."""
    if opt != SGD or hyper[H_MOMENTUM] == 0:
        return 0.0
    threshold = velocity_flush_threshold(float(hyper[H_MOMENTUM]), float(hyper[H_TINY]))
    flush_velocities(state1, threshold)
    return threshold


@jit(inline="always")
def _row(flat, start, stop):
    return flat[start:stop].reshape((1, stop - start))


@jit(inline="always")
def _block(buf, batch_max, unit_off, layer_sizes, l, nb):
    start = batch_max * unit_off[l]
    return buf[start : start + nb * layer_sizes[l]].reshape((nb, layer_sizes[l]))


@jit(inline="always")
def _gate(gbuf, batch_max, unit_off, layer_sizes, l, nb):
    """Layer ``l``'s gates for ``nb`` rows, flat (empty when ``gbuf`` is)."""
    start = batch_max * unit_off[l]
    return gbuf[start : start + nb * layer_sizes[l]]


@jit
def _forward_batch(
    X_dense, X_data, X_indices, X_indptr, is_sparse, order, in_order, start, nb,
    params, layer_sizes, w_off, b_off, unit_off, batch_max, act_codes, act_param,
    drop_rates, rng_state, abuf, gbuf, xbuf,
):
    """Rows ``order[start:start + nb]`` through every layer; output left as ``z``.

    Hidden layers go through :func:`activate_hidden` (gates and dropout when
    ``gbuf`` is not empty). Dense rows are gathered into ``xbuf`` for the
    gemm, unless ``in_order`` (``order`` is ``arange``: the rows are a slice
    of ``X_dense`` already, and ``xbuf`` may be empty)."""
    n_weight_layers = layer_sizes.shape[0] - 1
    out = _block(abuf, batch_max, unit_off, layer_sizes, 1, nb)
    if is_sparse:
        for r in range(nb):
            i = order[start + r]
            affine_csr_row(
                X_data, X_indices, X_indptr[i], X_indptr[i + 1],
                weight_view(params, w_off, layer_sizes, 0), bias_view(params, b_off, layer_sizes, 0),
                out[r],
            )
    elif in_order:  # (two branches: a read-only X_dense has a type of its own)
        np.dot(X_dense[start : start + nb], weight_view(params, w_off, layer_sizes, 0), out)
        add_bias_rows(out, bias_view(params, b_off, layer_sizes, 0))
    else:
        # element loops, not ``xb[r] = X_dense[i]``: a slice assignment
        # compiles Numba's shape-mismatch message (about 1.5 s of a cold compile)
        xb = xbuf[:nb]
        n_in = X_dense.shape[1]
        for r in range(nb):
            i = order[start + r]
            for k in range(n_in):
                xb[r, k] = X_dense[i, k]
        np.dot(xb, weight_view(params, w_off, layer_sizes, 0), out)
        add_bias_rows(out, bias_view(params, b_off, layer_sizes, 0))
    for l in range(1, n_weight_layers):
        activate_hidden(
            out.reshape(out.size), _gate(gbuf, batch_max, unit_off, layer_sizes, l, nb),
            act_codes[l - 1], act_param, drop_rates[l - 1], rng_state,
        )
        nxt = _block(abuf, batch_max, unit_off, layer_sizes, l + 1, nb)
        np.dot(out, weight_view(params, w_off, layer_sizes, l), nxt)
        add_bias_rows(nxt, bias_view(params, b_off, layer_sizes, l))
        out = nxt
    return out


@jit
def _backward_batch(
    X_dense, X_data, X_indices, X_indptr, is_sparse, order, in_order, start, nb,
    params, layer_sizes, w_off, b_off, unit_off, batch_max, act_codes, act_param, drop_rates,
    abuf, dbuf, gbuf, xbuf, grads, goff, skip_first,
):
    """Unscaled gradients ``A.T @ delta`` and ``sum(delta)`` of every layer into
    ``grads``, from the output deltas already in ``dbuf``; no input gradient.

    Parameter ``i`` of the packed layout goes to ``grads[i - goff]``; with
    ``skip_first`` the first layer's weight gradient is left out (``goff``
    is then its size: ``grads`` holds the rest)."""
    n_weight_layers = layer_sizes.shape[0] - 1
    for l in range(n_weight_layers - 1, -1, -1):
        fi = layer_sizes[l]
        fo = layer_sizes[l + 1]
        delta = _block(dbuf, batch_max, unit_off, layer_sizes, l + 1, nb)
        g0 = w_off[l] - goff
        if l > 0:
            G = grads[g0 : g0 + fi * fo].reshape((fi, fo))
            prev = _block(abuf, batch_max, unit_off, layer_sizes, l, nb)
            np.dot(prev.T, delta, G)
        elif skip_first:
            pass
        elif is_sparse:
            G = grads[g0 : g0 + fi * fo].reshape((fi, fo))
            G[:] = 0
            for r in range(nb):
                i = order[start + r]
                for p in range(X_indptr[i], X_indptr[i + 1]):
                    Gk = G[X_indices[p]]
                    v = X_data[p]
                    for j in range(fo):
                        Gk[j] += v * delta[r, j]
        elif in_order:
            G = grads[g0 : g0 + fi * fo].reshape((fi, fo))
            np.dot(X_dense[start : start + nb].T, delta, G)
        else:
            G = grads[g0 : g0 + fi * fo].reshape((fi, fo))
            np.dot(xbuf[:nb].T, delta, G)
        gb = b_off[l] - goff
        for j in range(fo):
            grads[gb + j] = 0
        for r in range(nb):
            for j in range(fo):
                grads[gb + j] += delta[r, j]
        if l > 0:
            W = weight_view(params, w_off, layer_sizes, l)
            dprev = _block(dbuf, batch_max, unit_off, layer_sizes, l, nb)
            np.dot(delta, W.T, dprev)
            backprop_activation(
                prev.reshape(prev.size), _gate(gbuf, batch_max, unit_off, layer_sizes, l, nb),
                dprev.reshape(dprev.size), act_codes[l - 1], act_param, drop_rates[l - 1],
            )


@jit
def _batch_loss_and_raw_gradients(
    X_dense, X_data, X_indices, X_indptr, is_sparse, Y, sample_weight, order, in_order, start, nb,
    params, layer_sizes, w_off, b_off, unit_off, batch_max, act_codes, act_param, drop_rates,
    rng_state, loss_code, loss_param, abuf, dbuf, gbuf, xbuf, grads, goff, skip_first,
):
    """Forward, output loss and backward for one batch.

    Returns the weighted sum of the rows' losses and the sum of the weights;
    ``grads`` receives the unscaled gradients (no L2 term, not divided; see
    :func:`_backward_batch` for ``goff`` and ``skip_first``). Callers pass
    constant flags through :func:`~fastmlp.kernels._jit.unliteral`, so that
    the epochs, the split epoch, predict and the L-BFGS objective share one
    compiled version of this and of the forward and backward passes.
    """
    n_weight_layers = layer_sizes.shape[0] - 1
    z = _forward_batch(
        X_dense, X_data, X_indices, X_indptr, is_sparse, order, in_order, start, nb,
        params, layer_sizes, w_off, b_off, unit_off, batch_max, act_codes, act_param,
        drop_rates, rng_state, abuf, gbuf, xbuf,
    )
    delta = _block(dbuf, batch_max, unit_off, layer_sizes, n_weight_layers, nb)
    out_code = act_codes[n_weight_layers - 1]
    loss_sum = 0.0
    sw_sum = 0.0
    for r in range(nb):
        i = order[start + r]
        w = sample_weight[i]
        row_loss = output_loss_and_delta(
            z[r], Y[i], delta[r], out_code, loss_code, act_param, loss_param
        )
        loss_sum += w * row_loss
        sw_sum += w
        if w != 1:
            for j in range(delta.shape[1]):
                delta[r, j] *= w
    _backward_batch(
        X_dense, X_data, X_indices, X_indptr, is_sparse, order, in_order, start, nb,
        params, layer_sizes, w_off, b_off, unit_off, batch_max, act_codes, act_param, drop_rates,
        abuf, dbuf, gbuf, xbuf, grads, goff, skip_first,
    )
    return loss_sum, sw_sum


@jit
def predict_batches(
    X_dense, X_data, X_indices, X_indptr, is_sparse, params, layer_sizes, act_codes,
    act_param, out, abuf, xbuf,
):
    """Output activations of every row of X into ``out``, in chunks of the buffers' size.

    ``abuf`` holds ``batch_max`` rows of every layer's units; ``xbuf`` is
    not used (the rows go in order: dense chunks are slices of ``X_dense``).
    """
    w_off, b_off, unit_off = layout(layer_sizes)
    n_weight_layers = layer_sizes.shape[0] - 1
    n = out.shape[0]
    units = unit_off[n_weight_layers] + layer_sizes[n_weight_layers]
    batch_max = abuf.shape[0] // units
    order = np.arange(n)
    out_code = act_codes[n_weight_layers - 1]
    no_dropout = np.zeros(n_weight_layers)
    no_gates = abuf[:0]  # plain activations, no dropout
    rng_state = np.zeros(1, dtype=np.uint64)
    for start in range(0, n, batch_max):
        nb = min(batch_max, n - start)
        z = _forward_batch(
            X_dense, X_data, X_indices, X_indptr, is_sparse, order, unliteral(True), start, nb,
            params, layer_sizes, w_off, b_off, unit_off, batch_max, act_codes, act_param,
            no_dropout, rng_state, abuf, no_gates, xbuf,
        )
        activate_2d(z, out_code, act_param)
        for r in range(nb):  # (see the gather in _forward_batch)
            for j in range(z.shape[1]):
                out[start + r, j] = z[r, j]


@jit
def _predict_chunk(
    chunk_index, h, chunk, X_dense, X_data, X_indices, X_indptr, is_sparse, params, layer_sizes,
    act_codes, act_param, out, abuf, xbuf,
):
    """Rows ``chunk_index * chunk`` to the next chunk's start (or the end)
    through :func:`predict_batches`, on ``abuf[h]``; nothing past the end."""
    n = out.shape[0]
    r0 = chunk_index * chunk
    if r0 < n:
        r1 = min(n, r0 + chunk)
        # CSR rows: a slice of indptr still points into the whole data / indices
        predict_batches(
            X_dense[r0:r1], X_data, X_indices, X_indptr[r0 : r1 + 1], is_sparse, params,
            layer_sizes, act_codes, act_param, out[r0:r1], abuf[h], xbuf,
        )


@jit(parallel=PRANGE_ONLY)
def predict_chunks(
    X_dense, X_data, X_indices, X_indptr, is_sparse, params, layer_sizes, act_codes,
    act_param, out, abuf, xbuf, policy,
):
    """Output activations of every row of X into ``out``, in chunks of rows
    taken ``abuf.shape[0]`` at a time.

    A chunk holds as many rows as a row of ``abuf`` (shape ``(g, m)``) holds
    units of every layer. Per group of ``g`` chunks, ``policy``
    (:mod:`fastmlp.kernels.threads`) runs them as tasks on Numba's thread
    pool, one chunk per task (``set_parallel_chunksize(1)``: with TBB, a thread
    that the scheduler parks leaves the chunks it has not started to the
    other; measured beside two busy processes, the policy then kept the
    threads and predicted 1.2-1.4x faster than on one thread, where with the
    default two halves per group it judged them slower) or one after the other
    on this thread: the same arithmetic, so the same bits. BLAS is called from every thread: limit it to one thread for
    the call (its results also depend on its own thread count).
    """
    n = out.shape[0]
    n_weight_layers = layer_sizes.shape[0] - 1
    units = 0
    for l in range(1, n_weight_layers + 1):
        units += layer_sizes[l]
    group = abuf.shape[0]
    chunk = abuf.shape[1] // units
    n_chunks = (n + chunk - 1) // chunk
    begin_call(policy, n_chunks // group)
    for first in range(0, n_chunks, group):
        threaded = use_threads(policy) and first + 1 < n_chunks
        started = cycles()
        if threaded:
            previous = set_parallel_chunksize(1)
            for h in prange(group):
                _predict_chunk(
                    first + np.int64(h), np.int64(h), chunk, X_dense, X_data, X_indices, X_indptr, is_sparse,
                    params, layer_sizes, act_codes, act_param, out, abuf, xbuf,
                )
            set_parallel_chunksize(previous)
        else:
            for h in range(group):
                _predict_chunk(
                    first + h, h, chunk, X_dense, X_data, X_indices, X_indptr, is_sparse,
                    params, layer_sizes, act_codes, act_param, out, abuf, xbuf,
                )
        if first + 1 < n_chunks:
            rows = min(n, (first + group) * chunk) - first * chunk
            record_step(policy, threaded, cycles() - started, rows)


@jit
def loss_and_gradients(
    X_dense, X_data, X_indices, X_indptr, is_sparse, Y, sample_weight, params, layer_sizes,
    act_codes, act_param, loss_code, loss_param, loss_scale, alpha, grads, abuf, dbuf, gbuf, xbuf,
):
    """Loss and gradients at the current weights over all rows, as scikit-learn's ``_backprop``.

    ``loss = loss_scale * sum(w_i * loss_i) / sum(w) + 0.5 * alpha * ||W||^2 / sum(w)``;
    ``grads`` receives ``(A.T @ delta + alpha * W) / sum(w)`` and ``sum(delta) / sum(w)``
    in the packed layout. The buffers must hold all rows at once (``xbuf`` is
    not used: the rows are taken in order, straight from ``X_dense``). No dropout:
    the objective stays deterministic (L-BFGS, gradient checks).
    """
    w_off, b_off, unit_off = layout(layer_sizes)
    n = Y.shape[0]
    order = np.arange(n)
    no_dropout = np.zeros(layer_sizes.shape[0] - 1)
    rng_state = np.zeros(1, dtype=np.uint64)
    loss_sum, sw_sum = _batch_loss_and_raw_gradients(
        X_dense, X_data, X_indices, X_indptr, is_sparse, Y, sample_weight, order,
        unliteral(True), unliteral(0), n, params, layer_sizes, w_off, b_off, unit_off, n,
        act_codes, act_param, no_dropout, rng_state, loss_code, loss_param, abuf, dbuf, gbuf,
        xbuf, grads, unliteral(0), unliteral(False),
    )
    n_coef = b_off[0]
    inv = 1.0 / sw_sum
    for i in range(n_coef):
        grads[i] = (grads[i] + alpha * params[i]) * inv
    for i in range(n_coef, params.shape[0]):
        grads[i] = grads[i] * inv
    sq = coef_sq_norm(params, n_coef)
    return loss_scale * loss_sum / sw_sum + 0.5 * alpha * sq / sw_sum


@jit
def _objective_half(
    h, X_dense, X_data, X_indices, X_indptr, is_sparse, Y, sample_weight, order, params,
    layer_sizes, w_off, b_off, unit_off, half_max, act_codes, act_param, no_dropout, rng_state,
    loss_code, loss_param, abuf, dbuf, gbuf, xbuf, half_grads, half_loss, half_weight,
):
    """Half ``h`` of the rows (the first ``ceil(n / 2)``, then the rest): loss
    and weight sums into ``half_loss[h]`` / ``half_weight[h]``, unscaled
    gradients into ``half_grads[h]``."""
    n = order.shape[0]
    first = (n + 1) // 2
    h_rows = first if h == 0 else n - first
    if h_rows > 0:
        result = _batch_loss_and_raw_gradients(
            X_dense, X_data, X_indices, X_indptr, is_sparse, Y, sample_weight, order,
            unliteral(True), h * first, h_rows, params, layer_sizes, w_off, b_off, unit_off,
            half_max, act_codes, act_param, no_dropout, rng_state, loss_code, loss_param,
            abuf[h], dbuf[h], gbuf[h], xbuf, half_grads[h], unliteral(0), unliteral(False),
        )
        half_loss[h] = result[0]
        half_weight[h] = result[1]
    else:
        half_loss[h] = 0.0
        half_weight[h] = 0.0
        for i in range(half_grads.shape[1]):
            half_grads[h, i] = 0


@jit(parallel=PRANGE_ONLY)
def loss_and_gradients_split(
    X_dense, X_data, X_indices, X_indptr, is_sparse, Y, sample_weight, params, layer_sizes,
    act_codes, act_param, loss_code, loss_param, loss_scale, alpha, grads, half_grads, abuf,
    dbuf, gbuf, xbuf, policy,
):
    """:func:`loss_and_gradients` over the rows in two halves, summed.

    The halves (the first ``ceil(n / 2)`` rows, then the rest) run on two
    threads or one after the other on this thread, as ``policy``
    (:mod:`fastmlp.kernels.threads`) chooses: the same arithmetic either way.
    The results equal :func:`loss_and_gradients`'s up to rounding (each sum in
    two parts). ``half_grads`` has shape ``(2, n_params)``; ``abuf``, ``dbuf``
    and ``gbuf`` a leading axis of 2, each row for ``ceil(n / 2)`` rows. BLAS
    is called from both threads: limit it to one thread for the call.
    """
    w_off, b_off, unit_off = layout(layer_sizes)
    n = Y.shape[0]
    order = np.arange(n)
    half_max = max((n + 1) // 2, 1)
    no_dropout = np.zeros(layer_sizes.shape[0] - 1)
    rng_state = np.zeros(1, dtype=np.uint64)
    half_loss = np.zeros(2)
    half_weight = np.zeros(2)
    threaded = use_threads(policy)
    started = cycles()
    if threaded:
        for h in prange(2):
            _objective_half(
                np.int64(h), X_dense, X_data, X_indices, X_indptr, is_sparse, Y, sample_weight, order,
                params, layer_sizes, w_off, b_off, unit_off, half_max, act_codes, act_param,
                no_dropout, rng_state, loss_code, loss_param, abuf, dbuf, gbuf, xbuf,
                half_grads, half_loss, half_weight,
            )
    else:
        for h in range(2):
            _objective_half(
                h, X_dense, X_data, X_indices, X_indptr, is_sparse, Y, sample_weight, order,
                params, layer_sizes, w_off, b_off, unit_off, half_max, act_codes, act_param,
                no_dropout, rng_state, loss_code, loss_param, abuf, dbuf, gbuf, xbuf,
                half_grads, half_loss, half_weight,
            )
    record_step(policy, threaded, cycles() - started, n)
    loss_sum = half_loss[0] + half_loss[1]
    sw_sum = half_weight[0] + half_weight[1]
    n_coef = b_off[0]
    inv = 1.0 / sw_sum
    for i in range(n_coef):
        grads[i] = (half_grads[0, i] + half_grads[1, i] + alpha * params[i]) * inv
    for i in range(n_coef, params.shape[0]):
        grads[i] = (half_grads[0, i] + half_grads[1, i]) * inv
    sq = coef_sq_norm(params, n_coef)
    return loss_scale * loss_sum / sw_sum + 0.5 * alpha * sq / sw_sum


@jit
def minibatch_epoch(
    X_dense, X_data, X_indices, X_indptr, is_sparse, Y, sample_weight, order, batch_size,
    params, layer_sizes, act_codes, act_param, drop_rates, rng_state, loss_code, loss_param,
    loss_scale, opt, lr, hyper, state1, state2, step, grads, abuf, dbuf, gbuf, xbuf, info,
):
    """One epoch of mini-batch training over ``order``, one optimizer step per batch.

    Batches are ``order[s:s + batch_size]`` (the last one possibly shorter), as
    scikit-learn's ``gen_batches``; each step uses the batch's gradient
    ``(A.T @ delta + alpha * W) / sum(w)``. A full-batch epoch is
    ``batch_size = len(order)``. SGD velocities are flushed as in
    :func:`sgd_epoch`, at the start and every ``FLUSH_INTERVAL`` steps.

    Returns the sum over batches of ``batch_loss * batch_rows`` (divide by the
    number of rows for scikit-learn's ``loss_``). ``step[0]`` (Adam's step
    counter) is advanced. ``info[0]`` receives the number of rows done,
    ``info[1]`` a status: 0 ok, 1 a non-finite loss (stopped before updating),
    2 a step produced non-finite weights.
    """
    w_off, b_off, unit_off = layout(layer_sizes)
    n = order.shape[0]
    n_coef = b_off[0]
    alpha = hyper[H_ALPHA]
    zero = zero_like(alpha)
    one = zero + np.float32(1)
    n_params = params.shape[0]
    unit = np.ones(1, dtype=params.dtype)
    scratch = np.empty(1, dtype=params.dtype)
    sq = coef_sq_norm(params, n_coef)
    total = 0.0
    info[0] = 0
    info[1] = STATUS_OK
    flush_at = _flush_threshold(opt, hyper, state1)
    n_steps = 0
    for start in range(0, n, batch_size):
        nb = min(batch_size, n - start)
        loss_sum, sw_sum = _batch_loss_and_raw_gradients(
            X_dense, X_data, X_indices, X_indptr, is_sparse, Y, sample_weight, order,
            unliteral(False), start, nb, params, layer_sizes, w_off, b_off, unit_off,
            batch_size, act_codes, act_param, drop_rates, rng_state, loss_code, loss_param,
            abuf, dbuf, gbuf, xbuf, grads, unliteral(0), unliteral(False),
        )
        if sw_sum == 0:  # a batch of zero-weight rows carries no gradient
            info[0] = start + nb
            continue
        batch_loss = loss_scale * loss_sum / sw_sum + 0.5 * alpha * sq / sw_sum
        if not math.isfinite(batch_loss):
            info[1] = STATUS_NONFINITE_LOSS
            return total
        total += batch_loss * nb
        lr_t = _step_learning_rate(opt, lr, hyper, step, scratch)
        inv = one / sw_sum
        sq = update_rank1(
            opt, _row(params, 0, n_coef), _row(state1, 0, n_coef), _row(state2, 0, n_coef),
            unit, grads[:n_coef], alpha, inv, lr_t, hyper,
        )
        bsq = update_rank1(
            opt, _row(params, n_coef, n_params), _row(state1, n_coef, n_params),
            _row(state2, n_coef, n_params), unit, grads[n_coef:], zero, inv, lr_t, hyper,
        )
        info[0] = start + nb
        if not (math.isfinite(sq) and math.isfinite(bsq)):
            info[1] = STATUS_NONFINITE_WEIGHTS
            return total
        n_steps += 1
        if flush_at > 0 and n_steps % FLUSH_INTERVAL == 0:
            flush_velocities(state1, flush_at)
    return total



@jit
def _split_half(
    h, X_dense, no_sparse, no_index, Y, sample_weight, order, start, nb, params, layer_sizes,
    w_off, b_off, unit_off, half_max, act_codes, act_param, drop_rates, rng_state, loss_code,
    loss_param, abuf, dbuf, gbuf, xbuf, upper_grads, size0, half_loss, half_weight,
):
    """Half ``h`` of the batch ``order[start:start + nb]`` (its first ``ceil(nb / 2)``
    rows, then the rest): forward pass, loss and backward pass on the half's
    row of each work array, every gradient but the first layer's into
    ``upper_grads[h]``; its loss and weight sums into ``half_loss[h]`` and
    ``half_weight[h]``."""
    first = (nb + 1) // 2
    h_rows = first if h == 0 else nb - first
    if h_rows > 0:
        result = _batch_loss_and_raw_gradients(
            X_dense, no_sparse, no_index, no_index, unliteral(False), Y, sample_weight,
            order, unliteral(False), start + h * first, h_rows, params, layer_sizes,
            w_off, b_off, unit_off, half_max, act_codes, act_param, drop_rates,
            rng_state, loss_code, loss_param, abuf[h], dbuf[h], gbuf[h], xbuf[h],
            upper_grads[h], size0, unliteral(True),
        )
        half_loss[h] = result[0]
        half_weight[h] = result[1]
    else:
        half_loss[h] = 0.0
        half_weight[h] = 0.0


@jit
def _split_step_task(
    c, nb, n_blocks, opt, params, state1, state2, first_grad, upper_grads, dbuf, xbuf,
    gemm_scalars, half_max, unit_off, n_in, n_first, n_coef, alpha, inv, lr_t, hyper, unit,
    sq_parts, upper_sq,
):
    """Task ``c`` of a split batch's step. Task 0: the upper layers and every
    intercept (the halves' gradients added, then stepped; sums of squares into
    ``upper_sq``). Task ``c >= 1``: row block ``c - 1`` of the first layer, its
    gradient formed by one gemm per half and stepped at once (its sum of
    squares into ``sq_parts[c - 1]``)."""
    n_params = params.shape[0]
    size0 = first_grad.shape[0]
    first = (nb + 1) // 2
    if c == 0:  # upper layers and every intercept: small, one task
        if nb > first:
            for i in range(upper_grads.shape[1]):
                upper_grads[0, i] += upper_grads[1, i]
        ug = upper_grads[0]
        upper_sq[0] = update_rank1(
            opt, _row(params, size0, n_coef), _row(state1, size0, n_coef),
            _row(state2, size0, n_coef), unit, ug[: n_coef - size0], alpha, inv, lr_t, hyper,
        )
        upper_sq[1] = update_rank1(
            opt, _row(params, n_coef, n_params), _row(state1, n_coef, n_params),
            _row(state2, n_coef, n_params), unit, ug[n_coef - size0 :], zero_like(alpha), inv,
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
            opt, _row(params, i0, i1), _row(state1, i0, i1), _row(state2, i0, i1), unit,
            first_grad[i0:i1], alpha, inv, lr_t, hyper,
        )


# The prange loops live in these two small functions, not in the epoch: Numba's
# parallel pipeline and parfor lowering cost grow with the size of the function
# that holds the loop. The loop index is passed on as int64 (prange's is
# unsigned), so the serial and threaded callers share one compiled callee.
@jit(parallel=PRANGE_ONLY)
def _split_halves_threaded(
    X_dense, no_sparse, no_index, Y, sample_weight, order, start, nb, params, layer_sizes,
    w_off, b_off, unit_off, half_max, act_codes, act_param, drop_rates, rng_state, loss_code,
    loss_param, abuf, dbuf, gbuf, xbuf, upper_grads, size0, half_loss, half_weight,
):
    """Both :func:`_split_half` calls of a batch as two tasks on the thread pool."""
    for h in prange(2):
        _split_half(
            np.int64(h), X_dense, no_sparse, no_index, Y, sample_weight, order, start, nb,
            params, layer_sizes, w_off, b_off, unit_off, half_max, act_codes, act_param,
            drop_rates, rng_state, loss_code, loss_param, abuf, dbuf, gbuf, xbuf,
            upper_grads, size0, half_loss, half_weight,
        )


@jit(parallel=PRANGE_ONLY)
def _split_step_threaded(
    nb, n_blocks, opt, params, state1, state2, first_grad, upper_grads, dbuf, xbuf,
    gemm_scalars, half_max, unit_off, n_in, n_first, n_coef, alpha, inv, lr_t, hyper, unit,
    sq_parts, upper_sq,
):
    """Every :func:`_split_step_task` of a batch as tasks on the thread pool."""
    for c in prange(n_blocks + 1):
        _split_step_task(
            np.int64(c), nb, n_blocks, opt, params, state1, state2, first_grad, upper_grads,
            dbuf, xbuf, gemm_scalars, half_max, unit_off, n_in, n_first, n_coef, alpha, inv,
            lr_t, hyper, unit, sq_parts, upper_sq,
        )


@jit
def minibatch_epoch_split(
    X_dense, Y, sample_weight, order, batch_size,
    params, layer_sizes, act_codes, act_param, drop_rates, rng_state, loss_code, loss_param,
    loss_scale, opt, lr, hyper, state1, state2, step, first_grad, upper_grads, abuf, dbuf, gbuf,
    xbuf, sq_parts, info, policy,
):
    """:func:`minibatch_epoch` on dense X, each batch split in two halves.

    Each half (the batch's first ``ceil(nb / 2)`` rows, then the rest) goes
    through the forward pass, loss and backward pass with the gradients of
    every layer but the first (:func:`_split_half`). The first layer's
    gradient (the big one) is then formed in ``sq_parts.shape[0]`` row
    blocks, each ``X0[:, rows].T @ D0 + X1[:, rows].T @ D1`` by one BLAS call
    per half, and each block stepped at once while it is in cache; the upper
    layers and the intercepts are one more task (:func:`_split_step_task`).

    Per batch, ``policy`` (:mod:`fastmlp.kernels.threads`) runs the two
    halves and then the step's tasks on Numba's thread pool, or the same
    work in the same order on this thread: the split depends on the shapes
    alone, so the results do not depend on the mode, the number of threads or
    the machine's load. They equal :func:`minibatch_epoch`'s up to rounding
    (the gradient is summed in two parts). BLAS is called from both threads:
    limit it to one thread for the call (its results also depend on its own
    thread count).

    Work arrays: ``first_grad`` (n_in * n_hidden1,), ``upper_grads``
    ``(2, n_params - first_grad.size)`` (one row per half, the packed layout
    without the first layer's weights); ``abuf``, ``dbuf``, ``gbuf`` and
    ``xbuf`` with a leading axis of 2, each row as :func:`minibatch_epoch`'s
    for ``ceil(batch_size / 2)`` rows. Dropout must be off (its stream is
    drawn in row order). Returns, and fills ``info`` and ``step``, as
    :func:`minibatch_epoch`.
    """
    w_off, b_off, unit_off = layout(layer_sizes)
    n = order.shape[0]
    n_coef = b_off[0]
    n_in = layer_sizes[0]
    n_first = layer_sizes[1]
    size0 = first_grad.shape[0]
    half_max = (batch_size + 1) // 2
    n_blocks = sq_parts.shape[0]
    alpha = hyper[H_ALPHA]
    zero = zero_like(alpha)
    one = zero + np.float32(1)
    unit = np.ones(1, dtype=params.dtype)
    scratch = np.empty(1, dtype=params.dtype)
    gemm_scalars = np.array([1.0, 0.0, 1.0], dtype=params.dtype)  # alpha, beta 0, beta 1
    no_sparse = np.empty(0, dtype=params.dtype)
    no_index = np.empty(0, dtype=np.int64)  # as the CSR arrays: one compiled callee
    half_loss = np.zeros(2)
    half_weight = np.zeros(2)
    upper_sq = np.zeros(2)
    sq = coef_sq_norm(params, n_coef)
    total = 0.0
    info[0] = 0
    info[1] = STATUS_OK
    flush_at = _flush_threshold(opt, hyper, state1)
    n_steps = 0
    begin_call(policy, (n + batch_size - 1) // batch_size)
    for start in range(0, n, batch_size):
        nb = min(batch_size, n - start)
        threaded = use_threads(policy)
        started = cycles()
        if threaded:
            _split_halves_threaded(
                X_dense, no_sparse, no_index, Y, sample_weight, order, start, nb, params,
                layer_sizes, w_off, b_off, unit_off, half_max, act_codes, act_param,
                drop_rates, rng_state, loss_code, loss_param, abuf, dbuf, gbuf, xbuf,
                upper_grads, size0, half_loss, half_weight,
            )
        else:
            for h in range(2):
                _split_half(
                    h, X_dense, no_sparse, no_index, Y, sample_weight, order, start, nb, params,
                    layer_sizes, w_off, b_off, unit_off, half_max, act_codes, act_param,
                    drop_rates, rng_state, loss_code, loss_param, abuf, dbuf, gbuf, xbuf,
                    upper_grads, size0, half_loss, half_weight,
                )
        loss_sum = half_loss[0] + half_loss[1]
        sw_sum = half_weight[0] + half_weight[1]
        if sw_sum == 0:  # a batch of zero-weight rows carries no gradient
            info[0] = start + nb
            continue
        batch_loss = loss_scale * loss_sum / sw_sum + 0.5 * alpha * sq / sw_sum
        if not math.isfinite(batch_loss):
            info[1] = STATUS_NONFINITE_LOSS
            return total
        total += batch_loss * nb
        lr_t = _step_learning_rate(opt, lr, hyper, step, scratch)
        inv = one / sw_sum
        if threaded:
            _split_step_threaded(
                nb, n_blocks, opt, params, state1, state2, first_grad, upper_grads, dbuf,
                xbuf, gemm_scalars, half_max, unit_off, n_in, n_first, n_coef, alpha, inv,
                lr_t, hyper, unit, sq_parts, upper_sq,
            )
        else:
            for c in range(n_blocks + 1):
                _split_step_task(
                    c, nb, n_blocks, opt, params, state1, state2, first_grad, upper_grads, dbuf,
                    xbuf, gemm_scalars, half_max, unit_off, n_in, n_first, n_coef, alpha, inv,
                    lr_t, hyper, unit, sq_parts, upper_sq,
                )
        record_step(policy, threaded, cycles() - started, nb)
        sq = upper_sq[0]
        for c in range(n_blocks):
            sq += sq_parts[c]
        bsq = upper_sq[1]
        info[0] = start + nb
        if not (math.isfinite(sq) and math.isfinite(bsq)):
            info[1] = STATUS_NONFINITE_WEIGHTS
            return total
        n_steps += 1
        if flush_at > 0 and n_steps % FLUSH_INTERVAL == 0:
            flush_velocities(state1, flush_at)
    return total


@jit
def sgd_epoch(
    X_dense, X_data, X_indices, X_indptr, is_sparse, Y, sample_weight, order,
    params, layer_sizes, act_codes, act_param, drop_rates, rng_state, loss_code, loss_param,
    loss_scale, opt, lr, hyper, state1, state2, step, abuf, dbuf, gbuf, xwork, info, policy,
):
    """One epoch of per-sample (batch size 1) training, fused and allocation-free.

    For each row of ``order``: forward pass, loss and output delta, deltas of
    all hidden layers (at the current weights), then one optimizer step per
    layer whose gradient ``(a_k * delta_j + alpha * W_kj) / w`` is formed
    inside the update loop (no gradient buffer). Same result as
    :func:`minibatch_epoch` with ``batch_size=1`` up to rounding (layers with
    short rows form ``a d^T`` before the step); rows of weight 0 are skipped.

    For CSR input the forward pass touches only the non-zero inputs; so does
    the first layer's update when it cannot change other weights (plain SGD,
    no momentum, ``alpha = 0``); otherwise the row is scattered into
    ``xwork`` (length n_features, zero on entry and on exit).

    Layers of ``BLOCKED_LAYER_SIZE`` weights or more are updated in row
    blocks (:func:`update_layer`), on Numba's thread pool for the samples that
    ``policy`` (:mod:`fastmlp.kernels.threads`) runs threaded; when the first
    layer is big and every layer above it small, those are stepped as one more
    task of the first layer's parallel region
    (:func:`_step_first_and_upper_threaded`). The result is the same bit for
    bit either way, so the policy may switch at any sample.

    SGD velocities are flushed of would-be subnormals at the start and every
    ``FLUSH_INTERVAL`` samples (:func:`fastmlp.kernels.optimizers.flush_velocities`).

    Dropout masks are drawn per sample, layer by layer, unit by unit, from
    ``rng_state``, in the order :func:`minibatch_epoch` draws them, so both
    give the same epoch at ``batch_size=1``.

    Returns the summed loss (see :func:`minibatch_epoch`), with ``info`` and
    ``step`` as there.
    """
    w_off, b_off, unit_off = layout(layer_sizes)
    n_weight_layers = layer_sizes.shape[0] - 1
    n = order.shape[0]
    n_coef = b_off[0]
    alpha = hyper[H_ALPHA]
    zero = zero_like(alpha)
    one = zero + np.float32(1)
    sparse_rows_only = is_sparse and opt == SGD and hyper[H_MOMENTUM] == 0 and alpha == 0
    unit = np.ones(1, dtype=params.dtype)
    scratch = np.empty(1, dtype=params.dtype)
    sq = coef_sq_norm(params, n_coef)
    out_code = act_codes[n_weight_layers - 1]
    total = 0.0
    info[0] = 0
    info[1] = STATUS_OK
    flush_at = _flush_threshold(opt, hyper, state1)
    n_steps = 0
    # dense input: the next row's ``x @ W0`` is formed during this row's update
    z_next = np.empty(layer_sizes[1], dtype=params.dtype)
    sq_parts = np.empty(ROW_BLOCKS, dtype=params.dtype)
    out_parts = np.empty((ROW_BLOCKS, layer_sizes[1]), dtype=params.dtype)
    no_rows = z_next[:0]
    pending = -1  # position in ``order`` whose ``x @ W0`` is in z_next
    # all intercepts as one row, in the units' order: layer l's intercepts
    # (at b_off[l] - n_coef) line up with its deltas (at unit_off[l + 1]), so one
    # step updates them all (a step per layer costs more in calls than in work)
    n_units = params.shape[0] - n_coef
    B = _row(params, n_coef, params.shape[0])
    SB1 = _row(state1, n_coef, params.shape[0])
    SB2 = _row(state2, n_coef, params.shape[0])
    d_all = dbuf[:n_units]
    outer = np.empty(_outer_size(layer_sizes), dtype=params.dtype)
    W0 = weight_view(params, w_off, layer_sizes, 0)
    V01 = weight_view(state1, w_off, layer_sizes, 0)
    V02 = weight_view(state2, w_off, layer_sizes, 0)
    b0 = bias_view(params, b_off, layer_sizes, 0)
    # dense, a blocked first layer and only small layers above it: when
    # threaded, the upper layers are stepped inside the first layer's region
    n_blocks0 = min(ROW_BLOCKS, layer_sizes[0])
    can_overlap = (
        not is_sparse and n_blocks0 > 1 and layer_sizes[0] * layer_sizes[1] >= BLOCKED_LAYER_SIZE
    )
    # the thread pool only ever runs the row blocks of big layers (not a CSR
    # first layer's: its step is scattered by row)
    threadable = False
    for l in range(n_weight_layers):
        big = layer_sizes[l] * layer_sizes[l + 1] >= BLOCKED_LAYER_SIZE and layer_sizes[l] > 1
        if big and (l > 0 or not is_sparse):
            threadable = True
            if l > 0:
                can_overlap = False
    upper_out = np.zeros(2, dtype=params.dtype)
    if threadable:
        begin_call(policy, n)
    for s in range(n):
        i = order[s]
        w = sample_weight[i]
        if w == 0:
            info[0] = s + 1
            continue
        threaded = threadable and use_threads(policy)
        started = cycles()
        # forward
        out = abuf[unit_off[1] : unit_off[1] + layer_sizes[1]]
        if is_sparse:
            affine_csr_row(X_data, X_indices, X_indptr[i], X_indptr[i + 1], W0, b0, out)
        elif pending == s:
            for j in range(out.shape[0]):
                out[j] = z_next[j] + b0[j]
        else:
            affine_vector(X_dense[i], W0, b0, out)
        s_next = s + 1
        while s_next < n and sample_weight[order[s_next]] == 0:
            s_next += 1
        for l in range(1, n_weight_layers):
            activate_hidden(
                out, gbuf[unit_off[l] : unit_off[l] + layer_sizes[l]], act_codes[l - 1],
                act_param, drop_rates[l - 1], rng_state,
            )
            nxt = abuf[unit_off[l + 1] : unit_off[l + 1] + layer_sizes[l + 1]]
            affine_vector(
                out, weight_view(params, w_off, layer_sizes, l),
                bias_view(params, b_off, layer_sizes, l), nxt,
            )
            out = nxt
        delta = dbuf[unit_off[n_weight_layers] : unit_off[n_weight_layers] + out.shape[0]]
        row_loss = output_loss_and_delta(
            out, Y[i], delta, out_code, loss_code, act_param, loss_param
        )
        sample_loss = loss_scale * row_loss + 0.5 * alpha * sq / w
        if not math.isfinite(sample_loss):
            info[1] = STATUS_NONFINITE_LOSS
            return total
        total += sample_loss
        if w != 1:
            for j in range(delta.shape[0]):
                delta[j] *= w
        # backward: deltas of the hidden layers, at the current weights
        for l in range(n_weight_layers - 1, 0, -1):
            W = weight_view(params, w_off, layer_sizes, l)
            d_hi = dbuf[unit_off[l + 1] : unit_off[l + 1] + layer_sizes[l + 1]]
            d_lo = dbuf[unit_off[l] : unit_off[l] + layer_sizes[l]]
            _matvec(W, d_hi, d_lo)
            backprop_activation(
                abuf[unit_off[l] : unit_off[l] + layer_sizes[l]],
                gbuf[unit_off[l] : unit_off[l] + layer_sizes[l]], d_lo, act_codes[l - 1],
                act_param, drop_rates[l - 1],
            )
        # update: every layer from its input activations and its delta
        lr_t = _step_learning_rate(opt, lr, hyper, step, scratch)
        inv = one / w
        d0 = dbuf[unit_off[1] : unit_off[1] + layer_sizes[1]]
        if threaded and can_overlap and s_next < n:
            # the first layer's row blocks and the upper layers in one parallel
            # region (the upper layers as one more task, on the first thread)
            _step_first_and_upper_threaded(
                opt, W0, V01, V02, X_dense[i], d0, alpha, inv, lr_t, hyper,
                X_dense[order[s_next]], n_blocks0, sq_parts, out_parts, params, state1, state2,
                layer_sizes, w_off, unit_off, abuf, dbuf, outer, unit, B, SB1, SB2, d_all,
                upper_out,
            )
            sq0 = sum_block_parts(sq_parts, out_parts, n_blocks0, z_next)
            pending = s_next
            sq_up = upper_out[0]
            bsq = upper_out[1]
        else:
            if not is_sparse:
                if s_next < n:
                    sq0 = update_layer(
                        opt, W0, V01, V02, X_dense[i], d0, alpha, inv, lr_t, hyper,
                        X_dense[order[s_next]], z_next, threaded, sq_parts, out_parts,
                    )
                    pending = s_next
                else:
                    sq0 = update_layer(
                        opt, W0, V01, V02, X_dense[i], d0, alpha, inv, lr_t, hyper, no_rows,
                        no_rows, threaded, sq_parts, out_parts,
                    )
            elif sparse_rows_only:
                sq0 = zero
                for p in range(X_indptr[i], X_indptr[i + 1]):
                    k = X_indices[p]
                    unit[0] = X_data[p]
                    sq0 += update_rank1(
                        opt, W0[k : k + 1], V01[k : k + 1], V02[k : k + 1], unit, d0, alpha, inv,
                        lr_t, hyper,
                    )
            else:
                for p in range(X_indptr[i], X_indptr[i + 1]):
                    xwork[X_indices[p]] = X_data[p]
                sq0 = update_rank1(opt, W0, V01, V02, xwork, d0, alpha, inv, lr_t, hyper)
                for p in range(X_indptr[i], X_indptr[i + 1]):
                    xwork[X_indices[p]] = 0
            sq_up, bsq = _update_upper_layers(
                opt, params, state1, state2, layer_sizes, w_off, unit_off, abuf, dbuf, outer,
                unit, B, SB1, SB2, d_all, alpha, inv, lr_t, hyper, threaded, sq_parts, out_parts,
            )
        sq = sq0 + sq_up
        info[0] = s + 1
        if threadable:
            record_step(policy, threaded, cycles() - started, 1)
        if not (math.isfinite(sq) and math.isfinite(bsq)):
            info[1] = STATUS_NONFINITE_WEIGHTS
            return total
        n_steps += 1
        if flush_at > 0 and n_steps % FLUSH_INTERVAL == 0:
            flush_velocities(state1, flush_at)
    return total


@jit
def _update_upper_layers(
    opt, params, state1, state2, layer_sizes, w_off, unit_off, abuf, dbuf, outer, unit, B, SB1,
    SB2, d_all, alpha, inv, lr_t, hyper, threaded, sq_parts, out_parts,
):
    """One sample's step of every layer but the first, then of all intercepts.

    Returns the sum of squares of those layers' updated weights and that of
    the intercepts."""
    zero = zero_like(alpha)
    one = zero + np.float32(1)
    no_rows = d_all[:0]
    sq = zero
    for l in range(1, layer_sizes.shape[0] - 1):
        fi = layer_sizes[l]
        fo = layer_sizes[l + 1]
        d = dbuf[unit_off[l + 1] : unit_off[l + 1] + fo]
        if fo < SHORT_ROW and outer.shape[0] >= fi * fo:
            # short rows: the outer product first, then one flat step (a loop
            # of fo elements per row costs more in per-row overhead than work)
            size = fi * fo
            start = unit_off[l]
            for k in range(fi):
                ak = abuf[start + k]
                for j in range(fo):
                    outer[k * fo + j] = ak * d[j]
            unit[0] = one
            sq += update_rank1(
                opt, _row(params, w_off[l], w_off[l] + size),
                _row(state1, w_off[l], w_off[l] + size),
                _row(state2, w_off[l], w_off[l] + size), unit, outer[:size], alpha, inv,
                lr_t, hyper,
            )
        else:
            sq += update_layer(
                opt, weight_view(params, w_off, layer_sizes, l),
                weight_view(state1, w_off, layer_sizes, l),
                weight_view(state2, w_off, layer_sizes, l),
                abuf[unit_off[l] : unit_off[l] + fi], d, alpha, inv, lr_t, hyper, no_rows,
                no_rows, threaded, sq_parts, out_parts,
            )
    unit[0] = one
    bsq = update_rank1(opt, B, SB1, SB2, unit, d_all, zero, inv, lr_t, hyper)
    return sq, bsq


@jit(parallel=PRANGE_ONLY)
def _step_first_and_upper_threaded(
    opt, W0, V01, V02, x, d0, alpha, inv, lr_t, hyper, x_next, n_blocks, sq_parts, out_parts,
    params, state1, state2, layer_sizes, w_off, unit_off, abuf, dbuf, outer, unit, B, SB1, SB2,
    d_all, upper_out,
):
    """The first layer's step in ``n_blocks`` row blocks (as :func:`update_layer`,
    with the next sample's ``x_next @ W0`` in ``out_parts``) and, as one more
    task, :func:`_update_upper_layers`, whose two sums go to ``upper_out``.

    Task 0 (the upper layers) goes to the first thread, which would otherwise
    finish its blocks first. Returns nothing: reduce the parts with
    :func:`sum_block_parts`."""
    m_rows, n = W0.shape
    for c in prange(n_blocks + 1):
        if c == 0:
            sq_up, bsq = _update_upper_layers(
                opt, params, state1, state2, layer_sizes, w_off, unit_off, abuf, dbuf, outer,
                unit, B, SB1, SB2, d_all, alpha, inv, lr_t, hyper, unliteral(False),
                sq_parts[:0], out_parts[:0],
            )
            upper_out[0] = sq_up
            upper_out[1] = bsq
        else:
            b = np.int64(c) - 1  # prange's index is unsigned: one compiled callee
            for j in range(n):  # zeroed here: each block's part stays in its thread's cache
                out_parts[b, j] = 0
            sq_parts[b] = update_rank1_fused(
                opt, W0, V01, V02, x, d0, alpha, inv, lr_t, hyper, x_next, out_parts[b, :n],
                b * m_rows // n_blocks, (b + 1) * m_rows // n_blocks,
            )


SHORT_ROW = 32


@jit
def _outer_size(layer_sizes):
    """Scratch for :func:`sgd_epoch`'s short-row layers: their largest size."""
    size = 0
    for l in range(1, layer_sizes.shape[0] - 1):
        fi_fo = layer_sizes[l] * layer_sizes[l + 1]
        if layer_sizes[l + 1] < SHORT_ROW and fi_fo < BLOCKED_LAYER_SIZE:
            size = max(size, fi_fo)
    return size


@jit(fastmath={"reassoc"})
def _matvec(W, b, out):
    """``out = W @ b``, row by row with ``W[k, j]`` indexing: no row views and
    one call per layer, since each view or call costs atomic reference counts."""
    for k in range(W.shape[0]):
        acc = zero_like(b[0])
        for j in range(b.shape[0]):
            acc += W[k, j] * b[j]
        out[k] = acc
