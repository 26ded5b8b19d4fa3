"""Initial weights (scikit-learn's draw and the others) and dropout rates."""

import numbers

import numpy as np


def as_random_state(seed):
    """A ``numpy.random.RandomState`` from None, an int or an existing instance."""
    if seed is None:
        return np.random.mtrand._rand
    if isinstance(seed, numbers.Integral):
        return np.random.RandomState(seed)
    if isinstance(seed, np.random.RandomState):
        return seed
    raise ValueError(f"random_state must be None, an int or a RandomState, got {seed!r}")


def glorot_uniform(rng, fan_in, fan_out, activation, dtype):
    """Weights and intercepts drawn as scikit-learn's MLP draws them.

    ``uniform(-bound, bound)`` with ``bound = sqrt(factor / (fan_in + fan_out))``,
    ``factor`` 2 for logistic and 6 otherwise; weights first, then intercepts.
    """
    factor = 2.0 if activation == "logistic" else 6.0
    bound = np.sqrt(factor / (fan_in + fan_out))
    coef = rng.uniform(-bound, bound, (fan_in, fan_out))
    intercept = rng.uniform(-bound, bound, fan_out)
    return coef.astype(dtype, copy=False), intercept.astype(dtype, copy=False)


INITS = ("glorot_uniform", "he_normal", "he_uniform", "lecun_normal")


def dropout_rates(dropout, n_hidden):
    """Validated dropout rates, one per hidden layer, as a float64 array.

    ``dropout`` is one rate for every hidden layer or a sequence of one rate
    per hidden layer, each in ``[0, 1)``.
    """
    if isinstance(dropout, numbers.Real):
        rates = [float(dropout)] * n_hidden
    else:
        try:
            rates = [float(r) for r in dropout]
        except TypeError:
            raise ValueError(
                f"dropout must be a float or a list of floats, got {dropout!r}"
            ) from None
        if len(rates) != n_hidden:
            raise ValueError(
                f"dropout lists {len(rates)} rates for {n_hidden} hidden layers; give one "
                "rate per hidden layer or a single rate"
            )
    for r in rates:
        if not 0.0 <= r < 1.0:
            raise ValueError(f"dropout rates must be in [0, 1), got {r!r}")
    return np.asarray(rates, dtype=np.float64)


def initial_weights(rng, fan_in, fan_out, activation, dtype, init="glorot_uniform"):
    """One layer's initial ``(coef, intercept)``.

    'glorot_uniform' is scikit-learn's (:func:`glorot_uniform`). The others
    draw the weights only and start the intercepts at zero: 'he_normal'
    ``N(0, 2 / fan_in)`` and 'he_uniform' ``U(+-sqrt(6 / fan_in))`` suit
    relu-like units, 'lecun_normal' ``N(0, 1 / fan_in)`` is the one selu
    needs to self-normalize.
    """
    if init == "glorot_uniform":
        return glorot_uniform(rng, fan_in, fan_out, activation, dtype)
    if init == "he_normal":
        coef = rng.normal(0.0, np.sqrt(2.0 / fan_in), (fan_in, fan_out))
    elif init == "he_uniform":
        bound = np.sqrt(6.0 / fan_in)
        coef = rng.uniform(-bound, bound, (fan_in, fan_out))
    elif init == "lecun_normal":
        coef = rng.normal(0.0, np.sqrt(1.0 / fan_in), (fan_in, fan_out))
    else:
        raise ValueError(f"Unknown init {init!r}; expected one of {INITS}")
    return coef.astype(dtype, copy=False), np.zeros(fan_out, dtype=dtype)
