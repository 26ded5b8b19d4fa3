"""SGD on CSR input with lazy first-layer rows (fastmlp.kernels.sparse_sgd).

A row of the first layer whose inputs are zero in a batch is not stepped then
but caught up exactly later; these tests hold the fitted weights and the loss
curve to those of the dense step (the same model fitted on ``X.toarray()``) to
1e-9 relative, and to scikit-learn's.
"""

import warnings

import numba
import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose
from sklearn import neural_network as sknn
from sklearn.exceptions import ConvergenceWarning

from fastmlp import EpochInterrupted, MLPClassifier, MLPRegressor, Network, TrainingDiverged
from fastmlp.kernels import sparse_sgd


def _wide_sparse(n_samples=150, n_features=400, nnz=4, n_classes=3, seed=0):
    """Rows of ``nnz`` non-zeros among many columns: most first-layer rows are
    idle for many steps in a row, some columns are never non-zero."""
    rng = np.random.default_rng(seed)
    rows = np.repeat(np.arange(n_samples), nnz)
    cols = rng.integers(0, n_features - 20, n_samples * nnz)  # the last 20: always zero
    X = sp.csr_matrix(
        (rng.uniform(0.2, 1.5, n_samples * nnz), (rows, cols)), shape=(n_samples, n_features)
    )
    X.sum_duplicates()
    y = rng.integers(0, n_classes, n_samples)
    return X, y


def _max_rel(a_list, b_list):
    return max(np.abs(a - b).max() / np.abs(b).max() for a, b in zip(a_list, b_list))


