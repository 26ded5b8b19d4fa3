"""Shared datasets, profiles and helpers (after scikit-learn's asv_benchmarks/common.py).

The profile comes from ``FASTMLP_BENCH_PROFILE``: 'fast' (CI, quick mode) or
'regular' (default). Datasets are synthetic, cached on disk with joblib.Memory.
"""

import os
import time
import warnings

import numpy as np
import scipy.sparse as sp
from joblib import Memory

PROFILE = os.environ.get("FASTMLP_BENCH_PROFILE", "regular")
N_SAMPLES = {"fast": 1_000, "regular": 10_000}[PROFILE]
N_FEATURES = 784
N_CLASSES = 10
memory = Memory(os.path.join(os.path.dirname(__file__), "..", "cache"), verbose=0)

SOLVERS = {  # name -> estimator settings
    "sgd_1": dict(solver="sgd", batch_size=1),
    "sgd_32": dict(solver="sgd", batch_size=32),
    "sgd_200": dict(solver="sgd", batch_size=200),
    "adam": dict(solver="adam", batch_size=200),
    "lbfgs": dict(solver="lbfgs"),
}


@memory.cache
def _dense_data(n_samples, n_features, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.rand(n_samples, n_features)
    W = rng.randn(n_features, N_CLASSES)
    y = (X @ W + rng.randn(n_samples, N_CLASSES)).argmax(axis=1)
    return X, y


@memory.cache
def _csr_data(n_samples, n_features, density=0.01, seed=0):
    rng = np.random.RandomState(seed)
    X = sp.random(n_samples, n_features, density=density, format="csr", random_state=rng)
    W = rng.randn(n_features, N_CLASSES)
    y = np.asarray(X @ W).argmax(axis=1)
    return X, y


def get_data(n_samples=N_SAMPLES, n_features=N_FEATURES, dtype="float64", kind="dense"):
    """Train/test split of a synthetic 10-class problem (dense or CSR at 1%)."""
    X, y = (_dense_data if kind == "dense" else _csr_data)(n_samples + 1000, n_features)
    X = X.astype(dtype)
    return X[:n_samples], X[n_samples:], y[:n_samples], y[n_samples:]


def estimator_settings(solver, hidden=(128,), epochs=1):
    """Common settings of one epoch (lbfgs: a few iterations) for every library."""
    settings = dict(hidden_layer_sizes=hidden, max_iter=epochs if solver != "lbfgs" else 5,
                    random_state=0, learning_rate_init=0.001, tol=0.0, n_iter_no_change=10**9)
    settings.update(SOLVERS[solver])
    return settings


def quiet():
    warnings.simplefilter("ignore")


def timed(f, *args):
    start = time.perf_counter()
    f(*args)
    return time.perf_counter() - start


class TorchMLP:
    """A plain PyTorch CPU training loop with scikit-learn's settings (SGD/Adam)."""

    def __init__(self, hidden, solver, batch_size, lr, dtype):
        import torch

        self.torch = torch
        self.hidden, self.solver, self.batch_size, self.lr = hidden, solver, batch_size, lr
        self.dtype = getattr(torch, dtype)

    def fit(self, X, y):
        torch = self.torch
        torch.manual_seed(0)
        sizes = [X.shape[1], *self.hidden, int(y.max()) + 1]
        layers = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            layers += [torch.nn.Linear(a, b, dtype=self.dtype), torch.nn.ReLU()]
        self.model = torch.nn.Sequential(*layers[:-1])
        if self.solver == "adam":
            opt = torch.optim.Adam(self.model.parameters(), lr=self.lr)
        else:
            opt = torch.optim.SGD(self.model.parameters(), lr=self.lr, momentum=0.9, nesterov=True)
        Xt = torch.from_numpy(np.ascontiguousarray(X))
        yt = torch.from_numpy(y.astype(np.int64))
        loss_fn = torch.nn.CrossEntropyLoss()
        perm = torch.randperm(len(yt))
        for start in range(0, len(yt), self.batch_size):
            idx = perm[start : start + self.batch_size]
            opt.zero_grad()
            loss_fn(self.model(Xt[idx]), yt[idx]).backward()
            opt.step()
        return self

    def predict(self, X):
        with self.torch.no_grad():
            return self.model(self.torch.from_numpy(X)).argmax(1).numpy()


def torch_available():
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True
