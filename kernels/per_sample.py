"""The per-sample (``batch_size=1``) SGD epoch: one compiled pass per sample.

Arguments as in :mod:`fastmlp.kernels.passes`; optimizer codes,
hyper-parameters and state as in :mod:`fastmlp.kernels.optimizers`.
"""


import numpy as np
from numba import prange

from ._jit import PRANGE_ONLY, jit, unliteral
from .activations import activate_hidden, backprop_activation
from .dense import affine_csr_row, affine_vector
from .epoch import begin_epoch, end_step, loss_is_finite
from .losses import output_loss_and_delta
from .optimizers import (
    BLOCKED_LAYER_SIZE,
    H_ALPHA,
    H_MOMENTUM,
    ROW_BLOCKS,
    SGD,
    step_learning_rate,
    sum_block_parts,
    update_layer,
    update_rank1,
    update_rank1_fused,
    zero_like,
)
from .packing import (
    bias_view,
    coef_sq_norm,
    layout,
    row_view,
    weight_view,
)
from .thread_policy import begin_call, cycles, record_step, use_threads


@jit
def sgd_epoch(X, Y, sample_weight, order, params, spec, loss_scale, optimizer, work, info, policy):
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
    ``policy`` (:mod:`fastmlp.kernels.thread_policy`) runs threaded; when the first
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
    ``optimizer.step`` as there.

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
        Work arrays ``(abuf, dbuf, gbuf, xwork)``: activations
        (:mod:`fastmlp.kernels.packing`), deltas and gates (GELU, dropout;
        empty when no layer needs them) laid out as the activations, for one
        row; ``xwork``, for CSR input, n_features zeros (empty for dense
        input).
    info : ndarray of int64, shape (2,)
        Receives the rows done and a status (:mod:`fastmlp.kernels.epoch`).
    policy : ndarray of float64 or None
        Thread policy of this kind of step (:mod:`fastmlp.kernels.thread_policy`);
        updated. None: never threaded, and Numba compiles a version without
        the parallel regions (about a third less to compile; for networks
        with no layer big enough to thread, see :func:`threadable_layers`,
        and until the threaded version is worth compiling).
    """
    X_dense, X_data, X_indices, X_indptr, is_sparse = X
    layer_sizes, act_codes, act_param, drop_rates, rng_state, loss_code, loss_param = spec
    opt, lr, hyper, state1, state2, step = optimizer
    abuf, dbuf, gbuf, xwork = work
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
    flush_at = begin_epoch(info, opt, hyper, state1)
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
    B = row_view(params, n_coef, params.shape[0])
    SB1 = row_view(state1, n_coef, params.shape[0])
    SB2 = row_view(state2, n_coef, params.shape[0])
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
    threadable = threadable_layers(layer_sizes, is_sparse)
    for l in range(1, n_weight_layers):
        if layer_sizes[l] * layer_sizes[l + 1] >= BLOCKED_LAYER_SIZE and layer_sizes[l] > 1:
            can_overlap = False
    upper_out = np.zeros(2, dtype=params.dtype)
    # (``policy is not None``: Numba compiles the threaded branches only then)
    if policy is not None:
        if threadable:
            begin_call(policy, n)
    for s in range(n):
        i = order[s]
        w = sample_weight[i]
        if w == 0:
            info[0] = s + 1
            continue
        threaded = False
        if policy is not None:
            threaded = threadable and use_threads(policy)
        threads = _threads_flag(policy, threaded)  # None: compiled without the threaded code
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
        if not loss_is_finite(info, sample_loss):
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
        lr_t = step_learning_rate(opt, lr, hyper, step, scratch)
        inv = one / w
        d0 = dbuf[unit_off[1] : unit_off[1] + layer_sizes[1]]
        overlap = False
        if policy is not None:
            overlap = threaded and can_overlap and s_next < n
            if overlap:
                # the first layer's row blocks and the upper layers in one parallel
                # region (the upper layers as one more task, on the first thread)
                _step_first_and_upper_threaded(
                    opt, W0, V01, V02, X_dense[i], d0, alpha, inv, lr_t, hyper,
                    X_dense[order[s_next]], n_blocks0, sq_parts, out_parts, params, state1,
                    state2, layer_sizes, w_off, unit_off, abuf, dbuf, outer, unit, B, SB1, SB2,
                    d_all, upper_out,
                )
                sq0 = sum_block_parts(sq_parts, out_parts, n_blocks0, z_next)
                pending = s_next
                sq_up = upper_out[0]
                bsq = upper_out[1]
        if not overlap:
            if not is_sparse:
                if s_next < n:
                    sq0 = update_layer(
                        opt, W0, V01, V02, X_dense[i], d0, alpha, inv, lr_t, hyper,
                        X_dense[order[s_next]], z_next, threads, sq_parts, out_parts,
                    )
                    pending = s_next
                else:
                    sq0 = update_layer(
                        opt, W0, V01, V02, X_dense[i], d0, alpha, inv, lr_t, hyper, no_rows,
                        no_rows, threads, sq_parts, out_parts,
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
                unit, B, SB1, SB2, d_all, alpha, inv, lr_t, hyper, threads, sq_parts, out_parts,
            )
        sq = sq0 + sq_up
        if policy is not None:
            if threadable:
                record_step(policy, threaded, cycles() - started, 1)
        n_steps += 1
        if not end_step(info, s + 1, sq, bsq, n_steps, flush_at, state1):
            return total
    return total


@jit(inline="always")
def threadable_layers(layer_sizes, is_sparse):
    """Whether :func:`sgd_epoch` can run any step on the thread pool: when a
    layer has ``BLOCKED_LAYER_SIZE`` weights or more (not a CSR first layer,
    whose step is scattered by row). Otherwise pass it ``policy=None``.

    Parameters
    ----------
    layer_sizes : ndarray of int64
        Width of every layer, inputs first.
    is_sparse : bool
        Whether the input is CSR.

    Returns
    -------
    bool
    """
    for l in range(layer_sizes.shape[0] - 1):
        big = layer_sizes[l] * layer_sizes[l + 1] >= BLOCKED_LAYER_SIZE and layer_sizes[l] > 1
        if big and (l > 0 or not is_sparse):
            return True
    return False


@jit(internal=True)  # not inlined: its return type must follow the type of ``policy``
def _threads_flag(policy, threaded):
    """``threaded``, or None without a policy (typed ``none``: the callees that
    take it then compile without their threaded branch).

    Parameters
    ----------
    policy : ndarray of float64 or None
        The epoch's thread policy.
    threaded : bool
        Whether this step runs threaded.
    """
    if policy is None:
        return None
    return threaded


@jit(internal=True)
def _update_upper_layers(
    opt, params, state1, state2, layer_sizes, w_off, unit_off, abuf, dbuf, outer, unit, B, SB1,
    SB2, d_all, alpha, inv, lr_t, hyper, threaded, sq_parts, out_parts,
):
    """One sample's step of every layer but the first, then of all intercepts.

    Parameters
    ----------
    opt, hyper, lr_t, alpha, inv : int, ndarray, float, float, float
        Optimizer code and constants, this step's learning rate, the L2
        penalty and the inverse of the sample's weight.
    params, state1, state2 : ndarray of shape (n_params,)
        The packed parameters and optimizer states; updated.
    layer_sizes, w_off, unit_off : ndarray of int64
        Layer widths and the offsets of :func:`~fastmlp.kernels.packing.layout`.
    abuf, dbuf : ndarray
        The sample's activations and deltas.
    outer : ndarray
        Scratch for short rows' outer products (:func:`_outer_size`).
    unit : ndarray of shape (1,)
        Scratch; set to 1.
    B, SB1, SB2 : ndarray of shape (1, n_units)
        Every intercept as one row, and its optimizer states.
    d_all : ndarray of shape (n_units,)
        Every layer's deltas, lined up with ``B``.
    threaded : bool or None
        As for :func:`~fastmlp.kernels.optimizers.update_layer`.
    sq_parts, out_parts : ndarray
        Scratch of :func:`~fastmlp.kernels.optimizers.update_layer`.

    Returns
    -------
    sq, bsq : float
        Sums of squares of those layers' updated weights and of the
        intercepts.
    """
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
                opt, row_view(params, w_off[l], w_off[l] + size),
                row_view(state1, w_off[l], w_off[l] + size),
                row_view(state2, w_off[l], w_off[l] + size), unit, outer[:size], alpha, inv,
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


@jit(parallel=PRANGE_ONLY, internal=True)
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
    :func:`sum_block_parts`.

    Parameters
    ----------
    opt, W0, V01, V02, x, d0, alpha, inv, lr_t, hyper, x_next, sq_parts, out_parts
        The first layer's step, as :func:`~fastmlp.kernels.optimizers.update_layer`'s
        arguments.
    n_blocks : int
        The first layer's row blocks.
    params, state1, state2, layer_sizes, w_off, unit_off, abuf, dbuf
        The upper layers' step, as :func:`_update_upper_layers`' arguments.
    outer, unit, B, SB1, SB2, d_all
        Also as :func:`_update_upper_layers`' arguments.
    upper_out : ndarray of shape (2,)
        Receives :func:`_update_upper_layers`' two sums.
    """
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


@jit(internal=True)
def _outer_size(layer_sizes):
    """Scratch for :func:`sgd_epoch`'s short-row layers: their largest size.

    Parameters
    ----------
    layer_sizes : ndarray of int64
        Width of every layer, inputs first.

    Returns
    -------
    int
    """
    size = 0
    for l in range(1, layer_sizes.shape[0] - 1):
        fi_fo = layer_sizes[l] * layer_sizes[l + 1]
        if layer_sizes[l + 1] < SHORT_ROW and fi_fo < BLOCKED_LAYER_SIZE:
            size = max(size, fi_fo)
    return size


@jit(fastmath={"reassoc"}, internal=True)
def _matvec(W, b, out):
    """``out = W @ b``, row by row with ``W[k, j]`` indexing: no row views and
    one call per layer, since each view or call costs atomic reference counts.

    Parameters
    ----------
    W : ndarray of shape (m, n), C-contiguous
    b : ndarray of shape (n,)
    out : ndarray of shape (m,)
        Receives ``W @ b``.
    """
    for k in range(W.shape[0]):
        acc = zero_like(b[0])
        for j in range(b.shape[0]):
            acc += W[k, j] * b[j]
        out[k] = acc
