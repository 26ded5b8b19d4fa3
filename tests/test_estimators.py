"""The estimators: scikit-learn's API checks, its numbers, and its ecosystem."""

import pickle
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import sklearn
from numpy.testing import assert_allclose, assert_array_equal
from sklearn import neural_network as sknn
from sklearn.base import clone
from sklearn.datasets import load_digits, make_classification, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, cross_val_score, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from fastmlp import MLPClassifier, MLPRegressor

SKLEARN_VERSION = tuple(int(p) for p in sklearn.__version__.split(".")[:2])
# what the comparison needs of scikit-learn itself (fastmlp has it on every version)
needs_sklearn_1_7 = pytest.mark.skipif(
    SKLEARN_VERSION < (1, 7),
    reason="compares with scikit-learn >= 1.7 (its loss='poisson', partial_fit sample_weight)",
)

FAST = dict(hidden_layer_sizes=(16,), max_iter=100, learning_rate_init=0.01, random_state=0)


def _expected_failed_checks(estimator):
    # Per-sample updates are not equivalent under "weight 2 == sample repeated
    # twice": repeating a sample adds an update step (full-batch and lbfgs fits
    # pass). scikit-learn runs these checks on its own MLPs with lbfgs only.
    # In float32 the check's float64 tolerance is out of reach.
    # With dropout, a repeated row draws masks of its own, so the same holds.
    if estimator.batch_size != 1 and estimator.dtype != "float32" and not estimator.dropout:
        return {}
    reason = "per-sample steps, dropout or float32 precision (see comment above)"
    failing = {
        "check_sample_weight_equivalence_on_dense_data": reason,
        "check_sample_weight_equivalence_on_sparse_data": reason,
    }
    if estimator.batch_size == 1 and hasattr(estimator, "class_weight"):
        # scikit-learn divides each step's gradient by the batch's weight sum:
        # with one row per step a weight cancels out (zero still skips the row),
        # so class weights cannot tilt per-sample SGD
        failing["check_class_weight_classifiers"] = "weights cancel with batch_size=1"
    return failing


@parametrize_with_checks(
    [
        MLPClassifier(**FAST),
        MLPRegressor(**FAST),
        MLPClassifier(solver="lbfgs", **FAST),
        MLPClassifier(solver="sgd", batch_size=1, activation=["tanh"], **FAST),
        MLPRegressor(solver="lbfgs", activation="elu", **FAST),
        MLPClassifier(solver="rmsprop", dtype="float32", **FAST),
        MLPRegressor(hidden_layer_sizes=(), max_iter=100, learning_rate_init=0.01, random_state=0),
        MLPClassifier(activation="gelu", dropout=0.2, **FAST),
        MLPRegressor(loss="huber", activation="gelu", **FAST),
    ],
    expected_failed_checks=_expected_failed_checks,
)
def test_sklearn_estimator_checks(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)


def _max_rel(a_list, b_list):
    return max(np.abs(a - b).max() / max(np.abs(b).max(), 1e-300) for a, b in zip(a_list, b_list))


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return train_test_split(X / 16.0, y, random_state=0)


SETTINGS = [
    dict(solver="sgd", batch_size=1, momentum=0.0),
    dict(solver="sgd", batch_size=1, momentum=0.9, nesterovs_momentum=True),
    dict(solver="sgd", batch_size=32, momentum=0.9, nesterovs_momentum=False),
    dict(solver="sgd", batch_size=32, momentum=0.9, learning_rate="invscaling"),
    dict(solver="adam"),
    dict(solver="adam", batch_size=32, early_stopping=True),
    dict(solver="lbfgs"),
]


