"""Benchmarks: fit/predict time, peak memory, samples/s and test score.

fastmlp, scikit-learn's MLPClassifier and (when torch is installed) a plain
PyTorch loop run the same configurations, so one ``asv run`` shows them side
by side. Every benchmark warms the JIT in ``setup`` (asv does not warm up when
``number`` is set); compile time is measured on purpose in ``JitCost``.
"""

import os
import subprocess
import sys
import tempfile

import numpy as np

from .common import (
    N_SAMPLES,
    PROFILE,
    TorchMLP,
    estimator_settings,
    get_data,
    quiet,
    timed,
    torch_available,
    warm_up,
    wide_sparse_data,
    wide_sparse_epoch_memory,
    wide_sparse_rate,
)

FAST = PROFILE == "fast"


def _fastmlp(settings):
    from fastmlp import MLPClassifier

    return MLPClassifier(**settings)


def _sklearn(settings):
    from sklearn.neural_network import MLPClassifier

    return MLPClassifier(**settings)


class _FitBench:
    """Shared body: ``make(settings)`` builds the estimator under test."""

    timeout = 600
    number = 1
    repeat = (1, 3, 30) if not FAST else (1, 1, 10)
    warmup_time = 0

    def _setup(self, solver, dtype, kind, hidden=(128,), n_samples=N_SAMPLES):
        quiet()
        self.X, self.X_test, self.y, self.y_test = get_data(n_samples, dtype=dtype, kind=kind)
        self.settings = estimator_settings(solver, hidden)
        warm_up(self.make(self.settings).fit, self.X[:50], self.y[:50])  # warm the JIT

    def time_fit(self, *params):
        self.make(self.settings).fit(self.X, self.y)

    def peakmem_fit(self, *params):
        self.make(self.settings).fit(self.X, self.y)

    def track_samples_per_second(self, *params):
        est = self.make(self.settings)
        return self.X.shape[0] / timed(est.fit, self.X, self.y)

    def track_test_score(self, *params):
        # the only benchmark that needs a fitted model: it fits its own
        model = self.make(self.settings).fit(self.X, self.y)
        return float(np.mean(model.predict(self.X_test) == self.y_test))


class FastMLPFit(_FitBench):
    """fastmlp over solver x dtype x input kind."""

    params = (
        ["sgd_1", "sgd_32", "sgd_200", "adam", "lbfgs"],
        ["float64", "float32"],
        ["dense", "csr"],
    )
    if FAST:  # CI smoke run: every code path once (per-sample, mini-batch, lbfgs; CSR; dtypes)
        params = (["sgd_1", "sgd_32", "lbfgs"], ["float32"], ["dense", "csr"])
    param_names = ["solver", "dtype", "input"]

    def setup(self, solver, dtype, kind):
        self.make = _fastmlp
        self._setup(solver, dtype, kind)


class SklearnFit(_FitBench):
    """scikit-learn's MLPClassifier on the same configurations."""

    params = FastMLPFit.params
    param_names = FastMLPFit.param_names

    def setup(self, solver, dtype, kind):
        self.make = _sklearn
        n = 500 if solver == "sgd_1" else N_SAMPLES  # its per-sample loop is slow
        self._setup(solver, dtype, kind, n_samples=n)


class TorchFit(_FitBench):
    """A plain PyTorch CPU loop (skipped when torch is not installed)."""

    params = (["sgd_1", "sgd_32", "sgd_200", "adam"], ["float64", "float32"])
    if FAST:
        params = (["sgd_1", "sgd_32"], ["float32"])
    param_names = ["solver", "dtype"]

    def setup(self, solver, dtype):
        if not torch_available():
            raise NotImplementedError("torch is not installed")
        s = estimator_settings(solver)
        bs = s.get("batch_size", 200)
        self.make = lambda settings: TorchMLP((128,), s["solver"], bs, 0.001, dtype)
        n = 2000 if solver == "sgd_1" else N_SAMPLES
        self._setup(solver, dtype, "dense", n_samples=n)


