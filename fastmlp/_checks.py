"""Cheap checks of input magnitude used by the estimators before a fit."""

import numpy as np
import scipy.sparse as sp


def largest_magnitude(A):
    """Largest ``|value|`` of the finite array or sparse matrix ``A`` (0 if empty)."""
    values = A.data if sp.issparse(A) else np.asarray(A)
    if values.size == 0:
        return 0.0
    # max and -min: two SIMD passes, no |A| temporary (A may be large)
    return float(max(values.max(), -values.min()))


def sum_of_squares(A):
    """``sum(A**2)`` of an array or sparse matrix in one BLAS pass (0 if empty).

    Finite exactly when every value is finite and no square (nor the sum)
    overflows: one cheap test for both.
    """
    values = A.data if sp.issparse(A) else np.asarray(A)
    if values.size == 0:
        return 0.0
    flat = values.ravel(order="K")
    with np.errstate(all="ignore"):
        return float(np.einsum("i,i->", flat, flat))
