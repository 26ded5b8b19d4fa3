"""Reliability: bad input, divergence, interruption, threads, determinism, cache, memory."""

import _thread
import hashlib
import os
import subprocess
import sys
import textwrap
import threading
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_array_equal
from sklearn.datasets import make_classification, make_regression
from sklearn.exceptions import ConvergenceWarning

from fastmlp import MLPClassifier, MLPRegressor


def _quiet_fit(model, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(*args, **kwargs)


def _data():
    return make_classification(n_samples=60, n_features=4, random_state=0)


@pytest.fixture
def fitted():
    X, y = _data()
    model = _quiet_fit(MLPClassifier(hidden_layer_sizes=(5,), max_iter=5, random_state=0), X, y)
    return model, X, y


def _snapshot(model, X):
    return [a.copy() for a in model.coefs_ + model.intercepts_], model.predict_proba(X)


def _assert_unchanged(model, X, snapshot):
    params, proba = snapshot
    for a, b in zip(model.coefs_ + model.intercepts_, params):
        assert_array_equal(a, b)
    assert_array_equal(model.predict_proba(X), proba)


def _with_nan(X):
    X = X.copy()
    X[3, 1] = np.nan
    return X


def _with_inf(X):
    X = X.copy()
    X[3, 1] = np.inf
    return X


# Each bad X: (make, exception, message it must name).
BAD_X = {
    "nan": (_with_nan, ValueError, "NaN"),
    "inf": (_with_inf, ValueError, "infinity"),
    "empty": (lambda X: X[:0], ValueError, "0 sample"),
    "1-D": (lambda X: X[:, 0], ValueError, "Expected 2D array"),
    "3-D": (lambda X: X[:, :, None], ValueError, "dim 3"),
    "strings": (lambda X: X.astype(str).astype(object) + "x", ValueError, "could not convert"),
    "complex": (lambda X: X + 1j, ValueError, "[Cc]omplex"),
}
# values whose squares overflow: training decides, as in scikit-learn (see
# test_huge_X_trains_as_scikit_learn_does_or_raises_its_error); predict says so
# when the output overflows
HUGE_X = {"huge": (lambda X: X * 1e300, ValueError, "too large")}


@pytest.mark.parametrize("case", sorted(BAD_X))
@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_bad_X_in_fit_errors_clearly_and_leaves_the_model_unchanged(fitted, case, method):
    model, X, y = fitted
    make, exc, match = BAD_X[case]
    Xb = make(X)
    snapshot = _snapshot(model, X)
    yb = y[: len(Xb)] if case == "empty" else y
    with pytest.raises(exc, match=match):
        getattr(model, method)(Xb, yb)
    _assert_unchanged(model, X, snapshot)


@pytest.mark.parametrize("case", sorted({**BAD_X, **HUGE_X}))
@pytest.mark.parametrize("method", ["predict", "predict_proba", "score"])
def test_bad_X_in_predict_errors_clearly(fitted, case, method):
    model, X, y = fitted
    make, exc, match = {**BAD_X, **HUGE_X}[case]
    Xb = make(X)
    args = (Xb, y[: len(Xb)]) if method == "score" else (Xb,)
    snapshot = _snapshot(model, X)
    if case == "huge":  # predicting may be fine; if the output overflows it must say so
        try:
            result = getattr(model, method)(*args)
        except ValueError as error:
            assert "too large" in str(error)
        else:
            assert np.isfinite(np.asarray(result, dtype=float)).all()
    else:
        with pytest.raises(exc, match=match):
            getattr(model, method)(*args)
    _assert_unchanged(model, X, snapshot)


def test_predict_says_so_when_the_output_overflows():
    X, y = make_regression(n_samples=40, n_features=3, random_state=0)
    model = _quiet_fit(
        MLPRegressor(
            loss="poisson",
            hidden_layer_sizes=(4,),
            activation="identity",
            max_iter=3,
            random_state=0,
        ),
        X,
        np.abs(y),
    )
    with pytest.raises(ValueError, match="not finite.*too large"):
        model.predict(np.array([[1e6, -1e6, 1e6], [-1e6, 1e6, -1e6]]))


@pytest.mark.parametrize(
    "make_bad,match",
    [
        (lambda X, y, w: (X, y[:-3], None), "inconsistent numbers of samples"),
        (lambda X, y, w: (X, y, -w), "[Nn]egative"),
        (lambda X, y, w: (X, y, np.where(np.arange(len(w)) == 2, np.nan, w)), "NaN"),
        (lambda X, y, w: (X, y, w[:-1]), "sample_weight"),
        (lambda X, y, w: (X[:, :3], y, None), "features"),  # partial_fit / warm start
    ],
)
def test_bad_y_and_sample_weight_error_clearly(fitted, make_bad, match):
    model, X, y = fitted
    w = np.ones(len(y))
    Xb, yb, wb = make_bad(X, y, w)
    snapshot = _snapshot(model, X)
    with pytest.raises(ValueError, match=match):
        model.partial_fit(Xb, yb, sample_weight=wb)
    _assert_unchanged(model, X, snapshot)
    if match != "features":  # a fresh fit may change n_features; the rest must fail
        with pytest.raises(ValueError, match=match):
            model.fit(Xb, yb, sample_weight=wb)
        _assert_unchanged(model, X, snapshot)


def test_regressor_rejects_nan_targets_and_huge_values():
    X, y = make_regression(n_samples=40, n_features=3, random_state=0)
    model = _quiet_fit(MLPRegressor(hidden_layer_sizes=(4,), max_iter=3, random_state=0), X, y)
    before = model.predict(X)
    with pytest.raises(ValueError, match="NaN"):
        model.fit(X, np.where(np.arange(40) == 5, np.nan, y))
    with pytest.raises(ValueError, match="non-finite parameter weights"):
        MLPRegressor(solver="lbfgs", max_iter=5).fit(X * 1e300, y)
    with pytest.raises(ValueError, match="too large"):
        model.fit(X, y * 1e300)
    assert_array_equal(model.predict(X), before)


@pytest.mark.parametrize("sparse", [False, True])
def test_one_pass_check_separates_nan_inf_huge_and_merely_large(sparse):
    X, y = make_regression(n_samples=40, n_features=3, random_state=0)
    wrap = sp.csr_matrix if sparse else np.asarray
    model = MLPRegressor(hidden_layer_sizes=(4,), max_iter=2, random_state=0)
    for bad, message in (
        (np.nan, "Input X contains NaN"),
        (np.inf, "Input X contains infinity"),
        (1e200, "non-finite parameter weights"),
    ):
        Xb = X.copy()
        Xb[3, 1] = bad
        with pytest.raises(ValueError, match=message):
            model.fit(wrap(Xb), y)
    # squares that fit but whose sum overflows: not refused up front; training
    # decides (here the loss at the initial weights overflows: scikit-learn's error)
    Xl = np.full_like(X, 1e154)  # square 1e308 < max, 120 of them overflow the sum
    with np.errstate(over="ignore"):
        assert not np.isfinite((Xl**2).sum())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            model.fit(wrap(Xl), y)
        except ValueError as exc:
            assert str(exc).startswith("Solver produced non-finite parameter weights")


def _variants(X):
    """Layouts and types that must be accepted and give the float64 C-order result."""
    mm_path = os.path.join(os.environ.get("PYTEST_TMP", "/tmp"), f"fastmlp-mm-{os.getpid()}.dat")
    mm = np.memmap(mm_path, dtype=np.float64, mode="w+", shape=X.shape)
    mm[:] = X
    mm.flush()
    readonly = X.copy()
    readonly.setflags(write=False)
    wide = np.zeros((X.shape[0], 2 * X.shape[1]))
    wide[:, ::2] = X
    return {
        "fortran": np.asfortranarray(X),
        "non-contiguous": wide[:, ::2],
        "read-only": readonly,
        "memmap": np.memmap(mm_path, dtype=np.float64, mode="r", shape=X.shape),
        "list": X.tolist(),
    }


@pytest.mark.parametrize("solver,batch_size", [("sgd", 1), ("adam", 16), ("lbfgs", "auto")])
def test_layouts_read_only_and_memmap_work_and_match(solver, batch_size):
    X, y = _data()
    kw = dict(
        hidden_layer_sizes=(5,), max_iter=4, random_state=0, solver=solver, batch_size=batch_size
    )
    expected = _quiet_fit(MLPClassifier(**kw), X, y)
    for name, Xv in _variants(X).items():
        got = _quiet_fit(MLPClassifier(**kw), Xv, y)
        for a, b in zip(got.coefs_, expected.coefs_):
            assert_array_equal(a, b, err_msg=name)
        assert_array_equal(got.predict_proba(Xv), expected.predict_proba(X), err_msg=name)


def test_integer_boolean_and_other_sparse_formats_are_converted():
    X, y = _data()
    kw = dict(hidden_layer_sizes=(5,), max_iter=3, random_state=0)
    Xi = np.rint(X * 3).astype(np.int32)
    ref = _quiet_fit(MLPClassifier(**kw), Xi.astype(np.float64), y)
    got = _quiet_fit(MLPClassifier(**kw), Xi, y)
    assert_array_equal(got.coefs_[0], ref.coefs_[0])
    Xb = X > 0
    ref = _quiet_fit(MLPClassifier(**kw), Xb.astype(np.float64), y)
    assert_array_equal(_quiet_fit(MLPClassifier(**kw), Xb, y).coefs_[0], ref.coefs_[0])
    Xs = sp.csr_matrix(np.where(X > 0.5, X, 0.0))
    ref = _quiet_fit(MLPClassifier(**kw), Xs, y)
    for fmt in ("coo", "lil", "dok", "bsr", "csc"):
        got = _quiet_fit(MLPClassifier(**kw), Xs.asformat(fmt), y)
        assert_array_equal(got.coefs_[0], ref.coefs_[0], err_msg=fmt)
        assert_array_equal(got.predict(Xs.asformat(fmt)), ref.predict(Xs), err_msg=fmt)


@pytest.mark.parametrize("solver,batch_size", [("sgd", 1), ("sgd", 16)])
def test_divergence_keeps_finite_weights_and_predict_never_returns_nan(solver, batch_size):
    X, y = _data()
    with pytest.warns(ConvergenceWarning, match="lower learning_rate_init"):
        model = MLPClassifier(
            solver=solver,
            learning_rate_init=1e3,
            batch_size=batch_size,
            max_iter=30,
            random_state=0,
        ).fit(X * 100, y)
    assert all(np.isfinite(a).all() for a in model.coefs_ + model.intercepts_)
    assert np.isfinite(model.predict_proba(X)).all()


def test_keyboard_interrupt_keeps_the_last_finished_epoch(ctrl_c_raises):
    X, y = _data()
    model = MLPClassifier(
        hidden_layer_sizes=(8,),
        solver="sgd",
        batch_size=1,
        max_iter=10**6,
        tol=0,
        n_iter_no_change=10**6,
        random_state=0,
    )
    timer = threading.Timer(0.5, _thread.interrupt_main)
    timer.start()
    try:
        with pytest.warns(UserWarning, match="interrupted"):
            model.fit(X, y)
    finally:
        timer.cancel()
    assert 0 < model.n_iter_ < 10**6
    assert len(model.loss_curve_) == model.n_iter_
    assert all(np.isfinite(a).all() for a in model.coefs_ + model.intercepts_)
    assert model.score(X, y) > 0.5
    model.partial_fit(X, y)  # still usable


def _make_models():
    X, y = make_classification(n_samples=300, n_features=200, n_informative=20, random_state=0)
    # 200 x 256 weights: the first layer is updated on the thread pool
    return (
        X,
        y,
        [
            MLPClassifier(
                hidden_layer_sizes=(256,), solver="sgd", batch_size=1, max_iter=3, random_state=1
            ),
            MLPClassifier(
                hidden_layer_sizes=(64, 32),
                solver="adam",
                batch_size=32,
                max_iter=5,
                random_state=2,
            ),
        ],
    )


def test_two_fits_in_two_threads_equal_fits_one_after_the_other():
    X, y, sequential = _make_models()
    for m in sequential:
        _quiet_fit(m, X, y)
    _, _, concurrent = _make_models()
    errors = []

    def run(model):
        try:
            _quiet_fit(model, X, y)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(m,)) for m in concurrent]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for a, b in zip(sequential, concurrent):
        for u, v in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
            assert_array_equal(u, v)
        assert a.loss_curve_ == b.loss_curve_