@pytest.mark.parametrize("settings", SETTINGS)
def test_classifier_matches_sklearn_fitted_weights(digits, settings):
    X, _, y, _ = digits
    X, y = X[:400], y[:400]
    kw = dict(hidden_layer_sizes=(16,), random_state=0, max_iter=5, **settings)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = MLPClassifier(**kw).fit(X, y)
        theirs = sknn.MLPClassifier(**kw).fit(X, y)
    assert _max_rel(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_) < 1e-9
    assert ours.loss_ == pytest.approx(theirs.loss_, rel=1e-9)
    assert ours.n_iter_ == theirs.n_iter_
    if settings["solver"] != "lbfgs":
        assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-9)
        assert ours.t_ == theirs.t_
    if settings.get("early_stopping"):
        assert_allclose(ours.validation_scores_, theirs.validation_scores_)
        assert ours.best_validation_score_ == theirs.best_validation_score_
    assert_array_equal(ours.predict(X), theirs.predict(X))
    assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=1e-7, atol=1e-10)


@pytest.mark.parametrize("settings", [SETTINGS[1], SETTINGS[2], SETTINGS[4], SETTINGS[6]])
@pytest.mark.parametrize("n_targets", [1, 3])
def test_regressor_matches_sklearn_fitted_weights(settings, n_targets):
    X, y = make_regression(n_samples=150, n_features=6, n_targets=n_targets, random_state=0)
    y = y / 100
    kw = dict(hidden_layer_sizes=(10, 5), random_state=0, max_iter=5, **settings)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = MLPRegressor(**kw).fit(X, y)
        theirs = sknn.MLPRegressor(**kw).fit(X, y)
    assert _max_rel(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_) < 1e-6
    assert ours.loss_ == pytest.approx(theirs.loss_, rel=1e-6)


@needs_sklearn_1_7
def test_poisson_regressor_matches_sklearn():
    rng = np.random.RandomState(0)
    X = rng.randn(120, 4)
    y = rng.poisson(np.exp(0.3 * X[:, 0]))
    kw = dict(loss="poisson", hidden_layer_sizes=(6,), random_state=0, max_iter=5, solver="sgd")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = MLPRegressor(**kw).fit(X, y)
        theirs = sknn.MLPRegressor(**kw).fit(X, y)
    assert _max_rel(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_) < 1e-9


@pytest.mark.parametrize("kind", ["binary", "multilabel"])
def test_binary_and_multilabel_match_sklearn(kind):
    if kind == "binary":
        X, y = make_classification(n_samples=120, n_features=5, random_state=0)
    else:
        rng = np.random.RandomState(0)
        X = rng.randn(120, 5)
        y = (X[:, :3] + rng.randn(120, 3) > 0).astype(int)
    kw = dict(hidden_layer_sizes=(7,), random_state=0, max_iter=5, solver="sgd")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = MLPClassifier(**kw).fit(X, y)
        theirs = sknn.MLPClassifier(**kw).fit(X, y)
    assert ours.out_activation_ == theirs.out_activation_ == "logistic"
    assert _max_rel(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_) < 1e-9
    assert_array_equal(ours.predict(X), theirs.predict(X))
    assert ours.predict_proba(X).shape == theirs.predict_proba(X).shape


def test_fitted_attributes_are_those_of_sklearn(digits):
    X, _, y, _ = digits
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = MLPClassifier(max_iter=2, random_state=0).fit(X, y)
        theirs = sknn.MLPClassifier(max_iter=2, random_state=0).fit(X, y)
    for name in [
        "coefs_",
        "intercepts_",
        "n_iter_",
        "t_",
        "loss_",
        "best_loss_",
        "loss_curve_",
        "validation_scores_",
        "best_validation_score_",
        "n_layers_",
        "n_outputs_",
        "out_activation_",
        "classes_",
        "n_features_in_",
    ]:
        assert hasattr(ours, name) and hasattr(theirs, name), name
    # the additions are opt-in parameters whose defaults reproduce scikit-learn
    beyond = {"dtype", "init", "callbacks", "class_weight", "dropout"}
    assert set(ours.get_params()) == set(theirs.get_params()) | beyond


