"""One decorator policy for every kernel.

Every kernel is compiled with ``cache=True`` (unless ``FASTMLP_CACHE=0``, useful
where the on-disk cache misbehaves, e.g. under some multiprocessing setups),
``nogil=True`` so that two models can train in two threads, and
``error_model="numpy"`` so that a division by zero gives inf/nan instead of
raising inside a compiled loop. ``fastmath`` stays off: the epoch loops must
see NaN and inf to stop on them.
"""

import os

import numba

CACHE = os.environ.get("FASTMLP_CACHE", "1") not in ("0", "false", "False", "no")


def jit(func=None, **overrides):
    """Compile ``func`` with the project's Numba options (see module docstring)."""
    options = dict(cache=CACHE, nogil=True, error_model="numpy", fastmath=False)
    options.update(overrides)
    if func is None:
        return lambda f: numba.njit(**options)(f)
    return numba.njit(**options)(func)
