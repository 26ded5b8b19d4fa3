"""Passes over a batch of rows: forward, loss and backward, predict, the full-batch objective.

Layout of parameters and work arrays: :mod:`fastmlp.kernels.packing`. Input
``X`` is one tuple ``(X_dense, X_data, X_indices, X_indptr, is_sparse)``: dense
rows (``X_dense`` 2-D, C-contiguous) or CSR arrays (``X_data``, ``X_indices``,
``X_indptr``, int64 indices); ``is_sparse`` says which, the other arrays being
empty placeholders, so one compiled function serves both. The network's
shape and choices come as one :class:`NetworkSpec`. ``drop_rates``
(float64) holds one dropout rate per hidden layer and ``rng_state``
(uint64[1]) the dropout stream; ``loss_param`` is the Huber threshold.
"""

from typing import NamedTuple

import numpy as np
from numba import prange

from ._jit import PRANGE_ONLY, jit, unliteral
from .activations import activate_2d, activate_hidden, backprop_activation
from .dense import add_bias_rows, affine_csr_row
from .losses import output_loss_and_delta
from .packing import batch_block, bias_view, coef_sq_norm, gate_view, layout, weight_view
from .thread_policy import begin_call, cycles, record_step, set_chunk_size, use_threads


class NetworkSpec(NamedTuple):
    """The network's shape and choices, as every entry kernel takes them.

    Predict reads the first three fields; the epochs all of them.

    Parameters
    ----------
    layer_sizes : ndarray of int64
        Width of every layer, inputs first.
    act_codes : ndarray of int64
        Activation code of every weight layer, the output's last
        (:data:`~fastmlp.kernels.activations.ACTIVATION_CODES`).
    act_param : float
        Slope of leaky ReLU for negative inputs.
    drop_rates : ndarray of float64
        Dropout rate of every hidden layer (0: off).
    rng_state : ndarray of uint64, shape (1,)
        The dropout stream (:mod:`fastmlp.kernels.rng`); advanced by the epochs.
    loss_code : int
        Loss (:data:`~fastmlp.kernels.losses.LOSS_CODES`).
    loss_param : float
        Huber threshold (unused by the other losses).
    """

    layer_sizes: np.ndarray
    act_codes: np.ndarray
    act_param: float
    drop_rates: np.ndarray
    rng_state: np.ndarray
    loss_code: int
    loss_param: float


@jit(internal=True)
def without_dropout(spec):
    """``spec`` with dropout off and a stream of its own, for predict and the
    objective (which stay deterministic).

    Parameters
    ----------
    spec : NetworkSpec

    Returns
    -------
    NetworkSpec
    """
    return NetworkSpec(
        spec.layer_sizes, spec.act_codes, spec.act_param,
        np.zeros(spec.layer_sizes.shape[0] - 1), np.zeros(1, dtype=np.uint64),
        spec.loss_code, spec.loss_param,
    )


