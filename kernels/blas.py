"""A BLAS call that ``np.dot`` cannot make: a gemm on a strided block, with beta.

Numba's ``np.dot`` needs contiguous operands and overwrites its output. The
split mini-batch epoch forms the first layer's gradient in row blocks,
``G[k0:k1] = X[:, k0:k1].T @ D`` (a column block of the gathered rows, so a
leading dimension wider than the block), summed over two halves of the batch
(beta = 1 for the second). This calls Numba's own BLAS entry point
(``numba_xxgemm``, SciPy's BLAS underneath, the one ``np.dot`` uses), which
keeps the kernels cacheable.
"""

import numpy as np
from numba import types
from numba.core.extending import intrinsic, overload
from numba.np.linalg import _BLAS, ensure_blas

from ._jit import DISABLE_JIT, jit


@intrinsic
def _address(typingctx, array, offset):
    """Pointer to ``array``'s element at flat ``offset`` (from its first element).

    Parameters
    ----------
    array : ndarray
    offset : int
    """
    sig = types.CPointer(array.dtype)(array, offset)

    def codegen(context, builder, signature, args):
        ary = context.make_array(signature.args[0])(context, builder, args[0])
        return builder.gep(ary.data, [args[1]])

    return sig, codegen


def _xxgemm(kind, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
    """Column-major ``c = alpha * a @ b.T + beta * c`` (see the overload).

    Parameters
    ----------
    kind : int
        Unused (the dtype comes from ``a``).
    m, n, k : int
        ``c`` is ``m x n``, the product's inner dimension ``k``.
    alpha, beta : pointer
        The scalars, in the arrays' dtype.
    a, b, c : pointer
        The matrices' first elements.
    lda, ldb, ldc : int
        Their leading dimensions.
    """


@overload(_xxgemm)
def _xxgemm_impl(kind, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
    """Numba's ``numba_xxgemm`` for the arrays' dtype (parameters as :func:`_xxgemm`)."""
    ensure_blas()
    gemm = _BLAS().numba_xxgemm(a.dtype)
    code = np.int8(ord("d") if a.dtype == types.float64 else ord("s"))
    no_trans = np.int8(ord("N"))
    trans = np.int8(ord("T"))

    def impl(kind, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
        return gemm(code, no_trans, trans, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)

    return impl


@jit
def gemm_rows_at_b(D_flat, d_off, n_out, A, k0, k1, n_in, n_rows, G_flat, scalars, beta_index):
    """``G[k0:k1] = A[:n_rows, k0:k1].T @ D + beta * G[k0:k1]`` for row-major matrices.

    Parameters
    ----------
    D_flat : ndarray
        Holds ``D`` of shape (n_rows, n_out), row-major, from ``D_flat[d_off]``.
    d_off, n_out : int
    A : ndarray of shape (>= n_rows, n_in), C-contiguous
    k0, k1 : int
        The block of columns of ``A``, rows of ``G``.
    n_in, n_rows : int
    G_flat : ndarray of shape (n_in * n_out,)
        ``G`` (n_in, n_out), row-major; only rows ``k0:k1`` are written.
    scalars : ndarray of shape (3,)
        ``[1, 0, 1]`` in the arrays' dtype: alpha, then the two betas.
    beta_index : int
        1 to overwrite ``G[k0:k1]``, 2 to add to it.

    Returns
    -------
    status : int
        BLAS wrapper status (0 on success).
    """
    # row-major G (m x n_out) is column-major G' (n_out x m) = D' @ A'.T,
    # where D' is D seen column-major and A' the block of A (leading dim n_in)
    return _xxgemm(
        0, n_out, k1 - k0, n_rows, _address(scalars, 0), _address(D_flat, d_off), n_out,
        _address(A, k0), n_in, _address(scalars, beta_index), _address(G_flat, k0 * n_out),
        n_out,
    )


if DISABLE_JIT:

    def gemm_rows_at_b(
        D_flat, d_off, n_out, A, k0, k1, n_in, n_rows, G_flat, scalars, beta_index
    ):
        """NumPy twin of the compiled :func:`gemm_rows_at_b` (same contract)."""
        D = D_flat[d_off : d_off + n_rows * n_out].reshape(n_rows, n_out)
        G = G_flat[k0 * n_out : k1 * n_out].reshape(k1 - k0, n_out)
        product = scalars[0] * (A.reshape(-1, n_in)[:n_rows, k0:k1].T @ D)
        beta = scalars[beta_index]
        if beta == 0:  # as BLAS: G is not read
            G[...] = product
        else:
            G[...] = product + beta * G
        return 0
