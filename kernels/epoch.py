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
    """Reset ``info`` and flush SGD velocities at the start of an epoch.

    Parameters
    ----------
    info : ndarray of int64, shape (2,)
        The epoch's report: rows done and status; reset.
    opt : int
        Optimizer code (:data:`~fastmlp.kernels.optimizers.OPTIMIZER_CODES`).
    hyper : ndarray
        Optimizer hyper-parameters (:func:`~fastmlp.kernels.optimizers.make_hyper`).
    state1 : ndarray
        The first optimizer state (SGD's velocities); flushed in place.

    Returns
    -------
    flush_at : float
        The velocity flush threshold for :func:`end_step` (0 when the
        optimizer needs none).
    """
    info[0] = 0
    info[1] = STATUS_OK
    return epoch_flush_threshold(opt, hyper, state1)


@jit(inline="always")
def loss_is_finite(info, loss):
    """Whether a step's loss is finite; if not, the status is set (the epoch
    then stops before updating).

    Parameters
    ----------
    info : ndarray of int64, shape (2,)
        The epoch's report; ``info[1]`` set to ``STATUS_NONFINITE_LOSS``
        when ``loss`` is not finite.
    loss : float
        The step's loss.

    Returns
    -------
    bool
    """
    if math.isfinite(loss):
        return True
    info[1] = STATUS_NONFINITE_LOSS
    return False


@jit(inline="always")
def end_step(info, rows_done, sq, bsq, n_steps, flush_at, state1):
    """Book a step: rows done, a check of the updated parameters, and SGD's
    velocity flush every ``FLUSH_INTERVAL`` steps.

    Parameters
    ----------
    info : ndarray of int64, shape (2,)
        The epoch's report; ``info[0]`` set to ``rows_done``, ``info[1]`` to
        ``STATUS_NONFINITE_WEIGHTS`` when the parameters are not finite.
    rows_done : int
        Rows of the epoch done after this step.
    sq, bsq : float
        Sums of squares of the updated weights and intercepts (not finite
        when a parameter is not).
    n_steps : int
        This step's number in the epoch, from 1.
    flush_at : float
        The threshold from :func:`begin_epoch` (0: no flushing).
    state1 : ndarray
        The first optimizer state (SGD's velocities); flushed in place.

    Returns
    -------
    bool
        False when the epoch must stop (non-finite parameters).
    """
    info[0] = rows_done
    if not (math.isfinite(sq) and math.isfinite(bsq)):
        info[1] = STATUS_NONFINITE_WEIGHTS
        return False
    if flush_at > 0 and n_steps % FLUSH_INTERVAL == 0:
        flush_velocities(state1, flush_at)
    return True