def test_predict_from_many_threads_on_one_model():
    X, y, (model, _) = _make_models()
    _quiet_fit(model, X, y)
    expected = model.predict_proba(X)
    results = [None] * 8

    def run(i):
        for _ in range(20):
            results[i] = model.predict_proba(X)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in results:
        assert_array_equal(r, expected)


def test_same_random_state_gives_identical_coefs_within_a_process():
    X, y = _data()
    for kw in (dict(solver="sgd", batch_size=1), dict(solver="adam"), dict(solver="lbfgs")):
        a = _quiet_fit(
            MLPClassifier(hidden_layer_sizes=(6,), max_iter=5, random_state=3, **kw), X, y
        )
        b = _quiet_fit(
            MLPClassifier(hidden_layer_sizes=(6,), max_iter=5, random_state=3, **kw), X, y
        )
        for u, v in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
            assert_array_equal(u, v)


_FIT_AND_HASH = textwrap.dedent(
    """
    import hashlib, warnings
    import numpy as np
    from sklearn.datasets import make_classification
    from sklearn.exceptions import ConvergenceWarning
    warnings.simplefilter("ignore", ConvergenceWarning)
    from fastmlp import MLPClassifier
    X, y = make_classification(n_samples=60, n_features=4, random_state=0)
    m = MLPClassifier(hidden_layer_sizes=(6,), solver="sgd", batch_size=1, max_iter=5,
                      random_state=3).fit(X, y)
    print(hashlib.sha256(b"".join(a.tobytes() for a in m.coefs_ + m.intercepts_)).hexdigest())
    """
)


