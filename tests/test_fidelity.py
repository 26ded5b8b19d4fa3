"""Drop-in fidelity: where fastmlp once differed from scikit-learn's MLP, and the
stress findings of issue 19, each pinned against scikit-learn or the promise."""

import _thread
import threading
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_array_equal
from sklearn import config_context
from sklearn.base import clone
from sklearn.datasets import make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier as SkMLPClassifier
from sklearn.neural_network import MLPRegressor as SkMLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from fastmlp import MLPClassifier, MLPRegressor


def _data(n=60):
    return make_classification(n_samples=n, n_features=4, random_state=0)


@pytest.mark.parametrize("early_stopping", [False, True])
def test_one_class_fits_and_predicts_it_as_scikit_learn_does(early_stopping):
    X = np.random.RandomState(0).randn(10, 2)
    y = np.full(10, 1)
    settings = dict(early_stopping=early_stopping, validation_fraction=0.2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = MLPClassifier(**settings).fit(X, y)
        theirs = SkMLPClassifier(**settings).fit(X, y)
    assert_array_equal(ours.classes_, theirs.classes_)
    assert_array_equal(ours.predict(X), theirs.predict(X))
    assert_array_equal(ours.predict(X), np.full(10, 1))


@pytest.mark.parametrize("verbose", [1, 2, True])
def test_verbose_prints_scikit_learns_lines_at_every_level(capsys, verbose):
    X, y = _data()
    settings = dict(solver="sgd", max_iter=3, random_state=0, verbose=verbose)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        MLPClassifier(**settings).fit(X, y)
        ours = capsys.readouterr().out
        SkMLPClassifier(**settings).fit(X, y)
        theirs = capsys.readouterr().out
    assert "\r" not in ours
    shape = [line.split(" = ")[0] for line in ours.splitlines()]
    assert shape == [line.split(" = ")[0] for line in theirs.splitlines()]
    assert shape == ["Iteration 1, loss", "Iteration 2, loss", "Iteration 3, loss"]


def test_early_stopping_stratifies_on_the_indicators_as_scikit_learn():
    X, y = [[1, 2], [2, 3], [3, 4], [4, 5]], [0, 0, 0, 1]
    with pytest.raises(ValueError, match="least populated class") as theirs:
        SkMLPClassifier(early_stopping=True).fit(X, y)
    with pytest.raises(ValueError, match="least populated class") as ours:
        MLPClassifier(early_stopping=True).fit(X, y)
    assert str(ours.value) == str(theirs.value)  # (scikit-learn >= 1.8: "... ['True']")


def test_data_that_overflows_raises_scikit_learns_error():
    # scikit-learn's test_nonfinite_params
    rng = np.random.RandomState(0)
    X = np.finfo(np.float64).max * rng.uniform(size=(10, 2))
    y = rng.standard_normal(size=10)
    message = "Solver produced non-finite parameter weights. The input data may contain large"
    for Estimator in (MLPRegressor, SkMLPRegressor):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with pytest.raises(ValueError, match=message):
                Estimator().fit(X, y)


def test_a_huge_irrelevant_column_trains_as_in_scikit_learn():
    X, y = _data()
    X[:, 0] *= 1e160
    for Estimator in (MLPClassifier, SkMLPClassifier):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = Estimator(hidden_layer_sizes=(5,), max_iter=20, random_state=0).fit(X, y)
        assert all(np.isfinite(c).all() for c in model.coefs_ + model.intercepts_)


@pytest.mark.parametrize("early_stopping", [False, True])
def test_a_too_large_learning_rate_on_scaled_data_warns_and_keeps_finite_weights(
    early_stopping,
):
    rng = np.random.RandomState(0)
    X, y = rng.randn(200, 10), rng.randn(200)
    model = MLPRegressor(
        hidden_layer_sizes=(32, 32),
        solver="sgd",
        learning_rate_init=50.0,
        momentum=0.9,
        max_iter=20,
        early_stopping=early_stopping,
        random_state=0,
    )
    with pytest.warns(ConvergenceWarning, match="Training stopped at epoch"):
        model.fit(X, y)
    assert all(np.isfinite(c).all() for c in model.coefs_ + model.intercepts_)
    assert np.isfinite(model.predict(X)).all()  # one behaviour with and without early stopping
    assert len(model.loss_curve_) == model.n_iter_


@pytest.mark.parametrize("sizes", [(2.5,), (True,), (0.5,), (4, 2.0)])
def test_hidden_layer_sizes_must_be_integers(sizes):
    X, y = _data()
    with pytest.raises(TypeError, match="hidden_layer_sizes must hold integers"):
        MLPClassifier(hidden_layer_sizes=sizes, max_iter=2).fit(X, y)


@pytest.mark.parametrize("weight", [-1.0, np.nan, np.inf])
def test_class_weight_must_be_finite_and_non_negative(weight):
    X, y = _data()
    model = MLPClassifier(hidden_layer_sizes=(4,), max_iter=2, class_weight={0: weight, 1: 1.0})
    with pytest.raises(ValueError, match="class_weight must be finite and non-negative"):
        model.fit(X, y)


@pytest.mark.parametrize("overshoot", [1, 10**6])
def test_csr_with_column_indices_past_its_width_is_refused(overshoot):
    X, y = _data()
    Xs = sp.csr_matrix(X)
    model = MLPClassifier(hidden_layer_sizes=(4,), max_iter=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(Xs, y)
    bad = Xs.copy()
    bad.indices[5] = X.shape[1] - 1 + overshoot  # SciPy does not check
    with pytest.raises(ValueError, match="malformed CSR matrix: column indices"):
        model.predict(bad)
    with pytest.raises(ValueError, match="malformed CSR matrix: column indices"):
        clone(model).fit(bad, y)


def test_set_output_and_feature_names_in_a_pipeline():
    pd = pytest.importorskip("pandas")
    X, y = _data()
    frame = pd.DataFrame(X, columns=list("abcd"))
    pipe = make_pipeline(
        StandardScaler(), MLPClassifier(hidden_layer_sizes=(3,), max_iter=5, random_state=0)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        pipe.set_output(transform="pandas").fit(frame, y)
    features = pipe.transform(frame)
    assert isinstance(features, pd.DataFrame)
    assert list(features.columns) == ["mlpclassifier0", "mlpclassifier1", "mlpclassifier2"]
    model = pipe[-1]
    assert list(model.get_feature_names_out()) == list(features.columns)
    model.set_output(transform="default")
    assert isinstance(model.transform(pipe[0].transform(frame)), np.ndarray)
    with config_context(transform_output="pandas"):
        assert isinstance(MLPClassifier((3,), max_iter=2).fit(X, y).transform(X), pd.DataFrame)
    assert not hasattr(MLPClassifier(hidden_layer_sizes=()), "set_output")


def test_a_failed_fit_keeps_the_callers_parameter_objects():
    X, y = _data()
    rng = np.random.RandomState(0)
    sizes = [4]
    model = MLPClassifier(hidden_layer_sizes=sizes, max_iter=2, random_state=rng)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y)
    with pytest.raises(ValueError):
        model.fit(X[:, :3], y[:5])  # inconsistent lengths
    assert model.random_state is rng and model.hidden_layer_sizes is sizes
    position = rng.get_state()[2]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y)
    assert rng.get_state()[2] != position  # later fits still draw from it


def test_a_warm_fit_that_fails_after_an_epoch_keeps_it_with_agreeing_attributes():
    # no copy of the weights is made to undo a fit (memory): input is checked
    # before training, and an error after whole epochs keeps them, as Ctrl-C
    X, y = _data()
    settings = dict(hidden_layer_sizes=(4,), max_iter=3, random_state=0, warm_start=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = MLPClassifier(**settings).fit(X, y)
        reference = MLPClassifier(**settings).fit(X, y)
        reference.set_params(max_iter=1).fit(X, y)  # one epoch further

    def boom(estimator, info):
        raise RuntimeError("callback failed")

    before = [a.copy() for a in model.coefs_]
    with pytest.raises(ValueError, match="features"):
        model.fit(X[:, :3], y)  # bad input: nothing trained, nothing changed
    for a, b in zip(model.coefs_, before):
        assert_array_equal(a, b)
    model.set_params(callbacks=[boom])
    with pytest.raises(RuntimeError, match="callback failed"):
        model.fit(X, y)  # fails after its first epoch: that epoch stays
    assert model.n_iter_ == 1 == reference.n_iter_ and model.t_ == reference.t_
    assert model.loss_curve_ == reference.loss_curve_  # (warm_start: 3 epochs, then 1)
    for a, b in zip(model.coefs_ + model.intercepts_, reference.coefs_ + reference.intercepts_):
        assert_array_equal(a, b)


def test_a_failed_fresh_fit_leaves_the_previous_model():
    X, y = _data()
    model = MLPClassifier(hidden_layer_sizes=(4,), max_iter=3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y)
    before = [a.copy() for a in model.coefs_ + model.intercepts_]
    curve = list(model.loss_curve_)

    def boom(estimator, info):
        raise RuntimeError("callback failed")

    model.set_params(callbacks=[boom], max_iter=5)
    with pytest.raises(RuntimeError, match="callback failed"):
        model.fit(X, y)
    assert model.loss_curve_ == curve and model.n_iter_ == 3
    for a, b in zip(model.coefs_ + model.intercepts_, before):
        assert_array_equal(a, b)


@pytest.mark.parametrize(
    "change",
    ["wider warm_start", "deeper warm_start", "deeper partial_fit", "more targets partial_fit"],
)
def test_a_warm_fit_cannot_change_the_layers_and_says_how_to(change):
    # scikit-learn trains the old layers on, ignoring hidden_layer_sizes, or
    # fails inside its forward pass ('NoneType' object has no attribute 'dtype')
    X, y = _data()
    Y = np.c_[y, 1 - y].astype(float)
    regression = "targets" in change
    Model = MLPRegressor if regression else MLPClassifier
    model = Model(hidden_layer_sizes=(4,), max_iter=2, random_state=0, warm_start=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        if "partial_fit" in change and regression:
            model.partial_fit(X, Y[:, 0])
        elif "partial_fit" in change:
            model.partial_fit(X, y, classes=[0, 1])
        else:
            model.fit(X, y)
    before = [a.copy() for a in model.coefs_ + model.intercepts_]
    state = (model.n_iter_, model.t_, list(model.loss_curve_))
    if change == "wider warm_start":
        model.set_params(hidden_layer_sizes=(7,))
    elif "deeper" in change:
        model.set_params(hidden_layer_sizes=(4, 4))
    target = Y if regression else y
    train = model.partial_fit if "partial_fit" in change else model.fit
    with pytest.raises(ValueError, match=r"has layer sizes \[4, 4, 1\].*warm_start=False"):
        train(X, target)
    assert (model.n_iter_, model.t_, list(model.loss_curve_)) == state
    for a, b in zip(model.coefs_ + model.intercepts_, before):
        assert_array_equal(a, b)
    model.set_params(warm_start=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, target)  # a new network
    assert model.coefs_[-1].shape[1] == (2 if regression else 1)


def test_keyboard_interrupt_leaves_attributes_that_agree_with_the_weights(ctrl_c_raises):
    X, y = _data(400)
    settings = dict(
        hidden_layer_sizes=(64,),
        solver="sgd",
        batch_size=1,
        max_iter=10**6,
        tol=0,
        n_iter_no_change=10**6,
        random_state=0,
    )
    model = MLPClassifier(**settings)
    timer = threading.Timer(0.7, _thread.interrupt_main)
    timer.start()
    try:
        with pytest.warns(UserWarning, match="interrupted"):
            model.fit(X, y)
    finally:
        timer.cancel()
    assert 0 < model.n_iter_ == len(model.loss_curve_) and model.loss_ == model.loss_curve_[-1]
    assert model.t_ == model.n_iter_ * len(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        same = MLPClassifier(**{**settings, "max_iter": model.n_iter_}).fit(X, y)
    for a, b in zip(model.coefs_ + model.intercepts_, same.coefs_ + same.intercepts_):
        assert_array_equal(a, b)  # the weights are those of the epochs counted


@pytest.mark.parametrize("early_stopping", [False, True])
def test_a_first_epoch_that_diverges_gives_one_behaviour(early_stopping):
    # once: with early stopping a "fitted" model whose predict raised, without
    # it an error at fit
    rng = np.random.RandomState(0)
    X, y = rng.randn(200, 10), 1e150 * rng.randn(200)  # y**2 fits in float64
    model = MLPRegressor(
        hidden_layer_sizes=(32,),
        solver="sgd",
        learning_rate_init=10.0,
        batch_size=1,
        max_iter=5,
        early_stopping=early_stopping,
        random_state=0,
    )
    with pytest.warns(ConvergenceWarning, match="Training stopped at epoch 1"):
        model.fit(X, y)
    assert model.n_iter_ == 0 and model.loss_curve_ == []
    assert np.isfinite(model.predict(X)).all()  # the initial weights, kept
