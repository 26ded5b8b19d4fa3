"""``gradient_check``: backprop's gradients against central finite differences, in one call."""

import numpy as np
from sklearn.base import is_classifier
from sklearn.preprocessing import label_binarize

from ._multilayer_perceptron import fitted_network, reported_loss_scale
from .network import Network


def gradient_check(model, X, y, *, sample_weight=None, alpha=None, eps=1e-6):
    """Compare the analytic gradients with central finite differences.

    Every parameter ``p`` is moved to ``p + eps`` and ``p - eps`` and the
    numeric derivative ``(L(p + eps) - L(p - eps)) / (2 eps)`` compared with
    backprop's, the way textbooks check an implementation. Computed in
    float64 whatever the model's precision.

    Parameters
    ----------
    model : MLPClassifier, MLPRegressor or Network
        A fitted estimator (its loss, L2 term and weights are used), or a
        :class:`Network` (then ``y`` holds its targets, e.g. one-hot rows).
    X : array-like or sparse matrix of shape (n_samples, n_features)
    y : array-like
        Labels or targets as ``model.fit`` takes them.
    sample_weight : array-like of shape (n_samples,), default=None
    alpha : float, default=None
        L2 penalty; None uses the estimator's ``alpha`` (0 for a Network).
    eps : float, default=1e-6
        Step of the finite differences.

    Returns
    -------
    report : dict
        ``'coefs'`` and ``'intercepts'``: per layer, the relative error
        ``|g_numeric - g_backprop| / max(|g_numeric| + |g_backprop|, 1e-12)``
        in the Euclidean norm; ``'max'``: the largest of them. Values around
        1e-7 or below mean the gradients agree.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from fastmlp import MLPClassifier, gradient_check
    >>> X, y = load_iris(return_X_y=True)
    >>> model = MLPClassifier((5,), activation="tanh", max_iter=5).fit(X, y)  # doctest: +SKIP
    >>> gradient_check(model, X[:20], y[:20])["max"] < 1e-6  # doctest: +SKIP
    True
    """
    if isinstance(model, Network):
        network, Y, loss_scale = model, np.asarray(y, dtype=np.float64), 1.0
        alpha = 0.0 if alpha is None else alpha
    else:
        network = fitted_network(model)
        if is_classifier(model):
            Y = label_binarize(y, classes=model.classes_).astype(np.float64)
        else:
            Y = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
        loss_scale = reported_loss_scale(model)
        alpha = model.alpha if alpha is None else alpha
    twin = network.astype(np.float64)
    inputs = twin.prepare(X if not hasattr(X, "dtype") else X.astype(np.float64, copy=False))
    _, analytic = twin.loss_and_flat_gradients(inputs, Y, alpha, sample_weight, loss_scale)
    params = twin.params
    numeric = np.empty_like(analytic)
    for i in range(params.size):
        original = params[i]
        params[i] = original + eps
        up, _ = twin.loss_and_flat_gradients(inputs, Y, alpha, sample_weight, loss_scale)
        params[i] = original - eps
        down, _ = twin.loss_and_flat_gradients(inputs, Y, alpha, sample_weight, loss_scale)
        params[i] = original
        numeric[i] = (up - down) / (2 * eps)

    def relative(view_of):
        errors = []
        for a, n in zip(view_of(analytic), view_of(numeric)):
            scale = max(np.linalg.norm(a) + np.linalg.norm(n), 1e-12)
            errors.append(float(np.linalg.norm(a - n) / scale))
        return errors

    coefs = relative(lambda flat: _split(twin, flat)[0])
    intercepts = relative(lambda flat: _split(twin, flat)[1])
    return {"coefs": coefs, "intercepts": intercepts, "max": max(coefs + intercepts)}


def _split(network, flat):
    """Per-layer weight and intercept views of a flat vector in the network's layout."""
    sizes = network.layer_sizes
    coefs, intercepts, pos = [], [], 0
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        coefs.append(flat[pos : pos + fan_in * fan_out])
        pos += fan_in * fan_out
    for fan_out in sizes[1:]:
        intercepts.append(flat[pos : pos + fan_out])
        pos += fan_out
    return coefs, intercepts
