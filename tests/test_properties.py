"""Property-based tests (hypothesis): random architectures, activations, losses, dtypes."""

import warnings

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.exceptions import ConvergenceWarning

from fastmlp import MLPClassifier, Network, gradient_check

PROFILE = settings(max_examples=25, deadline=None, derandomize=True)
# smooth (C1) activations: finite differences are exact to O(eps^2) everywhere
SMOOTH = ["identity", "logistic", "tanh", "elu", "softplus", "gelu"]
ALL_HIDDEN = SMOOTH + ["relu", "leaky_relu", "selu"]
PAIRS = [
    ("log_loss", "softmax"),
    ("log_loss", "logistic"),
    ("squared_error", "identity"),
    ("squared_error", "tanh"),
    ("huber", "identity"),
    ("poisson", "exp"),
]


@st.composite
def networks(draw, activations, dtypes=("float64",)):
    n_hidden = draw(st.integers(0, 3))
    sizes = [draw(st.integers(1, 6)) for _ in range(n_hidden + 2)]
    loss, output = draw(st.sampled_from(PAIRS))
    if output == "softmax":
        sizes[-1] = max(sizes[-1], 2)
    acts = [draw(st.sampled_from(activations)) for _ in range(n_hidden)]
    dtype = draw(st.sampled_from(dtypes))
    seed = draw(st.integers(0, 2**16))
    net = Network(sizes, activation=acts, output=output, loss=loss, dtype=dtype, random_state=seed)
    rng = np.random.RandomState(seed)
    n = draw(st.integers(1, 9))
    X = rng.randn(n, sizes[0])
    k = sizes[-1]
    if output == "softmax":
        Y = np.eye(k)[rng.randint(0, k, n)]
    elif loss == "log_loss":
        Y = rng.randint(0, 2, (n, k)).astype(float)
    elif loss == "poisson":
        Y = rng.poisson(1.5, (n, k)).astype(float)
    else:
        Y = rng.randn(n, k)
    return net, X, Y, rng


@PROFILE
@given(networks(SMOOTH), st.floats(0, 0.5))
def test_gradients_agree_with_finite_differences(case, alpha):
    net, X, Y, rng = case
    sw = rng.uniform(0.2, 2.0, X.shape[0])
    report = gradient_check(net, X, Y, sample_weight=sw, alpha=alpha)
    assert report["max"] < 1e-5, report


@PROFILE
@given(networks(ALL_HIDDEN, dtypes=("float64", "float32")), st.floats(-100, 100))
def test_forward_is_finite_and_softmax_rows_sum_to_one(case, scale):
    net, X, _, _ = case
    out = net.forward(X * scale)
    assert out.dtype == net.dtype
    if net.output == "exp":  # exp may overflow by design on large inputs; elsewhere finite
        return
    assert np.isfinite(out).all()
    if net.output == "softmax":
        tol = 1e-5 if net.dtype == np.float32 else 1e-12
        assert_allclose(out.sum(axis=1), 1.0, rtol=tol)
        assert (out >= 0).all()


@PROFILE
@given(
    st.integers(3, 40),
    st.integers(1, 4),
    st.sampled_from(["float64", "float32"]),
    st.integers(0, 1000),
)
def test_partial_fit_over_chunks_equals_one_epoch_of_fit(n, n_chunks, dtype, seed):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, 3).astype(dtype)
    y = np.arange(n) % 3
    kw = dict(
        hidden_layer_sizes=(4,),
        solver="sgd",
        batch_size=1,
        shuffle=False,
        random_state=seed,
        learning_rate_init=0.05,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fitted = MLPClassifier(max_iter=1, **kw).fit(X, y)
    partial = MLPClassifier(**kw)
    for part in np.array_split(np.arange(n), n_chunks):
        if len(part):
            partial.partial_fit(X[part], y[part], classes=[0, 1, 2])
    for a, b in zip(partial.coefs_ + partial.intercepts_, fitted.coefs_ + fitted.intercepts_):
        assert_array_equal(a, b)
