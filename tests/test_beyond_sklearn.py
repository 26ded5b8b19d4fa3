"""Opt-in features scikit-learn's MLP does not have; the defaults stay scikit-learn's."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose, assert_array_equal
from scipy.special import softmax
from sklearn.datasets import make_classification, make_multilabel_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.utils.class_weight import compute_sample_weight

from fastmlp import MLPClassifier, MLPRegressor, Network, gradient_check


def _quiet(model, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(*args, **kwargs)


@pytest.fixture
def data():
    return make_classification(
        n_samples=120, n_features=6, n_informative=4, n_classes=3, random_state=0
    )


def test_softplus_and_per_layer_activations_train(data):
    X, y = data
    model = _quiet(MLPClassifier((8, 6), activation=["softplus", "tanh"], random_state=0), X, y)
    assert model.score(X, y) > 0.7
    H = model.transform(X, layer=1)
    z = X @ model.coefs_[0] + model.intercepts_[0]
    assert_allclose(H, np.logaddexp(0, z), rtol=1e-12)


@pytest.mark.parametrize(
    "init,std",
    [
        ("he_normal", lambda n: np.sqrt(2 / n)),
        ("he_uniform", lambda n: np.sqrt(2 / n)),
        ("lecun_normal", lambda n: np.sqrt(1 / n)),
    ],
)
def test_init_options_have_their_variance_and_zero_intercepts(init, std):
    net = Network([400, 300, 3], init=init, random_state=0)
    assert net.coefs_[0].std() == pytest.approx(std(400), rel=0.02)
    assert net.coefs_[1].std() == pytest.approx(std(300), rel=0.1)
    assert not any(b.any() for b in net.intercepts_)
    with pytest.raises(ValueError, match="init"):
        Network([3, 2], init="zeros")


def test_selu_with_lecun_normal_keeps_activations_normalized():
    rng = np.random.RandomState(0)
    X = rng.randn(2000, 100)
    net = Network([100] + [100] * 8 + [1], activation="selu", init="lecun_normal", random_state=0)
    deepest = net.forward(X, layer=8)
    assert abs(deepest.mean()) < 0.2 and 0.7 < deepest.std() < 1.3


def test_default_init_is_still_scikit_learns(data):
    from sklearn.neural_network import MLPClassifier as SkMLP

    X, y = data
    ours = _quiet(MLPClassifier((7,), max_iter=1, random_state=4), X, y)
    theirs = _quiet(SkMLP((7,), max_iter=1, random_state=4), X, y)
    for a, b in zip(ours.coefs_, theirs.coefs_):
        assert_allclose(a, b, rtol=1e-9)


@pytest.mark.parametrize("sparse", [False, True])
def test_transform_returns_hidden_activations_and_feeds_a_pipeline(data, sparse):
    X, y = data
    Xin = sp.csr_matrix(X) if sparse else X
    model = _quiet(MLPClassifier((9, 5), activation="tanh", max_iter=50, random_state=0), Xin, y)
    h1 = np.tanh(X @ model.coefs_[0] + model.intercepts_[0])
    h2 = np.tanh(h1 @ model.coefs_[1] + model.intercepts_[1])
    assert_allclose(model.transform(Xin, layer=1), h1, rtol=1e-12)
    assert_allclose(model.transform(Xin), h2, rtol=1e-12)
    assert_allclose(model.transform(Xin, layer=-2), h1, rtol=1e-12)
    out = softmax(h2 @ model.coefs_[2] + model.intercepts_[2], axis=1)
    assert_allclose(model.predict_proba(Xin), out, rtol=1e-10)
    with pytest.raises(ValueError, match="layer must be"):
        model.transform(Xin, layer=3)
    pipe = make_pipeline(MLPClassifier((9,), max_iter=50, random_state=0), LogisticRegression())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        pipe.fit(Xin, y)
    assert pipe.score(Xin, y) > 0.6


def test_validation_loss_curve_beside_validation_scores(data):
    X, y = data
    model = _quiet(MLPClassifier((10,), early_stopping=True, max_iter=40, random_state=0), X, y)
    assert len(model.validation_loss_curve_) == len(model.validation_scores_) == model.n_iter_
    assert np.isfinite(model.validation_loss_curve_).all()
    assert model.validation_loss_curve_[-1] < model.validation_loss_curve_[0]
    plain = _quiet(MLPClassifier((10,), max_iter=3, random_state=0), X, y)
    assert plain.validation_loss_curve_ is None


def test_validation_loss_is_the_loss_on_the_held_out_rows():
    # validation_fraction so that every row but one pair is held out is hard
    # to reproduce; instead: with alpha=0 and a one-row-per-class validation
    # split, compare with the network's loss on the rows scikit-learn's split picks.
    from sklearn.model_selection import train_test_split
    from sklearn.utils import check_random_state

    X, y = make_classification(n_samples=80, n_features=4, random_state=1)
    seen = []
    model = MLPClassifier(
        (6,),
        early_stopping=True,
        max_iter=3,
        alpha=0.0,
        random_state=0,
        n_iter_no_change=100,
        callbacks=[
            lambda est, info: seen.append([c.copy() for c in est.coefs_ + est.intercepts_])
        ],
    )
    _quiet(model, X, y)
    rng = check_random_state(0)
    Network([4, 6, 1], output="logistic", loss="log_loss", random_state=rng)  # same draws
    _, X_val, _, y_val = train_test_split(X, y, random_state=rng, test_size=0.1, stratify=y)
    params = seen[-1]
    h = np.maximum(X_val @ params[0] + params[2], 0)
    z = (h @ params[1] + params[3]).ravel()
    expected = np.mean(np.logaddexp(0, z) - y_val * z)
    assert model.validation_loss_curve_[-1] == pytest.approx(expected, rel=1e-10)


def test_callbacks_see_each_epoch_and_can_stop(data):
    X, y = data
    infos = []

    def record(est, info):
        infos.append(dict(info))
        return info["epoch"] == 4

    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model = MLPClassifier((8,), max_iter=50, callbacks=[record], random_state=0).fit(X, y)
    assert model.n_iter_ == 4
    assert [i["epoch"] for i in infos] == [1, 2, 3, 4]
    assert infos[-1]["loss"] == model.loss_
    assert set(infos[0]) == {
        "epoch",
        "loss",
        "validation_score",
        "validation_loss",
        "samples_per_s",
    }


def test_class_weight_equals_the_matching_sample_weight(data):
    X, y = data
    kw = dict(hidden_layer_sizes=(6,), max_iter=5, random_state=0)
    weighted = _quiet(MLPClassifier(class_weight={0: 3.0, 2: 0.5}, **kw), X, y)
    sw = np.where(y == 0, 3.0, np.where(y == 2, 0.5, 1.0))
    expected = _quiet(MLPClassifier(**kw), X, y, sample_weight=sw)
    for a, b in zip(weighted.coefs_, expected.coefs_):
        assert_array_equal(a, b)
    balanced = _quiet(
        MLPClassifier(class_weight="balanced", **kw),
        X[:100],
        y[:100],
        sample_weight=np.full(100, 2.0),
    )
    expected = _quiet(
        MLPClassifier(**kw),
        X[:100],
        y[:100],
        sample_weight=2.0 * compute_sample_weight("balanced", y[:100]),
    )
    for a, b in zip(balanced.coefs_, expected.coefs_):
        assert_allclose(a, b, rtol=1e-12)


def test_class_weight_errors_clearly(data):
    X, y = data
    with pytest.raises(ValueError, match="partial_fit"):
        MLPClassifier(class_weight="balanced", solver="sgd").partial_fit(X, y, classes=[0, 1, 2])
    Xm, Ym = make_multilabel_classification(n_samples=30, random_state=0)
    with pytest.raises(ValueError, match="multilabel"):
        MLPClassifier(class_weight="balanced").fit(Xm, Ym)


def test_multilabel_partial_fit_equals_fit():
    X, Y = make_multilabel_classification(n_samples=60, n_classes=4, random_state=0)
    kw = dict(hidden_layer_sizes=(7,), solver="sgd", shuffle=False, random_state=0)
    fitted = _quiet(MLPClassifier(max_iter=1, **kw), X, Y)
    partial = MLPClassifier(**kw)
    partial.partial_fit(X, Y)
    for a, b in zip(partial.coefs_, fitted.coefs_):
        assert_array_equal(a, b)
    partial.partial_fit(X[:10], Y[:10])
    assert partial.predict(X).shape == Y.shape


@pytest.mark.parametrize("batch_size", [1, 4])
def test_zero_weight_rows_are_skipped_without_crash(data, batch_size):
    # scikit-learn's per-sample SGD fails with 'Weights sum to zero' here
    X, y = data
    sw = np.ones(len(y))
    sw[:8] = 0.0  # the first two batches of 4 carry no weight at all
    kw = dict(
        hidden_layer_sizes=(6,),
        solver="sgd",
        batch_size=batch_size,
        shuffle=False,
        max_iter=2,
        random_state=0,
    )
    model = _quiet(MLPClassifier(**kw), X, y, sample_weight=sw)
    dropped = _quiet(MLPClassifier(**kw), X[8:], y[8:])
    for a, b in zip(model.coefs_, dropped.coefs_):
        assert_allclose(a, b, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize(
    "make",
    [
        lambda: (MLPClassifier((5,), activation="tanh", max_iter=5, random_state=0), "clf"),
        lambda: (
            MLPClassifier(
                (4, 3), activation=["softplus", "elu"], max_iter=5, dtype="float32", random_state=0
            ),
            "clf",
        ),
        lambda: (
            MLPRegressor(
                hidden_layer_sizes=(5,), activation="logistic", max_iter=5, random_state=0
            ),
            "reg",
        ),
        lambda: (
            MLPRegressor(
                loss="poisson",
                hidden_layer_sizes=(4,),
                activation="tanh",
                max_iter=5,
                random_state=0,
            ),
            "poisson",
        ),
    ],
)
def test_gradient_check_agrees_for_estimators(data, make):
    X, y = data
    model, kind = make()
    target = {"clf": y, "reg": X[:, 0] + y, "poisson": np.abs(y)}[kind]
    _quiet(model, X, target)
    report = gradient_check(model, X[:30], target[:30], sample_weight=np.linspace(0.5, 2, 30))
    assert len(report["coefs"]) == len(report["intercepts"]) == len(model.coefs_)
    assert report["max"] < 1e-6


def test_gradient_check_finds_a_wrong_gradient(monkeypatch):
    net = Network([3, 4, 2], activation="tanh", output="softmax", loss="log_loss", random_state=0)
    X = np.random.RandomState(0).randn(10, 3)
    Y = np.eye(2)[np.arange(10) % 2]
    assert gradient_check(net, X, Y)["max"] < 1e-7
    original = Network.loss_and_flat_gradients

    def broken(self, *args, **kwargs):
        loss, grads = original(self, *args, **kwargs)
        grads = grads.copy()
        grads[0] *= 1.5  # a bug in the first weight's gradient
        return loss, grads

    monkeypatch.setattr(Network, "loss_and_flat_gradients", broken)
    report = gradient_check(net, X, Y)
    assert report["coefs"][0] > 1e-3 and report["coefs"][1] < 1e-7


def test_astype_copies_the_whole_network():
    """The twin that gradient_check builds once lost huber_delta (a hand-copied
    constructor): its loss was 2.2127 where the model's was 0.2613."""
    net = Network(
        [3, 4, 1],
        activation="tanh",
        loss="huber",
        huber_delta=0.1,
        dropout=0.25,
        init="he_normal",
        leaky_relu_slope=0.2,
        random_state=0,
    )
    net.set_optimizer("adam", beta_1=0.8)
    rng = np.random.RandomState(0)
    X, Y = rng.randn(20, 3), 3 * rng.randn(20, 1)
    net.train_epoch(X, Y, learning_rate=0.01, batch_size=5)
    for dtype in ("float64", "float32"):
        twin = net.astype(dtype)
        assert twin.dtype == np.dtype(dtype) and twin.params.dtype == np.dtype(dtype)
        state, twin_state = net.__getstate__(), twin.__getstate__()
        assert state.keys() == twin_state.keys()
        for key, value in state.items():
            if key == "dtype":
                continue
            if isinstance(value, np.ndarray):
                assert np.array_equal(twin_state[key], value.astype(twin_state[key].dtype)), key
                assert not np.shares_memory(twin_state[key], value), key
            else:
                assert twin_state[key] == value, key
        loss, grads = net.loss_and_flat_gradients(X, Y)
        twin_loss, twin_grads = twin.loss_and_flat_gradients(X.astype(dtype), Y)
        assert_allclose(twin_loss, loss, rtol=1e-5)
        assert_allclose(twin_grads, grads, rtol=1e-4, atol=1e-6)
    assert loss < 1.0  # huber_delta=0.1 keeps the loss small; with 1.0 it reads 2.2
    twin = net.astype("float64")
    twin.params[0] += 1
    assert twin.params[0] != net.params[0]

    class Subclass(Network):  # e.g. a network with an instrumented gradient
        pass

    sub = Subclass([3, 4, 1], random_state=0)
    assert type(sub.astype("float32")) is Subclass


