"""Compiling: :class:`CompileWatch` times it; :func:`warm_up` does it ahead of time.

A kernel is compiled by Numba the first time a process needs it and then
cached on disk, so the first fit of a kind on a machine waits 10-20 s. Where
that wait should happen elsewhere (a container image's build step, a CI
cache, before a parallel grid search whose workers would each compile the
same kernels) :func:`warm_up` runs one small fit or predict of every kind,
which leaves every kernel they use in the cache (``fastmlp compile`` on the
command line).

Which compiled version a call needs depends on the dtype and on the kind of
step (per-sample, mini-batch with or without split batches, SGD on sparse
input, L-BFGS's objective whole or in halves, predict; the sizes choose the
kind), never on the solver, loss, activations or other settings: so these
workloads cover every fit and predict of that dtype (``tests/test_cli.py`` checks it, signature by
signature). The threaded versions (compiled otherwise once they pay, see
:mod:`fastmlp._threads`) are covered with ``threads=True``.
"""

import os
import time
import warnings
from contextlib import contextmanager


def _workloads(dtype, threads):
    """``(description, run)`` pairs, one per kind of kernel call (with
    ``threads``, one per kind that has a threaded version).

    The sizes are those at which each kind is chosen
    (:func:`fastmlp._threads.split_batches` and its neighbours); with
    ``threads``, a layer is wide enough (32,768 weights) for every kind of
    step to have a threaded version.
    """
    import numpy as np
    import scipy.sparse as sp

    from ._multilayer_perceptron import MLPClassifier

    rng = np.random.RandomState(0)
    hidden = (512,) if threads else (64,)
    X = rng.rand(600, 64).astype(dtype)
    y = np.arange(600) % 3
    X_sparse = sp.csr_matrix(np.where(X > 0.8, X, 0), dtype=dtype)

    def fit(X, y, **settings):
        def run():
            MLPClassifier(hidden_layer_sizes=hidden, max_iter=1, random_state=0, **settings).fit(
                X, y
            )

        return run

    def fit_and_predict():
        model = MLPClassifier(hidden_layer_sizes=hidden, max_iter=1, random_state=0)
        model.fit(X[:60], y[:60])
        model.predict(np.tile(X, (4, 1)))

    kinds = [
        ("mini-batch epochs, batches in halves (adam, batch 200)", fit(X, y, batch_size=200)),
        ("per-sample SGD epochs", fit(X[:200], y[:200], solver="sgd", batch_size=1)),
        ("L-BFGS, rows in halves", fit(X, y, solver="lbfgs")),
        ("predict", fit_and_predict),
    ]
    if threads:  # the kinds above have a threaded version; these have none
        return kinds
    return kinds + [
        ("mini-batch epochs (batch 4)", fit(X[:40], y[:40], batch_size=4)),
        ("SGD on sparse input", fit(X_sparse[:200], y[:200], solver="sgd", batch_size=1)),
        ("L-BFGS, few rows", fit(X[:20], y[:20], solver="lbfgs")),
    ]


@contextmanager
def _threads_setting(value):
    """``FASTMLP_THREADS`` set to ``value`` for the block."""
    before = os.environ.get("FASTMLP_THREADS")
    os.environ["FASTMLP_THREADS"] = value
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("FASTMLP_THREADS", None)
        else:
            os.environ["FASTMLP_THREADS"] = before


class CompileWatch:
    """A context that adds up the seconds Numba spends compiling in it, in
    ``.seconds`` (loading a kernel from the on-disk cache is not compiling), and
    prints ``announce`` (if given) when the first compile starts: before the
    wait, not after."""

    def __init__(self, announce=None):
        self.announce = announce
        self.seconds = 0.0
        self._depth = 0
        self._started = 0.0
        self._listener = None

    def __enter__(self):
        from numba.core import event

        watch = self

        class Listener(event.Listener):
            def on_start(self, event):
                if watch._depth == 0:
                    if watch.announce is not None:
                        print(watch.announce, flush=True)
                        watch.announce = None
                    watch._started = time.perf_counter()
                watch._depth += 1

            def on_end(self, event):
                watch._depth -= 1
                if watch._depth == 0:
                    watch.seconds += time.perf_counter() - watch._started

        self._listener = Listener()
        event.register("numba:compile", self._listener)
        return self

    def __exit__(self, *exc):
        from numba.core import event

        event.unregister("numba:compile", self._listener)
        return False


def warm_up(dtypes=("float64",), threads=False, report=None):
    """Compile, or load from the on-disk cache, every kernel of every kind of fit
    and predict, so that later processes load them instead of compiling.

    Parameters
    ----------
    dtypes : sequence of {"float64", "float32"}, default=("float64",)
        The dtypes to train in: float64 is scikit-learn's default; float32
        input (or ``dtype="float32"``) trains in float32.
    threads : bool, default=False
        Also the kernels' threaded versions (as with
        ``FASTMLP_THREADS=always``). Without, they are compiled during a fit
        once threads have run long enough to pay for it.
    report : callable or None, default=None
        Called with ``(description,)`` as each workload starts and with
        ``(description, seconds, compile_seconds)`` as it ends.

    Returns
    -------
    compile_seconds : float
        Seconds spent compiling (0 when every kernel was in the cache).
    """
    from ._threads import threads_usable

    # the one-thread versions always (with threads allowed, a call would use
    # a threaded version already in the cache instead), then the threaded ones
    settings = ["0"]
    if threads and threads_usable():  # not on one CPU, with FASTMLP_THREADS=0, ...
        settings.append("always")
    total = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # one epoch does not converge
        for setting in settings:
            with _threads_setting(setting):
                for dtype in dtypes:
                    for description, run in _workloads(dtype, setting == "always"):
                        threaded = ", threaded" if setting == "always" else ""
                        description = f"{description}{threaded}, {dtype}"
                        if report is not None:
                            report(description)
                        started = time.perf_counter()
                        with CompileWatch() as watch:
                            run()
                        total += watch.seconds
                        if report is not None:
                            report(description, time.perf_counter() - started, watch.seconds)
    return total
