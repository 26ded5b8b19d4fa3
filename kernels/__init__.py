"""Numba kernels of fastmlp: arrays in, arrays out (no scikit-learn here).

Groups: :mod:`.activations` (activations and derivatives), :mod:`.losses`
(output losses fused with their gradient), :mod:`.dense` (fused dense layers),
:mod:`.optimizers` (in-place optimizer steps) and :mod:`.network` (forward,
loss-and-gradients and whole training epochs on a flat parameter vector).
"""

from .activations import ACTIVATION_CODES
from .losses import LOSS_CODES, is_supported_pair
from .network import (
    STATUS_NONFINITE_LOSS,
    STATUS_NONFINITE_WEIGHTS,
    STATUS_OK,
    layout,
    loss_and_gradients,
    minibatch_epoch,
    minibatch_epoch_threaded,
    predict_batches,
    predict_batches_threaded,
    sgd_epoch,
)
from .optimizers import N_HYPER, OPTIMIZER_CODES, ROW_BLOCKS, make_hyper

__all__ = [
    "ACTIVATION_CODES",
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
    "make_hyper",
    "minibatch_epoch",
    "minibatch_epoch_threaded",
    "predict_batches",
    "predict_batches_threaded",
    "sgd_epoch",
]