def test_gradient_check_uses_the_estimators_huber_delta(monkeypatch):
    rng = np.random.RandomState(0)
    X, y = rng.randn(30, 3), 5 * rng.randn(30)
    model = MLPRegressor(
        hidden_layer_sizes=(4,),
        activation="tanh",
        loss="huber",
        huber_delta=0.1,
        solver="lbfgs",
        max_iter=3,
        random_state=0,
    ).fit(X, y)
    seen = []
    original = Network.loss_and_flat_gradients

    def spy(self, *args, **kwargs):
        seen.append(self.huber_delta)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Network, "loss_and_flat_gradients", spy)
    assert gradient_check(model, X, y)["max"] < 1e-6
    assert seen and set(seen) == {0.1}


# ---------------------------------------------------------------- dropout
@pytest.mark.parametrize("batch_size", [1, 16, 120])  # per-sample, mini-batch, full batch
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("sparse", [False, True])
def test_dropout_trains_reproducibly_and_is_off_at_predict(data, batch_size, dtype, sparse):
    X, y = data
    Xs = sp.csr_matrix(X) if sparse else X
    kw = dict(
        hidden_layer_sizes=(32, 16),
        dropout=[0.2, 0.1],
        batch_size=batch_size,
        learning_rate_init=0.01,
        max_iter=40,
        dtype=dtype,
        random_state=0,
    )
    a = _quiet(MLPClassifier(**kw), Xs, y)
    b = _quiet(MLPClassifier(**kw), Xs, y)
    for ca, cb in zip(a.coefs_, b.coefs_):
        assert_array_equal(ca, cb)  # same random_state, same masks
    c = _quiet(MLPClassifier(**{**kw, "random_state": 1}), Xs, y)
    assert not np.array_equal(
        a.coefs_[0], _quiet(MLPClassifier(**{**kw, "dropout": 0.0}), Xs, y).coefs_[0]
    )
    assert c.score(Xs, y) > 0.7 and a.score(Xs, y) > 0.7
    # predict: the whole network, no mask, the same output every call
    H = np.maximum(X @ a.coefs_[0] + a.intercepts_[0], 0)
    H = np.maximum(H @ a.coefs_[1] + a.intercepts_[1], 0)
    tol = 1e-4 if dtype == "float32" else 1e-12
    assert_allclose(
        a.predict_proba(Xs),
        softmax(H @ a.coefs_[2] + a.intercepts_[2], axis=1),
        rtol=tol,
        atol=tol,
    )
    assert_array_equal(a.predict_proba(Xs), a.predict_proba(Xs))


