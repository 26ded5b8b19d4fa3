"""Scale-out on Dask (the ``dask`` extra): what works with fastmlp's estimators
as they are, and must stay so. CI installs the extra and runs this file."""

import warnings

import joblib
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV

from fastmlp import MLPClassifier, MLPRegressor

da = pytest.importorskip("dask.array", reason="needs the dask extra")
distributed = pytest.importorskip("distributed", reason="needs the dask extra")
wrappers = pytest.importorskip("dask_ml.wrappers", reason="needs the dask extra")


@pytest.fixture(scope="module")
def client():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the cluster's own start-up notices
        cluster = distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            host="127.0.0.1",
            processes=True,
            dashboard_address=None,
        )
    with distributed.Client(cluster) as client:
        yield client
    cluster.close()


@pytest.fixture(scope="module")
def data():
    rng = np.random.RandomState(0)
    X = rng.randn(1200, 6)
    y = (X[:, 0] + X[:, 1] * X[:, 2] > 0).astype(int)
    return X, y


@pytest.mark.parametrize("Estimator", [MLPClassifier, MLPRegressor])
def test_incremental_over_chunks_is_a_local_partial_fit_sequence(client, data, Estimator):
    X, y = data
    chunks = 300  # four chunks: the array is larger than one
    params = dict(hidden_layer_sizes=(8,), solver="sgd", random_state=0)
    fit_params = {"classes": [0, 1]} if Estimator is MLPClassifier else {}
    incremental = wrappers.Incremental(Estimator(**params), shuffle_blocks=False)
    incremental.fit(da.from_array(X, chunks=chunks), da.from_array(y, chunks=chunks), **fit_params)

    local = Estimator(**params)
    for start in range(0, len(X), chunks):
        local.partial_fit(X[start : start + chunks], y[start : start + chunks], **fit_params)
    fitted = incremental.estimator_
    assert fitted.t_ == local.t_ == len(X)
    for ours, theirs in zip(fitted.coefs_ + fitted.intercepts_, local.coefs_ + local.intercepts_):
        assert_array_equal(ours, theirs)  # bit for bit


def test_grid_search_on_the_dask_backend_gives_the_local_results(client, data):
    X, y = data
    grid = {"alpha": [1e-4, 1e-2], "hidden_layer_sizes": [(8,), (16,)]}
    estimator = MLPClassifier(max_iter=30, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        local = GridSearchCV(estimator, grid, cv=3, n_jobs=1).fit(X, y)
        with joblib.parallel_backend("dask"):
            on_dask = GridSearchCV(estimator, grid, cv=3, n_jobs=-1).fit(X, y)
    assert on_dask.best_params_ == local.best_params_
    for key in ("split0_test_score", "split1_test_score", "split2_test_score"):
        assert_array_equal(on_dask.cv_results_[key], local.cv_results_[key])
    for ours, theirs in zip(on_dask.best_estimator_.coefs_, local.best_estimator_.coefs_):
        assert_array_equal(ours, theirs)


def test_parallel_post_fit_predicts_a_large_array_block_by_block(client, data):
    X, y = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = wrappers.ParallelPostFit(MLPClassifier(max_iter=30, random_state=0)).fit(X, y)
    X_large = np.tile(X, (10, 1))
    X_dask = da.from_array(X_large, chunks=2000)
    labels = model.predict(X_dask)
    assert isinstance(labels, da.Array)
    assert_array_equal(labels.compute(), model.estimator.predict(X_large))
    proba = model.predict_proba(X_dask).compute()
    # bit for bit what the same blocks give locally; against one call on the
    # whole array, within rounding (BLAS blocks rows by the call's size)
    blocks = [
        model.estimator.predict_proba(X_large[i : i + 2000]) for i in range(0, len(X_large), 2000)
    ]
    assert_array_equal(proba, np.concatenate(blocks))
    assert_allclose(proba, model.estimator.predict_proba(X_large), rtol=1e-12, atol=1e-15)
