"""Whole compiled epochs against Python loops of the same kernels and the NumPy reference."""

import os

import numba
import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose, assert_array_equal

import fastmlp._threads as threads_module
import fastmlp.kernels as K
from fastmlp import Network, TrainingDiverged
from fastmlp.kernels import optimizers

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


def threaded_steps():
    """Steps run on the thread pool so far, over every thread policy of the process."""
    return sum(p[K.thread_policy.P_STEPS + 1] for p in threads_module._thread_policies.values())


def threads_may_run():
    """Whether the kernels may use the thread pool here at all (two threads or more,
    a thread-safe layer): where not, every setting runs serial."""
    return threads_module.threads_usable()


def _problem(rng, n=23, sizes=(5, 7, 4, 3)):
    X = rng.randn(n, sizes[0])
    X[rng.rand(*X.shape) < 0.4] = 0.0
    Y = np.eye(sizes[-1])[rng.randint(0, sizes[-1], n)]
    net = Network(
        list(sizes), activation=["tanh", "relu"], output="softmax", loss="log_loss", random_state=0
    )
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
            X[i : i + 1],
            Y[i : i + 1],
            coefs,
            ints,
            ["tanh", "relu"],
            "softmax",
            "log_loss",
            alpha=0.01,
            sw=sw[i : i + 1],
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
    abuf, dbuf, gbuf, xbuf = twin._buffer(1)
    info = np.zeros(2, dtype=np.int64)
    hyper = np.asarray(
        K.make_hyper(alpha=0.01, tiny=np.finfo(np.float64).tiny, **twin._opt_settings)
    )
    total = K.minibatch_epoch(
        tuple(Xk[:5]),
        np.ascontiguousarray(Y, dtype=np.float64),
        np.ones(X.shape[0]),
        order.astype(np.int64),
        1,
        twin.params,
        K.NetworkSpec(
            layer_sizes=twin._sizes,
            act_codes=twin._act_codes,
            act_param=0.01,
            drop_rates=twin._dropout,
            rng_state=twin._rng_state,
            loss_code=twin._loss_code,
            loss_param=1.0,
        ),
        1.0,
        K.Optimizer(twin._opt_code, 0.05, hyper, *twin._kernel_states(), twin._step),
        (np.empty_like(twin.params), abuf, dbuf, gbuf, xbuf),
        info,
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
            X[idx],
            Y[idx],
            params[:3],
            params[3:],
            ["tanh", "relu"],
            "softmax",
            "log_loss",
            alpha=0.01,
            sw=sw[idx],
        )
        expected += loss * len(idx)
        opt.step(params, cg + ig)
    net.set_optimizer(solver, **options)
    got = net.train_epoch(X, Y, 0.05, batch_size, order, alpha=0.01, sample_weight=sw)
    assert got == pytest.approx(expected / len(order), rel=1e-12)
    for g, e in zip(net.coefs_ + net.intercepts_, params):
        assert_allclose(g, e, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("batch_size", [1, 5])
@pytest.mark.parametrize(
    "solver,options,alpha",
    [
        ("sgd", dict(momentum=0.0), 0.0),  # the sparse per-sample path touches only non-zero rows
        ("sgd", dict(momentum=0.9), 0.01),
        ("adam", {}, 0.01),
    ],
)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_csr_input_trains_and_predicts_like_dense(rng, batch_size, solver, options, alpha, dtype):
    net, X, Y = _problem(rng)
    net = Network(
        net.layer_sizes,
        activation=["tanh", "relu"],
        output="softmax",
        loss="log_loss",
        random_state=0,
        dtype=dtype,
    )
    twin = Network(
        net.layer_sizes,
        activation=["tanh", "relu"],
        output="softmax",
        loss="log_loss",
        random_state=0,
        dtype=dtype,
    )
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


@pytest.fixture
def fresh_gate(monkeypatch):
    """Threads on (``FASTMLP_THREADS=1``; skip where they cannot run) and the
    threaded versions' compile gate as in a new process: nothing spent on one
    thread, no version known ready, a payback time never reached."""
    if not threads_may_run():
        pytest.skip("threads cannot run here")
    monkeypatch.setenv("FASTMLP_THREADS", "1")
    monkeypatch.setattr(threads_module, "_serial_seconds", {})
    monkeypatch.setattr(threads_module, "_versions_ready", {})
    monkeypatch.setattr(threads_module, "THREADS_PAYBACK_SECONDS", 1e9)


def test_threaded_version_waits_until_ready_or_worth_compiling(monkeypatch, fresh_gate):
    # an epoch runs the version without threads (policy None) while its threaded
    # version is neither compiled nor cached and one thread has not spent, nor
    # is the fit expected to spend, THREADS_PAYBACK_SECONDS on such epochs
    ready = {"threaded": False}
    asked = []

    def is_ready(kernel, args):
        asked.append(args[-1] is None)
        return args[-1] is None or ready["threaded"]

    monkeypatch.setattr(K, "is_ready", is_ready)
    policies = []
    real_epoch = K.sgd_epoch

    def sgd_epoch(*args):
        policies.append(args[-1])
        return real_epoch(*args)

    monkeypatch.setattr(K, "sgd_epoch", sgd_epoch)
    rng = np.random.RandomState(0)
    X, Y = rng.rand(4, 300), np.eye(3)[rng.randint(0, 3, 4)]
    net = Network([300, 128, 3], output="softmax", loss="log_loss", random_state=0)
    net.set_optimizer("sgd", momentum=0.9)

    def epochs(count, expected=0):
        del policies[:]
        with net.training_threads(expected_epochs=expected):
            for _ in range(count):
                net.train_epoch(X, Y, 0.01, batch_size=1)
        return [policy is not None for policy in policies]

    assert epochs(3) == [False] * 3
    assert sorted(asked) == [False, True]  # each version asked once (it reads the cache)
    key = ("per-sample", (300, 128, 3), "d")
    spent = threads_module._serial_seconds[key]
    assert spent > 0
    # expected in this fit: the first epoch's time times the epochs left
    monkeypatch.setattr(threads_module, "THREADS_PAYBACK_SECONDS", spent + 1e3)
    assert epochs(2, expected=1) == [False, False]
    assert epochs(3, expected=10**9) == [False, True, True]
    # run once, the threaded version is compiled: used at once from then on
    assert epochs(1) == [True]
    # spent in this process: worth compiling once it reaches the payback time
    threads_module._versions_ready.clear()
    assert epochs(1) == [False]
    monkeypatch.setattr(threads_module, "THREADS_PAYBACK_SECONDS", spent)
    assert epochs(1) == [True]
    # compiled or cached already (a new process): used at once
    monkeypatch.setattr(threads_module, "THREADS_PAYBACK_SECONDS", 1e9)
    threads_module._versions_ready.clear()
    ready["threaded"] = True
    assert epochs(1) == [True]
    # FASTMLP_THREADS=always: compiled at once
    ready["threaded"] = False
    threads_module._versions_ready.clear()
    monkeypatch.setenv("FASTMLP_THREADS", "always")
    assert epochs(1) == [True]
    # an epoch that compiles the version without threads does not count
    monkeypatch.setenv("FASTMLP_THREADS", "1")
    threads_module._versions_ready.clear()
    monkeypatch.setattr(K, "is_ready", lambda kernel, args: False)
    before = dict(threads_module._serial_seconds)
    assert epochs(1) == [False]
    assert threads_module._serial_seconds == before


def test_predict_and_objective_wait_for_their_threaded_version(monkeypatch, fresh_gate):
    # predict and the split objective (L-BFGS, validation losses) follow the
    # epochs' rule: the version without threads until the threaded one is
    # compiled or cached, or one thread has spent (or, within a fit, is
    # expected to spend) THREADS_PAYBACK_SECONDS on such calls
    monkeypatch.setattr(threads_module, "SPLIT_PREDICT_WORK", 0)
    monkeypatch.setattr(threads_module, "SPLIT_PREDICT_MIN_ROWS", 1)
    monkeypatch.setattr(threads_module, "SPLIT_BATCH_WORK", 0)
    monkeypatch.setattr(threads_module, "SPLIT_BATCH_MIN_ROWS", 1)
    ready = {"threaded": False}
    monkeypatch.setattr(K, "is_ready", lambda kernel, args: args[-1] is None or ready["threaded"])
    policies = {"predict": [], "objective": []}

    def recording(kernel, kind):
        def call(*args):
            policies[kind].append(args[-1] is not None)
            return kernel(*args)

        return call

    monkeypatch.setattr(K, "predict_chunks", recording(K.predict_chunks, "predict"))
    monkeypatch.setattr(
        K, "loss_and_gradients_split", recording(K.loss_and_gradients_split, "objective")
    )
    rng = np.random.RandomState(0)
    X, Y = rng.rand(300, 9), np.eye(3)[rng.randint(0, 3, 300)]
    net = Network([9, 16, 3], output="softmax", loss="log_loss", random_state=0)

    def calls(count):
        for kind in policies:
            del policies[kind][:]
        outputs = [(net.forward(X), net.loss_and_flat_gradients(X, Y)) for _ in range(count)]
        return policies["predict"], policies["objective"], outputs

    predict, objective, serial = calls(2)
    assert predict == objective == [False, False]
    spent = {kind: threads_module._serial_seconds[(kind, (9, 16, 3), "d")] for kind in policies}
    assert min(spent.values()) > 0
    # spent in this process: worth compiling once it reaches the payback time
    monkeypatch.setattr(threads_module, "THREADS_PAYBACK_SECONDS", min(spent.values()))
    predict, objective, threaded = calls(1)
    assert predict == objective == [True]
    # the same bits either way
    assert_array_equal(threaded[0][0], serial[0][0])
    assert threaded[0][1][0] == serial[0][1][0]
    assert_array_equal(threaded[0][1][1], serial[0][1][1])
    # within a fit: the last call's time times the epochs still expected
    monkeypatch.setattr(threads_module, "THREADS_PAYBACK_SECONDS", 1e9)
    threads_module._versions_ready.clear()
    with net.training_threads(expected_epochs=10**18):
        predict, objective, _ = calls(2)
    assert (predict, objective) == ([False, True], [False, True])
    # compiled or cached already (a new process): used at once
    threads_module._versions_ready.clear()
    ready["threaded"] = True
    predict, objective, _ = calls(1)
    assert predict == objective == [True]


def test_is_ready_knows_compiled_and_cached_versions(tmp_path):
    # in this process: compiled or not, per argument types
    from fastmlp.kernels._jit import jit

    @jit(cache=False)
    def twice(x):
        return 2 * x

    if numba.config.DISABLE_JIT:
        assert K.is_ready(twice, (1.0,))
        return
    assert not K.is_ready(twice, (1.0,))
    twice(1.0)
    assert K.is_ready(twice, (1.0,))
    assert not K.is_ready(twice, (1,))
    # in the on-disk cache: ready in a new process before the first call
    import subprocess
    import sys
    import textwrap

    (tmp_path / "cached_kernel.py").write_text(
        textwrap.dedent(
            """
            from fastmlp.kernels._jit import jit

            @jit
            def thrice(x):
                return 3 * x
            """
        )
    )
    code = (
        "import sys, fastmlp.kernels as K, cached_kernel as m;"
        "print(K.is_ready(m.thrice, (1.0,)), m.thrice(1.0), K.is_ready(m.thrice, (1.0,)))"
    )
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache"), "PYTHONPATH": str(tmp_path)}
    runs = [
        subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        ).stdout.split()
        for _ in range(2)
    ]
    assert runs == [["False", "3.0", "True"], ["True", "3.0", "True"]]


