"""A counter-based random stream for dropout masks, held in a caller's array.

SplitMix64 (Steele, Lea and Flood, 2014): the state is one ``uint64`` in a
1-element array owned by the caller, so every network has its own stream,
reproducible from a seed and independent of NumPy's and Numba's global
generators (and of other threads).
"""

import numpy as np

from ._jit import DISABLE_JIT, jit

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX_1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX_2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
_TWO_POW_M53 = 1.0 / 9007199254740992.0


@jit(inline="always")
def next_uniform(state):
    """Next draw in ``[0, 1)`` (53 random bits) from a stream.

    Parameters
    ----------
    state : ndarray of uint64, shape (1,)
        The stream's state; advanced.

    Returns
    -------
    float
    """
    s = state[0] + _GOLDEN
    state[0] = s
    s = (s ^ (s >> _S30)) * _MIX_1
    s = (s ^ (s >> _S27)) * _MIX_2
    s = s ^ (s >> _S31)
    return float(s >> _S11) * _TWO_POW_M53


if DISABLE_JIT:
    _MASK = (1 << 64) - 1

    def next_uniform(state):
        """Next draw in ``[0, 1)`` from ``state`` (uint64[1]): Python integers
        wrapped to 64 bits, as the compiled version's uint64 arithmetic."""
        s = (int(state[0]) + int(_GOLDEN)) & _MASK
        state[0] = s
        s = ((s ^ (s >> 30)) * int(_MIX_1)) & _MASK
        s = ((s ^ (s >> 27)) * int(_MIX_2)) & _MASK
        s = s ^ (s >> 31)
        return float(s >> 11) * _TWO_POW_M53