@jit(internal=True)
def forward_batch(X, order, in_order, start, nb, params, spec, offsets, batch_max, work):
    """Rows ``order[start:start + nb]`` through every layer; output left as ``z``.

    Hidden layers go through :func:`activate_hidden` (gates and dropout when
    ``gbuf`` is not empty). Dense rows are gathered into ``xbuf`` for the
    gemm, unless ``in_order`` (``order`` is ``arange``: the rows are a slice
    of ``X_dense`` already, and ``xbuf`` may be empty).

    Parameters
    ----------
    X : tuple
        The input, ``(X_dense, X_data, X_indices, X_indptr, is_sparse)``
        (:mod:`fastmlp.kernels.passes`).
    order : ndarray of int64
        Rows to take, in this order (the epoch's shuffle).
    in_order : bool
        True: rows ``start:start + nb`` straight from X, ignoring ``order``.
    start : int
        First position in ``order`` (or row, with ``in_order``) of the batch.
    nb : int
        Rows in the batch.
    params : ndarray of shape (n_params,)
        Weights then intercepts, packed (:mod:`fastmlp.kernels.packing`); the
        epochs update them in place.
    spec : NetworkSpec
        The network (:class:`NetworkSpec`).
    offsets : tuple of ndarray
        ``(w_off, b_off, unit_off)``, the offsets of the weights, the
        intercepts and the units (:func:`~fastmlp.kernels.packing.layout`).
    batch_max : int
        Rows the work arrays are laid out for (see
        :mod:`fastmlp.kernels.packing`).
    work : tuple of ndarray
        ``(abuf, dbuf, gbuf, xbuf)``: activations
        (:mod:`fastmlp.kernels.packing`), deltas and gates (GELU, dropout;
        empty when no layer needs them) laid out as the activations, and the
        batch's gathered input rows (``dbuf`` is not used here).
    """
    X_dense, X_data, X_indices, X_indptr, is_sparse = X
    layer_sizes, act_codes, act_param = spec.layer_sizes, spec.act_codes, spec.act_param
    drop_rates, rng_state = spec.drop_rates, spec.rng_state
    w_off, b_off, unit_off = offsets
    abuf, _, gbuf, xbuf = work
    n_weight_layers = layer_sizes.shape[0] - 1
    out = batch_block(abuf, batch_max, unit_off, layer_sizes, 1, nb)
    if is_sparse:
        for r in range(nb):
            i = order[start + r]
            affine_csr_row(
                X_data, X_indices, X_indptr[i], X_indptr[i + 1],
                weight_view(params, w_off, layer_sizes, 0),
                bias_view(params, b_off, layer_sizes, 0),
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
            out.reshape(out.size), gate_view(gbuf, batch_max, unit_off, layer_sizes, l, nb),
            act_codes[l - 1], act_param, drop_rates[l - 1], rng_state,
        )
        nxt = batch_block(abuf, batch_max, unit_off, layer_sizes, l + 1, nb)
        np.dot(out, weight_view(params, w_off, layer_sizes, l), nxt)
        add_bias_rows(nxt, bias_view(params, b_off, layer_sizes, l))
        out = nxt
    return out


@jit(internal=True)
def backward_batch(
    X, order, in_order, start, nb, params, spec, offsets, batch_max, work, grads, goff, skip_first
):
    """Unscaled gradients ``A.T @ delta`` and ``sum(delta)`` of every layer into
    ``grads``, from the output deltas already in ``dbuf``; no input gradient.

    Parameter ``i`` of the packed layout goes to ``grads[i - goff]``; with
    ``skip_first`` the first layer's weight gradient is left out (``goff``
    is then its size: ``grads`` holds the rest).

    Parameters
    ----------
    X, order, in_order, start, nb, params, spec, offsets, batch_max, work
        As for :func:`forward_batch`.
    grads : ndarray of shape (n_params,)
        Receives the gradient, packed as ``params``.
    goff : int
        Where in ``grads`` the packed gradient starts.
    skip_first : bool
        Leave out the first layer's weight gradient (the split epoch forms it
        by row blocks).
    """
    X_dense, X_data, X_indices, X_indptr, is_sparse = X
    layer_sizes, act_codes, act_param = spec.layer_sizes, spec.act_codes, spec.act_param
    drop_rates = spec.drop_rates
    w_off, b_off, unit_off = offsets
    abuf, dbuf, gbuf, xbuf = work
    n_weight_layers = layer_sizes.shape[0] - 1
    for l in range(n_weight_layers - 1, -1, -1):
        fi = layer_sizes[l]
        fo = layer_sizes[l + 1]
        delta = batch_block(dbuf, batch_max, unit_off, layer_sizes, l + 1, nb)
        g0 = w_off[l] - goff
        if l > 0:
            G = grads[g0 : g0 + fi * fo].reshape((fi, fo))
            prev = batch_block(abuf, batch_max, unit_off, layer_sizes, l, nb)
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
            dprev = batch_block(dbuf, batch_max, unit_off, layer_sizes, l, nb)
            np.dot(delta, W.T, dprev)
            backprop_activation(
                prev.reshape(prev.size), gate_view(gbuf, batch_max, unit_off, layer_sizes, l, nb),
                dprev.reshape(dprev.size), act_codes[l - 1], act_param, drop_rates[l - 1],
            )