def test_zero_dropout_draws_nothing_and_stays_scikit_learns(data):
    X, y = data
    a = _quiet(MLPClassifier((8,), random_state=0, max_iter=5), X, y)
    b = _quiet(MLPClassifier((8,), random_state=0, max_iter=5, dropout=0.0), X, y)
    for ca, cb in zip(a.coefs_, b.coefs_):
        assert_array_equal(ca, cb)


def test_dropout_stream_continues_across_partial_fit(data):
    X, y = data
    kw = dict(
        hidden_layer_sizes=(8,),
        dropout=0.3,
        solver="sgd",
        shuffle=False,
        random_state=0,
        learning_rate_init=0.05,
    )
    fit = _quiet(MLPClassifier(max_iter=2, **kw), X, y)
    chunks = MLPClassifier(**kw)
    for _ in range(2):
        chunks.partial_fit(X, y, classes=np.unique(y))
    for a, b in zip(fit.coefs_, chunks.coefs_):
        assert_array_equal(a, b)


def test_dropout_errors_are_clear(data):
    X, y = data
    with pytest.raises(ValueError, match="dropout is not supported with solver='lbfgs'"):
        MLPClassifier(solver="lbfgs", dropout=0.5).fit(X, y)
    with pytest.raises(ValueError, match="2 rates for 1 hidden layers"):
        MLPClassifier((4,), dropout=[0.1, 0.2]).fit(X, y)
    with pytest.raises(ValueError, match="dropout"):
        MLPClassifier(dropout=1.0).fit(X, y)
    model = _quiet(MLPClassifier((4,), max_iter=3, random_state=0), X, y)
    before = [c.copy() for c in model.coefs_]
    with pytest.raises(ValueError, match=r"in \[0, 1\)"):
        model.set_params(dropout=[1.5]).partial_fit(X, y)
    for a, b in zip(before, model.coefs_):
        assert_array_equal(a, b)  # the fitted model is left as it was