def test_digits_accuracy_default_and_per_sample_sgd(digits):
    X_train, X_test, y_train, y_test = digits
    default = MLPClassifier(hidden_layer_sizes=(64,), random_state=0).fit(X_train, y_train)
    assert default.score(X_test, y_test) >= 0.97
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        per_sample = MLPClassifier(
            hidden_layer_sizes=(64,),
            solver="sgd",
            batch_size=1,
            learning_rate_init=0.01,
            max_iter=20,
            random_state=0,
        ).fit(X_train, y_train)
    assert per_sample.score(X_test, y_test) >= 0.97


def test_pipeline_gridsearch_cross_val_clone_pickle(digits):
    X, X_test, y, _ = digits
    pipe = make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(32,), random_state=0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        scores = cross_val_score(pipe, X, y, cv=3)
        assert scores.mean() > 0.9
        grid = GridSearchCV(pipe, {"mlpclassifier__alpha": [1e-4, 1e-2]}, cv=2).fit(X, y)
        assert grid.best_score_ > 0.9
        fitted = clone(pipe).fit(X, y)
    restored = pickle.loads(pickle.dumps(fitted))
    assert_array_equal(restored.predict_proba(X_test), fitted.predict_proba(X_test))
    model = restored[-1]
    model.coefs_[0][...] = 0  # coefs_ stays the weights predict uses after a round trip
    assert not np.array_equal(restored.predict_proba(X_test), fitted.predict_proba(X_test))


def test_decision_boundary_display():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    from sklearn.inspection import DecisionBoundaryDisplay

    X, y = make_classification(n_samples=80, n_features=2, n_redundant=0, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=50, random_state=0).fit(X, y)
    disp = DecisionBoundaryDisplay.from_estimator(clf, X, response_method="predict_proba")
    assert disp.response.shape == disp.xx0.shape


def test_sparse_csr_trains_like_dense():
    X, y = make_classification(n_samples=100, n_features=20, random_state=0)
    X[np.abs(X) < 1] = 0
    kw = dict(hidden_layer_sizes=(8,), random_state=0, max_iter=3, solver="sgd")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        dense = MLPClassifier(**kw).fit(X, y)
        sparse = MLPClassifier(**kw).fit(sp.csr_matrix(X), y)
    assert _max_rel(sparse.coefs_, dense.coefs_) < 1e-10


@needs_sklearn_1_7
def test_partial_fit_warm_start_and_sample_weight(digits):
    X, _, y, _ = digits
    classes = np.unique(y)
    kw = dict(hidden_layer_sizes=(16,), solver="sgd", random_state=0)
    ours, theirs = MLPClassifier(**kw), sknn.MLPClassifier(**kw)
    sw = np.random.RandomState(0).uniform(0.5, 2, len(y))
    for chunk in np.array_split(np.arange(len(y)), 3):
        ours.partial_fit(X[chunk], y[chunk], sample_weight=sw[chunk], classes=classes)
        theirs.partial_fit(X[chunk], y[chunk], sample_weight=sw[chunk], classes=classes)
    assert _max_rel(ours.coefs_, theirs.coefs_) < 1e-9
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warm = MLPClassifier(max_iter=2, warm_start=True, **kw).fit(X, y)
        first = [c.copy() for c in warm.coefs_]
        warm.fit(X, y)
    assert not np.allclose(first[0], warm.coefs_[0])
    with pytest.raises(AttributeError, match="partial_fit"):
        MLPClassifier(solver="lbfgs").partial_fit  # noqa: B018 (the access itself raises)