@jit(internal=True)
def batch_loss_and_raw_gradients(
    X, Y, sample_weight, order, in_order, start, nb, params, spec, offsets, batch_max, work, grads,
    goff, skip_first,
):
    """Forward, output loss and backward for one batch.

    Returns the weighted sum of the rows' losses and the sum of the weights;
    ``grads`` receives the unscaled gradients (no L2 term, not divided; see
    :func:`backward_batch` for ``goff`` and ``skip_first``). Callers pass
    constant flags through :func:`~fastmlp.kernels._jit.unliteral`, so that
    the epochs, the split epoch, predict and the L-BFGS objective share one
    compiled version of this and of the forward and backward passes.

    Parameters
    ----------
    X : tuple
        The input, ``(X_dense, X_data, X_indices, X_indptr, is_sparse)``
        (:mod:`fastmlp.kernels.passes`).
    Y : ndarray of shape (n_samples, n_outputs)
        Targets: one-hot for softmax, 0/1 for logistic, real otherwise.
    sample_weight : ndarray of shape (n_samples,)
        Weight of every row.
    order, in_order, start, nb, params, spec, offsets, batch_max, work
        As for :func:`forward_batch`.
    grads : ndarray of shape (n_params,)
        Receives the gradient, packed as ``params``.
    goff : int
        Where in ``grads`` the packed gradient starts.
    skip_first : bool
        Leave out the first layer's weight gradient (the split epoch forms it
        by row blocks).
    """
    layer_sizes, act_param = spec.layer_sizes, spec.act_param
    loss_code, loss_param = spec.loss_code, spec.loss_param
    n_weight_layers = layer_sizes.shape[0] - 1
    z = forward_batch(X, order, in_order, start, nb, params, spec, offsets, batch_max, work)
    delta = batch_block(work[1], batch_max, offsets[2], layer_sizes, n_weight_layers, nb)
    out_code = spec.act_codes[n_weight_layers - 1]
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
    backward_batch(
        X, order, in_order, start, nb, params, spec, offsets, batch_max, work, grads, goff,
        skip_first,
    )
    return loss_sum, sw_sum


@jit(inline="always")
def predict_batches(X, params, spec, out, abuf, xbuf):
    """Output activations of every row of X into ``out``, in chunks of the buffers' size.

    ``abuf`` holds ``batch_max`` rows of every layer's units; ``xbuf`` is
    not used (the rows go in order: dense chunks are slices of ``X_dense``).

    Parameters
    ----------
    X : tuple
        The input, ``(X_dense, X_data, X_indices, X_indptr, is_sparse)``
        (:mod:`fastmlp.kernels.passes`).
    params : ndarray of shape (n_params,)
        Weights then intercepts, packed (:mod:`fastmlp.kernels.packing`).
    spec : NetworkSpec
        The network (:class:`NetworkSpec`); its dropout is not used.
    out : ndarray of shape (n_samples, n_outputs)
        Receives the output activations.
    abuf : ndarray
        Work array: activations (:mod:`fastmlp.kernels.packing`).
    xbuf : ndarray
        Work array: the batch's gathered input rows.
    """
    layer_sizes = spec.layer_sizes
    offsets = layout(layer_sizes)
    unit_off = offsets[2]
    n_weight_layers = layer_sizes.shape[0] - 1
    n = out.shape[0]
    units = unit_off[n_weight_layers] + layer_sizes[n_weight_layers]
    batch_max = abuf.shape[0] // units
    order = np.arange(n)
    out_code = spec.act_codes[n_weight_layers - 1]
    plain = without_dropout(spec)
    # no gates (plain activations, no dropout); no deltas (abuf stands in)
    work = (abuf, abuf, abuf[:0], xbuf)
    for start in range(0, n, batch_max):
        nb = min(batch_max, n - start)
        z = forward_batch(
            X, order, unliteral(True), start, nb, params, plain, offsets, batch_max, work
        )
        activate_2d(z, out_code, spec.act_param)
        for r in range(nb):  # (see the gather in forward_batch)
            for j in range(z.shape[1]):
                out[start + r, j] = z[r, j]


@jit(inline="always")
def _predict_chunk(chunk_index, h, chunk, X, params, spec, out, abuf, xbuf):
    """Rows ``chunk_index * chunk`` to the next chunk's start (or the end)
    through :func:`predict_batches`, on ``abuf[h]``; nothing past the end.

    Parameters
    ----------
    chunk_index : int
        The chunk.
    h : int
        The row of ``abuf`` to work in.
    chunk : int
        Rows per chunk.
    X, params, spec, out
        As for :func:`predict_chunks`.
    abuf, xbuf : ndarray
        :func:`predict_chunks`' work arrays.
    """
    X_dense, X_data, X_indices, X_indptr, is_sparse = X
    n = out.shape[0]
    r0 = chunk_index * chunk
    if r0 < n:
        r1 = min(n, r0 + chunk)
        # CSR rows: a slice of indptr still points into the whole data / indices
        predict_batches(
            (X_dense[r0:r1], X_data, X_indices, X_indptr[r0 : r1 + 1], is_sparse), params, spec,
            out[r0:r1], abuf[h], xbuf,
        )


