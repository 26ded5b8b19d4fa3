"""Fused dense layers: ``out = act(a @ W + b)`` into a preallocated buffer.

Three forms: one sample (a loop over inputs, skipping zero inputs, that streams
the rows of ``W`` contiguously), a batch (BLAS ``gemm`` through ``np.dot``), and
one row of a CSR matrix (touching only its non-zero inputs).
"""

import numpy as np

from ._jit import jit
from .activations import activate_2d, activate_inplace


@jit
def affine_vector(x, W, b, out):
    """``out = x @ W + b`` for one sample (``W`` C-contiguous ``(n_in, n_out)``).

    Streams the rows of ``W`` and skips zero inputs (sparse data, dead relus).
    ``W[k, j]`` rather than a row view ``W[k]``: a view per row costs two
    atomic reference-count updates.
    The intercept is added last, as ``x @ W + b`` does.

    Parameters
    ----------
    x : ndarray of shape (n_in,)
        The sample (or a hidden layer's activations).
    W : ndarray of shape (n_in, n_out), C-contiguous
        The layer's weights.
    b : ndarray of shape (n_out,)
        The layer's intercepts.
    out : ndarray of shape (n_out,)
        Receives ``x @ W + b``.
    """
    n_in, n_out = W.shape
    for j in range(n_out):
        out[j] = 0
    for k in range(n_in):
        xk = x[k]
        if xk != 0:
            for j in range(n_out):
                out[j] += xk * W[k, j]
    for j in range(n_out):
        out[j] += b[j]


@jit
def affine_csr_row(data, indices, row_start, row_end, W, b, out):
    """``out = x @ W + b`` for one row ``x`` of a CSR matrix, touching only
    the rows of ``W`` of its non-zero columns.

    Parameters
    ----------
    data, indices : ndarray
        The CSR matrix's values and column indices.
    row_start, row_end : int
        The row's entries: ``data[row_start:row_end]`` (from ``indptr``).
    W : ndarray of shape (n_features, n_out), C-contiguous
        The first layer's weights.
    b : ndarray of shape (n_out,)
        Its intercepts.
    out : ndarray of shape (n_out,)
        Receives ``x @ W + b``.
    """
    n_out = W.shape[1]
    for j in range(n_out):
        out[j] = 0
    for p in range(row_start, row_end):
        xk = data[p]
        k = indices[p]
        for j in range(n_out):
            out[j] += xk * W[k, j]
    for j in range(n_out):
        out[j] += b[j]


@jit
def dense_forward_vector(x, W, b, act_code, act_param, out):
    """One sample through a dense layer: ``out = act(x @ W + b)``.

    Parameters
    ----------
    x : ndarray of shape (n_in,)
    W : C-contiguous ndarray of shape (n_in, n_out)
    b : ndarray of shape (n_out,)
    act_code : int
        Activation code (see ``fastmlp.kernels.activations``).
    act_param : float
        Leaky relu slope.
    out : ndarray of shape (n_out,)
        Receives the activation.
    """
    affine_vector(x, W, b, out)
    activate_inplace(out, act_code, act_param)


@jit
def dense_forward_csr_row(data, indices, row_start, row_end, W, b, act_code, act_param, out):
    """One CSR row through a dense layer, touching only its non-zero inputs:
    :func:`affine_csr_row`, then the activation.

    Parameters
    ----------
    data, indices : ndarray
        The CSR matrix's values and column indices.
    row_start, row_end : int
        The row's entries (from ``indptr``).
    W : ndarray of shape (n_features, n_out), C-contiguous
    b : ndarray of shape (n_out,)
    act_code : int
        Activation code (see ``fastmlp.kernels.activations``).
    act_param : float
        Leaky relu slope.
    out : ndarray of shape (n_out,)
        Receives the activation.
    """
    affine_csr_row(data, indices, row_start, row_end, W, b, out)
    activate_inplace(out, act_code, act_param)


@jit
def dense_forward_batch(A, W, b, act_code, act_param, out):
    """A batch through a dense layer with BLAS: ``out = act(A @ W + b)``.

    Parameters
    ----------
    A : ndarray of shape (n, n_in), C-contiguous
        The batch (or the layer below's activations).
    W : ndarray of shape (n_in, n_out), C-contiguous
    b : ndarray of shape (n_out,)
    act_code : int
        Activation code (softmax row by row).
    act_param : float
        Leaky relu slope.
    out : ndarray of shape (n, n_out), C-contiguous
        Receives the activations.
    """
    np.dot(A, W, out)
    add_bias_rows(out, b)
    activate_2d(out, act_code, act_param)


@jit
def add_bias_rows(out, b):
    """``out[r] += b`` for every row of the 2-D array ``out``.

    Parameters
    ----------
    out : ndarray of shape (n, m)
        Updated in place.
    b : ndarray of shape (m,)
    """
    for r in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[r, j] += b[j]
