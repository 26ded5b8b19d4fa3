"""Every kernel against the plain-NumPy reference in ``reference.py``."""

import warnings

import numba
import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose, assert_array_equal

from fastmlp import Network
from fastmlp.kernels import activations as A
from fastmlp.kernels import dense, losses, make_hyper, optimizers

from . import reference as ref
from .conftest import tolerance

DTYPES = ["float64", "float32"]
ELEMENTWISE = [
    "identity",
    "logistic",
    "tanh",
    "relu",
    "leaky_relu",
    "elu",
    "selu",
    "exp",
    "softplus",
    "gelu",
]
FROM_OUTPUT = [n for n in ELEMENTWISE if n != "gelu"]  # derivative is a function of the output


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ELEMENTWISE + ["softmax"])
@pytest.mark.parametrize("shape", [(1, 1), (3, 7), (257, 33)])
def test_activation_matches_numpy(rng, dtype, name, shape):
    z = (rng.randn(*shape) * 3).astype(dtype)
    out = z.copy()
    A.activate_2d(out, A.ACTIVATION_CODES[name], 0.01)
    assert out.dtype == np.dtype(dtype)
    assert_allclose(out, ref.activation(name, z.astype(np.float64)), **tolerance(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", FROM_OUTPUT)
def test_derivative_from_output_matches_derivative_from_z(rng, dtype, name):
    z = (rng.randn(500) * 2).astype(dtype)
    a = z.copy()
    A.activate_inplace(a, A.ACTIVATION_CODES[name], 0.01)
    delta = np.ones_like(z)
    A.multiply_by_derivative(a, delta, A.ACTIVATION_CODES[name], 0.01)
    assert_allclose(delta, ref.derivative_from_z(name, z.astype(np.float64)), **tolerance(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ELEMENTWISE)
@pytest.mark.parametrize("rate", [0.0, 0.3])
def test_gates_hold_derivative_times_dropout_mask(rng, dtype, name, rate):
    z = (rng.randn(4000) * 2).astype(dtype)
    a, gate = z.copy(), np.empty_like(z)
    state = np.array([12345], dtype=np.uint64)
    A.activate_hidden(a, gate, A.ACTIVATION_CODES[name], 0.01, rate, state)
    masks, new_state = ref.dropout_masks(12345, [rate], 1, [z.size])
    mask = masks[0][0]
    z64 = z.astype(np.float64)
    if rate == 0 and name != "gelu":  # no gate needed: plain activation, gate untouched
        assert state[0] == 12345
        assert_allclose(a, ref.activation(name, z64), **tolerance(dtype))
        return
    assert int(state[0]) == new_state
    assert_allclose(a, ref.activation(name, z64) * mask, **tolerance(dtype))
    assert_allclose(gate, ref.derivative_from_z(name, z64) * mask, **tolerance(dtype))
    delta = np.ones_like(z)
    A.backprop_activation(a, gate, delta, A.ACTIVATION_CODES[name], 0.01, rate)
    assert_array_equal(delta, gate)
    if rate:  # Binomial(4000, 0.3): 5 standard deviations is about 0.036
        assert abs((mask == 0).mean() - rate) < 0.036
        assert set(np.unique(mask)) == {0.0, 1 / (1 - rate)}


def test_gates_are_skipped_when_empty_and_gelu_matches_its_exact_form(rng):
    z = rng.randn(50) * 3
    a = z.copy()
    A.activate_hidden(a, z[:0], A.GELU, 0.0, 0.5, np.zeros(1, dtype=np.uint64))
    assert_allclose(a, ref.activation("gelu", z), rtol=1e-12)  # predict: no dropout
    from scipy.special import erf

    assert_allclose(a, 0.5 * z * (1 + erf(z / np.sqrt(2))), atol=1e-3)  # the approximation


def test_dropout_stream_is_splitmix64():
    from numba import njit

    from fastmlp.kernels.rng import next_uniform

    draw = njit(lambda s: next_uniform(s))
    state, expected = np.zeros(1, dtype=np.uint64), 0
    for _ in range(5):
        u, expected = ref.splitmix64(expected)
        assert draw(state) == u and int(state[0]) == expected
    # SplitMix64 from seed 0: first output 0xE220A8397B1DCDAF (Vigna's reference)
    assert ref.splitmix64(0)[0] == (0xE220A8397B1DCDAF >> 11) / 2.0**53


def test_logistic_is_finite_and_silent_at_800():
    z = np.array([-800.0, -1e4, 800.0, 1e4])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        A.activate_inplace(z, A.LOGISTIC, 0.0)
    assert_allclose(z, [0, 0, 1, 1])


PAIRS = [
    ("log_loss", "softmax"),
    ("log_loss", "logistic"),
    ("squared_error", "identity"),
    ("squared_error", "logistic"),
    ("squared_error", "tanh"),
    ("absolute_error", "identity"),
    ("absolute_error", "logistic"),
    ("huber", "identity"),
    ("huber", "tanh"),
    ("poisson", "exp"),
]


def _targets(loss, out, rng, n, k):
    if out == "softmax":
        return np.eye(k)[rng.randint(0, k, n)]
    if loss == "log_loss":
        return rng.randint(0, 2, (n, k)).astype(float)
    if loss == "poisson":
        return rng.poisson(2.0, (n, k)).astype(float)
    return rng.randn(n, k)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("loss,out", PAIRS)
def test_output_loss_and_delta_match_numpy(rng, dtype, loss, out):
    z = (rng.randn(40, 4) * 2).astype(dtype)
    y = _targets(loss, out, rng, 40, 4).astype(dtype)
    a = z.copy()
    delta = np.empty_like(z)
    row_loss = [
        losses.output_loss_and_delta(
            a[r], y[r], delta[r], A.ACTIVATION_CODES[out], losses.LOSS_CODES[loss], 0.01, 1.0
        )
        for r in range(40)
    ]
    z64, y64 = z.astype(np.float64), y.astype(np.float64)
    assert_allclose(row_loss, ref.output_loss(loss, out, z64, y64), **tolerance(dtype))
    assert_allclose(a, ref.activation(out, z64), **tolerance(dtype))
    _, cg, ig = ref.loss_and_gradients(
        np.eye(40), y64, [z64], [np.zeros(4)], [], out, loss
    )  # with X = I, the weight gradient row r is delta_r / n
    assert_allclose(delta, cg[0] * 40, **tolerance(dtype))


@pytest.mark.parametrize("z_scale", [1e4, -1e4])
def test_softmax_cross_entropy_is_finite_and_exact_at_huge_logits(z_scale):
    z = np.array([z_scale, 0.0, -z_scale])
    y = np.array([0.0, 1.0, 0.0])
    delta = np.empty(3)
    loss = losses.output_loss_and_delta(z, y, delta, A.SOFTMAX, losses.LOG_LOSS, 0.0, 1.0)
    assert loss == pytest.approx(abs(z_scale))
    expected_p = [1.0, 0.0, 0.0] if z_scale > 0 else [0.0, 0.0, 1.0]
    assert_allclose(delta, np.array(expected_p) - y, atol=1e-300)


def test_equal_logits_give_uniform_softmax_and_log_k_loss():
    z = np.full(5, 3.0)
    y = np.eye(5)[2]
    delta = np.empty(5)
    loss = losses.output_loss_and_delta(z, y, delta, A.SOFTMAX, losses.LOG_LOSS, 0.0, 1.0)
    assert loss == pytest.approx(np.log(5))
    assert_allclose(delta, 0.2 - y)


@pytest.mark.parametrize("z", [1e4, -1e4, 800.0, -800.0])
@pytest.mark.parametrize("y", [0.0, 1.0])
def test_binary_cross_entropy_is_finite_and_exact_at_huge_logits(z, y):
    zz = np.array([z])
    delta = np.empty(1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss = losses.output_loss_and_delta(
            zz, np.array([y]), delta, A.LOGISTIC, losses.LOG_LOSS, 0.0, 1.0
        )
    expected = np.logaddexp(0, z) - y * z
    assert np.isfinite(loss) and loss == pytest.approx(expected)
    assert delta[0] == pytest.approx((1.0 if z > 0 else 0.0) - y)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_in,n_out", [(1, 1), (17, 5), (300, 64)])
@pytest.mark.parametrize("act", ["relu", "tanh", "softmax"])
def test_dense_forward_vector_batch_and_csr_match_numpy(rng, dtype, n_in, n_out, act):
    X = rng.randn(9, n_in).astype(dtype)
    X[X < 0.3] = 0
    W = rng.randn(n_in, n_out).astype(dtype)
    b = rng.randn(n_out).astype(dtype)
    code = A.ACTIVATION_CODES[act]
    expected = ref.activation(act, X.astype(np.float64) @ W + b)
    out = np.empty((9, n_out), dtype=dtype)
    dense.dense_forward_batch(X, W, b, code, 0.01, out)
    assert_allclose(out, expected, **tolerance(dtype))
    csr = sp.csr_matrix(X)
    indices = csr.indices.astype(np.int64)
    for r in range(9):
        row = np.empty(n_out, dtype=dtype)
        dense.dense_forward_vector(X[r], W, b, code, 0.01, row)
        assert_allclose(row, expected[r], **tolerance(dtype))
        dense.dense_forward_csr_row(
            csr.data, indices, csr.indptr[r], csr.indptr[r + 1], W, b, code, 0.01, row
        )
        assert_allclose(row, expected[r], **tolerance(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "solver,momentum,nesterov",
    [("sgd", 0.0, False), ("sgd", 0.9, False), ("sgd", 0.9, True)]
    + [(s, 0.9, True) for s in ("adam", "rmsprop", "adagrad", "adadelta")],
)
def test_optimizer_step_matches_numpy(rng, dtype, solver, momentum, nesterov):
    W = rng.randn(6, 5)
    a, d = rng.randn(6), rng.randn(5)
    alpha, sw, lr = 0.3, 2.0, 0.05
    opt = ref.Optimizer(solver, [W], lr, momentum=momentum, nesterov=nesterov)
    Wk = W.astype(dtype)
    s1, s2 = np.zeros_like(Wk), np.zeros_like(Wk)
    hyper = np.asarray(
        make_hyper(momentum=momentum, nesterov=nesterov, alpha=alpha, tiny=np.finfo(dtype).tiny),
        dtype=dtype,
    )
    code = optimizers.OPTIMIZER_CODES[solver]
    for t in range(1, 4):
        grad = (np.outer(a, d) + alpha * W) / sw
        opt.step([W], [grad])
        step_lr = optimizers.adam_learning_rate(lr, 0.9, 0.999, t) if solver == "adam" else lr
        sq = optimizers.update_rank1(
            code,
            Wk,
            s1,
            s2,
            a.astype(dtype),
            d.astype(dtype),
            np.asarray(alpha, dtype)[()],
            np.asarray(1 / sw, dtype)[()],
            np.asarray(step_lr, dtype)[()],
            hyper,
        )
        assert_allclose(Wk, W, **tolerance(dtype))
        assert sq == pytest.approx((W**2).sum(), rel=1e-5)


ARCHS = [
    ([3, 1], []),
    ([4, 6, 3], ["tanh"]),
    ([5, 8, 7, 2], ["relu", "logistic"]),
    ([3, 40, 2], ["elu"]),
    ([4, 6, 3], ["softplus"]),
    ([4, 6, 5, 3], ["gelu", "gelu"]),
    ([3, 5, 4, 3, 2], ["selu", "leaky_relu", "identity"]),
]


def _network_and_data(rng, sizes, hidden, out, loss, dtype="float64", n=11):
    net = Network(
        sizes,
        activation=hidden if hidden else "relu",
        output=out,
        loss=loss,
        dtype=dtype,
        random_state=rng,
    )
    X = rng.randn(n, sizes[0])
    Y = _targets(loss, out, rng, n, sizes[-1])
    return net, X, Y


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("sizes,hidden", ARCHS)
@pytest.mark.parametrize("loss,out", PAIRS)
def test_loss_and_gradients_match_numpy_backprop(rng, dtype, sizes, hidden, loss, out):
    net, X, Y = _network_and_data(rng, sizes, hidden, out, loss, dtype)
    sw = rng.uniform(0.5, 2, X.shape[0])
    got, cg, ig = net.loss_and_gradients(X, Y, alpha=0.1, sample_weight=sw, loss_scale=0.5)
    coefs = [c.astype(np.float64) for c in net.coefs_]
    ints = [b.astype(np.float64) for b in net.intercepts_]
    exp, ecg, eig = ref.loss_and_gradients(X, Y, coefs, ints, hidden, out, loss, 0.1, sw, 0.5)
    tol = tolerance(dtype) if dtype == "float64" else dict(rtol=1e-4, atol=1e-4)
    assert got == pytest.approx(exp, rel=tol["rtol"], abs=tol["atol"])
    for g, e in zip(cg + ig, ecg + eig):
        assert_allclose(g, e, **tol)


@pytest.mark.parametrize("sizes,hidden", ARCHS)
@pytest.mark.parametrize("loss,out", [p for p in PAIRS if p[0] != "absolute_error"])
def test_gradients_match_central_finite_differences(rng, sizes, hidden, loss, out):
    net, X, Y = _network_and_data(rng, sizes, hidden, out, loss)
    _, grads = net.loss_and_flat_gradients(X, Y, alpha=0.05)
    params = net.params
    eps = 1e-6
    numeric = np.empty_like(grads)
    for i in range(params.size):
        old = params[i]
        params[i] = old + eps
        up, _ = net.loss_and_flat_gradients(X, Y, alpha=0.05)
        params[i] = old - eps
        down, _ = net.loss_and_flat_gradients(X, Y, alpha=0.05)
        params[i] = old
        numeric[i] = (up - down) / (2 * eps)
    err = np.abs(numeric - grads) / np.maximum(1e-3, np.abs(numeric) + np.abs(grads))
    assert err.max() < 1e-4
    assert err.mean() < 1e-6


def test_absolute_error_gradient_matches_finite_differences_away_from_kinks(rng):
    net, X, Y = _network_and_data(rng, [3, 4, 2], ["tanh"], "identity", "absolute_error")
    Y = Y + 5.0  # residuals far from zero: no kink within eps
    _, grads = net.loss_and_flat_gradients(X, Y)
    p = net.params
    for i in range(p.size):
        old = p[i]
        p[i] = old + 1e-6
        up, _ = net.loss_and_flat_gradients(X, Y)
        p[i] = old - 1e-6
        down, _ = net.loss_and_flat_gradients(X, Y)
        p[i] = old
        assert (up - down) / 2e-6 == pytest.approx(grads[i], rel=1e-5, abs=1e-8)


@pytest.mark.skipif(numba.config.DISABLE_JIT, reason="about Numba's compilation")
def test_unliteral_lets_constant_and_variable_callers_share_one_compilation():
    # a constant argument is typed as a literal: without ``unliteral`` each
    # constant a caller passes compiles the callee once more
    import numba

    from fastmlp.kernels._jit import unliteral

    @numba.njit
    def callee(x, flag, start):
        return x + start if flag else x

    @numba.njit
    def with_constants(x):
        return callee(x, unliteral(True), unliteral(0))

    @numba.njit
    def with_variables(x, flag, start):
        return callee(x, flag, start)

    assert with_constants(2.5) == 2.5
    assert with_variables(2.5, True, 3) == 5.5
    assert len(callee.overloads) == 1
    (signature,) = callee.overloads
    assert str(signature) == "(float64, bool, int64)"
