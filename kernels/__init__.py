"""Numba kernels of fastmlp: arrays in, arrays out (no scikit-learn here).

One module per concern: :mod:`.activations` (activations and derivatives),
:mod:`.losses` (output losses fused with their gradient), :mod:`.dense` (fused
dense layers), :mod:`.blas` (a strided gemm), :mod:`.rng` (the dropout
stream), :mod:`.optimizers` (in-place optimizer steps), :mod:`.packing` (the
flat layout of parameters and work arrays), :mod:`.passes` (forward, loss and
backward, predict, the full-batch objective), :mod:`.epoch` (what every
epoch does around its steps), :mod:`.minibatch` (mini-batch
epochs, whole or split in halves), :mod:`.per_sample` (the per-sample SGD
epoch), :mod:`.sparse_sgd` (SGD epochs on CSR input with lazy first-layer
rows) and :mod:`.thread_policy` (when a step runs on the thread pool: timed, step
by step).
"""

from ._jit import CACHE as CACHE_ENABLED
from ._jit import is_ready
from .activations import ACTIVATION_CODES
from .losses import LOSS_CODES, is_supported_pair
from .minibatch import minibatch_epoch, minibatch_epoch_split
from .optimizers import N_HYPER, OPTIMIZER_CODES, ROW_BLOCKS, Optimizer, make_hyper
from .packing import STATUS_NONFINITE_LOSS, STATUS_NONFINITE_WEIGHTS, STATUS_OK, layout
from .passes import (
    NetworkSpec,
    loss_and_gradients,
    loss_and_gradients_split,
    predict_batches,
    predict_chunks,
)
from .per_sample import sgd_epoch, threadable_layers
from .sparse_sgd import sparse_sgd_epoch
from .thread_policy import new_policy

__all__ = [
    "ACTIVATION_CODES",
    "CACHE_ENABLED",
    "LOSS_CODES",
    "N_HYPER",
    "NetworkSpec",
    "OPTIMIZER_CODES",
    "Optimizer",
    "ROW_BLOCKS",
    "STATUS_NONFINITE_LOSS",
    "STATUS_NONFINITE_WEIGHTS",
    "STATUS_OK",
    "is_ready",
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
    "sparse_sgd_epoch",
    "threadable_layers",
]
