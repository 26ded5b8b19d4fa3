"""Shared datasets, profiles and helpers (after scikit-learn's asv_benchmarks/common.py).

The profile comes from ``FASTMLP_BENCH_PROFILE``: 'fast' (CI, quick mode) or
'regular' (default). Datasets are synthetic, cached on disk with joblib.Memory.
"""

import os
import subprocess
import sys
import time
import warnings
from contextlib import contextmanager

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


def wide_sparse_data(n_samples, n_features, nnz=50, n_classes=5, seed=0):
    """CSR rows of ``nnz`` non-zeros among ``n_features`` columns (text, one-hot,
    click logs), with labels: the wide sparse problem of issue 16."""
    rng = np.random.RandomState(seed)
    rows = np.repeat(np.arange(n_samples), nnz)
    cols = rng.randint(0, n_features, n_samples * nnz)
    X = sp.csr_matrix((rng.rand(n_samples * nnz), (rows, cols)), shape=(n_samples, n_features))
    X.sum_duplicates()
    return X, rng.randint(0, n_classes, n_samples)


def wide_sparse_rate(estimator, X, y, classes):
    """Samples/s of one ``partial_fit`` epoch over X, the model already
    initialised (and compiled) by a ``partial_fit`` on a few rows: the cost a
    user sees per epoch of online learning, setup excluded."""
    estimator.partial_fit(X[:2], y[:2], classes=classes)
    return X.shape[0] / timed(estimator.partial_fit, X, y)


def _resident_bytes():
    """This process's resident memory (Linux: /proc/self/statm), or None."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return None


def wide_sparse_epoch_memory(estimator, X, y, classes):
    """Peak resident memory that one ``partial_fit`` epoch over X adds to the
    process (sampled every 2 ms), over the bytes of the first layer's weights:
    the model initialised (and its kernels compiled) by ``partial_fit`` on two
    rows first. tracemalloc would miss the kernels' own (Numba) arrays."""
    import threading

    if _resident_bytes() is None:
        raise NotImplementedError("resident memory is read from /proc (Linux only)")
    estimator.partial_fit(X[:2], y[:2], classes=classes)
    estimator.partial_fit(X[:2], y[:2])
    base = _resident_bytes()
    peak = [base]
    done = threading.Event()

    def sample():
        while not done.wait(0.002):
            peak[0] = max(peak[0], _resident_bytes())

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        estimator.partial_fit(X, y)
    finally:
        done.set()
        sampler.join()
    return (peak[0] - base) / estimator.coefs_[0].nbytes


def get_data(n_samples=N_SAMPLES, n_features=N_FEATURES, dtype="float64", kind="dense"):
    """Train/test split of a synthetic 10-class problem (dense or CSR at 1%)."""
    X, y = (_dense_data if kind == "dense" else _csr_data)(n_samples + 1000, n_features)
    X = X.astype(dtype)
    return X[:n_samples], X[n_samples:], y[:n_samples], y[n_samples:]


def estimator_settings(solver, hidden=(128,), epochs=1):
    """Common settings of one epoch (lbfgs: a few iterations) for every library."""
    settings = dict(
        hidden_layer_sizes=hidden,
        max_iter=epochs if solver != "lbfgs" else 5,
        random_state=0,
        learning_rate_init=0.001,
        tol=0.0,
        n_iter_no_change=10**9,
    )
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


# --- speed on a busy machine -------------------------------------------------

LOAD_CONFIGS = (  # what each is: see load_config
    "default-digits",
    "sgd_1",
    "sgd_1-small",
    "sgd_32",
    "sgd_200",
    "lbfgs",
    "predict",
)
LIBRARIES = ("fastmlp", "fastmlp-1-thread", "scikit-learn")


