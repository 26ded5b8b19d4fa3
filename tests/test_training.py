"""Whole compiled epochs against Python loops of the same kernels and the NumPy reference."""

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose

import fastmlp.kernels as K
from fastmlp import Network, TrainingDiverged

from . import reference as ref

SOLVERS = [
    ("sgd", dict(momentum=0.0)),
    ("sgd", dict(momentum=0.9, nesterov=False)),
    ("sgd", dict(momentum=0.9, nesterov=True)),
    ("adam", {}),
    ("rmsprop", {}),
    ("adagrad", {}),
    ("adadelta", {}),
]


def _problem(rng, n=23, sizes=(5, 7, 4, 3)):
    X = rng.randn(n, sizes[0])
    X[rng.rand(*X.shape) < 0.4] = 0.0
    Y = np.eye(sizes[-1])[rng.randint(0, sizes[-1], n)]
    net = Network(list(sizes), activation=["tanh", "relu"], output="softmax", loss="log_loss",
                  random_state=0)
    return net, X, Y


@pytest.mark.parametrize("solver,options", SOLVERS)
def test_per_sample_epoch_equals_python_loop_of_single_sample_steps(rng, solver, options):
    net, X, Y = _problem(rng)
    sw = rng.uniform(0.5, 2.0, X.shape[0])
    sw[3] = 0.0  # skipped: contributes nothing
    order = rng.permutation(X.shape[0])
    params = [c.copy() for c in net.coefs_] + [b.copy() for b in net.intercepts_]
    lr = 0.05
    opt = ref.Optimizer(solver, params, lr, **options)
    expected_loss = 0.0
    for i in order:
        if sw[i] == 0:
            continue
        coefs, ints = params[:3], params[3:]
        loss, cg, ig = ref.loss_and_gradients(
            X[i : i + 1], Y[i : i + 1], coefs, ints, ["tanh", "relu"], "softmax", "log_loss",
            alpha=0.01, sw=sw[i : i + 1],
        )
        expected_loss += loss
        opt.step(params, cg + ig)
    net.set_optimizer(solver, **options)
    got_loss = net.train_epoch(X, Y, lr, batch_size=1, order=order, alpha=0.01, sample_weight=sw)
    assert got_loss == pytest.approx(expected_loss / len(order), rel=1e-12)
    for got, exp in zip(net.coefs_ + net.intercepts_, params):
        assert_allclose(got, exp, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("solver,options", SOLVERS)
def test_minibatch_with_batch_size_one_equals_per_sample_epoch(rng, solver, options):
    net, X, Y = _problem(rng)
    twin, _, _ = _problem(np.random.RandomState(1))
    twin.params[...] = net.params
    order = rng.permutation(X.shape[0])
    net.set_optimizer(solver, **options)
    twin.set_optimizer(solver, **options)
    loss_fused = net.train_epoch(X, Y, 0.05, batch_size=1, order=order, alpha=0.01)

    # Force the mini-batch kernel with batch 1 (train_epoch picks the fused one for 1).
    Xk = twin.prepare(X)
    abuf, dbuf, xbuf = twin._buffer(1)
    info = np.zeros(2, dtype=np.int64)
    hyper = np.asarray(
        K.make_hyper(alpha=0.01, tiny=np.finfo(np.float64).tiny, **twin._opt_settings)
    )
    total = K.minibatch_epoch(
        *Xk[:5], np.ascontiguousarray(Y, dtype=np.float64), np.ones(X.shape[0]),
        order.astype(np.int64), 1, twin.params, twin._sizes, twin._act_codes, 0.01,
        twin._loss_code, 1.0, twin._opt_code, 0.05, hyper, twin._state1, twin._state2,
        twin._step, np.empty_like(twin.params), abuf, dbuf, xbuf, info,
    )
    assert info[1] == K.STATUS_OK
    assert total / X.shape[0] == pytest.approx(loss_fused, rel=1e-12)
    assert_allclose(twin.params, net.params, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("batch_size", [4, 7, 23])
@pytest.mark.parametrize("solver,options", [SOLVERS[2], SOLVERS[3]])
def test_minibatch_epoch_equals_python_loop_over_batches(rng, batch_size, solver, options):
    net, X, Y = _problem(rng)
    sw = rng.uniform(0.5, 2.0, X.shape[0])
    order = rng.permutation(X.shape[0])
    params = [c.copy() for c in net.coefs_] + [b.copy() for b in net.intercepts_]
    opt = ref.Optimizer(solver, params, 0.05, **options)
    expected = 0.0
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        loss, cg, ig = ref.loss_and_gradients(
            X[idx], Y[idx], params[:3], params[3:], ["tanh", "relu"], "softmax", "log_loss",
            alpha=0.01, sw=sw[idx],
        )
        expected += loss * len(idx)
        opt.step(params, cg + ig)
    net.set_optimizer(solver, **options)
    got = net.train_epoch(X, Y, 0.05, batch_size, order, alpha=0.01, sample_weight=sw)
    assert got == pytest.approx(expected / len(order), rel=1e-12)
    for g, e in zip(net.coefs_ + net.intercepts_, params):
        assert_allclose(g, e, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("batch_size", [1, 5])
@pytest.mark.parametrize("solver,options,alpha", [
    ("sgd", dict(momentum=0.0), 0.0),  # the sparse per-sample path touches only non-zero rows
    ("sgd", dict(momentum=0.9), 0.01),
    ("adam", {}, 0.01),
])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_csr_input_trains_and_predicts_like_dense(rng, batch_size, solver, options, alpha, dtype):
    net, X, Y = _problem(rng)
    net = Network(net.layer_sizes, activation=["tanh", "relu"], output="softmax",
                  loss="log_loss", random_state=0, dtype=dtype)
    twin = Network(net.layer_sizes, activation=["tanh", "relu"], output="softmax",
                   loss="log_loss", random_state=0, dtype=dtype)
    order = rng.permutation(X.shape[0])
    for model, data in ((net, X), (twin, sp.csr_matrix(X))):
        model.set_optimizer(solver, **options)
        for _ in range(2):
            model.train_epoch(data, Y, 0.05, batch_size, order, alpha=alpha)
    tol = dict(rtol=1e-10, atol=1e-12) if dtype == "float64" else dict(rtol=1e-4, atol=1e-5)
    assert_allclose(twin.params, net.params, **tol)
    assert_allclose(twin.forward(sp.csr_matrix(X)), net.forward(X), **tol)


@pytest.mark.parametrize("batch_size", [1, 8])
def test_divergence_stops_and_restores_the_weights_of_before_the_epoch(rng, batch_size):
    net, X, Y = _problem(rng)
    X = X * 1e3
    net.set_optimizer("sgd", momentum=0.9)
    before = net.params.copy()
    with pytest.raises(TrainingDiverged, match="non-finite"):
        for _ in range(50):
            before = net.params.copy()
            net.train_epoch(X, Y, 1e6, batch_size)
    assert np.isfinite(net.params).all()
    assert_allclose(net.params, before)
    assert np.isfinite(net.forward(X)).all()


def test_full_batch_epoch_is_one_step_on_the_full_gradient(rng):
    net, X, Y = _problem(rng)
    net.set_optimizer("sgd", momentum=0.0)
    loss, cg, ig = net.loss_and_gradients(X, Y, alpha=0.01)
    expected = net.params - 0.1 * np.concatenate([g.ravel() for g in cg + ig])
    got_loss = net.train_epoch(X, Y, 0.1, batch_size=X.shape[0], alpha=0.01)
    assert got_loss == pytest.approx(loss, rel=1e-12)
    assert_allclose(net.params, expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("solver,options", [SOLVERS[2], SOLVERS[3]])
def test_blocked_and_threaded_layer_updates_match_reference_bit_for_bit(
    rng, monkeypatch, solver, options
):
    # 300 x 128 weights is above BLOCKED_LAYER_SIZE: the first layer is updated
    # in row blocks (on the thread pool when threaded), fused with the next
    # row's forward pass. Threaded and serial runs must agree exactly.
    import fastmlp.network as network_module

    assert 300 * 128 >= K.optimizers.BLOCKED_LAYER_SIZE
    X = rng.rand(12, 300)
    X[rng.rand(*X.shape) < 0.3] = 0.0
    Y = np.eye(3)[rng.randint(0, 3, 12)]
    order = rng.permutation(12)
    results = []
    for threaded in (False, True):
        monkeypatch.setattr(network_module, "threads_usable", lambda: threaded)
        net = Network([300, 128, 3], activation="relu", output="softmax", loss="log_loss",
                      random_state=0)
        net.set_optimizer(solver, **options)
        loss = net.train_epoch(X, Y, 0.05, batch_size=1, order=order, alpha=0.01)
        results.append((loss, net.params.copy()))
    assert results[0][0] == results[1][0]
    np.testing.assert_array_equal(results[0][1], results[1][1])

    net = Network([300, 128, 3], activation="relu", output="softmax", loss="log_loss",
                  random_state=0)
    params = [c.copy() for c in net.coefs_] + [b.copy() for b in net.intercepts_]
    opt = ref.Optimizer(solver, params, 0.05, **options)
    expected_loss = 0.0
    for i in order:
        loss, cg, ig = ref.loss_and_gradients(
            X[i : i + 1], Y[i : i + 1], params[:2], params[2:], ["relu"], "softmax", "log_loss",
            alpha=0.01,
        )
        expected_loss += loss
        opt.step(params, cg + ig)
    assert results[0][0] == pytest.approx(expected_loss / 12, rel=1e-12)
    net.params[...] = results[0][1]
    # the blocked forward sums in another order; Adam's m / sqrt(v) magnifies
    # that rounding for near-zero gradients, hence 1e-9 (the bound)
    for got, exp in zip(net.coefs_ + net.intercepts_, params):
        assert_allclose(got, exp, rtol=1e-9, atol=1e-11)