@pytest.mark.parametrize("solver,options", [SOLVERS[2], SOLVERS[3]])
@pytest.mark.parametrize("sizes", [[300, 128, 3], [300, 128, 40, 3], [300, 128, 300, 3]])
def test_blocked_and_threaded_layer_updates_match_reference_bit_for_bit(
    rng, monkeypatch, solver, options, sizes
):
    # 300 x 128 weights is above BLOCKED_LAYER_SIZE: the first layer is updated
    # in row blocks (on the thread pool when threaded), fused with the next
    # row's forward pass; small upper layers (128 x 3, 128 x 40) are stepped in
    # the same parallel region, a big one (128 x 300) in blocks of its own.
    # Threaded and serial runs must agree exactly.
    assert 300 * 128 >= K.optimizers.BLOCKED_LAYER_SIZE
    assert 128 * 40 < K.optimizers.BLOCKED_LAYER_SIZE <= 128 * 300
    X = rng.rand(12, 300)
    X[rng.rand(*X.shape) < 0.3] = 0.0
    Y = np.eye(3)[rng.randint(0, 3, 12)]
    order = rng.permutation(12)
    hidden = ["relu"] * (len(sizes) - 2)
    results = []
    for setting in ("0", "always"):
        monkeypatch.setenv("FASTMLP_THREADS", setting)
        net = Network(sizes, activation=hidden, output="softmax", loss="log_loss", random_state=0)
        net.set_optimizer(solver, **options)
        before = threaded_steps()
        loss = net.train_epoch(X, Y, 0.05, batch_size=1, order=order, alpha=0.01)
        results.append((loss, net.params.copy()))
        assert (threaded_steps() > before) == (setting == "always" and threads_may_run())
    assert results[0][0] == results[1][0]
    np.testing.assert_array_equal(results[0][1], results[1][1])

    net = Network(sizes, activation=hidden, output="softmax", loss="log_loss", random_state=0)
    n_layers = len(sizes) - 1
    params = [c.copy() for c in net.coefs_] + [b.copy() for b in net.intercepts_]
    opt = ref.Optimizer(solver, params, 0.05, **options)
    expected_loss = 0.0
    for i in order:
        loss, cg, ig = ref.loss_and_gradients(
            X[i : i + 1],
            Y[i : i + 1],
            params[:n_layers],
            params[n_layers:],
            hidden,
            "softmax",
            "log_loss",
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


def test_epochs_that_never_thread_run_the_version_without_threads(monkeypatch):
    # no layer of BLOCKED_LAYER_SIZE weights (or threads off): the kernel gets
    # policy=None and Numba compiles it without the parallel regions (a third
    # less to compile on first use); the bits are the same (the test above
    # compares FASTMLP_THREADS=0, now that version, with threads on big layers)
    rng = np.random.RandomState(0)
    small = Network([5, 7, 3], output="softmax", loss="log_loss", random_state=0)
    big = Network([300, 128, 3], output="softmax", loss="log_loss", random_state=0)
    monkeypatch.setenv("FASTMLP_THREADS", "always")  # (compiled at once where it may thread)

    def per_sample_policy(net, sparse):
        threadable = getattr(K.threadable_layers, "py_func", K.threadable_layers)
        return net._gated_policy("per-sample", K.sgd_epoch, (), threadable(net._sizes, sparse))[0]

    assert per_sample_policy(small, False) is None
    assert per_sample_policy(big, True) is None  # a CSR first layer never threads
    assert (per_sample_policy(big, False) is not None) == threads_may_run()
    monkeypatch.setenv("FASTMLP_THREADS", "0")
    assert per_sample_policy(big, False) is None
    assert big._usable_policy(("split", 64)) is None  # the split epoch likewise
    if not numba.config.DISABLE_JIT:
        small.set_optimizer("sgd", momentum=0.9)
        X, Y = rng.rand(10, 5), np.eye(3)[rng.randint(0, 3, 10)]
        small.train_epoch(X, Y, 0.1, batch_size=1)
        assert any(str(sig[-1]) == "none" for sig in K.sgd_epoch.signatures)


def _reference_epoch(
    net,
    X,
    Y,
    order,
    batch_size,
    lr,
    solver,
    options,
    hidden,
    out,
    loss,
    rates,
    seed,
    alpha=0.01,
    huber_delta=1.0,
):
    """One epoch in NumPy: masks from the Python SplitMix64 stream, then a step per batch."""
    params = [c.astype(np.float64) for c in net.coefs_]
    params += [b.astype(np.float64) for b in net.intercepts_]
    n_layers = len(net.coefs_)
    opt = ref.Optimizer(solver, params, lr, **options)
    state, total = seed, 0.0
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        masks, state = ref.dropout_masks(state, rates, len(idx), net.layer_sizes[1:-1])
        batch_loss, cg, ig = ref.loss_and_gradients(
            X[idx],
            Y[idx],
            params[:n_layers],
            params[n_layers:],
            hidden,
            out,
            loss,
            alpha=alpha,
            masks=masks,
            huber_delta=huber_delta,
        )
        total += batch_loss * len(idx)
        opt.step(params, cg + ig)
    return total / len(order), params, state


def _assert_epoch_matches(net, got_loss, exp_loss, exp_params, dtype):
    """The epoch's loss and weights against the reference's; returns the tolerance."""
    tol = dict(rtol=1e-10, atol=1e-12) if dtype == "float64" else dict(rtol=2e-4, atol=2e-5)
    assert got_loss == pytest.approx(exp_loss, rel=tol["rtol"])
    for g, e in zip(net.coefs_ + net.intercepts_, exp_params):
        assert_allclose(g, e, **tol)
    return tol


@pytest.mark.parametrize("batch_size", [1, 4, 23])
@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("solver,options", [SOLVERS[2], SOLVERS[3]])
def test_dropout_epoch_equals_numpy_with_the_same_masks(
    rng, batch_size, sparse, dtype, solver, options
):
    hidden, rates = ["tanh", "relu"], [0.3, 0.5]
    _, X, Y = _problem(rng)
    net = Network(
        [5, 7, 4, 3],
        activation=hidden,
        output="softmax",
        loss="log_loss",
        random_state=0,
        dtype=dtype,
        dropout=rates,
    )
    seed = int(net._rng_state[0])
    assert seed != 0  # drawn from random_state after the weights
    order = rng.permutation(X.shape[0])
    exp_loss, exp_params, exp_state = _reference_epoch(
        net,
        X,
        Y,
        order,
        batch_size,
        0.05,
        solver,
        options,
        hidden,
        "softmax",
        "log_loss",
        rates,
        seed,
    )
    net.set_optimizer(solver, **options)
    got = net.train_epoch(
        sp.csr_matrix(X) if sparse else X, Y, 0.05, batch_size, order, alpha=0.01
    )
    tol = _assert_epoch_matches(net, got, exp_loss, exp_params, dtype)
    assert int(net._rng_state[0]) == exp_state
    # predict uses the whole network, unmasked
    acts, _ = ref.forward(X, exp_params[:3], exp_params[3:], hidden, "softmax")
    assert_allclose(net.forward(X), acts[-1], **tol)


@pytest.mark.parametrize("batch_size", [1, 6, 20])  # per-sample, mini-batch, full batch
@pytest.mark.parametrize("loss,out", [("huber", "identity"), ("squared_error", "identity")])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("sparse", [False, True])
def test_gelu_and_huber_epochs_equal_numpy(rng, batch_size, loss, out, dtype, sparse):
    hidden = ["gelu", "tanh"]
    X = rng.randn(20, 4)
    X[rng.rand(20, 4) < 0.3] = 0.0
    Y = rng.randn(20, 2) * 3  # residuals on both sides of the Huber threshold
    net = Network(
        [4, 6, 5, 2],
        activation=hidden,
        output=out,
        loss=loss,
        random_state=0,
        huber_delta=0.7,
        dtype=dtype,
    )
    order = rng.permutation(20)
    exp_loss, exp_params, _ = _reference_epoch(
        net,
        X,
        Y,
        order,
        batch_size,
        0.02,
        "adam",
        {},
        hidden,
        out,
        loss,
        [0, 0],
        0,
        huber_delta=0.7,
    )
    net.set_optimizer("adam")
    got = net.train_epoch(
        sp.csr_matrix(X) if sparse else X, Y, 0.02, batch_size, order, alpha=0.01
    )
    _assert_epoch_matches(net, got, exp_loss, exp_params, dtype)


def test_huber_with_a_large_threshold_is_squared_error_bit_for_bit(rng):
    X, Y = rng.randn(30, 4), rng.randn(30, 1)
    nets = [
        Network([4, 8, 1], loss=loss, random_state=0, huber_delta=1e6)
        for loss in ("huber", "squared_error")
    ]
    for net in nets:
        net.fit(X, Y, solver="sgd", epochs=3, batch_size=1, random_state=0)
    assert_array_equal(nets[0].params, nets[1].params)


def test_divergence_restores_the_dropout_stream(rng):
    net = Network([3, 4, 2], output="identity", random_state=0, dropout=0.5)
    X, Y = rng.randn(10, 3), rng.randn(10, 2) * 1e200
    before = net._rng_state.copy()
    with pytest.raises(TrainingDiverged):
        net.train_epoch(X, Y, 0.1, batch_size=1)
    assert_array_equal(net._rng_state, before)


def test_dropout_settings_are_validated():
    with pytest.raises(ValueError, match=r"in \[0, 1\)"):
        Network([3, 4, 2], dropout=1.0)
    with pytest.raises(ValueError, match="2 rates for 1 hidden layers"):
        Network([3, 4, 2], dropout=[0.1, 0.2])
    with pytest.raises(ValueError, match="huber_delta"):
        Network([3, 4, 2], loss="huber", huber_delta=0)
    with pytest.raises(ValueError, match="Unknown output 'gelu'"):
        Network([3, 4, 2], output="gelu")


@pytest.mark.parametrize(
    "solver,two",
    [("sgd", False), ("rmsprop", False), ("adagrad", False), ("adam", True), ("adadelta", True)],
)
def test_second_optimizer_state_only_where_used(solver, two):
    net = Network([4, 5, 2], random_state=0).set_optimizer(solver)
    assert (net._state2.size == net.params.size) is two
    assert net._state2.size in (0, net.params.size)


def test_velocity_flush_threshold_and_flush():
    tiny = np.finfo(np.float32).tiny
    assert optimizers.velocity_flush_threshold(0.9, tiny) == pytest.approx(
        tiny * 0.9**-optimizers.FLUSH_INTERVAL
    )
    assert optimizers.velocity_flush_threshold(0.1, tiny) == pytest.approx(
        tiny * 2.0**40
    )  # capped
    assert optimizers.velocity_flush_threshold(0.0, tiny) == tiny
    assert optimizers.velocity_flush_threshold(1.0, tiny) == tiny
    S = np.array([0.0, 1e-40, -1e-40, 2e-36, -2e-36, 1.0, np.nan, -np.inf], dtype=np.float32)
    optimizers.flush_velocities(S, 1e-36)
    assert_array_equal(S, np.array([0, 0, 0, 2e-36, -2e-36, 1, np.nan, -np.inf], np.float32))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("batch_size", [1, 7])
@pytest.mark.parametrize("momentum", [0.9, 0.6])
def test_sgd_velocities_of_dead_units_never_go_subnormal(rng, dtype, batch_size, momentum):
    # every hidden relu is dead and alpha = 0, so those velocities only decay
    # (v <- momentum * v); without the flush they would sink to the smallest
    # subnormal and stay there (momentum > 0.5 rounds it back up), which
    # makes every later step on them 10-100x slower
    X = rng.uniform(0.5, 1.0, (1000, 4))
    Y = np.eye(3)[rng.randint(0, 3, 1000)]
    net = Network([4, 6, 3], output="softmax", loss="log_loss", dtype=dtype, random_state=0)
    net.coefs_ = [-np.ones((4, 6)), net.coefs_[1]]
    net.set_optimizer("sgd", momentum=momentum, nesterov=True)
    tiny = np.finfo(dtype).tiny
    start = tiny * 1e6  # normal, and subnormal after a few hundred decays
    n_coef = 4 * 6 + 6 * 3
    net._state1[:n_coef] = start
    net._state1[n_coef : n_coef + 6] = start  # hidden intercepts
    net.train_epoch(X, Y, 0.01, batch_size=batch_size, order=rng.permutation(1000))
    v = net._state1
    assert not np.any((v != 0) & (np.abs(v) < tiny)), "subnormal velocities left"
    assert np.all(v[: 4 * 6] == 0)  # decayed by momentum ** (1000 / batch_size): flushed
    assert np.all(np.isfinite(v)) and np.any(v != 0)  # the output layer still moves


@pytest.mark.parametrize(
    "sizes, batch_size, split",
    [
        ([784, 128, 10], 32, True),  # the reference problem
        ([64, 100, 10], 200, True),  # a default fit on digits-sized data
        ([20, 16, 3], 200, False),  # small: the serial kernel is faster
        ([100, 64, 10], 32, False),
        ([784, 128, 10], 16, True),
        ([400, 128, 10], 16, False),
        ([784, 128, 10], 8, False),  # too few rows per half
    ],
)
def test_split_epoch_is_chosen_where_it_was_measured_to_pay(monkeypatch, sizes, batch_size, split):
    net = Network(sizes, output="softmax", loss="log_loss", random_state=0)
    assert net._split_batches(batch_size) is split
    assert not Network(sizes, dropout=0.1, random_state=0)._split_batches(batch_size)
    # the shapes alone decide: the same split without threads (same bits)
    monkeypatch.setenv("FASTMLP_THREADS", "0")
    assert net._split_batches(batch_size) is split


@pytest.fixture
def split_everywhere(monkeypatch):
    """Mini-batch epochs split and predictions threaded at any size, every
    step on two threads (``FASTMLP_THREADS=always``), counting the calls of
    the split epoch and of predict (``calls``)."""
    monkeypatch.setattr(threads_module, "SPLIT_BATCH_WORK", 0)
    monkeypatch.setattr(threads_module, "SPLIT_BATCH_MIN_ROWS", 2)
    monkeypatch.setattr(threads_module, "SPLIT_PREDICT_WORK", 0)
    monkeypatch.setattr(threads_module, "SPLIT_PREDICT_MIN_ROWS", 1)
    monkeypatch.setenv("FASTMLP_THREADS", "always")
    calls = {"epoch": 0, "predict": 0}
    for name, key in (("minibatch_epoch_split", "epoch"), ("predict_chunks", "predict")):
        kernel = getattr(K, name)

        def spy(*args, _kernel=kernel, _key=key):
            calls[_key] += 1
            return _kernel(*args)

        monkeypatch.setattr(K, name, spy)
    return calls


@pytest.mark.parametrize("batch_size", [2, 5, 8, 23])
@pytest.mark.parametrize("solver,options", SOLVERS)
@pytest.mark.parametrize("hidden", [["tanh", "relu"], ["gelu", "relu"]])
@pytest.mark.parametrize("sparse", [False, True])
def test_split_minibatch_epoch_equals_python_loop_over_batches(
    rng, split_everywhere, batch_size, solver, options, hidden, sparse
):
    # each batch in two halves on two threads, the first layer's gradient
    # summed over them in row blocks, each block stepped at once: the same
    # epoch as the reference up to rounding; zero-weight rows, odd batches and
    # a last batch of one row (23 = 2 * 11 + 1) included. CSR input keeps the
    # serial kernel (its first-layer gradient is scattered by row).
    net, X, Y = _problem(rng)
    net = Network(
        net.layer_sizes, activation=hidden, output="softmax", loss="log_loss", random_state=0
    )
    sw = rng.uniform(0.5, 2.0, X.shape[0])
    sw[[2, 3]] = 0.0
    order = rng.permutation(X.shape[0])
    params = [c.copy() for c in net.coefs_] + [b.copy() for b in net.intercepts_]
    opt = ref.Optimizer(solver, params, 0.05, **options)
    expected = 0.0
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        if sw[idx].sum() == 0:  # skipped: no gradient, no loss
            continue
        loss, cg, ig = ref.loss_and_gradients(
            X[idx],
            Y[idx],
            params[:3],
            params[3:],
            hidden,
            "softmax",
            "log_loss",
            alpha=0.01,
            sw=sw[idx],
        )
        expected += loss * len(idx)
        opt.step(params, cg + ig)
    net.set_optimizer(solver, **options)
    Xin = sp.csr_matrix(X) if sparse else X
    got = net.train_epoch(Xin, Y, 0.05, batch_size, order, alpha=0.01, sample_weight=sw)
    assert split_everywhere["epoch"] == (0 if sparse else 1)
    assert got == pytest.approx(expected / len(order), rel=1e-12)
    for g, e in zip(net.coefs_ + net.intercepts_, params):
        assert_allclose(g, e, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("solver,options", [SOLVERS[2], SOLVERS[3]])
def test_split_epoch_does_not_depend_on_the_thread_count(
    rng, monkeypatch, split_everywhere, dtype, solver, options
):
    # the batch split is fixed, so one thread, two, and the serial form of
    # each step give the same bits (and a race between the two halves or the
    # step's blocks would not)
    import numba

    X = rng.rand(300, 300).astype(dtype)
    Y = np.eye(4, dtype=dtype)[rng.randint(0, 4, 300)]
    order = rng.permutation(300)
    results = []
    settings = [
        (1, "always"),
        (numba.config.NUMBA_NUM_THREADS, "always"),
        (numba.config.NUMBA_NUM_THREADS, "0"),
    ]
    for n_threads, setting in settings:
        monkeypatch.setenv("FASTMLP_THREADS", setting)
        net = Network(
            [300, 128, 16, 4], output="softmax", loss="log_loss", dtype=dtype, random_state=0
        )
        assert net._split_batches(64)
        net.set_optimizer(solver, **options)
        previous = numba.get_num_threads()
        numba.set_num_threads(n_threads)
        before = threaded_steps()
        try:
            with net.training_threads():
                losses = [net.train_epoch(X, Y, 0.01, 64, order, alpha=1e-3) for _ in range(2)]
            predictions = net.forward(X)
        finally:
            numba.set_num_threads(previous)
        ran_threaded = threaded_steps() > before
        assert ran_threaded == (setting == "always" and n_threads > 1 and threads_may_run())
        results.append((losses, net.params.copy(), predictions))
    assert split_everywhere == {"epoch": 6, "predict": 3}
    for other in results[1:]:
        assert results[0][0] == other[0]
        assert_array_equal(results[0][1], other[1])
        assert_array_equal(results[0][2], other[2])


def test_split_epoch_divergence_restores_the_weights(rng, split_everywhere):
    net, X, Y = _problem(rng)
    X = X * 1e3
    net.set_optimizer("sgd", momentum=0.9)
    with pytest.raises(TrainingDiverged, match="non-finite"):
        for _ in range(50):
            before = net.params.copy()
            net.train_epoch(X, Y, 1e6, 8)
    assert split_everywhere["epoch"] >= 1
    assert_allclose(net.params, before)
    assert np.isfinite(net.forward(X)).all()


@pytest.mark.parametrize("n", [1, 2, 3, 301])
@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_threaded_predict_equals_serial_predict_bit_for_bit(rng, monkeypatch, n, sparse, dtype):
    X = rng.randn(n, 9).astype(dtype)
    X[rng.rand(*X.shape) < 0.5] = 0.0
    Xin = sp.csr_matrix(X) if sparse else X
    net = Network(
        [9, 16, 8, 3],
        activation=["tanh", "gelu"],
        output="softmax",
        loss="log_loss",
        dtype=dtype,
        random_state=0,
    )
    monkeypatch.setattr(threads_module, "SPLIT_PREDICT_WORK", 0)
    monkeypatch.setattr(threads_module, "SPLIT_PREDICT_MIN_ROWS", 1)
    monkeypatch.setenv("FASTMLP_THREADS", "0")
    serial = net.forward(Xin)
    monkeypatch.setenv("FASTMLP_THREADS", "always")
    before = threaded_steps()
    split = net.forward(Xin)
    assert (threaded_steps() > before) == (n >= 2 and threads_may_run())
    assert_array_equal(split, serial)
    coefs = [c.astype(np.float64) for c in net.coefs_]
    ints = [b.astype(np.float64) for b in net.intercepts_]
    expected = ref.forward(X, coefs, ints, ["tanh", "gelu"], "softmax")[0][-1]
    assert_allclose(split, expected, rtol=1e-10 if dtype == "float64" else 1e-4, atol=1e-12)


def test_blas_on_one_thread_nests_and_restores_the_thread_counts():
    from threadpoolctl import threadpool_info

    from fastmlp._threads import _blas_libraries, blas_on_one_thread

    def counts():
        return {lib.filepath: lib.num_threads for lib in _blas_libraries()}

    before = counts()
    assert before, "no BLAS library found by threadpoolctl"
    assert set(before) <= {info["filepath"] for info in threadpool_info()}
    with blas_on_one_thread() as outer:
        assert outer
        assert set(counts().values()) == {1}
        with blas_on_one_thread() as inner:
            assert inner
            assert set(counts().values()) == {1}
        assert set(counts().values()) == {1}  # the outer use still holds
    assert counts() == before
    with pytest.raises(RuntimeError):
        with blas_on_one_thread():
            raise RuntimeError
    assert counts() == before


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_split_objective_is_the_whole_batch_one_threaded_or_not(rng, monkeypatch, sparse, dtype):
    # L-BFGS's objective over two halves of the rows (41: an odd count), on
    # two threads or one: the same bits either way, the whole batch's loss and
    # gradients up to rounding
    X = rng.randn(41, 9).astype(dtype)
    X[rng.rand(*X.shape) < 0.5] = 0.0
    Xin = sp.csr_matrix(X) if sparse else X
    Y = np.eye(3, dtype=dtype)[rng.randint(0, 3, 41)]
    sw = rng.uniform(0.5, 2.0, 41)
    net = Network(
        [9, 16, 8, 3],
        activation=["tanh", "gelu"],
        output="softmax",
        loss="log_loss",
        dtype=dtype,
        random_state=0,
    )
    loss, cg, ig = net.loss_and_gradients(Xin, Y, alpha=0.01, sample_weight=sw)
    whole = (loss, np.concatenate([g.ravel() for g in cg + ig]))
    monkeypatch.setattr(threads_module, "SPLIT_BATCH_WORK", 0)
    monkeypatch.setattr(threads_module, "SPLIT_BATCH_MIN_ROWS", 1)
    results = []
    for setting in ("0", "always"):
        monkeypatch.setenv("FASTMLP_THREADS", setting)
        before = threaded_steps()
        loss, cg, ig = net.loss_and_gradients(Xin, Y, alpha=0.01, sample_weight=sw)
        assert (threaded_steps() > before) == (setting == "always" and threads_may_run())
        results.append((loss, np.concatenate([g.ravel() for g in cg + ig])))
    assert results[0][0] == results[1][0]
    assert_array_equal(results[0][1], results[1][1])
    rtol = 1e-12 if dtype == "float64" else 1e-5
    assert results[0][0] == pytest.approx(whole[0], rel=rtol)
    assert_allclose(results[0][1], whole[1], rtol=rtol, atol=rtol)


def test_restoring_a_checkpoint_puts_back_weights_state_and_attributes(rng):
    net, X, Y = _problem(rng)
    net.fit(X, Y, solver="adam", epochs=2, batch_size=4, learning_rate=0.01)
    weights, curve = net.coefs_[0].copy(), net.loss_curve_
    whole = net.checkpoint()
    attributes_alone = net.checkpoint(arrays=False)
    assert attributes_alone.arrays is None

    net.fit(X, Y, solver="sgd", epochs=2, batch_size=1, learning_rate=0.1)
    assert net.solver == "sgd" and not np.array_equal(net.coefs_[0], weights)
    trained = net.coefs_[0].copy()
    net.restore(attributes_alone)  # the attributes, not the arrays' values
    assert net.solver == "adam" and net.loss_curve_ is curve
    assert_array_equal(net.coefs_[0], trained)
    net.restore(whole)
    assert net.solver == "adam" and net.loss_curve_ is curve
    assert_array_equal(net.coefs_[0], weights)
