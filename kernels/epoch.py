"""What every training epoch does around its steps (inlined into each epoch).

An epoch reports in ``info`` (int64[2]): ``info[0]`` the rows done so far,
``info[1]`` a status (:data:`~fastmlp.kernels.packing.STATUS_OK`, or why it
stopped early). SGD with momentum flushes would-be subnormal velocities at the
start and every :data:`~fastmlp.kernels.optimizers.FLUSH_INTERVAL` steps.
"""

import math

from ._jit import jit
from .optimizers import FLUSH_INTERVAL, epoch_flush_threshold, flush_velocities
from .packing import STATUS_NONFINITE_LOSS, STATUS_NONFINITE_WEIGHTS, STATUS_OK


@jit(inline="always")
def begin_epoch(info, opt, hyper, state1):
    """Reset ``info`` and flush SGD velocities; returns the flush threshold
    for :func:`end_step` (0 when the optimizer needs none)."""
    info[0] = 0
    info[1] = STATUS_OK
    return epoch_flush_threshold(opt, hyper, state1)


@jit(inline="always")
def loss_is_finite(info, loss):
    """False, with the status set, when a step's loss is not finite (the
    epoch then stops before updating)."""
    if math.isfinite(loss):
        return True
    info[1] = STATUS_NONFINITE_LOSS
    return False


@jit(inline="always")
def end_step(info, rows_done, sq, bsq, n_steps, flush_at, state1):
    """Book step number ``n_steps`` (from 1), after which ``rows_done`` rows
    are done. Returns False, with the status set, when the updated weights'
    or intercepts' sum of squares (``sq``, ``bsq``) is not finite; otherwise
    flushes SGD velocities every ``FLUSH_INTERVAL`` steps and returns True."""
    info[0] = rows_done
    if not (math.isfinite(sq) and math.isfinite(bsq)):
        info[1] = STATUS_NONFINITE_WEIGHTS
        return False
    if flush_at > 0 and n_steps % FLUSH_INTERVAL == 0:
        flush_velocities(state1, flush_at)
    return True