@jit
def predict_chunks(X, params, spec, out, work, policy):
    """Output activations of every row of X into ``out``, in chunks of rows
    taken ``abuf.shape[0]`` at a time.

    A chunk holds as many rows as a row of ``abuf`` (shape ``(g, m)``) holds
    units of every layer. Per group of ``g`` chunks, ``policy``
    (:mod:`fastmlp.kernels.thread_policy`) runs them as tasks on Numba's thread
    pool, one chunk per task (``set_chunk_size(1)``: with TBB, a thread
    that the scheduler parks leaves the chunks it has not started to the
    other; measured beside two busy processes, the policy then kept the
    threads and predicted 1.2-1.4x faster than on one thread, where with the
    default two halves per group it judged them slower) or one after the other
    on this thread: the same arithmetic, so the same bits. BLAS is called
    from every thread: limit it to one thread for the call (its results also
    depend on its own thread count).

    Parameters
    ----------
    X : tuple
        The input, ``(X_dense, X_data, X_indices, X_indptr, is_sparse)``
        (:mod:`fastmlp.kernels.passes`).
    params : ndarray of shape (n_params,)
        Weights then intercepts, packed (:mod:`fastmlp.kernels.packing`).
    spec : NetworkSpec
        The network (:class:`NetworkSpec`; its layers and activations).
    out : ndarray of shape (n_samples, n_outputs)
        Receives the output activations.
    work : tuple of ndarray
        Work arrays ``(abuf, xbuf)``: ``abuf`` of shape ``(g, m)``, per task of
        a group of ``g``, the activations of a chunk of ``m // units`` rows;
        ``xbuf``, per task, a chunk's gathered input rows (CSR input).
    policy : ndarray of float64 or None
        Thread policy of this kind of step (:mod:`fastmlp.kernels.thread_policy`);
        updated. None: one thread, and Numba compiles a version without the
        parallel region (for where threads cannot be used, and until the
        threaded version is worth compiling).
    """
    layer_sizes = spec.layer_sizes
    abuf, xbuf = work
    n = out.shape[0]
    n_weight_layers = layer_sizes.shape[0] - 1
    units = 0
    for l in range(1, n_weight_layers + 1):
        units += layer_sizes[l]
    group = abuf.shape[0]
    chunk = abuf.shape[1] // units
    n_chunks = (n + chunk - 1) // chunk
    # (``policy is not None``: Numba compiles the threaded branch only then)
    if policy is not None:
        begin_call(policy, n_chunks // group)
    for first in range(0, n_chunks, group):
        threaded = False
        started = cycles()
        if policy is not None:
            threaded = use_threads(policy) and first + 1 < n_chunks
            if threaded:
                _predict_group_threaded(first, chunk, X, params, spec, out, abuf, xbuf)
        if not threaded:
            for h in range(group):
                _predict_chunk(first + h, h, chunk, X, params, spec, out, abuf, xbuf)
        if policy is not None:
            if first + 1 < n_chunks:
                rows = min(n, (first + group) * chunk) - first * chunk
                record_step(policy, threaded, cycles() - started, rows)


# The prange loops live in small functions of their own, called only with a
# policy: the kernels' versions without one then hold no parallel region.
@jit(parallel=PRANGE_ONLY, internal=True)
def _predict_group_threaded(first, chunk, X, params, spec, out, abuf, xbuf):
    """Chunks ``first`` to ``first + abuf.shape[0] - 1`` of :func:`predict_chunks`,
    one task each on Numba's thread pool.

    Parameters
    ----------
    first : int
        The group's first chunk.
    chunk : int
        Rows per chunk.
    X, params, spec, out
        As for :func:`predict_chunks`.
    abuf, xbuf : ndarray
        :func:`predict_chunks`' work arrays.
    """
    previous = set_chunk_size(1)
    for h in prange(abuf.shape[0]):
        _predict_chunk(first + np.int64(h), np.int64(h), chunk, X, params, spec, out, abuf, xbuf)
    set_chunk_size(previous)


@jit
def loss_and_gradients(X, Y, sample_weight, params, spec, loss_scale, alpha, grads, work):
    """Loss and gradients at the current weights over all rows, as scikit-learn's ``_backprop``.

    ``loss = loss_scale * sum(w_i * loss_i) / sum(w) + 0.5 * alpha * ||W||^2 / sum(w)``;
    ``grads`` receives ``(A.T @ delta + alpha * W) / sum(w)`` and ``sum(delta) / sum(w)``
    in the packed layout. The buffers must hold all rows at once (``xbuf`` is
    not used: the rows are taken in order, straight from ``X_dense``). No dropout:
    the objective stays deterministic (L-BFGS, gradient checks).

    Parameters
    ----------
    X : tuple
        The input, ``(X_dense, X_data, X_indices, X_indptr, is_sparse)``
        (:mod:`fastmlp.kernels.passes`).
    Y : ndarray of shape (n_samples, n_outputs)
        Targets: one-hot for softmax, 0/1 for logistic, real otherwise.
    sample_weight : ndarray of shape (n_samples,)
        Weight of every row.
    params : ndarray of shape (n_params,)
        Weights then intercepts, packed (:mod:`fastmlp.kernels.packing`).
    spec : NetworkSpec
        The network (:class:`NetworkSpec`); its dropout is not used.
    loss_scale : float
        Factor on the data term of the reported loss (not on the gradient).
    alpha : float
        L2 penalty.
    grads : ndarray of shape (n_params,)
        Receives the gradient, packed as ``params``.
    work : tuple of ndarray
        Work arrays ``(abuf, dbuf, gbuf, xbuf)``: activations
        (:mod:`fastmlp.kernels.packing`), deltas and gates (GELU; empty when
        no layer needs them) laid out as the activations; ``xbuf`` is unused
        (the rows are taken in order, straight from X).
    """
    offsets = layout(spec.layer_sizes)
    n = Y.shape[0]
    order = np.arange(n)
    loss_sum, sw_sum = batch_loss_and_raw_gradients(
        X, Y, sample_weight, order, unliteral(True), unliteral(0), n, params,
        without_dropout(spec), offsets, n, work, grads, unliteral(0), unliteral(False),
    )
    n_coef = offsets[1][0]
    inv = 1.0 / sw_sum
    for i in range(n_coef):
        grads[i] = (grads[i] + alpha * params[i]) * inv
    for i in range(n_coef, params.shape[0]):
        grads[i] = grads[i] * inv
    sq = coef_sq_norm(params, n_coef)
    return loss_scale * loss_sum / sw_sum + 0.5 * alpha * sq / sw_sum


@jit(internal=True)
def _objective_half(
    h, X, Y, sample_weight, order, params, plain, offsets, half_max, work, half_loss, half_weight
):
    """Half ``h`` of the rows (the first ``ceil(n / 2)``, then the rest): loss
    and weight sums into ``half_loss[h]`` / ``half_weight[h]``, unscaled
    gradients into ``half_grads[h]``.

    Parameters
    ----------
    h : int
        The half, 0 or 1.
    X, Y, sample_weight, params, work
        As for :func:`loss_and_gradients_split`.
    order : ndarray of int64
        Every row, in order.
    plain : NetworkSpec
        The network without dropout (:func:`without_dropout`).
    offsets : tuple of ndarray
        The offsets of :func:`~fastmlp.kernels.packing.layout`.
    half_max : int
        The rows a half's work arrays hold, ``ceil(n / 2)``.
    half_loss, half_weight : ndarray of shape (2,)
        Receive the half's loss and weight sums.
    """
    half_grads, abuf, dbuf, gbuf, xbuf = work
    n = order.shape[0]
    first = (n + 1) // 2
    h_rows = first if h == 0 else n - first
    if h_rows > 0:
        result = batch_loss_and_raw_gradients(
            X, Y, sample_weight, order, unliteral(True), h * first, h_rows, params, plain,
            offsets, half_max, (abuf[h], dbuf[h], gbuf[h], xbuf), half_grads[h], unliteral(0),
            unliteral(False),
        )
        half_loss[h] = result[0]
        half_weight[h] = result[1]
    else:
        half_loss[h] = 0.0
        half_weight[h] = 0.0
        for i in range(half_grads.shape[1]):
            half_grads[h, i] = 0


@jit
def loss_and_gradients_split(
    X, Y, sample_weight, params, spec, loss_scale, alpha, grads, work, policy
):
    """:func:`loss_and_gradients` over the rows in two halves, summed.

    The halves (the first ``ceil(n / 2)`` rows, then the rest) run on two
    threads or one after the other on this thread, as ``policy``
    (:mod:`fastmlp.kernels.thread_policy`) chooses: the same arithmetic either way.
    The results equal :func:`loss_and_gradients`'s up to rounding (each sum in
    two parts). ``half_grads`` has shape ``(2, n_params)``; ``abuf``, ``dbuf``
    and ``gbuf`` a leading axis of 2, each row for ``ceil(n / 2)`` rows. BLAS
    is called from both threads: limit it to one thread for the call.

    Parameters
    ----------
    X : tuple
        The input, ``(X_dense, X_data, X_indices, X_indptr, is_sparse)``
        (:mod:`fastmlp.kernels.passes`).
    Y : ndarray of shape (n_samples, n_outputs)
        Targets: one-hot for softmax, 0/1 for logistic, real otherwise.
    sample_weight : ndarray of shape (n_samples,)
        Weight of every row.
    params : ndarray of shape (n_params,)
        Weights then intercepts, packed (:mod:`fastmlp.kernels.packing`).
    spec : NetworkSpec
        The network (:class:`NetworkSpec`); its dropout is not used.
    loss_scale : float
        Factor on the data term of the reported loss (not on the gradient).
    alpha : float
        L2 penalty.
    grads : ndarray of shape (n_params,)
        Receives the gradient, packed as ``params``.
    work : tuple of ndarray
        Work arrays ``(half_grads, abuf, dbuf, gbuf, xbuf)``: each half's
        gradient (shape ``(2, n_params)``), activations, deltas and gates
        (shape ``(2, m)``); ``xbuf`` is unused (the rows are taken in order).
    policy : ndarray of float64 or None
        Thread policy of this kind of step (:mod:`fastmlp.kernels.thread_policy`);
        updated. None: one thread, compiled without the parallel region (as
        :func:`predict_chunks`).
    """
    half_grads = work[0]
    offsets = layout(spec.layer_sizes)
    plain = without_dropout(spec)
    n = Y.shape[0]
    order = np.arange(n)
    half_max = max((n + 1) // 2, 1)
    half_loss = np.zeros(2)
    half_weight = np.zeros(2)
    threaded = False
    started = cycles()
    if policy is not None:
        threaded = use_threads(policy)
        if threaded:
            _objective_halves_threaded(
                X, Y, sample_weight, order, params, plain, offsets, half_max, work, half_loss,
                half_weight,
            )
    if not threaded:
        for h in range(2):
            _objective_half(
                h, X, Y, sample_weight, order, params, plain, offsets, half_max, work, half_loss,
                half_weight,
            )
    if policy is not None:
        record_step(policy, threaded, cycles() - started, n)
    loss_sum = half_loss[0] + half_loss[1]
    sw_sum = half_weight[0] + half_weight[1]
    n_coef = offsets[1][0]
    inv = 1.0 / sw_sum
    for i in range(n_coef):
        grads[i] = (half_grads[0, i] + half_grads[1, i] + alpha * params[i]) * inv
    for i in range(n_coef, params.shape[0]):
        grads[i] = (half_grads[0, i] + half_grads[1, i]) * inv
    sq = coef_sq_norm(params, n_coef)
    return loss_scale * loss_sum / sw_sum + 0.5 * alpha * sq / sw_sum


@jit(parallel=PRANGE_ONLY, internal=True)
def _objective_halves_threaded(
    X, Y, sample_weight, order, params, plain, offsets, half_max, work, half_loss, half_weight
):
    """Both halves of :func:`loss_and_gradients_split`, on two threads.

    Parameters as :func:`_objective_half`'s, without ``h``.
    """
    for h in prange(2):
        _objective_half(
            np.int64(h), X, Y, sample_weight, order, params, plain, offsets, half_max, work,
            half_loss, half_weight,
        )
