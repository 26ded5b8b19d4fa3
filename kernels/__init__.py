"""Numba kernels of fastmlp: arrays in, arrays out (no scikit-learn here).

Groups: :mod:`.activations` (activations and derivatives), :mod:`.losses`
(output losses fused with their gradient), :mod:`.dense` (fused dense layers),
:mod:`.optimizers` (in-place optimizer steps), :mod:`.network` (forward,
loss-and-gradients and whole training epochs on a flat parameter vector) and
:mod:`.threads` (when a step runs on the thread pool: timed, step by step).
"""

from ._jit import CACHE as CACHE_ENABLED
from .activations import ACTIVATION_CODES
from .losses import LOSS_CODES, is_supported_pair
from .network import (
    STATUS_NONFINITE_LOSS,
    STATUS_NONFINITE_WEIGHTS,
    STATUS_OK,
    layout,
    loss_and_gradients,
    loss_and_gradients_split,
    minibatch_epoch,
    minibatch_epoch_split,
    predict_batches,
    predict_chunks,
    sgd_epoch,
)
from .optimizers import N_HYPER, OPTIMIZER_CODES, ROW_BLOCKS, make_hyper
from .threads import new_policy

__all__ = [
    "ACTIVATION_CODES",
    "CACHE_ENABLED",
    "LOSS_CODES",
    "N_HYPER",
    "OPTIMIZER_CODES",
    "ROW_BLOCKS",
    "STATUS_NONFINITE_LOSS",
    "STATUS_NONFINITE_WEIGHTS",
    "STATUS_OK",
    "is_supported_pair",
    "layout",
    "loss_and_gradients",
    "loss_and_gradients_split",
    "make_hyper",
    "new_policy",
    "minibatch_epoch",
    "minibatch_epoch_split",
    "predict_batches",
    "predict_chunks",
    "sgd_epoch",
]