# ---------------------------------------------------------------- GELU, Huber
def test_gelu_hidden_features_and_gradients(data):
    X, y = data
    model = _quiet(
        MLPClassifier(
            (8, 5), activation=["gelu", "tanh"], learning_rate_init=0.01, random_state=0
        ),
        X,
        y,
    )
    assert model.score(X, y) > 0.9
    z = X @ model.coefs_[0] + model.intercepts_[0]
    gelu = 0.5 * z * (1 + np.tanh(np.sqrt(2 / np.pi) * (z + 0.044715 * z**3)))
    assert_allclose(model.transform(X, layer=1), gelu, rtol=1e-12, atol=1e-15)
    assert gradient_check(model, X[:20], y[:20])["max"] < 1e-6
    reg = _quiet(
        MLPRegressor(
            hidden_layer_sizes=(6,),
            activation="gelu",
            loss="huber",
            huber_delta=0.5,
            random_state=0,
        ),
        X,
        y.astype(float),
    )
    assert gradient_check(reg, X[:20], y[:20].astype(float))["max"] < 1e-6


def test_huber_regression_resists_outliers():
    rng = np.random.RandomState(0)
    X = rng.uniform(-2, 2, (300, 1))
    y = 2.0 * X[:, 0] + 0.05 * rng.randn(300)
    y_dirty = y.copy()
    y_dirty[:30] += 40.0  # 10 % gross outliers
    kw = dict(
        hidden_layer_sizes=(),
        solver="adam",
        learning_rate_init=0.05,
        max_iter=300,
        random_state=0,
        n_iter_no_change=50,
    )
    squared = _quiet(MLPRegressor(**kw), X, y_dirty)
    huber = _quiet(MLPRegressor(loss="huber", huber_delta=0.5, **kw), X, y_dirty)
    clean = slice(30, None)
    err_sq = np.abs(squared.predict(X[clean]) - y[clean]).mean()
    err_hu = np.abs(huber.predict(X[clean]) - y[clean]).mean()
    assert err_hu < 0.2 < err_sq  # squared error is pulled up by about 4 (the outliers' mean)
    assert huber.coefs_[0][0, 0] == pytest.approx(2.0, abs=0.1)