def test_single_neuron_and_float32():
    X, y = make_classification(n_samples=100, n_features=4, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        logreg = MLPClassifier(hidden_layer_sizes=(), random_state=0, max_iter=100).fit(X, y)
        f32 = MLPClassifier(
            hidden_layer_sizes=(8,), dtype="float32", random_state=0, max_iter=20
        ).fit(X, y)
    assert logreg.n_layers_ == 2 and logreg.coefs_[0].shape == (4, 1)
    assert logreg.score(X, y) > 0.8
    assert f32.coefs_[0].dtype == np.float32
    assert f32.predict_proba(X).dtype == np.float32
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        kept = MLPClassifier(hidden_layer_sizes=(8,), max_iter=5).fit(X.astype(np.float32), y)
    assert kept.coefs_[0].dtype == np.float32


def _fitted():
    X, y = make_classification(n_samples=60, n_features=4, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return MLPClassifier(hidden_layer_sizes=(5,), max_iter=5, random_state=0).fit(X, y), X, y


def test_unknown_parameter_values_and_unseen_partial_fit_labels():
    model, X, y = _fitted()
    with pytest.raises(ValueError, match="activation"):
        MLPClassifier(activation="swish").fit(X, y)
    with pytest.raises(ValueError, match="solver"):
        MLPClassifier(solver="newton").fit(X, y)
    with pytest.raises(ValueError, match="one name per hidden layer"):
        MLPClassifier(hidden_layer_sizes=(3, 3), activation=["relu"]).fit(X, y)
    pf = MLPClassifier(solver="sgd", random_state=0).partial_fit(X, y, classes=[0, 1])
    before = [c.copy() for c in pf.coefs_]
    with pytest.raises(ValueError, match="not in `self.classes_`"):
        pf.partial_fit(X, y + 5)
    for a, b in zip(pf.coefs_, before):
        assert_array_equal(a, b)


@pytest.mark.parametrize("batch_size", [1, 16])
def test_divergence_warns_and_keeps_finite_weights(batch_size):
    X, y = make_regression(n_samples=100, n_features=4, random_state=0)
    with pytest.warns(ConvergenceWarning, match="lower learning_rate_init"):
        model = MLPRegressor(
            solver="sgd",
            learning_rate_init=1e3,
            max_iter=50,
            batch_size=batch_size,
            random_state=0,
        ).fit(X, y)
    assert model.n_iter_ < 50
    assert all(np.isfinite(c).all() for c in model.coefs_ + model.intercepts_)
    assert np.isfinite(model.predict(X)).all()


def test_verbose_lines_at_every_level(capsys):
    X, y = make_classification(n_samples=50, n_features=4, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        MLPClassifier(hidden_layer_sizes=(4,), max_iter=2, verbose=True).fit(X, y)
        assert "Iteration 2, loss = " in capsys.readouterr().out
        MLPClassifier(hidden_layer_sizes=(4,), max_iter=2, verbose=2).fit(X, y)
    out = capsys.readouterr().out
    assert "Iteration 2, loss = " in out and "\r" not in out  # the bar is the CLI's


def test_failed_first_partial_fit_leaves_the_estimator_unfitted():
    from sklearn.exceptions import NotFittedError

    _, X, y = _fitted()
    model = MLPClassifier(solver="sgd")
    X_bad = X.copy()
    X_bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        model.partial_fit(X_bad, y, classes=[0, 1])
    assert not hasattr(model, "classes_")
    with pytest.raises(NotFittedError):
        model.predict(X)
    model.partial_fit(X, y, classes=[0, 1])  # and it can still be trained
    assert model.predict(X).shape == y.shape


@pytest.mark.parametrize(
    "labels",
    [
        np.array([3, 1, 2, 1, 3, 3]),
        np.array(["b", "a", "c", "a", "c", "b"]),
        np.array(["no", "yes", "yes", "no", "no", "yes"]),
        np.array([1.0, -1.0, 1.0, 1.0, -1.0, 1.0]),
    ],
)
def test_target_indicators_equal_label_binarizer(labels):
    from sklearn.preprocessing import LabelBinarizer

    model = MLPClassifier(hidden_layer_sizes=(3,), max_iter=1)
    model._label_binarizer = LabelBinarizer().fit(labels)
    model.classes_ = model._label_binarizer.classes_
    assert_array_equal(
        model._indicators(labels), model._label_binarizer.transform(labels).astype(bool)
    )
    assert_array_equal(
        model._indicators(labels[:2]), model._label_binarizer.transform(labels[:2]).astype(bool)
    )
