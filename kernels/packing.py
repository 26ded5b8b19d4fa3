"""The packed layout of a network's parameters and work arrays.

Parameters are packed as scikit-learn's ``_pack`` does: every layer's weights
(row-major ``(fan_in, fan_out)``) one after another, then every layer's
intercepts. ``layer_sizes`` (int64) gives the width of every layer, inputs
first; ``act_codes`` (int64) has one activation per weight layer, the output
activation last.

Activation buffers are flat: layer ``l`` (1..L) of a batch of ``nb`` rows lives
at ``buf[batch_max * unit_off[l]:][:nb * layer_sizes[l]]`` as a C-contiguous
``(nb, layer_sizes[l])`` block; the per-sample kernels use ``batch_max = 1``.
The gate buffer ``gbuf`` has the same layout (see
:func:`fastmlp.kernels.activations.activate_hidden`); it is empty when no hidden
layer needs it (no GELU, no dropout).

The epochs report their outcome in ``info[1]``: :data:`STATUS_OK`,
:data:`STATUS_NONFINITE_LOSS` or :data:`STATUS_NONFINITE_WEIGHTS`.
"""

import numpy as np

from ._jit import jit
from .optimizers import zero_like

STATUS_OK = 0


STATUS_NONFINITE_LOSS = 1


STATUS_NONFINITE_WEIGHTS = 2


@jit
def layout(layer_sizes):
    """Offsets of each layer's weights, intercepts and units in the flat arrays.

    Parameters
    ----------
    layer_sizes : ndarray of int64
        Width of every layer, inputs first.

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
    """Sum of squares of the weights (the first ``n_coef`` parameters).

    Parameters
    ----------
    params : ndarray of shape (n_params,)
        The packed parameters.
    n_coef : int
        The number of weights (the start of the intercepts, ``b_off[0]``).

    Returns
    -------
    sq_norm : float
        In the parameters' dtype.
    """
    sq = zero_like(params[0])
    for i in range(n_coef):
        sq += params[i] * params[i]
    return sq


@jit(inline="always")
def weight_view(params, w_off, layer_sizes, l):
    """Layer ``l``'s weights as a C-contiguous ``(fan_in, fan_out)`` view of ``params``.

    Parameters
    ----------
    params : ndarray of shape (n_params,)
        The packed parameters, or an optimizer state laid out as they are.
    w_off : ndarray of int64
        Start of each layer's weights (:func:`layout`).
    layer_sizes : ndarray of int64
        Width of every layer, inputs first.
    l : int
        The weight layer, from 0 (inputs to the first hidden layer).
    """
    fi = layer_sizes[l]
    fo = layer_sizes[l + 1]
    return params[w_off[l] : w_off[l] + fi * fo].reshape((fi, fo))


@jit(inline="always")
def bias_view(params, b_off, layer_sizes, l):
    """Layer ``l``'s intercepts as a view of ``params``.

    Parameters
    ----------
    params : ndarray of shape (n_params,)
        The packed parameters, or an optimizer state laid out as they are.
    b_off : ndarray of int64
        Start of each layer's intercepts (:func:`layout`).
    layer_sizes : ndarray of int64
        Width of every layer, inputs first.
    l : int
        The weight layer, from 0.
    """
    return params[b_off[l] : b_off[l] + layer_sizes[l + 1]]


@jit(inline="always")
def row_view(flat, start, stop):
    """``flat[start:stop]`` as a ``(1, stop - start)`` view: a block of
    parameters seen as one row, for the optimizer steps' 2-D form.

    Parameters
    ----------
    flat : ndarray, 1-D
        The array to view.
    start, stop : int
        The elements to take.
    """
    return flat[start:stop].reshape((1, stop - start))


@jit(inline="always")
def batch_block(buf, batch_max, unit_off, layer_sizes, l, nb):
    """Layer ``l``'s units for ``nb`` rows of a batch, as an ``(nb, width)`` view.

    Parameters
    ----------
    buf : ndarray, 1-D
        A flat activation or delta buffer (see the module docstring).
    batch_max : int
        The rows the buffer holds per layer (1 for the per-sample kernels).
    unit_off : ndarray of int64
        Start of each layer's units per row (:func:`layout`).
    layer_sizes : ndarray of int64
        Width of every layer, inputs first.
    l : int
        The layer, from 1 (the first hidden layer).
    nb : int
        The batch's rows, at most ``batch_max``.
    """
    start = batch_max * unit_off[l]
    return buf[start : start + nb * layer_sizes[l]].reshape((nb, layer_sizes[l]))


@jit(inline="always")
def gate_view(gbuf, batch_max, unit_off, layer_sizes, l, nb):
    """Layer ``l``'s gates for ``nb`` rows, flat (empty when ``gbuf`` is).

    Parameters
    ----------
    gbuf : ndarray, 1-D
        The gate buffer, laid out as the activations' (empty when no layer
        needs gates).
    batch_max, unit_off, layer_sizes, l, nb
        As for :func:`batch_block`.
    """
    start = batch_max * unit_off[l]
    return gbuf[start : start + nb * layer_sizes[l]]
