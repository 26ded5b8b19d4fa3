"""MLPClassifier and MLPRegressor: scikit-learn's estimators on compiled kernels.

The estimators follow ``sklearn.neural_network`` parameter for parameter and
draw from the random state in the same order (initial weights, validation
split, per-epoch shuffles), so the same settings give the same numbers. They
hold a :class:`fastmlp.Network` and contain no numeric loops.
"""

import contextlib
import copy
import time
import warnings
from numbers import Integral, Real

import numpy as np
import scipy.optimize
from sklearn.base import (
    BaseEstimator,
    ClassifierMixin,
    RegressorMixin,
    _fit_context,
    is_classifier,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import (
    TransformerTags,
    assert_all_finite,
    check_random_state,
    column_or_1d,
    shuffle,
)
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils._set_output import _wrap_data_with_container
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import _check_partial_fit_first_call, type_of_target, unique_labels
from sklearn.utils.optimize import _check_optimize_result
from sklearn.utils.validation import (
    _check_feature_names_in,
    _check_sample_weight,
    check_is_fitted,
    validate_data,
)

from ._checks import largest_magnitude, sum_of_squares
from ._init import INITS, dropout_rates
from .network import HIDDEN_ACTIVATIONS, EpochInterrupted, Network, TrainingDiverged

try:  # scikit-learn >= 1.9: the sklearn.callback protocol (set_callbacks)
    from sklearn.callback import CallbackSupportMixin
except ImportError:  # pragma: no cover

    class CallbackSupportMixin:
        """Stand-in for scikit-learn < 1.9, which has no callback protocol."""

        def set_callbacks(self, *callbacks):
            """scikit-learn 1.9's callback protocol: not in this scikit-learn.

            Raises
            ------
            NotImplementedError
                Naming the version needed; fastmlp's own ``callbacks=[f]``
                parameter works with any scikit-learn.
            """
            import sklearn

            raise NotImplementedError(
                "set_callbacks needs scikit-learn >= 1.9 (its sklearn.callback protocol); "
                f"this is scikit-learn {sklearn.__version__}. fastmlp's callbacks=[f] "
                "parameter works with any version."
            )


try:  # scikit-learn >= 1.6 passes iprint only to SciPy versions that take it
    from sklearn.utils.fixes import _get_additional_lbfgs_options_dict
except ImportError:  # pragma: no cover

    def _get_additional_lbfgs_options_dict(key, value):
        return {key: value}


STOCHASTIC_SOLVERS = ("sgd", "adam", "rmsprop", "adagrad", "adadelta")


def reported_loss_scale(estimator):
    """Factor on the data term of a fitted estimator's loss, as scikit-learn reports it.

    scikit-learn reports squared error averaged over the outputs (its gradient
    is not averaged): ``1 / n_outputs_`` for a regressor with
    ``loss='squared_error'``, 1 otherwise.
    """
    if not is_classifier(estimator) and estimator.loss == "squared_error":
        return 1.0 / estimator.n_outputs_
    return 1.0


def fitted_network(estimator):
    """The :class:`~fastmlp.Network` that a fitted estimator trained (its
    weights themselves, not a copy).

    Parameters
    ----------
    estimator : MLPClassifier or MLPRegressor
        Fitted.

    Returns
    -------
    network : Network
    """
    check_is_fitted(estimator)
    return estimator._network


# scikit-learn's error when the data makes training impossible
_NONFINITE_WEIGHTS = (
    "Solver produced non-finite parameter weights. The input data may contain large values"
    " and need to be preprocessed."
)
_NONFINITE_AT_START = (
    _NONFINITE_WEIGHTS + " (The loss is not finite at the initial weights on this data:"
    " scale X or y, for example with sklearn.preprocessing.StandardScaler.)"
)


def _check_finite(A, name, estimator_name):
    """Refuse NaN and infinity with scikit-learn's error, in one BLAS pass for
    almost all data (values are looked at one by one only when the sum of
    squares is not finite)."""
    if not np.isfinite(sum_of_squares(A)):
        assert_all_finite(A, allow_nan=False, estimator_name=estimator_name, input_name=name)


def _check_finite_and_magnitude(A, name, dtype, estimator_name):
    """Refuse NaN and infinity (scikit-learn's error) and values whose square
    overflows ``dtype`` (about 1e154 in float64, 1.8e19 in float32): squared
    errors, squared gradients (Adam, RMSprop) and the L2 term would be
    infinite, so no training could be right.

    One BLAS pass (the sum of squares) clears almost all data; only when it is
    not finite are the values looked at one by one.
    """
    if np.isfinite(sum_of_squares(A)):
        return
    assert_all_finite(A, allow_nan=False, estimator_name=estimator_name, input_name=name)
    limit = np.sqrt(np.finfo(dtype).max)
    largest = largest_magnitude(A)
    if largest > limit:
        raise ValueError(
            f"{name} holds values too large to train on (max |{name}| = {largest:.3g}, "
            f"above {limit:.3g} whose square overflows {np.dtype(dtype).name}); scale it, "
            "for example with sklearn.preprocessing.StandardScaler."
        )


class _CallbackTasks:
    """One fit's tasks for scikit-learn's ``sklearn.callback`` protocol (>= 1.9).

    The fit is the root task and every epoch (or L-BFGS iteration) a subtask,
    each with begin and end hooks; a ``fitted_estimator`` asked for by a hook
    is a copy of the estimator with a snapshot of the current weights. A
    subtask's end hook returning True stops training.
    """

    def __init__(self, estimator, X, y, sample_weight, max_subtasks):
        self.estimator = estimator
        self.data = dict(X=X, y=y, metadata={"sample_weight": sample_weight})
        self.task = None
        self.root = None
        if hasattr(estimator, "_init_callback_context"):
            self.root = estimator._init_callback_context(max_subtasks=max_subtasks)
            self.root.call_on_fit_task_begin(
                estimator=estimator, reconstruction_attributes=self._snapshot, **self.data
            )

    def _snapshot(self):
        return {"_network": copy.deepcopy(self.estimator._network)}

    def begin_subtask(self, name):
        """Start the next epoch or iteration."""
        if self.root is not None:
            self.task = self.root.subcontext(task_name=name)
            self.task.call_on_fit_task_begin(
                estimator=self.estimator, reconstruction_attributes=self._snapshot, **self.data
            )

    def end_subtask(self):
        """End the current epoch or iteration; True if a callback asks to stop."""
        if self.task is None:
            return False
        task, self.task = self.task, None
        return task.call_on_fit_task_end(
            estimator=self.estimator, reconstruction_attributes=self._snapshot, **self.data
        )

    def end(self):
        """End the fit (and a subtask begun but not run, as an empty task)."""
        if self.root is None:
            return
        if self.task is not None:
            self.task.call_on_fit_task_end(estimator=self.estimator)
            self.task = None
        self.root.call_on_fit_task_end(
            estimator=self.estimator, reconstruction_attributes=self._snapshot, **self.data
        )


class _BaseMLP(CallbackSupportMixin, BaseEstimator):
    """Shared fit/predict machinery of MLPClassifier and MLPRegressor."""

    # transform wraps its output itself (see transform): what scikit-learn's
    # set_output machinery looks for
    _sklearn_auto_wrap_output_keys = {"transform"}

    _parameter_constraints: dict = {
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(HIDDEN_ACTIVATIONS)), list, tuple],
        "solver": [StrOptions({"lbfgs", *STOCHASTIC_SOLVERS})],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "learning_rate": [StrOptions({"constant", "invscaling", "adaptive"})],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "power_t": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "tol": [Interval(Real, 0, None, closed="left")],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "momentum": [Interval(Real, 0, 1, closed="both")],
        "nesterovs_momentum": ["boolean"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "beta_1": [Interval(Real, 0, 1, closed="left")],
        "beta_2": [Interval(Real, 0, 1, closed="left")],
        "epsilon": [Interval(Real, 0, None, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left"), Options(Real, {np.inf})],
        "max_fun": [Interval(Integral, 1, None, closed="left")],
        "dtype": [None, StrOptions({"float32", "float64"})],
        "init": [StrOptions(set(INITS))],
        "callbacks": [None, list, tuple],
        "dropout": [Interval(Real, 0, 1, closed="left"), list, tuple],
    }

    # ------------------------------------------------------------ fitted weights
    @property
    def coefs_(self):
        """Weight matrices, ``coefs_[i]`` of shape ``(n_units[i], n_units[i + 1])``."""
        try:
            return self._network.coefs_
        except AttributeError:
            raise AttributeError("'coefs_' is set by fit") from None

    @coefs_.setter
    def coefs_(self, arrays):
        self._network.coefs_ = arrays

    @property
    def intercepts_(self):
        """Intercept vectors, ``intercepts_[i]`` of shape ``(n_units[i + 1],)``."""
        try:
            return self._network.intercepts_
        except AttributeError:
            raise AttributeError("'intercepts_' is set by fit") from None

    @intercepts_.setter
    def intercepts_(self, arrays):
        self._network.intercepts_ = arrays

    # ------------------------------------------------------------ setup
    def _hidden_layer_sizes(self):
        sizes = self.hidden_layer_sizes
        if not hasattr(sizes, "__iter__"):
            sizes = [sizes]
        sizes = list(sizes)
        for size in sizes:  # 2.5 would silently become 2 units, True 1
            if isinstance(size, (bool, np.bool_)) or not isinstance(size, Integral):
                raise TypeError(
                    f"hidden_layer_sizes must hold integers (units per hidden layer), got "
                    f"{size!r} in {self.hidden_layer_sizes!r}."
                )
        if np.any(np.array(sizes) <= 0):
            raise ValueError(f"hidden_layer_sizes must be > 0, got {sizes}.")
        return [int(s) for s in sizes]

    def _hidden_activations(self, n_hidden):
        if isinstance(self.activation, str):
            return self.activation
        acts = list(self.activation)
        if len(acts) != n_hidden:
            raise ValueError(
                f"activation lists {len(acts)} names but hidden_layer_sizes has "
                f"{n_hidden} layers; give one name per hidden layer or a single name."
            )
        unknown = [a for a in acts if a not in HIDDEN_ACTIVATIONS]
        if unknown:
            raise ValueError(
                f"Unknown activation(s) {unknown}; expected names from {list(HIDDEN_ACTIVATIONS)}."
            )
        return acts

    def _input_dtype(self):
        return (np.float64, np.float32) if self.dtype is None else np.dtype(self.dtype)

    def _initialize(self, y, layer_units, dtype):
        self.n_iter_ = 0
        self.t_ = 0
        self.n_outputs_ = y.shape[1]
        self.n_layers_ = len(layer_units)
        self.out_activation_ = self._output_activation()
        self._network = Network(
            layer_units,
            activation=self._hidden_activations(len(layer_units) - 2),
            output=self.out_activation_,
            loss=self._network_loss(),
            dtype=dtype,
            random_state=self._random_state,
            init=self.init,
            dropout=self.dropout,
            **self._network_loss_options(),
        )
        self._best_coefs = self._best_intercepts = None  # copied once early stopping needs them
        if self.solver in STOCHASTIC_SOLVERS:
            self.loss_curve_ = []
            self._no_improvement_count = 0
            if self.early_stopping:
                self.validation_scores_ = []
                self.validation_loss_curve_ = []
                self.best_validation_score_ = -np.inf
                self.best_loss_ = None
            else:
                self.best_loss_ = np.inf
                self.validation_scores_ = None
                self.validation_loss_curve_ = None
                self.best_validation_score_ = None

    def _weights_with_class_weight(self, Y, sample_weight, incremental):
        return sample_weight

    def _network_loss_options(self):
        """Options of the network's loss beyond its name (the regressor's Huber threshold)."""
        return {}

    def _loss_scale(self):
        return reported_loss_scale(self)

    # ------------------------------------------------------------ fit
    def _fit(self, X, y, sample_weight=None, incremental=False):
        """Fit; if anything raises, leave the estimator as it was, copying
        nothing that a fit does not change in place.

        Parameters stay the caller's objects; fitted attributes are kept by
        reference (a fit replaces them) and the lists it appends to are
        copied. The weights are never copied for this: all input is checked
        before training starts, a fresh fit trains a new network (the old
        one stays as it was), and the running epoch of a network trained
        further (``warm_start``, ``partial_fit``) is undone by the network
        itself. Only an error raised after whole epochs of such a fit have
        finished (a callback raising) keeps those epochs, as Ctrl-C does, with
        ``n_iter_`` and ``loss_curve_`` that agree with the weights.
        """
        params = set(self._get_param_names())
        saved = dict(self.__dict__)
        saved.update(
            {k: list(v) for k, v in saved.items() if isinstance(v, list) and k not in params}
        )
        network = saved.get("_network")
        network_checkpoint = network.checkpoint(arrays=False) if network is not None else None
        self._finished_epochs = 0
        try:
            return self._fit_unchecked(X, y, sample_weight, incremental)
        except BaseException as exc:
            trained_on = self._finished_epochs and self.__dict__.get("_network") is network
            if not isinstance(exc, KeyboardInterrupt) and not trained_on:
                # scikit-learn tears the callbacks of this fit down after we return
                running = {
                    k: v
                    for k, v in self.__dict__.items()
                    if k in ("_callback_fit_ctx", "_skl_callbacks_to_teardown")
                }
                self.__dict__.clear()
                self.__dict__.update(saved)
                self.__dict__.update(running)
                if network is not None:
                    network.restore(network_checkpoint)
                    network.release_buffers()
            raise
        finally:
            self.__dict__.pop("_finished_epochs", None)

    def _fit_unchecked(self, X, y, sample_weight, incremental):
        y_given = y
        hidden_layer_sizes = self._hidden_layer_sizes()
        self._hidden_activations(len(hidden_layer_sizes))
        if dropout_rates(self.dropout, len(hidden_layer_sizes)).any() and self.solver == "lbfgs":
            raise ValueError(
                "dropout is not supported with solver='lbfgs': L-BFGS needs a deterministic "
                "objective. Use a stochastic solver ('adam', 'sgd', ...)."
            )
        first_pass = not hasattr(self, "_network") or (not self.warm_start and not incremental)
        X, y = self._validate_input(X, y, incremental, reset=first_pass)
        n_samples, n_features = X.shape
        if sample_weight is not None:
            sample_weight = _check_sample_weight(
                sample_weight, X, dtype=X.dtype, ensure_non_negative=True
            )
        sw_given = sample_weight
        name = type(self).__name__
        # validate_data left the finiteness of X to this one-pass check; large
        # but finite X is left to training, as in scikit-learn (an irrelevant
        # column at 1e160 trains; a loss that is not finite at the initial
        # weights raises scikit-learn's error, _NONFINITE_AT_START)
        _check_finite(X, "X", name)
        if not is_classifier(self):
            _check_finite_and_magnitude(y, "y", self.dtype or X.dtype, name)
        if y.ndim == 1:
            y = y.reshape((-1, 1))
        sample_weight = self._weights_with_class_weight(y, sample_weight, incremental)
        layer_units = [n_features] + hidden_layer_sizes + [y.shape[1]]
        if not first_pass and list(self._network.layer_sizes) != layer_units:
            raise ValueError(
                f"The fitted network has layer sizes {list(self._network.layer_sizes)} "
                f"but this data and hidden_layer_sizes need {layer_units}. A warm start "
                "or partial_fit trains the fitted network further and cannot change its "
                "layers: fit with warm_start=False to train a new network."
            )
        self.n_outputs_ = y.shape[1]
        self._random_state = check_random_state(self.random_state)
        if first_pass:
            self._initialize(y, layer_units, X.dtype if self.dtype is None else self.dtype)
        network = self._network
        network.set_dropout(self.dropout)  # warm_start / partial_fit with a new rate
        Y = np.ascontiguousarray(y, dtype=network.dtype)
        stochastic = self.solver in STOCHASTIC_SOLVERS
        tasks = _CallbackTasks(
            self,
            X,
            y_given,
            sw_given,
            max_subtasks=(1 if incremental else self.max_iter) if stochastic else None,
        )
        if stochastic:
            self._fit_stochastic(X, Y, sample_weight, incremental, tasks, first_pass)
        else:
            self._fit_lbfgs(X, Y, sample_weight, tasks)
        tasks.end()
        network.release_buffers()
        params = network.params
        # the kernels should never let this happen; min and max propagate NaN
        # and need no temporary as large as the model
        if params.size and not (np.isfinite(params.min()) and np.isfinite(params.max())):
            raise ValueError(_NONFINITE_WEIGHTS)
        return self

    def _fit_lbfgs(self, X, Y, sample_weight, tasks):
        network = self._network
        inputs = network.prepare(X)
        loss_scale = self._loss_scale()

        first_call = [True]

        def loss_and_grad(packed):
            network.params[...] = packed
            loss, grads = network.loss_and_flat_gradients(
                inputs, Y, self.alpha, sample_weight, loss_scale
            )
            if first_call[0] and not np.isfinite(loss):
                raise ValueError(_NONFINITE_AT_START)
            first_call[0] = False
            # float64, as SciPy < 1.11's L-BFGS-B requires (newer ones cast)
            return loss, grads.astype(np.float64, copy=False)

        def end_of_iteration(intermediate_result):
            # SciPy >= 1.11 passes an OptimizeResult (this parameter name asks
            # for it), older versions the point itself
            network.params[...] = getattr(intermediate_result, "x", intermediate_result)
            if tasks.end_subtask():
                raise StopIteration  # SciPy >= 1.11 stops and returns this point
            tasks.begin_subtask("lbfgs-iteration")

        iprint = 1 if (self.verbose is True or self.verbose >= 1) else -1
        tasks.begin_subtask("lbfgs-iteration")
        start = network.params.astype(np.float64)  # a copy: L-BFGS's start, and the undo
        try:
            opt_res = self._run_lbfgs(loss_and_grad, start, end_of_iteration, iprint)
        except BaseException:
            network.params[...] = start  # (a warm_start fit trains the network in place)
            raise
        self.n_iter_ = _check_optimize_result("lbfgs", opt_res, self.max_iter)
        self.loss_ = opt_res.fun
        network.params[...] = opt_res.x

    def _run_lbfgs(self, loss_and_grad, start, end_of_iteration, iprint):
        return scipy.optimize.minimize(  # (it works on its own copy of start)
            loss_and_grad,
            start,
            method="L-BFGS-B",
            jac=True,
            callback=end_of_iteration,
            options={
                "maxfun": self.max_fun,
                "maxiter": self.max_iter,
                "gtol": self.tol,
                **_get_additional_lbfgs_options_dict("iprint", iprint),
            },
        )

    def _fit_stochastic(self, X, Y, sample_weight, incremental, tasks, fresh_start):
        network = self._network
        if not incremental or not hasattr(self, "_learning_rate"):
            network.set_optimizer(
                self.solver,
                momentum=self.momentum,
                nesterov=self.nesterovs_momentum,
                beta_1=self.beta_1,
                beta_2=self.beta_2,
                epsilon=self.epsilon,
            )
            self._learning_rate = float(self.learning_rate_init)
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        early_stopping = self.early_stopping
        if early_stopping and getattr(self, "_best_coefs", None) is None:
            # the weights to return if no epoch improves (a copy only when needed)
            self._best_coefs = [c.copy() for c in self.coefs_]
            self._best_intercepts = [b.copy() for b in self.intercepts_]
        if early_stopping:
            # on the 0/1 indicators as bool, as scikit-learn does (its errors
            # then name the classes 'True' and 'False')
            stratify = Y.astype(bool) if (is_classifier(self) and self.n_outputs_ == 1) else None
            split = train_test_split(
                X,
                Y,
                *([] if sample_weight is None else [sample_weight]),
                random_state=self._random_state,
                test_size=self.validation_fraction,
                stratify=stratify,
            )
            X_train, X_val, Y_train, Y_val = split[:4]
            sw_train, sw_val = split[4:] if sample_weight is not None else (None, None)
            if X_val.shape[0] < 2:
                raise ValueError(
                    "The validation set is too small. Increase 'validation_fraction' "
                    "or the size of your dataset."
                )
            y_val = (
                self._label_binarizer.inverse_transform(Y_val)
                if is_classifier(self)
                else (Y_val.ravel() if Y_val.shape[1] == 1 else Y_val)
            )
        else:
            X_train, Y_train, sw_train = X, Y, sample_weight
            X_val = y_val = Y_val = sw_val = None

        n_samples = X_train.shape[0]
        sample_idx = np.arange(n_samples, dtype=int)
        if self.batch_size == "auto":
            batch_size = min(200, n_samples)
        else:
            if self.batch_size > n_samples:
                warnings.warn(
                    "Got `batch_size` less than 1 or larger than sample size. "
                    "It is going to be clipped"
                )
            batch_size = int(np.clip(self.batch_size, 1, n_samples))
        inputs = network.prepare(X_train)
        loss_scale = self._loss_scale()
        threads = contextlib.ExitStack()
        try:
            epochs = 1 if incremental else self.max_iter  # (partial_fit: one epoch)
            threads.enter_context(network.training_threads(expected_epochs=epochs))
            self.n_iter_ = 0
            for _ in range(self.max_iter):
                if self.shuffle:
                    sample_idx = shuffle(sample_idx, random_state=self._random_state)
                tasks.begin_subtask("epoch")
                started = time.perf_counter()
                interrupted = False
                try:
                    self.loss_ = network.train_epoch(
                        inputs,
                        Y_train,
                        self._learning_rate,
                        batch_size,
                        sample_idx,
                        self.alpha,
                        sw_train,
                        loss_scale,
                    )
                except TrainingDiverged as exc:
                    if self.n_iter_ == 0 and fresh_start:
                        self._raise_if_data_to_blame(
                            network, inputs, X_train, Y_train, sw_train, loss_scale
                        )
                    warnings.warn(
                        f"Training stopped at epoch {self.n_iter_ + 1}: {exc}. The model keeps "
                        "the weights of the last finished epoch; lower learning_rate_init or "
                        "scale the input data.",
                        ConvergenceWarning,
                    )
                    break
                except EpochInterrupted as exc:
                    # Ctrl-C after an epoch that is kept (SGD on CSR): it is
                    # recorded as every finished epoch is, then the fit stops
                    self.loss_ = exc.loss
                    interrupted = True
                elapsed = time.perf_counter() - started
                self._finished_epochs += 1
                self.n_iter_ += 1
                self.t_ += n_samples
                self.loss_curve_.append(self.loss_)
                if self.verbose:
                    print("Iteration %d, loss = %.8f" % (self.n_iter_, self.loss_))
                self._update_no_improvement_count(early_stopping, X_val, y_val, sw_val)
                if early_stopping:
                    self.validation_loss_curve_.append(
                        float(
                            network.loss_and_flat_gradients(
                                X_val, Y_val, self.alpha, sw_val, loss_scale
                            )[0]
                        )
                    )
                if interrupted:
                    self._end_of_epoch_learning_rate()
                    raise KeyboardInterrupt
                stop = self._run_callbacks(n_samples / max(elapsed, 1e-12))
                if tasks.end_subtask() or stop:
                    break
                self._end_of_epoch_learning_rate()
                if self._no_improvement_count > self.n_iter_no_change:
                    if early_stopping:
                        msg = (
                            "Validation score did not improve more than "
                            "tol=%f for %d consecutive epochs." % (self.tol, self.n_iter_no_change)
                        )
                    else:
                        msg = (
                            "Training loss did not improve more than tol=%f"
                            " for %d consecutive epochs." % (self.tol, self.n_iter_no_change)
                        )
                    if self._trigger_stopping(msg):
                        break
                    self._no_improvement_count = 0
                if incremental:
                    break
                if self.n_iter_ == self.max_iter:
                    warnings.warn(
                        "Stochastic Optimizer: Maximum iterations (%d) "
                        "reached and the optimization hasn't converged yet." % self.max_iter,
                        ConvergenceWarning,
                    )
        except KeyboardInterrupt:
            warnings.warn("Training interrupted by user.")
        finally:
            threads.close()
        if early_stopping and self._best_coefs is not None:
            self.coefs_ = self._best_coefs
            self.intercepts_ = self._best_intercepts
        # (no epoch finished, e.g. the first diverged: the weights it started from stay)

    def _end_of_epoch_learning_rate(self):
        """scikit-learn's ``iteration_ends``: 'invscaling' lowers the rate with ``t_``."""
        if self.solver == "sgd" and self.learning_rate == "invscaling":
            self._learning_rate = float(self.learning_rate_init) / (self.t_ + 1) ** self.power_t

    def _raise_if_data_to_blame(self, network, inputs, X, Y, sample_weight, loss_scale):
        """After the first epoch of a fresh fit diverged (the initial weights
        restored), raise scikit-learn's error if the data is to blame: the
        loss is not finite even at the initial weights, or X holds values
        whose squares overflow (squared gradients, the L2 term). Otherwise the
        learning rate is: the fit stops with a warning and keeps the weights
        it started from, as it keeps the last finished epoch's later on."""
        with np.errstate(all="ignore"):
            loss, _ = network.loss_and_flat_gradients(
                inputs, Y, self.alpha, sample_weight, loss_scale
            )
        if not np.isfinite(loss):
            raise ValueError(_NONFINITE_AT_START)
        largest = largest_magnitude(X)
        limit = np.sqrt(np.finfo(network.dtype).max)
        if largest > limit:
            raise ValueError(
                f"{_NONFINITE_WEIGHTS} (Training diverged in its first epoch on X with values "
                f"up to {largest:.3g}, whose squares overflow {network.dtype.name}: scale X, "
                "for example with sklearn.preprocessing.StandardScaler.)"
            )

    def _run_callbacks(self, samples_per_s):
        """Call every callback after an epoch; True if one asks to stop."""
        if not self.callbacks:
            return False
        info = {
            "epoch": self.n_iter_,
            "loss": self.loss_,
            "validation_score": (self.validation_scores_[-1] if self.early_stopping else None),
            "validation_loss": (self.validation_loss_curve_[-1] if self.early_stopping else None),
            "samples_per_s": samples_per_s,
        }
        stop = False
        for callback in self.callbacks:
            stop = bool(callback(self, info)) or stop
        return stop

    def _trigger_stopping(self, msg):
        """scikit-learn's rule: 'adaptive' SGD divides the rate by 5, others stop."""
        verbose = bool(self.verbose)
        if not (self.solver == "sgd" and self.learning_rate == "adaptive"):
            if verbose:
                print(msg + " Stopping.")
            return True
        if self._learning_rate <= 1e-6:
            if verbose:
                print(msg + " Learning rate too small. Stopping.")
            return True
        self._learning_rate /= 5.0
        if verbose:
            print(msg + " Setting learning rate to %f" % self._learning_rate)
        return False

    def _update_no_improvement_count(self, early_stopping, X_val, y_val, sw_val):
        if early_stopping:
            with np.errstate(over="ignore", invalid="ignore"):  # a diverging fit's score
                val_score = self._score(X_val, y_val, sample_weight=sw_val)
            self.validation_scores_.append(val_score)
            if self.verbose:
                print("Validation score: %f" % self.validation_scores_[-1])
            last_valid_score = self.validation_scores_[-1]
            if last_valid_score < (self.best_validation_score_ + self.tol):
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if last_valid_score > self.best_validation_score_:
                self.best_validation_score_ = last_valid_score
                self._best_coefs = [c.copy() for c in self.coefs_]
                self._best_intercepts = [i.copy() for i in self.intercepts_]
        else:
            if self.loss_curve_[-1] > self.best_loss_ - self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if self.loss_curve_[-1] < self.best_loss_:
                self.best_loss_ = self.loss_curve_[-1]

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the model to data matrix X and target(s) y.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            The target values (class labels in classification, real numbers in
            regression).
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights (non-negative; zero-weight samples are skipped).

        Returns
        -------
        self : object
            The fitted estimator.
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=False)

    def _check_solver(self):
        if self.solver not in STOCHASTIC_SOLVERS:
            raise AttributeError(
                "partial_fit is only available for stochastic optimizers. "
                "%s is not stochastic." % self.solver
            )
        return True

    # ------------------------------------------------------------ predict
    def _forward_pass_fast(self, X, check_input=True):
        if check_input:
            check_is_fitted(self)
            X = validate_data(
                self, X, accept_sparse=["csr", "csc"], reset=False, dtype=self._input_dtype()
            )
        with np.errstate(all="ignore"):
            out = self._network.forward(X)
        if check_input and not np.isfinite(out).all():
            raise ValueError(
                "The network's output is not finite for some rows of X (values too large "
                "for the network, e.g. 1e300); scale X as the training data was scaled."
            )
        return out

    def _has_hidden_layer(self):
        sizes = self.hidden_layer_sizes
        return bool(list(sizes) if hasattr(sizes, "__iter__") else [sizes])

    @available_if(_has_hidden_layer)
    def fit_transform(self, X, y, **fit_params):
        """Fit, then return the last hidden layer's activations of X.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        **fit_params : dict
            Passed to :meth:`fit` (e.g. ``sample_weight``).

        Returns
        -------
        H : ndarray of shape (n_samples, hidden_layer_sizes[-1])
        """
        return self.fit(X, y, **fit_params).transform(X)

    @available_if(_has_hidden_layer)
    def transform(self, X, layer=-1):
        """Activations of a hidden layer, to feed another estimator.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.
        layer : int, default=-1
            Which hidden layer: -1 the last, 1 the first (``1..n_layers_ - 2``;
            negative values count back from the output, -1 being the last
            hidden layer).

        Returns
        -------
        H : ndarray or DataFrame of shape (n_samples, hidden_layer_sizes[layer])
            The layer's activations; for the last hidden layer in the container
            chosen with :meth:`set_output` (or ``set_config(transform_output=...)``),
            with the columns of :meth:`get_feature_names_out`.
        """
        check_is_fitted(self)
        original = X
        n_hidden = self.n_layers_ - 2
        if not isinstance(layer, Integral) or not (
            1 <= layer <= n_hidden or -n_hidden <= layer <= -1
        ):
            raise ValueError(
                f"layer must be 1..{n_hidden} or -{n_hidden}..-1 (hidden layers), got {layer!r}"
            )
        X = validate_data(
            self, X, accept_sparse=["csr", "csc"], reset=False, dtype=self._input_dtype()
        )
        index = layer if layer > 0 else n_hidden + 1 + layer
        H = self._network.forward(X, layer=index)
        if index != n_hidden:  # get_feature_names_out names the last hidden layer only
            return H
        return _wrap_data_with_container("transform", H, original, self)

    @available_if(_has_hidden_layer)
    def set_output(self, *, transform=None):
        """Set the output container of :meth:`transform` and :meth:`fit_transform`.

        Parameters
        ----------
        transform : {"default", "pandas", "polars"}, default=None
            ``"default"``: ndarrays; ``"pandas"`` or ``"polars"``: data frames
            with the columns of :meth:`get_feature_names_out`; None: unchanged.

        Returns
        -------
        self : estimator instance
        """
        if transform is None:
            return self
        if not hasattr(self, "_sklearn_output_config"):
            self._sklearn_output_config = {}
        self._sklearn_output_config["transform"] = transform
        return self

    @available_if(_has_hidden_layer)
    def get_feature_names_out(self, input_features=None):
        """Names of the features :meth:`transform` gives: the last hidden layer's units.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Only checked against the names seen in :meth:`fit`.

        Returns
        -------
        feature_names_out : ndarray of str objects
            ``"<estimator name in lower case><unit>"``, e.g. ``mlpclassifier0``,
            as scikit-learn's transformers name features they create.
        """
        check_is_fitted(self)
        _check_feature_names_in(self, input_features, generate_names=False)
        prefix = type(self).__name__.lower()
        width = self._network.layer_sizes[-2]
        return np.asarray([f"{prefix}{i}" for i in range(width)], dtype=object)

    def _score_with_function(self, X, y, sample_weight, score_function):
        y_pred = self._predict(X, check_input=False)
        if np.issubdtype(y_pred.dtype, np.floating) and not np.isfinite(y_pred).all():
            return np.nan
        return score_function(y, y_pred, sample_weight=sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        if self._has_hidden_layer():  # transform(X) gives hidden-layer features
            preserved = ["float64", "float32"] if self.dtype is None else [self.dtype]
            tags.transformer_tags = TransformerTags(preserves_dtype=preserved)
        return tags


_COMMON_PARAMS_DOC = """
    hidden_layer_sizes : array-like of shape (n_layers - 2,), default=(100,)
        The ith element is the number of neurons in the ith hidden layer.
        ``()`` gives no hidden layer (a single neuron layer: logistic or
        linear regression).
    activation : str or list of str, default='relu'
        Hidden activation: 'identity', 'logistic', 'tanh', 'relu', and beyond
        scikit-learn 'leaky_relu', 'elu', 'selu', 'softplus', 'gelu' (tanh
        approximation); or a list with one name per hidden layer.
    solver : {'lbfgs', 'sgd', 'adam', 'rmsprop', 'adagrad', 'adadelta'}, default='adam'
        Weight optimizer. 'rmsprop', 'adagrad' and 'adadelta' are beyond
        scikit-learn; they use ``learning_rate_init`` and ``epsilon`` (RMSprop
        and Adadelta with a decay of 0.9; Adadelta's natural rate is 1.0).
    alpha : float, default=0.0001
        Strength of the L2 regularization term.
    batch_size : int or 'auto', default='auto'
        Minibatch size for stochastic solvers, ``min(200, n_samples)`` for
        'auto'. ``batch_size=1`` runs the fused per-sample SGD kernel.
    learning_rate : {'constant', 'invscaling', 'adaptive'}, default='constant'
        Learning rate schedule (solver='sgd' only), as in scikit-learn.
    learning_rate_init : float, default=0.001
        Initial learning rate of the stochastic solvers.
    power_t : float, default=0.5
        Exponent of 'invscaling'.
    max_iter : int, default=200
        Maximum number of epochs (stochastic solvers) or iterations (lbfgs).
    shuffle : bool, default=True
        Shuffle samples in each epoch.
    random_state : int, RandomState instance or None, default=None
        Initial weights, validation split and shuffles, drawn as scikit-learn does.
    tol : float, default=1e-4
        Tolerance for the optimization.
    verbose : bool or int, default=False
        Whether to print progress messages to stdout: scikit-learn's lines
        (``Iteration N, loss = ...``, validation scores, stopping reasons).
        For a progress bar, use scikit-learn's ``ProgressBar`` callback
        (``set_callbacks``) or the ``fastmlp`` command line.
    warm_start : bool, default=False
        Reuse the previous solution as initialization.
    momentum : float, default=0.9
        Momentum of SGD.
    nesterovs_momentum : bool, default=True
        Use Nesterov's momentum.
    early_stopping : bool, default=False
        Stop when the validation score stops improving.
    validation_fraction : float, default=0.1
        Share of the training data set aside for early stopping.
    beta_1, beta_2 : float, default=0.9, 0.999
        Adam's decay rates.
    epsilon : float, default=1e-8
        Adam's numerical stability constant (also RMSprop's, Adagrad's, Adadelta's).
    n_iter_no_change : int, default=10
        Epochs without improvement of at least ``tol`` before stopping.
    max_fun : int, default=15000
        Maximum number of loss evaluations (lbfgs).
    dtype : {None, 'float32', 'float64'}, default=None
        Precision of training: None keeps scikit-learn's rule (float32 input
        stays float32, anything else becomes float64); 'float32' trains in
        single precision even on float64 input.
    init : {'glorot_uniform', 'he_normal', 'he_uniform', 'lecun_normal'}, \
            default='glorot_uniform'
        Initial weights (beyond scikit-learn): the default is scikit-learn's;
        'he_*' suit relu-like units, 'lecun_normal' pairs with 'selu'. The
        non-default ones start the intercepts at zero.
    callbacks : list of callable, default=None
        Called after every epoch of the stochastic solvers as
        ``callback(estimator, info)``, ``info`` a dict with 'epoch', 'loss',
        'validation_score', 'validation_loss' (None without early stopping)
        and 'samples_per_s'. A callback returning True stops training (no
        ConvergenceWarning). Callbacks of scikit-learn's ``sklearn.callback``
        protocol are set with ``set_callbacks`` instead.
    dropout : float or list of float, default=0.0
        Inverted dropout (beyond scikit-learn): the rate at which each hidden
        layer's units are zeroed during training, one rate for all hidden
        layers or one per hidden layer, in ``[0, 1)``. Kept units are scaled
        by ``1 / (1 - rate)``, so predict uses the full network unchanged.
        The masks are drawn from a stream seeded by ``random_state``.
        Stochastic solvers only.
"""


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """Multi-layer perceptron classifier, a drop-in for scikit-learn's.

    Optimizes the log-loss with L-BFGS or a stochastic solver, with the
    numerics of ``sklearn.neural_network.MLPClassifier``; every epoch runs as
    one compiled call.

    Parameters
    ----------
    {params}
    class_weight : dict, 'balanced' or None, default=None
        Weights of the classes (beyond scikit-learn), multiplied into
        ``sample_weight``: ``{{label: weight}}``, or 'balanced' for
        ``n_samples / (n_classes * count)``. Not for multilabel targets;
        'balanced' not with partial_fit. As scikit-learn divides each step's
        gradient by the batch's weight sum, weights have no effect with
        ``batch_size=1`` (beyond skipping zero-weight rows).

    Attributes
    ----------
    classes_ : ndarray or list of ndarray
        Class labels for each output.
    loss_ : float
        The current loss.
    best_loss_ : float or None
        Minimum training loss reached (None with early stopping).
    loss_curve_ : list
        Loss at the end of each epoch (stochastic solvers).
    validation_scores_ : list or None
        Accuracy on the validation set at each epoch (early stopping).
    validation_loss_curve_ : list or None
        Loss on the validation set at each epoch, computed as ``loss_``
        (early stopping; beyond scikit-learn).
    best_validation_score_ : float or None
        Best validation accuracy (early stopping).
    t_ : int
        Training samples seen.
    coefs_ : list of ndarray
        Weight matrices.
    intercepts_ : list of ndarray
        Bias vectors.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit (string column names only).
    n_iter_ : int
        Number of iterations the solver ran.
    n_layers_ : int
        Number of layers.
    n_outputs_ : int
        Number of outputs.
    out_activation_ : str
        Name of the output activation.
    """

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        max_fun=15000,
        dtype=None,
        init="glorot_uniform",
        callbacks=None,
        class_weight=None,
        dropout=0.0,
    ):
        self.class_weight = class_weight
        self.dropout = dropout
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.dtype = dtype
        self.init = init
        self.callbacks = callbacks

    _parameter_constraints: dict = {
        **_BaseMLP._parameter_constraints,
        "class_weight": [None, dict, StrOptions({"balanced"})],
    }

    loss = "log_loss"

    def _weights_with_class_weight(self, Y, sample_weight, incremental):
        """``sample_weight`` times the weight of each row's class (``class_weight``)."""
        if self.class_weight is None:
            return sample_weight
        if self._label_binarizer.y_type_ == "multilabel-indicator":
            raise ValueError("class_weight is not supported for multilabel targets.")
        if incremental and self.class_weight == "balanced":
            raise ValueError(
                "class_weight='balanced' is not supported for partial_fit: the class "
                "frequencies of one chunk are not those of the data. Pass a dict computed "
                "on all the data, e.g. with sklearn.utils.class_weight.compute_class_weight."
            )
        index = Y.argmax(axis=1) if Y.shape[1] > 1 else Y[:, 0].astype(np.intp)
        labels = self.classes_[index]
        if self.class_weight == "balanced":  # over the classes present in y
            present = np.unique(index)
            weights = np.ones(len(self.classes_))
            weights[present] = compute_class_weight(
                "balanced", classes=self.classes_[present], y=labels
            )
        else:
            weights = compute_class_weight(self.class_weight, classes=self.classes_, y=labels)
            bad = ~(np.isfinite(weights) & (weights >= 0))
            if bad.any():  # as a negative or NaN sample_weight would be
                label = self.classes_[bad][0]
                raise ValueError(
                    "class_weight must be finite and non-negative; got "
                    f"{float(weights[bad][0])} for class "
                    f"{label.item() if hasattr(label, 'item') else label!r}."
                )
        row_weight = weights[index]
        return row_weight if sample_weight is None else sample_weight * row_weight

    def _output_activation(self):
        return "softmax" if self._label_binarizer.y_type_ == "multiclass" else "logistic"

    def _indicators(self, y):
        """The 0/1 target matrix of ``LabelBinarizer.transform(y)`` as bool, built
        directly for binary and multiclass labels (20x faster)."""
        kind = self._label_binarizer.y_type_
        if kind == "multiclass":
            Y = np.zeros((len(y), len(self.classes_)), dtype=bool)
            Y[np.arange(len(y)), np.searchsorted(self.classes_, y)] = True
            return Y
        if kind == "binary" and len(self.classes_) == 2 and np.ndim(y) == 1:
            return (y == self.classes_[1]).reshape(-1, 1)
        return self._label_binarizer.transform(y).astype(bool)

    def _network_loss(self):
        return "log_loss"

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(
            self,
            X,
            y,
            accept_sparse=["csr", "csc"],
            multi_output=True,
            dtype=self._input_dtype(),
            reset=reset,
            ensure_all_finite=False,  # checked with the magnitude, in one pass
        )
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if (not hasattr(self, "classes_")) or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            classes = unique_labels(y)
            if self.warm_start:
                if set(classes) != set(self.classes_):
                    raise ValueError(
                        "warm_start can only be used where `y` has the same "
                        "classes as in the previous call to fit. Previously "
                        f"got {self.classes_}, `y` has {classes}"
                    )
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError(
                    "`y` has classes not in `self.classes_`. "
                    f"`self.classes_` has {self.classes_}. 'y' has {classes}."
                )
        # one class fits, as in scikit-learn: the output unit learns 0 and
        # predict returns that class
        y = self._indicators(y)
        return X, y

    def predict(self, X):
        """Predict using the multi-layer perceptron classifier.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_classes)
            The predicted classes.
        """
        return self._predict(X)

    def _predict(self, X, check_input=True):
        y_pred = self._forward_pass_fast(X, check_input=check_input)
        if self.n_outputs_ == 1:
            y_pred = y_pred.ravel()
        return self._label_binarizer.inverse_transform(y_pred)

    def _score(self, X, y, sample_weight=None):
        return self._score_with_function(X, y, sample_weight, accuracy_score)

    @available_if(lambda est: est._check_solver())
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """Update the model with a single epoch over the given data.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.
        y : array-like of shape (n_samples,) or (n_samples, n_labels)
            The target values (a label indicator matrix for multilabel).
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.
        classes : array of shape (n_classes,), default=None
            Classes across all calls to partial_fit; required on the first
            call, except for multilabel targets (a label indicator matrix
            gives its classes itself).

        Returns
        -------
        self : object
            Trained MLP model.
        """
        first_call = not hasattr(self, "classes_")
        if first_call and classes is None and type_of_target(y).startswith("multilabel"):
            # a label indicator matrix names its classes itself (scikit-learn #12505)
            self._label_binarizer = LabelBinarizer().fit(y)
            self.classes_ = self._label_binarizer.classes_
        elif _check_partial_fit_first_call(self, classes):
            self._label_binarizer = LabelBinarizer()
            if type_of_target(y).startswith("multilabel"):
                self._label_binarizer.fit(y)
            else:
                self._label_binarizer.fit(classes)
        try:
            return self._fit(X, y, sample_weight=sample_weight, incremental=True)
        except Exception:
            if first_call:  # _fit restored the rest; undo what the first call set up here
                for name in ("classes_", "_label_binarizer"):
                    self.__dict__.pop(name, None)
            raise

    def predict_log_proba(self, X):
        """Return the log of probability estimates.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        log_y_prob : ndarray of shape (n_samples, n_classes)
            The predicted log-probability of each class, ordered as ``classes_``.
        """
        y_prob = self.predict_proba(X)
        with np.errstate(divide="ignore"):
            return np.log(y_prob, out=y_prob)

    def predict_proba(self, X):
        """Probability estimates.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        y_prob : ndarray of shape (n_samples, n_classes)
            The predicted probability of each class, ordered as ``classes_``.
        """
        y_pred = self._forward_pass_fast(X)
        if self.n_outputs_ == 1:
            y_pred = y_pred.ravel()
        if y_pred.ndim == 1:
            return np.vstack([1 - y_pred, y_pred]).T
        return y_pred

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class MLPRegressor(RegressorMixin, _BaseMLP):
    """Multi-layer perceptron regressor, a drop-in for scikit-learn's.

    Optimizes the squared error (or, beyond scikit-learn, the absolute error
    or the Huber loss; or the Poisson deviance as scikit-learn >= 1.7) with
    L-BFGS or a stochastic solver; the output activation is the identity (exp
    for Poisson).

    Parameters
    ----------
    loss : {{'squared_error', 'absolute_error', 'huber', 'poisson'}}, \
            default='squared_error'
        The loss to minimize. 'huber' is ``r**2 / 2`` for residuals
        ``|r| <= huber_delta`` and ``huber_delta * (|r| - huber_delta / 2)``
        beyond (robust to outliers, smooth near 0), summed over outputs.
    {params}
    huber_delta : float, default=1.0
        Threshold of the 'huber' loss, in the units of ``y`` (PyTorch's
        ``delta``; scikit-learn's SGDRegressor calls it ``epsilon``, a name
        taken here by Adam).
    Attributes
    ----------
    loss_, best_loss_, loss_curve_, validation_scores_, validation_loss_curve_,
    best_validation_score_, t_, coefs_, intercepts_, n_features_in_, feature_names_in_, n_iter_,
    n_layers_, n_outputs_, out_activation_ :
        As for :class:`MLPClassifier`; validation scores are R2.
    """

    _parameter_constraints: dict = {
        **_BaseMLP._parameter_constraints,
        "loss": [StrOptions({"squared_error", "absolute_error", "huber", "poisson"})],
        "huber_delta": [Interval(Real, 0, None, closed="neither")],
    }

    def __init__(
        self,
        loss="squared_error",
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        max_fun=15000,
        dtype=None,
        init="glorot_uniform",
        callbacks=None,
        dropout=0.0,
        huber_delta=1.0,
    ):
        self.loss = loss
        self.dropout = dropout
        self.huber_delta = huber_delta
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.dtype = dtype
        self.init = init
        self.callbacks = callbacks

    def _output_activation(self):
        return "exp" if self.loss == "poisson" else "identity"

    def _network_loss(self):
        return self.loss

    def _network_loss_options(self):
        return {"huber_delta": self.huber_delta}

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(
            self,
            X,
            y,
            accept_sparse=["csr", "csc"],
            multi_output=True,
            y_numeric=True,
            dtype=self._input_dtype(),
            reset=reset,
            ensure_all_finite=False,  # checked with the magnitude, in one pass
        )
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if self.loss == "poisson" and np.any(y < 0):
            raise ValueError("loss='poisson' requires non-negative y, got a negative target.")
        return X, y

    def predict(self, X):
        """Predict using the multi-layer perceptron model.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            The predicted values.
        """
        return self._predict(X)

    def _predict(self, X, check_input=True):
        y_pred = self._forward_pass_fast(X, check_input=check_input)
        if y_pred.shape[1] == 1:
            return y_pred.ravel()
        return y_pred

    def _score(self, X, y, sample_weight=None):
        return self._score_with_function(X, y, sample_weight, r2_score)

    @available_if(lambda est: est._check_solver())
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None):
        """Update the model with a single epoch over the given data.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            The target values.
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.

        Returns
        -------
        self : object
            Trained MLP model.
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)


MLPClassifier.__doc__ = MLPClassifier.__doc__.format(params=_COMMON_PARAMS_DOC.strip("\n"))
MLPRegressor.__doc__ = MLPRegressor.__doc__.format(params=_COMMON_PARAMS_DOC.strip("\n"))
