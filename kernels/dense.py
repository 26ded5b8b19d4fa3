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
    """``out = x @ W + b`` for the CSR row ``data/indices[row_start:row_end]``."""
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
    """One CSR row through a dense layer, touching only its non-zero inputs."""
    affine_csr_row(data, indices, row_start, row_end, W, b, out)
    activate_inplace(out, act_code, act_param)


@jit
def dense_forward_batch(A, W, b, act_code, act_param, out):
    """A batch through a dense layer with BLAS: ``out = act(A @ W + b)``.

    ``A`` (n, n_in), ``W`` (n_in, n_out) and ``out`` (n, n_out) are C-contiguous.
    """
    np.dot(A, W, out)
    add_bias_rows(out, b)
    activate_2d(out, act_code, act_param)


@jit
def add_bias_rows(out, b):
    """``out[r] += b`` for every row of the 2-D array ``out``."""
    for r in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[r, j] += b[j]