def test_huber_with_a_large_threshold_equals_squared_error(data):
    X, y = data
    y = y.astype(float)
    kw = dict(hidden_layer_sizes=(8,), solver="sgd", batch_size=1, max_iter=3, random_state=0)
    a = _quiet(MLPRegressor(**kw), X, y)
    b = _quiet(MLPRegressor(loss="huber", huber_delta=1e6, **kw), X, y)
    for ca, cb in zip(a.coefs_, b.coefs_):
        assert_array_equal(ca, cb)
    assert a.loss_curve_ == b.loss_curve_


# ---------------------------------------------------------------- sklearn.callback
try:
    import sklearn.callback  # noqa: F401

    HAS_CALLBACK_PROTOCOL = True
except ImportError:
    HAS_CALLBACK_PROTOCOL = False
needs_callback_protocol = pytest.mark.skipif(
    not HAS_CALLBACK_PROTOCOL, reason="scikit-learn >= 1.9's sklearn.callback protocol"
)


@pytest.mark.skipif(HAS_CALLBACK_PROTOCOL, reason="scikit-learn < 1.9 only")
def test_set_callbacks_names_the_scikit_learn_version_it_needs():
    with pytest.raises(NotImplementedError, match=r"scikit-learn >= 1\.9"):
        MLPClassifier().set_callbacks(object())


