"""fastmlp: multilayer perceptrons trained at compiled speed.

``MLPClassifier`` and ``MLPRegressor`` are drop-in replacements for
``sklearn.neural_network``'s estimators; ``Network`` is the numeric core they
wrap; the training loops run in the Numba kernels of ``fastmlp.kernels``.
"""

from ._gradient_check import gradient_check
from ._multilayer_perceptron import MLPClassifier, MLPRegressor
from ._onnx import register_onnx_converters, to_onnx
from .network import EpochInterrupted, Network, TrainingDiverged

__version__ = "0.1.0"

__all__ = [
    "MLPClassifier",
    "MLPRegressor",
    "Network",
    "TrainingDiverged",
    "EpochInterrupted",
    "gradient_check",
    "register_onnx_converters",
    "to_onnx",
    "__version__",
]