class FastMLPArchitecture(_FitBench):
    """fastmlp mini-batch SGD over width and depth."""

    params = ([64, 256, 1024], [1, 3]) if not FAST else ([64], [1, 3])
    param_names = ["width", "depth"]

    def setup(self, width, depth):
        self.make = _fastmlp
        self._setup("sgd_32", "float64", "dense", hidden=(width,) * depth)


class FastMLPScaling(_FitBench):
    """Cost against n_samples (it should grow linearly)."""

    params = ([1_000, 10_000, 100_000] if not FAST else [1_000, 10_000],)
    param_names = ["n_samples"]

    def setup(self, n_samples):
        self.make = _fastmlp
        self._setup("sgd_200", "float32", "dense", n_samples=n_samples)


class WideSparse:
    """Per-sample and batch-32 SGD with scikit-learn's defaults (momentum 0.9,
    Nesterov, alpha 1e-4) on CSR rows of 50 non-zeros, 64 hidden units, 5
    classes, as the number of columns grows: samples/s of one ``partial_fit``
    epoch. fastmlp's step costs O(non-zeros x width) whatever the width;
    scikit-learn's touches every weight, so it runs on a subsample."""

    params = (
        ["fastmlp", "sklearn"],
        [1_000, 10_000, 100_000, 1_000_000] if not FAST else [1_000, 100_000],
        [1, 32],
    )
    param_names = ["library", "n_features", "batch_size"]
    timeout = 900
    number = 1
    repeat = (1, 3, 60) if not FAST else (1, 1, 20)
    warmup_time = 0

    def setup(self, library, n_features, batch_size):
        quiet()
        if library == "sklearn" and n_features >= 1_000_000:
            raise NotImplementedError("scikit-learn: a few rows per second at best; skipped")
        n = 20_000 if library == "fastmlp" else max(2 * batch_size, 2_000_000 // n_features)
        self.X, self.y = wide_sparse_data(n, n_features)
        self.make = _fastmlp if library == "fastmlp" else _sklearn
        self.settings = dict(
            solver="sgd", hidden_layer_sizes=(64,), batch_size=batch_size, random_state=0
        )
        wide_sparse_rate(self.make(self.settings), self.X[:50], self.y[:50], np.arange(5))

    def track_samples_per_second(self, library, n_features, batch_size):
        return wide_sparse_rate(self.make(self.settings), self.X, self.y, np.arange(5))

    track_samples_per_second.unit = "samples/s"


class WideSparseMemory:
    """Memory that a ``partial_fit`` epoch of SGD on wide CSR input adds, over
    the first layer's size: the copy of the rows the epoch reaches (5,000 rows
    of 50 non-zeros reach 22% of 10^6 columns, 20,000 rows 63%), which undoes
    a diverged epoch, plus 16 bytes per column."""

    params = ([100_000, 1_000_000] if not FAST else [100_000], [5_000, 20_000])
    param_names = ["n_features", "n_rows"]
    timeout = 600
    number = 1
    repeat = 1
    warmup_time = 0

    def setup(self, n_features, n_rows):
        quiet()
        self.X, self.y = wide_sparse_data(n_rows, n_features)

    def track_peak_over_first_layer(self, n_features, n_rows):
        return wide_sparse_epoch_memory(
            _fastmlp(dict(solver="sgd", hidden_layer_sizes=(64,), random_state=0)),
            self.X,
            self.y,
            np.arange(5),
        )

    track_peak_over_first_layer.unit = "x first layer"


class Predict:
    """Predict throughput on many rows, fastmlp beside scikit-learn."""

    params = (["fastmlp", "sklearn"], ["float64", "float32"] if not FAST else ["float32"])
    param_names = ["library", "dtype"]
    number = 1
    repeat = (3, 5, 30)
    warmup_time = 0

    def setup(self, library, dtype):
        quiet()
        n = 20_000 if FAST else 100_000
        X, _, y, _ = get_data(n, dtype=dtype)
        self.X = X
        make = _fastmlp if library == "fastmlp" else _sklearn
        self.model = make(estimator_settings("adam")).fit(X[:2000], y[:2000])
        warm_up(self.model.predict, X)  # the threaded predict too

    def time_predict(self, library, dtype):
        self.model.predict(self.X)

    def track_rows_per_second(self, library, dtype):
        return self.X.shape[0] / timed(self.model.predict, self.X)


# "What a default fit needs" (the design's JIT target): default parameters
# (adam, batch 200, 100 hidden units) on digits-sized data, which takes the
# split mini-batch epoch.
_DATA = (
    "import warnings; warnings.simplefilter('ignore');"
    "import numpy as np; from fastmlp import MLPClassifier;"
    "X = np.random.rand(500, 64); y = np.arange(500) % 10;"
)
_FIT = "MLPClassifier(max_iter=2).fit(X, y)"
_FIRST_FIT = _DATA + _FIT
# The design's other JIT target: per-sample SGD (the fused per-sample epoch).
_FIRST_PER_SAMPLE_FIT = (
    _DATA + "MLPClassifier(solver='sgd', batch_size=1, max_iter=2, tol=0).fit(X, y)"
)
# Prints three times: imports, first fit, second fit (the JIT/cache overhead of
# the first fit is the difference of the last two).
_PHASES = (
    "import time; t0 = time.perf_counter();"
    + _DATA
    + "t1 = time.perf_counter();"
    + _FIT
    + "; t2 = time.perf_counter();"
    + _FIT
    + "; t3 = time.perf_counter();"
    "print(t1 - t0, t2 - t1, t3 - t2)"
)


class JitCost:
    """First fit in a fresh process: with a cold (empty) and a warm Numba cache."""

    timeout = 600
    repeat = 1
    number = 1

    def setup_cache(self):
        cache = tempfile.mkdtemp(prefix="fastmlp-warm-")
        subprocess.run(
            [sys.executable, "-c", _FIRST_FIT],
            check=True,
            env={**os.environ, "NUMBA_CACHE_DIR": cache},
        )
        return cache

    def _run(self, cache, first_fit=_FIRST_FIT):
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        code = (
            "import time; t = time.perf_counter();"
            + first_fit
            + "; print(time.perf_counter() - t)"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], check=True, env=env, capture_output=True, text=True
        )
        return float(out.stdout.strip().splitlines()[-1])

    def _phases(self, cache):
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        out = subprocess.run(
            [sys.executable, "-c", _PHASES], check=True, env=env, capture_output=True, text=True
        )
        return [float(v) for v in out.stdout.strip().splitlines()[-1].split()]

    def track_first_fit_cold_cache(self, warm_cache):
        return self._run(tempfile.mkdtemp(prefix="fastmlp-cold-"))

    def track_first_per_sample_fit_cold_cache(self, warm_cache):
        """Importing the estimators and a first per-sample SGD fit on an empty cache."""
        return self._run(tempfile.mkdtemp(prefix="fastmlp-cold-"), _FIRST_PER_SAMPLE_FIT)

    def track_first_score_after_cold_fit(self, warm_cache):
        """The first ``score`` after the cold default fit: predict's kernels compiled."""
        env = {**os.environ, "NUMBA_CACHE_DIR": tempfile.mkdtemp(prefix="fastmlp-cold-")}
        code = (
            _DATA
            + "model = "
            + _FIT
            + "; import time; t = time.perf_counter(); model.score(X, y);"
            + "print(time.perf_counter() - t)"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], check=True, env=env, capture_output=True, text=True
        )
        return float(out.stdout.strip().splitlines()[-1])

    def track_first_fit_warm_cache(self, warm_cache):
        return self._run(warm_cache)

    def track_import_seconds(self, warm_cache):
        """``from fastmlp import MLPClassifier`` (SciPy, scikit-learn, Numba) and the data."""
        return self._phases(warm_cache)[0]

    def track_first_fit_overhead_warm_cache(self, warm_cache):
        """First fit minus second fit, after the imports: loading the cached kernels."""
        _, first, second = self._phases(warm_cache)
        return first - second

    track_first_fit_cold_cache.unit = "seconds"
    track_first_per_sample_fit_cold_cache.unit = "seconds"
    track_first_score_after_cold_fit.unit = "seconds"
    track_first_fit_warm_cache.unit = "seconds"
    track_import_seconds.unit = "seconds"
    track_first_fit_overhead_warm_cache.unit = "seconds"