def load_config(name, profile=PROFILE):
    """``(settings, X, y, sklearn_rows, kind)`` of one configuration of the load benchmark.

    'default-digits' is ``MLPClassifier(max_iter=30)`` on scikit-learn's digits (Adam,
    batch 200, the split epoch); 'sgd_1' / 'sgd_32' / 'sgd_200' one epoch of the
    784-128-10 reference at that batch size; 'sgd_1-small' per-sample on 64-32-10 (no
    layer big enough for threads: the control); 'lbfgs' five L-BFGS iterations on the
    reference; 'predict' predictions of a fitted reference model (kind 'predict').
    scikit-learn's per-sample runs take ``sklearn_rows`` rows (it is 30x slower).
    """
    from sklearn.datasets import load_digits

    n = {"fast": 600, "regular": 3000}[profile]
    if name == "default-digits":
        X, y = load_digits(return_X_y=True)
        return dict(max_iter=30, random_state=0), X / 16, y, len(y), "fit"
    if name == "sgd_1-small":
        X, y = load_digits(return_X_y=True)
        settings = estimator_settings("sgd_1", hidden=(32,))
        return settings, X / 16, y, min(len(y), n // 3), "fit"
    X, _, y, _ = get_data(n_samples=n)
    if name == "predict":
        return estimator_settings("sgd_200"), X, y, n, "predict"
    return estimator_settings(name), X, y, n // 3 if name == "sgd_1" else n, "fit"


@contextmanager
def busy_processes(count):
    """``count`` CPU-bound processes running beside the block (as other work on a
    shared machine would)."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        time.sleep(0.2 if count else 0)  # let them reach the cores
        yield
    finally:
        for p in procs:
            p.kill()
            p.wait()


@contextmanager
def fastmlp_threads(setting):
    """``FASTMLP_THREADS`` set to ``setting`` (None: unset, the default) for the block."""
    before = os.environ.pop("FASTMLP_THREADS", None)
    if setting is not None:
        os.environ["FASTMLP_THREADS"] = setting
    try:
        yield
    finally:
        os.environ.pop("FASTMLP_THREADS", None)
        if before is not None:
            os.environ["FASTMLP_THREADS"] = before


def warm_up(fit, *args):
    """``fit(*args)`` (or a predict) with ``FASTMLP_THREADS=always``: a warm-up
    that compiles (or loads) fastmlp's threaded kernels too, not only those it
    runs on one thread.

    A process compiles the threaded version of an epoch, predict or the split
    objective only once it is ready in the cache or worth compiling
    (``fastmlp._threads.THREADS_PAYBACK_SECONDS`` of such calls on one thread);
    the speed benchmarks measure a warm cache that holds both versions, as
    after a long fit.
    """
    with fastmlp_threads("always"):
        return fit(*args)


def _one_rate(library, settings, X, y, sklearn_rows, kind):
    """Samples (or rows predicted) per second of one fit or predict of ``library``."""
    from sklearn.neural_network import MLPClassifier as SkMLP

    from fastmlp import MLPClassifier

    make = SkMLP if library == "scikit-learn" else MLPClassifier
    rows = sklearn_rows if library == "scikit-learn" else X.shape[0]
    with fastmlp_threads("0" if library == "fastmlp-1-thread" else None):
        model = make(**settings)
        if kind == "predict":
            model.fit(X[:500], y[:500])
            Xp = np.tile(X, (max(1, 20_000 // X.shape[0]), 1))
            return Xp.shape[0] / timed(model.predict, Xp)
        elapsed = timed(model.fit, X[:rows], y[:rows])
        epochs = getattr(model, "n_iter_", 1) if settings.get("solver") != "lbfgs" else 1
        return rows * epochs / elapsed


def rates_side_by_side(name, busy, rounds=3, profile=PROFILE):
    """Median samples/s of each of :data:`LIBRARIES` on configuration ``name`` with
    ``busy`` CPU-bound processes beside them, in ``rounds`` interleaved rounds (each
    round times every library once, in turn, under the same load).

    Each run starts 0.3 s after the one before: a BLAS thread pool that has
    just run (scikit-learn's) spins on a core for about 0.1 s, and would
    otherwise load the next library's run as one more busy process would.

    Returns ``{library: (median, min, max)}``.
    """
    quiet()
    settings, X, y, sklearn_rows, kind = load_config(name, profile)
    for library in LIBRARIES[:2]:  # compile / load the kernels outside the timing
        small = load_config(name, "fast")
        warm = warm_up if library == "fastmlp" else (lambda fit, *args: fit(*args))
        warm(_one_rate, library, small[0], small[1][:200], small[2][:200], 200, small[4])
    seen = {library: [] for library in LIBRARIES}
    with busy_processes(busy):
        for _ in range(rounds):
            for library in LIBRARIES:
                time.sleep(0.3)
                seen[library].append(_one_rate(library, settings, X, y, sklearn_rows, kind))
    return {lib: (float(np.median(v)), min(v), max(v)) for lib, v in seen.items()}