def _fit_both(estimator_class, X, y, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        lazy = estimator_class(**params).fit(X, y)
        dense = estimator_class(**params).fit(X.toarray(), y)
    return lazy, dense


@pytest.mark.parametrize("batch_size", [1, 7])
@pytest.mark.parametrize(
    "momentum,nesterov",
    [(0.0, True), (0.9, False), (0.9, True)],
    ids=["plain", "momentum", "nesterov"],
)
@pytest.mark.parametrize("learning_rate", ["constant", "invscaling", "adaptive"])
def test_lazy_rows_fit_the_weights_and_losses_of_the_dense_step(
    batch_size, momentum, nesterov, learning_rate
):
    X, y = _wide_sparse()
    lazy, dense = _fit_both(
        MLPClassifier,
        X,
        y,
        solver="sgd",
        hidden_layer_sizes=(12,),
        batch_size=batch_size,
        momentum=momentum,
        nesterovs_momentum=nesterov,
        learning_rate=learning_rate,
        learning_rate_init=0.05,
        alpha=0.01,
        max_iter=5,
        random_state=0,
        # adaptive: divide the rate on every epoch, so that it changes
        tol=1e3 if learning_rate == "adaptive" else 1e-4,
        n_iter_no_change=1,
    )
    assert lazy.n_iter_ == dense.n_iter_
    assert _max_rel(lazy.coefs_ + lazy.intercepts_, dense.coefs_ + dense.intercepts_) < 1e-9
    # the loss includes the L2 term, kept from running second moments
    assert_allclose(lazy.loss_curve_, dense.loss_curve_, rtol=1e-9)
    # the never-touched columns decayed exactly as the dense step decays them
    assert_allclose(lazy.coefs_[0][-20:], dense.coefs_[0][-20:], rtol=1e-9)


@pytest.mark.skipif(
    numba.config.DISABLE_JIT,
    reason="a 16 MiB layer stepped as plain Python, where a prefetch does nothing: compiled only",
)
@pytest.mark.parametrize("batch_size", [1, 7])
def test_a_layer_wide_enough_to_prefetch_the_next_batch_trains_as_the_dense_step(batch_size):
    # 2**18 columns x 8 units of float64: a first layer of 16 MiB, inside the
    # window where the epoch prefetches the next batch's rows during a step
    n_features, width = 2**18, 8
    low, high = sparse_sgd.PREFETCH_NEXT_BYTES
    assert low <= n_features * width * 8 < high
    X, y = _wide_sparse(n_samples=40, n_features=n_features, nnz=6)
    lazy, dense = _fit_both(
        MLPClassifier,
        X,
        y,
        solver="sgd",
        hidden_layer_sizes=(width,),
        batch_size=batch_size,
        learning_rate_init=0.05,
        alpha=0.01,
        max_iter=3,
        random_state=0,
    )
    assert _max_rel(lazy.coefs_ + lazy.intercepts_, dense.coefs_ + dense.intercepts_) < 1e-9
    assert_allclose(lazy.loss_curve_, dense.loss_curve_, rtol=1e-9)


@pytest.mark.parametrize("batch_size", [1, 10])
def test_lazy_rows_fit_scikit_learns_weights_on_csr(batch_size):
    X, y = _wide_sparse(n_samples=100, n_features=200)
    params = dict(
        solver="sgd",
        hidden_layer_sizes=(10,),
        batch_size=batch_size,
        learning_rate_init=0.05,
        alpha=0.01,
        max_iter=4,
        random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = MLPClassifier(**params).fit(X, y)
        theirs = sknn.MLPClassifier(**params).fit(X, y)
    assert _max_rel(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_) < 1e-9
    assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-9)


@pytest.mark.parametrize("batch_size", [1, 8])
def test_float32_lazy_rows_agree_with_the_dense_step_to_float32_rounding(batch_size):
    X, y = _wide_sparse()
    lazy, dense = _fit_both(
        MLPClassifier,
        X.astype(np.float32),
        y,
        solver="sgd",
        hidden_layer_sizes=(12,),
        batch_size=batch_size,
        learning_rate_init=0.05,
        alpha=0.01,
        max_iter=3,
        random_state=0,
        dtype="float32",
    )
    assert lazy.coefs_[0].dtype == np.float32
    assert _max_rel(lazy.coefs_, dense.coefs_) < 1e-4


@pytest.mark.parametrize("batch_size", [1, 6])
def test_sample_weights_dropout_multilabel_and_regression_train_on_csr_as_dense(batch_size):
    X, y = _wide_sparse()
    sw = np.random.default_rng(1).uniform(0.2, 3.0, X.shape[0])
    sw[::9] = 0  # zero weights: skipped rows (batch 1) or zero-weight rows of a batch
    common = dict(
        solver="sgd",
        hidden_layer_sizes=(10,),
        batch_size=batch_size,
        learning_rate_init=0.05,
        alpha=0.01,
        max_iter=3,
        random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        weighted = MLPClassifier(**common).fit(X, y, sample_weight=sw)
        weighted_dense = MLPClassifier(**common).fit(X.toarray(), y, sample_weight=sw)
    # unequal batch weights: the step matrices differ from step to step
    assert _max_rel(weighted.coefs_, weighted_dense.coefs_) < 1e-9

    dropped, dropped_dense = _fit_both(
        MLPClassifier,
        X,
        y,
        dropout=0.3,
        hidden_layer_sizes=(10, 6),
        **{k: v for k, v in common.items() if k != "hidden_layer_sizes"},
    )
    assert _max_rel(dropped.coefs_, dropped_dense.coefs_) < 1e-9

    Y = np.stack([y == 0, y != 1], axis=1).astype(int)
    multi, multi_dense = _fit_both(MLPClassifier, X, Y, **common)
    assert _max_rel(multi.coefs_, multi_dense.coefs_) < 1e-9

    target = np.asarray(X.sum(axis=1)).ravel() + 0.1 * y
    reg, reg_dense = _fit_both(MLPRegressor, X, target, loss="huber", **common)
    assert _max_rel(reg.coefs_, reg_dense.coefs_) < 1e-9
    assert_allclose(reg.loss_curve_, reg_dense.loss_curve_, rtol=1e-9)


def test_partial_fit_on_csr_chunks_equals_dense_chunks():
    X, y = _wide_sparse(n_samples=120)
    params = dict(solver="sgd", hidden_layer_sizes=(8,), batch_size=1, alpha=0.01, random_state=0)
    lazy, dense = MLPClassifier(**params), MLPClassifier(**params)
    for chunk in np.array_split(np.arange(X.shape[0]), 4):
        lazy.partial_fit(X[chunk], y[chunk], classes=np.unique(y))
        dense.partial_fit(X[chunk].toarray(), y[chunk], classes=np.unique(y))
        # every row is up to date when partial_fit returns: predictions agree
        assert_allclose(lazy.predict_proba(X), dense.predict_proba(X.toarray()), rtol=1e-9)
    assert _max_rel(lazy.coefs_, dense.coefs_) < 1e-9


def _two_segment_data(poison_row=None):
    """70,000 rows, more steps than ``SEGMENT_STEPS`` (65536) at batch size 1:
    columns 40-44 are non-zero only after step 66,000 (first touched in the
    second segment), 45-59 never. ``poison_row``: a row whose value overflows."""
    X, y = _wide_sparse(n_samples=70_000, n_features=60, nnz=2, n_classes=2, seed=3)
    X = X.tolil()
    for i in range(66_000, 70_000, 10):
        X[i, 40 + (i // 10) % 5] = 0.7
    if poison_row is not None:
        X[poison_row, 0] = 1e300
    return X.tocsr(), y


@pytest.mark.skipif(
    numba.config.DISABLE_JIT, reason="70,000 steps as plain Python: run compiled only"
)
def test_an_epoch_longer_than_a_segment_is_caught_up_in_between():
    # every row touched so far is caught up and the step tree restarts
    # mid-epoch; rows first touched after that take the first segment's
    # product too, and rows never touched take both at the epoch's end
    X, y = _two_segment_data()
    lazy, dense = _fit_both(
        MLPClassifier,
        X,
        y,
        solver="sgd",
        hidden_layer_sizes=(3,),
        batch_size=1,
        learning_rate_init=0.01,
        alpha=0.01,
        max_iter=2,
        shuffle=False,
        random_state=0,
    )
    assert _max_rel(lazy.coefs_, dense.coefs_) < 1e-9
    assert_allclose(lazy.loss_curve_, dense.loss_curve_, rtol=1e-9)


def _trained_state(net):
    return [a.copy() for a in (net.params, net._state1, net._rng_state)]


@pytest.mark.parametrize("batch_size", [1, 8])
def test_divergence_on_csr_restores_the_weights_of_before_the_epoch(batch_size):
    X, y = _wide_sparse()
    X = X * 1e3
    net = Network([X.shape[1], 6, 3], output="softmax", loss="log_loss", random_state=0)
    net.set_optimizer("sgd", momentum=0.9)
    Y = np.eye(3)[y]
    before = _trained_state(net)
    with pytest.raises(TrainingDiverged, match="non-finite"):
        for _ in range(50):
            before = _trained_state(net)
            net.train_epoch(X, Y, 1e6, batch_size, alpha=0.01)
    assert np.isfinite(net.params).all()
    for a, b in zip(_trained_state(net), before):  # bit for bit: the rows are put back
        np.testing.assert_array_equal(a, b)


@pytest.mark.skipif(
    numba.config.DISABLE_JIT, reason="70,000 steps as plain Python: run compiled only"
)
@pytest.mark.parametrize("what", ["weights", "loss"])
def test_divergence_after_a_segment_puts_every_array_back_bit_for_bit(what):
    # the undo copies only the rows the epoch touched: rows caught up at the
    # segment's end, rows first touched after it, and rows never touched (left
    # alone, their tiny velocities not even flushed) all come back exactly;
    # so do the upper layers, the velocities and the dropout stream, whether
    # the weights or the loss (overflowing, before the step) went non-finite
    X, y = _two_segment_data()
    if what == "weights":
        Y = np.eye(2)[y]
        net = Network([X.shape[1], 3, 2], output="softmax", loss="log_loss", random_state=0)
    else:
        Y = y[:, None].astype(float)
        net = Network([X.shape[1], 3, 1], dropout=0.2, random_state=0)
    net.set_optimizer("sgd", momentum=0.9, nesterov=True)
    net.train_epoch(X[:2000], Y[:2000], 0.01, 1, alpha=0.01)
    velocities = net._state1[: X.shape[1] * 3].reshape(X.shape[1], 3)
    velocities[50:] = 1e-310  # below the flush threshold, in never-touched rows
    before = _trained_state(net)
    X_poisoned, _ = _two_segment_data(poison_row=69_000)
    with pytest.raises(TrainingDiverged, match=f"non-finite {what} at sample 6900[01] "):
        net.train_epoch(X_poisoned, Y, 0.01, 1, alpha=0.01)
    for a, b in zip(_trained_state(net), before):
        np.testing.assert_array_equal(a, b)
    assert "_epoch_checkpoint" not in net.__dict__  # no copy of the whole network


def _interrupt_sparse_epoch(monkeypatch, at_call, after_kernel):
    """Ctrl-C as the ``at_call``-th sparse SGD epoch returns (``after_kernel``)
    or as it is called, as a signal would be seen around the compiled call."""
    import fastmlp.kernels as K

    real = K.sparse_sgd_epoch
    calls = []

    def epoch(*args):
        calls.append(None)
        if len(calls) == at_call and not after_kernel:
            raise KeyboardInterrupt
        total = real(*args)
        if len(calls) == at_call:
            raise KeyboardInterrupt
        return total

    monkeypatch.setattr(K, "sparse_sgd_epoch", epoch)


@pytest.mark.parametrize("after_kernel", [True, False], ids=["after", "before"])
def test_ctrl_c_around_a_csr_sgd_epoch_leaves_a_record_that_agrees_with_the_weights(
    monkeypatch, after_kernel
):
    # an epoch on CSR keeps no copy of the whole first layer to undo: Ctrl-C
    # seen once it has finished keeps it, and the fit records it as finished;
    # seen before it ran, nothing changed
    X, y = _wide_sparse()
    settings = dict(
        solver="sgd", hidden_layer_sizes=(8,), batch_size=4, alpha=0.01, tol=0, random_state=0
    )
    _interrupt_sparse_epoch(monkeypatch, at_call=3, after_kernel=after_kernel)
    model = MLPClassifier(max_iter=10, **settings)
    with pytest.warns(UserWarning, match="interrupted"):
        model.fit(X, y)
    monkeypatch.undo()
    kept = 3 if after_kernel else 2
    assert model.n_iter_ == len(model.loss_curve_) == kept and model.t_ == kept * X.shape[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        same = MLPClassifier(max_iter=kept, **settings).fit(X, y)
    assert model.loss_curve_ == same.loss_curve_
    for a, b in zip(model.coefs_ + model.intercepts_, same.coefs_ + same.intercepts_):
        np.testing.assert_array_equal(a, b)
    model.partial_fit(X, y)  # still usable


def test_network_fit_records_an_interrupted_csr_epoch_it_keeps(monkeypatch):
    X, y = _wide_sparse()
    Y = np.eye(3)[y]
    _interrupt_sparse_epoch(monkeypatch, at_call=2, after_kernel=True)
    net = Network([X.shape[1], 6, 3], output="softmax", loss="log_loss", random_state=0)
    with pytest.raises(EpochInterrupted) as caught:
        net.fit(X, Y, epochs=5, batch_size=4, random_state=0)
    assert isinstance(caught.value, KeyboardInterrupt)
    monkeypatch.undo()
    same = Network([X.shape[1], 6, 3], output="softmax", loss="log_loss", random_state=0)
    same.fit(X, Y, epochs=2, batch_size=4, random_state=0)
    assert net.loss_curve_ == same.loss_curve_ == same.loss_curve_[:1] + [caught.value.loss]
    np.testing.assert_array_equal(net.params, same.params)