class _Recorder:
    """A FitCallback of scikit-learn's protocol that records its hooks."""

    def __init__(self, stop_after=None):
        self.events, self.stop_after, self.snapshots = [], stop_after, []

    def setup(self, estimator, context):
        self.events.append("setup")

    def teardown(self, estimator, context):
        self.events.append("teardown")

    def on_fit_task_begin(
        self, estimator, context, *, X=None, y=None, metadata=None, fitted_estimator=None
    ):
        self.events.append(("begin", context.task_name, context.task_id))

    def on_fit_task_end(
        self, estimator, context, *, X=None, y=None, metadata=None, fitted_estimator=None
    ):
        self.events.append(("end", context.task_name, context.task_id))
        if fitted_estimator is not None:
            self.snapshots.append(fitted_estimator)
        return (
            self.stop_after is not None
            and context.task_id + 1 >= self.stop_after
            and context.parent is not None
        )


@needs_callback_protocol
@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_sklearn_callback_protocol_hooks_snapshots_and_stop(data, solver):
    X, y = data
    rec = _Recorder()
    model = _quiet(
        MLPClassifier((8,), solver=solver, max_iter=4, random_state=0).set_callbacks(rec), X, y
    )
    task = "epoch" if solver == "adam" else "lbfgs-iteration"
    n = model.n_iter_
    assert rec.events[:3] == ["setup", ("begin", "fit", 0), ("begin", task, 0)]
    assert rec.events[-2:] == [("end", "fit", 0), "teardown"]
    ends = [e for e in rec.events if e[0] == "end" and e[1] == task]
    assert len(ends) >= n  # lbfgs: one more, begun but never run
    # each snapshot is a fitted copy as of its task; the last is the final model
    assert_array_equal(rec.snapshots[-1].predict_proba(X), model.predict_proba(X))
    assert not np.array_equal(rec.snapshots[0].coefs_[0], model.coefs_[0])
    stopper = _Recorder(stop_after=2)
    stopped = _quiet(
        MLPClassifier((8,), solver=solver, max_iter=10, random_state=0).set_callbacks(stopper),
        X,
        y,
    )
    assert stopped.n_iter_ == 2


@needs_callback_protocol
def test_sklearn_scoring_monitor_logs_every_epoch(data):
    from sklearn.callback import ScoringMonitor

    X, y = data
    monitor = ScoringMonitor(scoring="accuracy")
    model = _quiet(MLPClassifier((8,), max_iter=6, random_state=0).set_callbacks(monitor), X, y)
    rows = monitor.get_logs().data
    epochs = [r for r in rows if r["task_name"] == "epoch"]
    assert len(epochs) == model.n_iter_ == 6
    final = [r for r in rows if r["task_name"] == "fit"][0]
    assert final["accuracy"] == pytest.approx(model.score(X, y))


@needs_callback_protocol
def test_callbacks_are_torn_down_when_fit_fails(data):
    X, y = data
    rec = _Recorder()
    model = MLPClassifier((8,), max_iter=3, random_state=0).set_callbacks(rec)

    def boom(est, info):
        raise RuntimeError("callback failed")

    model.set_params(callbacks=[boom])
    with pytest.raises(RuntimeError, match="callback failed"):
        model.fit(X, y)
    assert rec.events[-1] == "teardown"
    assert not hasattr(model, "coefs_")
