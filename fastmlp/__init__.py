"""fastmlp: multilayer perceptrons trained at compiled speed.

``MLPClassifier`` and ``MLPRegressor`` are drop-in replacements for
``sklearn.neural_network``'s estimators; ``Network`` is the numeric core they
wrap; the training loops run in the Numba kernels of ``fastmlp.kernels``.

The names are imported on first use (``from fastmlp import MLPClassifier``
imports scikit-learn, SciPy and Numba; ``import fastmlp`` alone does not), so
that ``fastmlp --help``, ``--version`` and the command line's usage errors
answer at once.
"""

import importlib

__version__ = "0.1.0"

# public name -> the module that defines it
_EXPORTS = {
    "MLPClassifier": "._multilayer_perceptron",
    "MLPRegressor": "._multilayer_perceptron",
    "Network": ".network",
    "TrainingDiverged": ".network",
    "EpochInterrupted": ".network",
    "gradient_check": "._gradient_check",
    "register_onnx_converters": "._onnx",
    "to_onnx": "._onnx",
}

__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name):
    """A public name, imported from its module on first use."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'fastmlp' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__():
    """The module's names, the ones not imported yet included."""
    return sorted(set(globals()) | set(_EXPORTS))
