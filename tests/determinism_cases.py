"""Fits that must give the same bits in every setting (tests/test_determinism.py).

Each case is a small fit that takes one kernel path: per-sample SGD with a
layer updated in row blocks (threaded or not), the split mini-batch epoch in
both dtypes with SGD, Adam and RMSprop, the serial mini-batch epoch, CSR
input, L-BFGS, and predictions big enough to be threaded. :func:`digests`
returns one SHA-256 per case over the fitted weights, the loss curve and the
predicted probabilities.

Run as a module it prints ``digests()`` as JSON, in the setting named on the
command line: ``plain``, ``busy`` (two CPU-bound processes beside the fits),
or ``fork`` / ``spawn`` / ``forkserver`` (in a child process of that start
method). Other settings (thread counts, ``FASTMLP_THREADS``, cache state) are
the environment's.

    python -m tests.determinism_cases plain [CASE ...]
"""

import hashlib
import json
import subprocess
import sys
import warnings

import numpy as np
import scipy.sparse as sp


def _data(n, n_features, n_classes=3, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.rand(n, n_features)
    y = rng.randint(0, n_classes, n)
    return X, y


def _cases():
    from fastmlp import MLPClassifier, MLPRegressor

    wide = _data(200, 300)  # 300 x 128 weights: updated in row blocks
    mid = _data(300, 100)  # 100-64-3 at batch 64: the split epoch
    small = _data(120, 20)
    sparse_X, sparse_y = _data(200, 300, seed=1)
    sparse_X[sparse_X < 0.9] = 0.0
    sparse_X = sp.csr_matrix(sparse_X)
    test_rows = _data(400, 100, seed=2)[0]  # 400 x 6.7k parameters: threaded predict
    return {
        "per-sample-f64": (
            MLPClassifier((128,), solver="sgd", batch_size=1, max_iter=2, random_state=0),
            *wide,
            wide[0],
        ),
        "per-sample-f32": (
            MLPClassifier(
                (128,), solver="sgd", batch_size=1, max_iter=2, dtype="float32", random_state=0
            ),
            *wide,
            wide[0],
        ),
        "split-adam-f64": (
            MLPClassifier((64,), batch_size=64, max_iter=3, early_stopping=True, random_state=0),
            *mid,
            test_rows,
        ),
        "split-adam-f32": (
            MLPClassifier((64,), batch_size=64, max_iter=3, dtype="float32", random_state=0),
            *mid,
            test_rows,
        ),
        "split-sgd-f64": (
            MLPClassifier((64,), solver="sgd", batch_size=64, max_iter=3, random_state=0),
            *mid,
            test_rows,
        ),
        "split-rmsprop-f64": (
            MLPClassifier((64,), solver="rmsprop", batch_size=64, max_iter=3, random_state=0),
            *mid,
            test_rows,
        ),
        "minibatch-adam": (
            MLPClassifier((16,), batch_size=8, max_iter=3, random_state=0),
            *small,
            small[0],
        ),
        "full-batch-sgd": (
            MLPClassifier((64,), solver="sgd", batch_size=300, max_iter=3, random_state=0),
            *mid,
            test_rows,
        ),
        "lbfgs": (
            MLPClassifier((32,), solver="lbfgs", max_iter=10, random_state=0),
            *mid,
            test_rows,
        ),
        "lbfgs-regressor": (
            MLPRegressor(hidden_layer_sizes=(32,), solver="lbfgs", max_iter=10, random_state=0),
            mid[0],
            mid[1].astype(float),
            test_rows,
        ),
        "sparse-per-sample": (
            MLPClassifier((128,), solver="sgd", batch_size=1, max_iter=2, random_state=0),
            sparse_X,
            sparse_y,
            sparse_X,
        ),
        "sparse-minibatch": (
            MLPClassifier((64,), batch_size=32, max_iter=3, random_state=0),
            sparse_X,
            sparse_y,
            sparse_X,
        ),
        "sparse-sgd-minibatch": (  # lazy first-layer rows (kernels/sparse_sgd.py)
            MLPClassifier((64,), solver="sgd", batch_size=32, max_iter=3, random_state=0),
            sparse_X,
            sparse_y,
            sparse_X,
        ),
    }


CASE_NAMES = (
    "per-sample-f64",
    "per-sample-f32",
    "split-adam-f64",
    "split-adam-f32",
    "split-sgd-f64",
    "split-rmsprop-f64",
    "minibatch-adam",
    "full-batch-sgd",
    "lbfgs",
    "lbfgs-regressor",
    "sparse-per-sample",
    "sparse-minibatch",
    "sparse-sgd-minibatch",
)


def fit_digest(estimator, X, y, X_test):
    """SHA-256 of the fitted weights, the loss curve and the predictions on X_test."""
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        estimator.fit(X, y)
    out = (
        estimator.predict_proba(X_test)
        if hasattr(estimator, "predict_proba")
        else estimator.predict(X_test)
    )
    h = hashlib.sha256()
    for a in estimator.coefs_ + estimator.intercepts_ + [out]:
        h.update(np.ascontiguousarray(a).tobytes())
    h.update(np.asarray(getattr(estimator, "loss_curve_", []), dtype=np.float64).tobytes())
    return h.hexdigest()


def digests(names=CASE_NAMES):
    """``{case: digest}`` for the named cases, fitted one after the other."""
    cases = _cases()
    return {name: fit_digest(*cases[name]) for name in names}


def _digests_in_child(method, names):
    import multiprocessing

    with multiprocessing.get_context(method).Pool(1) as pool:
        return pool.apply(digests, (names,))


def main(argv):
    setting, names = argv[0], tuple(argv[1:]) or CASE_NAMES
    if setting in ("fork", "spawn", "forkserver"):
        digests(names[:1])  # the parent has used the kernels (and its thread pool) first
        result = _digests_in_child(setting, names)
    elif setting == "busy":
        busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
        try:
            result = digests(names)
        finally:
            for p in busy:
                p.kill()
                p.wait()
    else:
        result = digests(names)
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
