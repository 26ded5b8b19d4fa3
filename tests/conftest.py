import numpy as np
import pytest


@pytest.fixture
def rng():
    return np.random.RandomState(0)


def tolerance(dtype):
    """Agreement expected with the float64 NumPy reference."""
    return dict(rtol=1e-5, atol=1e-5) if np.dtype(dtype) == np.float32 else dict(rtol=1e-12, atol=1e-12)
