"""ONNX export: onnxruntime runs the converted model and agrees with fastmlp."""

import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.datasets import load_iris, make_multilabel_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from fastmlp import MLPClassifier, MLPRegressor, register_onnx_converters, to_onnx

ort = pytest.importorskip("onnxruntime")
skl2onnx = pytest.importorskip("skl2onnx")


def run_onnx(onx, X):
    session = ort.InferenceSession(onx.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: X})


def fitted(estimator, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return estimator.fit(X, y)


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return StandardScaler().fit_transform(X), y


@pytest.mark.parametrize("activation", ["identity", "logistic", "tanh", "relu"])
@pytest.mark.parametrize("n_classes", [2, 3])
def test_classifier_labels_equal_and_probabilities_within_1e_6_in_float32(
    iris, activation, n_classes
):
    X, y = iris
    X = X.astype(np.float32)
    keep = y < n_classes
    X, y = X[keep], np.array(["setosa", "versicolor", "virginica"])[y[keep]]
    model = fitted(
        MLPClassifier(
            hidden_layer_sizes=(16, 8),
            activation=activation,
            max_iter=50,
            random_state=0,
            dtype="float32",
        ),
        X,
        y,
    )
    labels, proba = run_onnx(to_onnx(model, X[:1], options={"zipmap": False}), X)
    assert_array_equal(labels, model.predict(X))
    assert_allclose(proba, model.predict_proba(X), atol=1e-6)


def test_classifier_default_zipmap_and_multilabel(iris):
    X, y = iris
    X = X.astype(np.float32)
    model = fitted(MLPClassifier(max_iter=30, random_state=0, dtype="float32"), X, y)
    labels, proba_dicts = run_onnx(to_onnx(model, X[:1]), X)
    assert_array_equal(labels, model.predict(X))
    proba = np.array([[row[c] for c in model.classes_] for row in proba_dicts])
    assert_allclose(proba, model.predict_proba(X), atol=1e-6)

    X, Y = make_multilabel_classification(n_samples=80, n_classes=3, random_state=0)
    X = X.astype(np.float32)
    model = fitted(MLPClassifier(max_iter=30, random_state=0, dtype="float32"), X, Y)
    labels, proba = run_onnx(to_onnx(model, X[:1], options={"zipmap": False}), X)
    assert_array_equal(labels, model.predict(X))
    assert_allclose(proba, model.predict_proba(X), atol=1e-6)


@pytest.mark.parametrize("loss", ["squared_error", "poisson"])
@pytest.mark.parametrize("n_outputs", [1, 2])
def test_regressor_outputs_equal_in_float64(iris, loss, n_outputs):
    X, y = iris
    Y = np.c_[X[:, 0] ** 2, np.abs(X[:, 1])][:, :n_outputs]
    model = fitted(
        MLPRegressor(
            hidden_layer_sizes=(12,), activation="tanh", loss=loss, max_iter=40, random_state=0
        ),
        X,
        Y.ravel() if n_outputs == 1 else Y,
    )
    (out,) = run_onnx(to_onnx(model, X[:1]), X)
    assert out.shape == (len(X), n_outputs) and out.dtype == np.float64
    assert_allclose(out, model.predict(X).reshape(len(X), n_outputs), rtol=1e-12, atol=1e-12)


def test_a_pipeline_converts_and_skl2onnx_knows_fastmlp_afterwards(iris):
    X, y = iris
    X = (X * 3 + 1).astype(np.float32)
    pipe = fitted(
        make_pipeline(
            StandardScaler(), MLPClassifier(max_iter=30, random_state=0, dtype="float32")
        ),
        X,
        y,
    )
    labels, proba = run_onnx(to_onnx(pipe, X[:1], options={"zipmap": False}), X)
    assert_array_equal(labels, pipe.predict(X))
    assert_allclose(proba, pipe.predict_proba(X), atol=1e-5)
    # registered once: skl2onnx's own entry point converts fastmlp models now
    regressor = fitted(MLPRegressor(max_iter=20, random_state=0), X.astype(np.float64), X[:, 0])
    (out,) = run_onnx(skl2onnx.to_onnx(regressor, X[:1].astype(np.float64)), X.astype(np.float64))
    assert_allclose(out.ravel(), regressor.predict(X.astype(np.float64)), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "params, y_kind, message",
    [
        ({"activation": "gelu"}, "classes", "activation='gelu' is not one of scikit-learn's"),
        ({"activation": "leaky_relu"}, "regression", "activation='leaky_relu'"),
        (
            {"activation": ["relu", "tanh"], "hidden_layer_sizes": (4, 4)},
            "classes",
            "its own activation",
        ),
        ({}, "one class", "fitted on a single class"),
    ],
)
def test_what_onnx_cannot_express_is_refused_naming_the_option(iris, params, y_kind, message):
    X, y = iris
    if y_kind == "regression":
        model = fitted(MLPRegressor(max_iter=5, random_state=0, **params), X, X[:, 0])
    else:
        y = np.zeros(len(X), dtype=int) if y_kind == "one class" else y
        model = fitted(MLPClassifier(max_iter=5, random_state=0, **params), X, y)
    with pytest.raises(ValueError, match=message):
        to_onnx(model, X[:1])
    # inside a pipeline, through skl2onnx's own entry point, the same refusal
    register_onnx_converters()
    pipe = make_pipeline(StandardScaler().fit(X), model)
    with pytest.raises(ValueError, match=message):
        skl2onnx.to_onnx(pipe, X[:1])


def test_an_unfitted_model_is_refused():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        to_onnx(MLPClassifier(), np.zeros((1, 3)))
