import signal

import numba
import numpy as np
import pytest


@pytest.fixture
def rng():
    return np.random.RandomState(0)


@pytest.fixture(autouse=True)
def _kernels_arithmetic_as_compiled():
    """With ``NUMBA_DISABLE_JIT=1`` the kernels run as Python on NumPy scalars,
    which warn on overflow and division by zero; compiled (``error_model=
    'numpy'``) they give inf and nan silently, and the epochs test for them."""
    if numba.config.DISABLE_JIT:
        with np.errstate(all="ignore"):
            yield
    else:
        yield


@pytest.fixture
def ctrl_c_raises():
    """Python's own SIGINT handler for the test, whatever the process inherited.

    A process started in the background by a non-interactive shell (``cmd &``
    in a script, some CI runners) inherits SIGINT ignored, and then
    ``_thread.interrupt_main`` (the tests' simulated Ctrl-C) does nothing: a
    fit meant to be interrupted would run on for its ``max_iter``."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def tolerance(dtype):
    """Agreement expected with the float64 NumPy reference."""
    return (
        dict(rtol=1e-5, atol=1e-5)
        if np.dtype(dtype) == np.float32
        else dict(rtol=1e-12, atol=1e-12)
    )