def _hash_in_subprocess(cache_dir):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache_dir), PYTHONWARNINGS="default")
    proc = subprocess.run(
        [sys.executable, "-c", _FIT_AND_HASH], env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip(), proc.stderr


@pytest.mark.slow
def test_determinism_across_processes_cold_warm_and_corrupted_cache(tmp_path):
    X, y = _data()
    m = _quiet_fit(
        MLPClassifier(
            hidden_layer_sizes=(6,), solver="sgd", batch_size=1, max_iter=5, random_state=3
        ),
        X,
        y,
    )
    here = hashlib.sha256(b"".join(a.tobytes() for a in m.coefs_ + m.intercepts_)).hexdigest()
    cache = tmp_path / "numba-cache"
    cold, _ = _hash_in_subprocess(cache)
    warm, _ = _hash_in_subprocess(cache)
    assert cold == warm == here
    entries = [p for p in cache.rglob("*") if p.suffix in (".nbi", ".nbc")]
    assert entries, "the cold run should have filled the cache"
    for p in entries:  # every entry unreadable: recompiled with a warning, same numbers
        p.write_bytes(b"\x00garbage")
    healed, stderr = _hash_in_subprocess(cache)
    assert healed == here
    assert "CacheWarning" in stderr and "compiling instead" in stderr
    again, stderr = _hash_in_subprocess(cache)  # healed entries were rewritten
    assert again == here and "CacheWarning" not in stderr


@pytest.mark.slow
def test_unusable_cache_directory_still_trains(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    digest, _ = _hash_in_subprocess(blocker / "cache")
    X, y = _data()
    m = _quiet_fit(
        MLPClassifier(
            hidden_layer_sizes=(6,), solver="sgd", batch_size=1, max_iter=5, random_state=3
        ),
        X,
        y,
    )
    assert (
        digest
        == hashlib.sha256(b"".join(a.tobytes() for a in m.coefs_ + m.intercepts_)).hexdigest()
    )


def _rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc (Linux)")
def test_repeated_fits_and_predicts_do_not_grow_memory():
    X, y = _data()
    Xs = sp.csr_matrix(X)

    def cycle():
        for kw in (
            dict(solver="sgd", batch_size=1),
            dict(solver="adam", batch_size=16),
            dict(solver="lbfgs"),
        ):
            m = _quiet_fit(
                MLPClassifier(hidden_layer_sizes=(16,), max_iter=3, random_state=0, **kw), X, y
            )
            m.predict_proba(X)
            m.predict(Xs)

    for _ in range(10):
        cycle()
    start = _rss_bytes()
    for _ in range(200):
        cycle()
    grown = _rss_bytes() - start
    assert grown < 20 * 2**20, f"resident memory grew by {grown / 2**20:.1f} MiB"


def test_forked_child_trains_without_the_thread_pool():
    if not hasattr(os, "fork"):
        pytest.skip("no fork on this platform")
    X, y, (model, _) = _make_models()
    _quiet_fit(model, X, y)  # the parent has used the thread pool
    expected = model.coefs_[0].copy()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: GNU OpenMP would abort here; fastmlp must fall back to serial
        code = 1
        try:
            from fastmlp._threads import threads_usable

            child = _quiet_fit(MLPClassifier(**model.get_params()), X, y)
            ok = (not threads_usable()) and np.array_equal(child.coefs_[0], expected)
            code = 0 if ok else 1
        finally:
            os.write(write_end, bytes([code]))
            os._exit(code)
    os.close(write_end)
    status = os.read(read_end, 1)
    os.waitpid(pid, 0)
    assert status == b"\x00"
