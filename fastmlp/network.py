"""``Network``: the thin Pythonic owner of weights, buffers and optimizer state.

It knows the kernels (``fastmlp.kernels``) and nothing of scikit-learn: arrays
in, arrays out. Weights live in one flat vector packed as scikit-learn's
``_pack`` does (all weight matrices, then all intercepts); ``coefs_`` and
``intercepts_`` are views into it, shaped as scikit-learn's.
"""

import copy
import numbers
import time
from contextlib import contextmanager
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp

from . import _threads
from . import kernels as K
from ._init import INITS, as_random_state, dropout_rates, initial_weights
from ._threads import PREDICT_CHUNK, PREDICT_GROUP, blas_on_one_thread

HIDDEN_ACTIVATIONS = (
    "identity",
    "logistic",
    "tanh",
    "relu",
    "leaky_relu",
    "elu",
    "selu",
    "softplus",
    "gelu",
)
# GELU's derivative needs z, which the output losses do not keep
OUTPUT_ACTIVATIONS = tuple(a for a in HIDDEN_ACTIVATIONS if a != "gelu") + ("softmax", "exp")
LOSSES = tuple(K.LOSS_CODES)
SOLVERS = tuple(K.OPTIMIZER_CODES)


def _check_csr_structure(X):
    """Refuse a CSR matrix whose arrays do not describe its shape (SciPy does
    not check column indices): the kernels index weights by them, and an
    index past the last column reads or writes outside the weights."""
    n_rows, n_cols = X.shape
    indptr, indices = X.indptr, X.indices
    if (
        indptr.shape[0] != n_rows + 1
        or indptr[0] != 0
        or indptr[-1] > min(indices.shape[0], X.data.shape[0])
        or (n_rows and np.any(np.diff(indptr) < 0))
    ):
        raise ValueError("X is a malformed CSR matrix: its indptr does not fit its data.")
    used = indices[: indptr[-1]]
    if used.size and (used.min() < 0 or used.max() >= n_cols):
        raise ValueError(
            f"X is a malformed CSR matrix: column indices from {used.min()} to {used.max()} "
            f"for {n_cols} columns."
        )


class Checkpoint(NamedTuple):
    """What :meth:`Network.checkpoint` keeps: attributes by reference, trained
    arrays copied (None when the checkpoint keeps the attributes alone)."""

    attributes: dict
    arrays: tuple


class KernelInput(NamedTuple):
    """X in the form the kernels take: dense, or CSR arrays (see ``Network.prepare``)."""

    dense: np.ndarray
    data: np.ndarray
    indices: np.ndarray
    indptr: np.ndarray
    is_sparse: bool
    n_samples: int

    @property
    def kernel_x(self):
        """The input as the kernels take it: ``(X_dense, X_data, X_indices,
        X_indptr, is_sparse)`` (:mod:`fastmlp.kernels.passes`)."""
        return (self.dense, self.data, self.indices, self.indptr, self.is_sparse)


class TrainingDiverged(FloatingPointError):
    """Raised when an epoch meets a non-finite loss or produces non-finite weights.

    The network's weights and optimizer state are those from before the epoch.
    """


class EpochInterrupted(KeyboardInterrupt):
    """Ctrl-C arrived as an epoch that is not undone had finished: the epoch is kept.

    Raised by :meth:`Network.train_epoch` for SGD on CSR input, whose epochs
    keep no copy of the whole first layer to go back to (an interrupt is
    only seen once the compiled epoch has returned). ``loss`` is the epoch's
    loss, as :meth:`~Network.train_epoch` would have returned it.
    """

    def __init__(self, loss):
        super().__init__("interrupted after a finished epoch, which is kept")
        self.loss = loss


class Network:
    """A fully connected feed-forward network trained by compiled kernels.

    Parameters
    ----------
    layer_sizes : sequence of int
        Width of every layer, inputs first and outputs last, e.g. ``[2, 4, 2]``.
    activation : str or list of str, default="relu"
        Hidden activation, or one per hidden layer: 'identity', 'logistic',
        'tanh', 'relu', 'leaky_relu', 'elu', 'selu', 'softplus' or 'gelu'
        (tanh approximation).
    output : str, default="identity"
        Output activation: 'identity', 'logistic', 'softmax', 'exp', or any
        hidden activation but 'gelu' (with squared, absolute or Huber error).
    loss : {'squared_error', 'absolute_error', 'huber', 'log_loss', 'poisson'}, \
            default="squared_error"
        'log_loss' is cross-entropy: with a softmax output for one-hot targets,
        with a logistic output for binary or multilabel 0/1 targets. 'huber'
        is squared error for residuals up to ``huber_delta`` and linear beyond.
    dtype : {'float64', 'float32'}, default="float64"
        Precision of weights and arithmetic.
    random_state : None, int or RandomState, default=None
        Source of the initial weights (drawn as scikit-learn draws them).
    leaky_relu_slope : float, default=0.01
        Slope of 'leaky_relu' for negative inputs.
    init : {'glorot_uniform', 'he_normal', 'he_uniform', 'lecun_normal'}, \
            default='glorot_uniform'
        Initial weights (see :func:`fastmlp._init.initial_weights`); the default is
        scikit-learn's.
    dropout : float or list of float, default=0.0
        Inverted dropout rate of every hidden layer, or one per hidden layer,
        in ``[0, 1)``; used by :meth:`train_epoch` only (never in
        :meth:`forward` or :meth:`loss_and_gradients`). The mask stream is
        seeded from ``random_state`` after the weights are drawn.
    huber_delta : float, default=1.0
        Threshold of the 'huber' loss.

    Attributes
    ----------
    coefs_ : list of ndarray
        ``coefs_[i]`` of shape ``(layer_sizes[i], layer_sizes[i + 1])``.
    intercepts_ : list of ndarray
        ``intercepts_[i]`` of shape ``(layer_sizes[i + 1],)``.
    """

    def __init__(
        self,
        layer_sizes,
        activation="relu",
        output="identity",
        loss="squared_error",
        dtype="float64",
        random_state=None,
        leaky_relu_slope=0.01,
        init="glorot_uniform",
        dropout=0.0,
        huber_delta=1.0,
    ):
        sizes = [int(s) for s in layer_sizes]
        if init not in INITS:
            raise ValueError(f"Unknown init {init!r}; expected one of {INITS}")
        self.init = init
        if len(sizes) < 2 or any(s < 1 for s in sizes):
            raise ValueError(
                f"layer_sizes must list at least two positive widths, got {list(layer_sizes)}"
            )
        n_hidden = len(sizes) - 2
        activations = [activation] * n_hidden if isinstance(activation, str) else list(activation)
        if len(activations) != n_hidden:
            raise ValueError(
                f"activation lists {len(activations)} names for {n_hidden} hidden layers"
            )
        for name in activations:
            if name not in HIDDEN_ACTIVATIONS:
                raise ValueError(
                    f"Unknown activation {name!r}; expected one of {HIDDEN_ACTIVATIONS}"
                )
        if output not in OUTPUT_ACTIVATIONS:
            raise ValueError(f"Unknown output {output!r}; expected one of {OUTPUT_ACTIVATIONS}")
        if loss not in LOSSES:
            raise ValueError(f"Unknown loss {loss!r}; expected one of {LOSSES}")
        if not K.is_supported_pair(K.ACTIVATION_CODES[output], K.LOSS_CODES[loss]):
            raise ValueError(f"loss={loss!r} cannot be used with output={output!r}")
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
        self.layer_sizes = tuple(sizes)
        self.activations = activations
        # scikit-learn draws every layer's init bound from its one activation name
        self._init_activation = activation if isinstance(activation, str) else None
        self.output = output
        self.loss = loss
        self.leaky_relu_slope = float(leaky_relu_slope)
        self._sizes = np.asarray(sizes, dtype=np.int64)
        self._act_codes = np.asarray(
            [K.ACTIVATION_CODES[a] for a in activations] + [K.ACTIVATION_CODES[output]],
            dtype=np.int64,
        )
        self._loss_code = K.LOSS_CODES[loss]
        if not huber_delta > 0:
            raise ValueError(f"huber_delta must be > 0, got {huber_delta!r}")
        self.huber_delta = float(huber_delta)
        self._dropout = dropout_rates(dropout, n_hidden)
        self._rng_state = np.zeros(1, dtype=np.uint64)
        n_params = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
        self._params = np.empty(n_params, dtype=self.dtype)
        self._make_views()
        self._buffers = {}
        self.set_optimizer("sgd")
        self.initialize(random_state)

    # ------------------------------------------------------------------ weights
    def _make_views(self):
        w_off, b_off, _ = K.layout(self._sizes)
        s = self.layer_sizes
        self._coefs = [
            self._params[w_off[i] : w_off[i] + s[i] * s[i + 1]].reshape(s[i], s[i + 1])
            for i in range(len(s) - 1)
        ]
        self._intercepts = [
            self._params[b_off[i] : b_off[i] + s[i + 1]] for i in range(len(s) - 1)
        ]

    def initialize(self, random_state=None):
        """Draw fresh initial weights (``init``; by default scikit-learn's
        Glorot-uniform weights, drawn in its order with its bounds).

        With one activation name, every layer's bound follows it, as in
        scikit-learn; with a list, each layer follows its own activation and
        the output layer the last hidden layer's.

        Parameters
        ----------
        random_state : int, RandomState instance or None, default=None
            The draws' seed, as scikit-learn's ``random_state``; it also
            seeds the dropout stream when dropout is on.

        Returns
        -------
        self : Network
        """
        rng = as_random_state(random_state)
        for i in range(len(self.layer_sizes) - 1):
            if self._init_activation is not None:
                act = self._init_activation
            elif self.activations:
                act = self.activations[min(i, len(self.activations) - 1)]
            else:  # no hidden layer and an empty list: the default bound
                act = "identity"
            coef, intercept = initial_weights(
                rng, self.layer_sizes[i], self.layer_sizes[i + 1], act, self.dtype, self.init
            )
            self._coefs[i][...] = coef
            self._intercepts[i][...] = intercept
        if self._dropout.any():  # drawn only then: no dropout, same stream as scikit-learn
            self._rng_state[0] = rng.randint(np.iinfo(np.int64).max, dtype=np.int64)
        return self

    @property
    def dropout(self):
        """Dropout rate of each hidden layer (a float64 array)."""
        return self._dropout.copy()

    def set_dropout(self, dropout):
        """Change the dropout rates; the mask stream goes on where it was.

        Parameters
        ----------
        dropout : float or sequence of float
            One rate in ``[0, 1)`` for every hidden layer, or one per hidden
            layer (0: off).

        Returns
        -------
        self : Network
        """
        self._dropout = dropout_rates(dropout, len(self.layer_sizes) - 2)
        self._buffers = {}
        return self

    def _needs_gates(self):
        return "gelu" in self.activations or bool(self._dropout.any())

    def _set_list(self, arrays, views, name):
        arrays = list(arrays)
        if len(arrays) != len(views):
            raise ValueError(f"{name} needs {len(views)} arrays, got {len(arrays)}")
        checked = []
        for i, (a, v) in enumerate(zip(arrays, views)):
            a = np.asarray(a)
            if a.shape != v.shape:
                raise ValueError(f"{name}[{i}] must have shape {v.shape}, got {a.shape}")
            if not np.issubdtype(a.dtype, np.floating) and not np.issubdtype(a.dtype, np.integer):
                raise TypeError(f"{name}[{i}] must be numeric, got dtype {a.dtype}")
            if not np.isfinite(a).all():
                raise ValueError(f"{name}[{i}] contains NaN or infinity")
            checked.append(a)
        for a, v in zip(checked, views):
            v[...] = a

    @property
    def coefs_(self):
        """Weight matrices, views into the flat parameter vector."""
        return self._coefs

    @coefs_.setter
    def coefs_(self, arrays):
        self._set_list(arrays, self._coefs, "coefs_")

    @property
    def intercepts_(self):
        """Intercept vectors, views into the flat parameter vector."""
        return self._intercepts

    @intercepts_.setter
    def intercepts_(self, arrays):
        self._set_list(arrays, self._intercepts, "intercepts_")

    @property
    def params(self):
        """The flat parameter vector (weights then intercepts), shared with ``coefs_``."""
        return self._params

    def __getstate__(self):
        state = self.__dict__.copy()
        for key in ("_coefs", "_intercepts", "_buffers"):
            state.pop(key)
        state.pop("_epoch_checkpoint", None)
        state.pop("_run", None)
        return state

    def _trained_arrays(self):
        """The arrays that training writes in place."""
        return (self._params, self._state1, self._state2, self._step, self._rng_state)

    def checkpoint(self, into=None, arrays=True):
        """A copy of what training changes, for :meth:`restore`.

        Parameters
        ----------
        into : Checkpoint, default=None
            An earlier checkpoint of this network to overwrite instead of
            allocating new arrays (when its shapes still match).
        arrays : bool, default=True
            Copy the arrays that training writes in place. False keeps the
            attributes alone, copying nothing: for a caller that knows those
            arrays will not be written, or that has them put back otherwise
            (a diverged or interrupted epoch is undone by the network itself).

        Returns
        -------
        checkpoint : Checkpoint
            The weights, optimizer state and step count and the dropout stream
            (copied, unless ``arrays=False``), and every other attribute (by
            reference: training replaces them, it does not change them in
            place).
        """
        if not arrays:
            return Checkpoint(dict(self.__dict__), None)
        arrays = self._trained_arrays()
        if into is not None and all(
            a.shape == b.shape and a.dtype == b.dtype for a, b in zip(arrays, into.arrays)
        ):
            for source, target in zip(arrays, into.arrays):
                np.copyto(target, source)
            copies = into.arrays
        else:
            copies = tuple(a.copy() for a in arrays)
        return Checkpoint(dict(self.__dict__), copies)

    def restore(self, checkpoint):
        """Put the network back as it was at ``checkpoint``.

        Parameters
        ----------
        checkpoint : Checkpoint
            From :meth:`checkpoint` on this network.
        """
        self.__dict__.clear()
        self.__dict__.update(checkpoint.attributes)
        if checkpoint.arrays is not None:
            for target, source in zip(self._trained_arrays(), checkpoint.arrays):
                np.copyto(target, source)

    def __setstate__(self, state):
        n_hidden = len(state["layer_sizes"]) - 2
        state.setdefault("_dropout", np.zeros(n_hidden))  # pickled before dropout existed
        state.setdefault("_rng_state", np.zeros(1, dtype=np.uint64))
        state.setdefault("huber_delta", 1.0)
        self.__dict__.update(state)
        self._buffers = {}
        self._make_views()

    def astype(self, dtype):
        """A copy of this network (of the same class) in another precision.

        Everything that defines the network (layer sizes, activations, loss
        and its ``huber_delta``, dropout, initialisation, optimizer and its
        state) is copied from this one; the weights and optimizer state are
        cast to ``dtype``. Nothing is shared with this network.

        Parameters
        ----------
        dtype : {'float64', 'float32'}

        Returns
        -------
        network : Network
        """
        dtype = np.dtype(dtype)
        if dtype not in (np.float32, np.float64):
            raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
        state = copy.deepcopy(self.__getstate__())
        state["dtype"] = dtype
        for key in ("_params", "_state1", "_state2"):
            state[key] = state[key].astype(dtype)
        twin = type(self).__new__(type(self))  # a subclass stays a subclass
        twin.__setstate__(state)
        return twin

    # ------------------------------------------------------------------ inputs
    def prepare(self, X):
        """X converted once to the kernels' form (C-contiguous, this dtype, CSR
        with int64 indices); pass the result to the other methods to avoid
        converting again on every call.

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, n_features)

        Returns
        -------
        KernelInput
            Accepted wherever the other methods take ``X``.
        """
        return self._input(X)

    def _input(self, X):
        """The kernels' view of X: dense array or CSR arrays, in this dtype."""
        if isinstance(X, KernelInput):
            return X
        empty_idx = np.empty(0, dtype=np.int64)
        if sp.issparse(X):
            X = X.tocsr()
            if X.shape[1] != self.layer_sizes[0]:
                raise ValueError(
                    f"X has {X.shape[1]} features, the network expects {self.layer_sizes[0]}"
                )
            _check_csr_structure(X)
            if not X.has_canonical_format:
                X = X.copy()
                X.sum_duplicates()
            return KernelInput(
                np.empty((0, 0), dtype=self.dtype),
                np.ascontiguousarray(X.data, dtype=self.dtype),
                np.ascontiguousarray(X.indices, dtype=np.int64),
                np.ascontiguousarray(X.indptr, dtype=np.int64),
                True,
                X.shape[0],
            )
        X = np.ascontiguousarray(X, dtype=self.dtype)
        if X.ndim != 2 or X.shape[1] != self.layer_sizes[0]:
            raise ValueError(
                f"X must be 2-D with {self.layer_sizes[0]} features, got shape {X.shape}"
            )
        return KernelInput(
            X, np.empty(0, dtype=self.dtype), empty_idx, empty_idx, False, X.shape[0]
        )

    def _targets(self, Y, n):
        Y = np.asarray(Y, dtype=self.dtype)
        if Y.ndim == 1:
            Y = Y.reshape(-1, 1)
        if Y.shape != (n, self.layer_sizes[-1]):
            raise ValueError(f"Y must have shape ({n}, {self.layer_sizes[-1]}), got {Y.shape}")
        return np.ascontiguousarray(Y)

    def _weights(self, sample_weight, n):
        if sample_weight is None:
            return np.ones(n, dtype=self.dtype)
        sw = np.ascontiguousarray(sample_weight, dtype=self.dtype)
        if sw.shape != (n,):
            raise ValueError(f"sample_weight must have shape ({n},), got {sw.shape}")
        return sw

    def _buffer(self, batch_max, inputs=True):
        """Activation, delta, gate and input buffers for ``batch_max`` rows
        (reused across calls); the gate buffer is empty unless a hidden layer
        is GELU or has dropout, the input buffer unless ``inputs`` (batches of
        shuffled rows are gathered there; rows taken in order are not)."""
        bufs = self._buffers.get((batch_max, inputs))
        if bufs is None:
            units = sum(self.layer_sizes[1:])
            bufs = (
                np.zeros(batch_max * units, dtype=self.dtype),
                np.zeros(batch_max * units, dtype=self.dtype),
                np.zeros(batch_max * units if self._needs_gates() else 0, dtype=self.dtype),
                np.zeros((batch_max if inputs else 0, self.layer_sizes[0]), dtype=self.dtype),
            )
            self._buffers[(batch_max, inputs)] = bufs
        return bufs

    def _undo_log(self, inputs):
        """Work arrays in which an SGD epoch on CSR keeps the first-layer rows
        it touches as they were (see :func:`fastmlp.kernels.sparse_sgd_epoch`):
        room for every column X holds a non-zero in. Kept until
        :meth:`release_buffers`; only the pages an epoch writes take memory."""
        capacity = int(min(self.layer_sizes[0], inputs.indptr[-1]))
        planes = 2 if self._opt_settings.get("momentum", 0) else 1
        key = ("undo", capacity, planes)
        if key not in self._buffers:
            self._buffers = {
                k: v
                for k, v in self._buffers.items()
                if not (isinstance(k, tuple) and k[0] == "undo")
            }
            self._buffers[key] = (
                np.empty(capacity, dtype=np.int64),
                np.empty((planes, capacity, self.layer_sizes[1]), dtype=self.dtype),
            )
        return self._buffers[key]

    def _thread_policy(self, kind, allowed=True):
        """This network's policy for one kind of step (:func:`fastmlp._threads.thread_policy`)."""
        return _threads.thread_policy(kind, self.layer_sizes, self.dtype, allowed)

    def _gated_policy(self, kind, kernel, args, threadable=True):
        """The thread policy to call ``kernel(*args, policy)`` with (an epoch,
        predict or the split objective), and whether to count the call's time
        (:meth:`_count_serial_call`): it runs on one thread because its
        threaded version is not worth compiling yet.

        None (the kernel's version compiled without its parallel regions, a
        third less to compile) where threads cannot be used or the call has
        nothing to thread; and, until that version is ready (compiled or
        cached) or worth compiling (:func:`fastmlp._threads.threads_worth_compiling`,
        from the one-thread time spent, and expected in this fit), None too.
        """
        policy = self._usable_policy(kind) if threadable else None
        if policy is None:
            return None, False
        run = self._training_run()
        expected = run["epochs_left"] * run["serial_seconds"].get(kind, 0.0)
        if _threads.threads_worth_compiling(
            kind, self.layer_sizes, self.dtype, expected
        ) or _threads.version_ready(kernel, (*args, policy)):
            return policy, False
        # (an epoch that compiles the version without threads is not counted)
        return None, _threads.version_ready(kernel, (*args, None))

    def _call_gated(self, kind, kernel, args, threadable=True):
        """``kernel(*args, policy)`` with BLAS on one thread, the policy from
        :meth:`_gated_policy`; a call run on one thread while the threaded
        version waits is timed and counted. Returns what the kernel returns."""
        policy, waiting = self._gated_policy(kind, kernel, args, threadable)
        started = time.perf_counter()
        with blas_on_one_thread():
            result = kernel(*args, policy)
        _threads.note_ready(kernel, (*args, policy))
        if waiting:
            self._count_serial_call(kind, time.perf_counter() - started)
        return result

    def _training_run(self):
        """What this process knows of the current run of epochs (not pickled):
        how many epochs are still expected (:meth:`training_threads`), and the
        last one-thread call's seconds of each kind of step (an epoch, or a
        prediction or objective per epoch)."""
        run = self.__dict__.get("_run")
        if run is None:
            run = self._run = {"epochs_left": 0, "serial_seconds": {}}
        return run

    def _count_serial_call(self, kind, seconds):
        """Account a call run on one thread while its threaded version waits."""
        self._training_run()["serial_seconds"][kind] = seconds
        _threads.add_serial_seconds(kind, self.layer_sizes, self.dtype, seconds)

    def _usable_policy(self, kind):
        """The thread policy of ``kind``, or None where threads cannot be used
        (one CPU, ``FASTMLP_THREADS=0``, a forked child): the kernels then run
        a version compiled without their parallel regions."""
        policy = self._thread_policy(kind)
        return policy if policy[K.thread_policy.P_ENABLED] else None

    def release_buffers(self):
        """Drop the cached work buffers (a full-batch buffer can be large) and the
        copy of the weights kept to undo a diverged epoch."""
        self._buffers = {}
        self.__dict__.pop("_epoch_checkpoint", None)

    # ------------------------------------------------------------------ compute
    def forward(self, X, layer=None):
        """Activations of layer ``layer`` for X (dense or sparse).

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, n_features)
        layer : int, default=None
            Which layer's activations: None (or the number of weight layers)
            for the output, ``1 .. n_hidden`` for a hidden layer, negative
            values counting from the output (-1 is the last hidden layer).

        Returns
        -------
        ndarray of shape (n_samples, layer_sizes[layer])
        """
        n_weight_layers = len(self.layer_sizes) - 1
        if layer is None:
            layer = n_weight_layers
        if not isinstance(layer, numbers.Integral) or not (
            -n_weight_layers <= layer <= n_weight_layers and layer != 0
        ):
            raise ValueError(
                f"layer must be an int in 1..{n_weight_layers} or -{n_weight_layers}..-1 "
                f"(the input layer 0 is X itself), got {layer!r}"
            )
        if layer < 0:
            layer += n_weight_layers
        inputs = self._input(X)
        n = inputs.n_samples
        if layer == n_weight_layers:
            params, sizes, codes = self._params, self._sizes, self._act_codes
        else:  # the first ``layer`` weight layers as a network of their own
            params = np.concatenate(
                [c.ravel() for c in self._coefs[:layer]] + self._intercepts[:layer]
            )
            sizes, codes = self._sizes[: layer + 1], self._act_codes[:layer]
        out = np.empty((n, sizes[-1]), dtype=self.dtype)
        # fresh buffers, not the cached training ones: predict may run in
        # several threads at once on one fitted network
        xbuf = np.empty((0, self.layer_sizes[0]), dtype=self.dtype)  # rows go in order
        units = int(sizes[1:].sum())
        # chunks of rows, PREDICT_GROUP at a time (as tasks on the threads
        # where they pay): the chunks depend on n alone, so the bits do not
        # depend on the threads
        chunk = min(PREDICT_CHUNK, max(-(-n // PREDICT_GROUP), 1))
        args = (
            inputs.kernel_x,
            params,
            self._spec(sizes, codes),
            out,
            (np.empty((PREDICT_GROUP, chunk * units), dtype=self.dtype), xbuf),
        )
        big_enough = _threads.split_predict(n, params.size)
        self._call_gated("predict", K.predict_chunks, args, big_enough)
        return out

    def predict(self, X):
        """Network predictions: the output for identity/exp outputs, the argmax
        index for softmax, 0/1 indicators for logistic outputs.

        Parameters
        ----------
        X : array-like, sparse matrix or KernelInput of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_outputs)
        """
        out = self.forward(X)
        if self.output == "softmax":
            return out.argmax(axis=1)
        if self.output == "logistic":
            return (out > 0.5).astype(np.int64)
        return out

    def loss_and_gradients(self, X, Y, alpha=0.0, sample_weight=None, loss_scale=1.0):
        """Loss and gradients at the current weights, as scikit-learn computes them.

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, n_features)
        Y : array-like of shape (n_samples, n_outputs)
            Targets (one-hot for softmax, 0/1 for logistic, real otherwise).
        alpha : float, default=0.0
            L2 penalty: adds ``0.5 * alpha * sum(W**2) / sum(w)`` to the loss.
        sample_weight : array-like of shape (n_samples,), default=None
        loss_scale : float, default=1.0
            Factor on the data term of the loss (not of the gradient):
            scikit-learn reports squared error averaged over outputs, i.e.
            ``loss_scale = 1 / n_outputs``.

        Returns
        -------
        loss : float
        coef_grads : list of ndarray, shaped as ``coefs_``
        intercept_grads : list of ndarray, shaped as ``intercepts_``
        """
        loss, grads = self.loss_and_flat_gradients(X, Y, alpha, sample_weight, loss_scale)
        w_off, b_off, _ = K.layout(self._sizes)
        s = self.layer_sizes
        coef_grads = [
            grads[w_off[i] : w_off[i] + s[i] * s[i + 1]].reshape(s[i], s[i + 1])
            for i in range(len(s) - 1)
        ]
        intercept_grads = [grads[b_off[i] : b_off[i] + s[i + 1]] for i in range(len(s) - 1)]
        return loss, coef_grads, intercept_grads

    def loss_and_flat_gradients(self, X, Y, alpha=0.0, sample_weight=None, loss_scale=1.0):
        """:meth:`loss_and_gradients` with the gradients in one flat vector.

        Parameters are those of :meth:`loss_and_gradients`.

        Returns
        -------
        loss : float
        gradients : ndarray of shape (params.size,)
            In the layout of :attr:`params` (every layer's weights, row by
            row, then every layer's intercepts): what an optimizer over the
            flat vector (L-BFGS, a finite-difference check) needs.
        """
        inputs = self._input(X)
        n = inputs.n_samples
        Y = self._targets(Y, n)
        sw = self._weights(sample_weight, n)
        if not sw.sum() > 0:
            raise ValueError("sample weights sum to zero")
        grads = np.empty_like(self._params)
        args = (
            inputs.kernel_x,
            Y,
            sw,
            self._params,
            self._spec(),
            float(loss_scale),
            float(alpha),
            grads,
        )
        if _threads.split_objective(n, self._params.size):
            # two halves, on two threads where they pay (as a split batch)
            args = (*args, self._objective_buffers(n))
            loss = self._call_gated("objective", K.loss_and_gradients_split, args)
        else:
            with blas_on_one_thread():
                loss = K.loss_and_gradients(*args, tuple(self._buffer(n, inputs=False)))
        return float(loss), grads

    # ------------------------------------------------------------------ training
    def set_optimizer(
        self,
        solver="sgd",
        momentum=0.9,
        nesterov=True,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        rho=0.9,
    ):
        """Choose the optimizer and reset its state (velocities, moments, step count).

        Parameters
        ----------
        solver : {'sgd', 'adam', 'rmsprop', 'adagrad', 'adadelta'}, default='sgd'
        momentum : float, default=0.9
            SGD's momentum.
        nesterov : bool, default=True
            SGD with Nesterov's momentum.
        beta_1, beta_2 : float, default=0.9, 0.999
            Adam's decay rates.
        epsilon : float, default=1e-8
            The numerical stability term of Adam, RMSprop, Adagrad and Adadelta.
        rho : float, default=0.9
            RMSprop's and Adadelta's decay.

        Returns
        -------
        self : Network
        """
        if solver not in K.OPTIMIZER_CODES:
            raise ValueError(f"Unknown solver {solver!r}; expected one of {SOLVERS}")
        self.solver = solver
        self._opt_code = K.OPTIMIZER_CODES[solver]
        self._opt_settings = dict(
            momentum=momentum,
            nesterov=nesterov,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            rho=rho,
        )
        self._state1 = np.zeros_like(self._params)
        # a second state array only for the optimizers that keep two (memory)
        two_states = solver in ("adam", "adadelta")
        self._state2 = np.zeros(self._params.size if two_states else 0, dtype=self.dtype)
        self._step = np.zeros(1, dtype=np.int64)
        return self

    def _spec(self, layer_sizes=None, act_codes=None):
        """The network as the kernels take it (:class:`fastmlp.kernels.NetworkSpec`):
        its layers (or the first ones, for a hidden layer's activations),
        activations, dropout and loss."""
        return K.NetworkSpec(
            self._sizes if layer_sizes is None else layer_sizes,
            self._act_codes if act_codes is None else act_codes,
            self.leaky_relu_slope,
            self._dropout,
            self._rng_state,
            self._loss_code,
            self.huber_delta,
        )

    def _kernel_states(self):
        """The two optimizer-state arrays the kernels take: without a second
        state, the first stands in for it (the kernels never touch it then)."""
        return self._state1, (self._state2 if self._state2.size else self._state1)

    def train_epoch(
        self,
        X,
        Y,
        learning_rate,
        batch_size=1,
        order=None,
        alpha=0.0,
        sample_weight=None,
        loss_scale=1.0,
    ):
        """One epoch of training with the current optimizer, in one compiled call.

        Parameters
        ----------
        X, Y, sample_weight : as in :meth:`loss_and_gradients`.
        learning_rate : float
        batch_size : int, default=1
            1 runs the fused per-sample kernel; larger sizes step once per batch
            of ``order`` (the last batch possibly shorter). SGD on CSR input
            steps only the first-layer rows a batch touches and catches the
            others up exactly when next touched (at any batch size; see
            :mod:`fastmlp.kernels.sparse_sgd`).
        order : array-like of int, default=None
            Sample visiting order (e.g. a shuffled ``arange``); default in order.
        alpha : float, default=0.0
            L2 penalty.
        loss_scale : float, default=1.0
            See :meth:`loss_and_gradients`.

        Returns
        -------
        loss : float
            Mean over samples of the batch losses, scikit-learn's ``loss_``.

        Raises
        ------
        TrainingDiverged
            On a non-finite loss or weights; the weights and optimizer state
            are restored to their values before the epoch.
        KeyboardInterrupt
            Ctrl-C (seen when the compiled epoch returns): the epoch is undone.
        EpochInterrupted
            Ctrl-C seen as an SGD epoch on CSR input returns: that epoch is
            kept (it keeps no copy of the whole first layer to undo it), and
            the exception carries its loss.
        """
        inputs = self._input(X)
        n = inputs.n_samples
        Y = self._targets(Y, n)
        sw = self._weights(sample_weight, n)
        order = (
            np.arange(n, dtype=np.int64)
            if order is None
            else np.ascontiguousarray(order, dtype=np.int64)
        )
        if order.size and (order.min() < 0 or order.max() >= n):
            raise ValueError("order holds indices outside the data")
        batch_size = int(min(max(batch_size, 1), max(len(order), 1)))
        hyper = np.asarray(
            K.make_hyper(alpha=alpha, tiny=np.finfo(self.dtype).tiny, **self._opt_settings),
            dtype=self.dtype,
        )
        # SGD on CSR input undoes a diverged epoch itself, from a copy of the
        # first-layer rows it touched: no copy of the whole (wide) first layer
        undone_by_kernel = inputs.is_sparse and self._opt_code == K.OPTIMIZER_CODES["sgd"]
        if undone_by_kernel:
            self.__dict__.pop("_epoch_checkpoint", None)
        else:
            # to undo a diverged epoch; kept between epochs (no allocation per
            # epoch) until release_buffers
            self._epoch_checkpoint = self.checkpoint(into=self.__dict__.get("_epoch_checkpoint"))
        info = np.zeros(2, dtype=np.int64)
        outcome = np.zeros(2)
        # an epoch on one thread while its threaded version waits: timed, by kind
        waiting, kind, started = False, None, 0.0
        common = (
            self._params,
            self._spec(),
            float(loss_scale),
            K.Optimizer(
                self._opt_code, float(learning_rate), hyper, *self._kernel_states(), self._step
            ),
        )
        try:
            if undone_by_kernel:
                # a step costs O(non-zeros x width): idle first-layer rows are
                # caught up exactly when touched (fastmlp.kernels.sparse_sgd)
                abuf, dbuf, gbuf, _ = self._buffer(batch_size, inputs=False)
                first = self.layer_sizes[0] * self.layer_sizes[1]
                log_rows, log_values = self._undo_log(inputs)
                work = (
                    np.empty(self._params.size - first, dtype=self.dtype),
                    abuf,
                    dbuf,
                    gbuf,
                    log_rows,
                    log_values,
                )
                total = K.sparse_sgd_epoch(
                    inputs.kernel_x, Y, sw, order, batch_size, *common, work, info, outcome
                )
            elif batch_size == 1:
                abuf, dbuf, gbuf, _ = self._buffer(1)
                xwork = np.zeros(self.layer_sizes[0] if inputs.is_sparse else 0, dtype=self.dtype)
                args = (inputs.kernel_x, Y, sw, order, *common, (abuf, dbuf, gbuf, xwork), info)
                threadable = getattr(K.threadable_layers, "py_func", K.threadable_layers)
                kind = "per-sample"
                policy, waiting = self._gated_policy(
                    kind, K.sgd_epoch, args, threadable(self._sizes, inputs.is_sparse)
                )
                started = time.perf_counter()
                total = K.sgd_epoch(*args, policy)
                _threads.note_ready(K.sgd_epoch, (*args, policy))
            elif not inputs.is_sparse and self._split_batches(batch_size):
                args = (
                    inputs.dense,
                    Y,
                    sw,
                    order,
                    batch_size,
                    *common,
                    self._split_buffers(batch_size),
                    info,
                )
                kind = ("split", batch_size)
                policy, waiting = self._gated_policy(kind, K.minibatch_epoch_split, args)
                started = time.perf_counter()
                with blas_on_one_thread():
                    total = K.minibatch_epoch_split(*args, policy)
                _threads.note_ready(K.minibatch_epoch_split, (*args, policy))
            else:
                with blas_on_one_thread():
                    total = self._minibatch_epoch(
                        inputs,
                        Y,
                        sw,
                        order,
                        batch_size,
                        common,
                        info,
                    )
        except BaseException as exc:
            # e.g. Ctrl-C, seen when the compiled epoch returns: undo the epoch,
            # so that the caller's record (epochs, losses) agrees with the weights;
            # or, where the epoch cannot be undone, say that it was kept
            if not undone_by_kernel:
                self.restore(self._epoch_checkpoint)
            elif outcome[1] and isinstance(exc, KeyboardInterrupt):
                raise EpochInterrupted(float(outcome[0]) / max(len(order), 1)) from exc
            raise
        run = self._training_run()
        run["epochs_left"] = max(run["epochs_left"] - 1, 0)
        if waiting:
            self._count_serial_call(kind, time.perf_counter() - started)
        if info[1] != K.STATUS_OK:
            if not undone_by_kernel:
                self.restore(self._epoch_checkpoint)
            what = (
                "a non-finite loss"
                if info[1] == K.STATUS_NONFINITE_LOSS
                else ("non-finite weights")
            )
            raise TrainingDiverged(
                f"training diverged: {what} at sample {int(info[0])} of the epoch; "
                "weights restored to their values before the epoch"
            )
        return float(total) / max(len(order), 1)

    def _minibatch_epoch(self, inputs, Y, sw, order, batch_size, common, info):
        abuf, dbuf, gbuf, xbuf = self._buffer(batch_size)
        if inputs.is_sparse:
            xbuf = np.empty((0, 0), dtype=self.dtype)
        grads = self._buffers.get("gradients")  # kept until release_buffers
        if grads is None or grads.shape != self._params.shape or grads.dtype != self.dtype:
            grads = self._buffers["gradients"] = np.empty_like(self._params)
        return K.minibatch_epoch(
            inputs.kernel_x,
            Y,
            sw,
            order,
            batch_size,
            *common,
            (grads, abuf, dbuf, gbuf, xbuf),
            info,
        )

    @contextmanager
    def training_threads(self, expected_epochs=0):
        """Context for a run of :meth:`train_epoch` calls (a fit).

        BLAS stays on one thread for the whole run, the predictions and
        validation losses between epochs included (every kernel that calls
        BLAS limits it to one thread anyway): switching between the two
        thread pools costs more than either saves (a BLAS pool that has just
        run keeps its threads spinning for about 0.1 s, and they slow the next
        split epoch 2-4x).

        Parameters
        ----------
        expected_epochs : int, default=0
            How many epochs the run may take (e.g. ``max_iter``): from the
            first epoch's time, it tells whether the rest of the run is long
            enough to be worth compiling the epoch's threaded version
            (:func:`fastmlp._threads.threads_worth_compiling`).
        """
        run = self._training_run()
        run["epochs_left"] = int(expected_epochs)
        run["serial_seconds"] = {}
        try:
            with blas_on_one_thread():
                yield
        finally:
            self._training_run()["epochs_left"] = 0

    def _split_batches(self, batch_size):
        """Whether mini-batch epochs on dense X split each batch in two halves
        (:func:`fastmlp._threads.split_batches`): the shapes alone decide, never
        the threads, so the bits are the same on any machine, loaded or not."""
        return _threads.split_batches(batch_size, self._params.size, self._dropout.any())

    def _half_buffers(self, rows):
        """Activations, deltas and gates of each half of ``rows`` rows: three
        arrays of shape ``(2, ceil(rows / 2) * units)`` (the gates empty unless
        a hidden layer needs them)."""
        half = (rows + 1) // 2
        units = sum(self.layer_sizes[1:])
        gates = half * units if self._needs_gates() else 0
        return (
            np.zeros((2, half * units), dtype=self.dtype),
            np.zeros((2, half * units), dtype=self.dtype),
            np.zeros((2, gates), dtype=self.dtype),
        )

    def _split_buffers(self, batch_size):
        """Work arrays of :func:`fastmlp.kernels.minibatch_epoch_split`: the
        first layer's gradient, the other gradients (one row per half batch),
        then activations, deltas, gates and gathered rows per half batch, and
        the row blocks' sums of squares (reused across calls)."""
        key = ("split", batch_size)
        bufs = self._buffers.get(key)
        if bufs is None:
            size0 = self.layer_sizes[0] * self.layer_sizes[1]
            bufs = (
                np.zeros(size0, dtype=self.dtype),
                np.zeros((2, self._params.size - size0), dtype=self.dtype),
                *self._half_buffers(batch_size),
                np.zeros((2, (batch_size + 1) // 2, self.layer_sizes[0]), dtype=self.dtype),
                np.zeros(K.ROW_BLOCKS, dtype=self.dtype),
            )
            self._buffers[key] = bufs
        return bufs

    def _objective_buffers(self, n):
        """Work arrays of :func:`fastmlp.kernels.loss_and_gradients_split` for
        ``n`` rows: the halves' gradients, then activations, deltas and gates
        per half, and an empty gathered-rows buffer (rows go in order)."""
        key = ("objective", n)
        bufs = self._buffers.get(key)
        if bufs is None:
            bufs = (
                np.zeros((2, self._params.size), dtype=self.dtype),
                *self._half_buffers(n),
                np.zeros((0, self.layer_sizes[0]), dtype=self.dtype),
            )
            self._buffers[key] = bufs
        return bufs

    def fit(
        self,
        X,
        Y,
        solver="sgd",
        epochs=10,
        batch_size=32,
        learning_rate=0.01,
        alpha=0.0,
        shuffle=True,
        random_state=None,
        sample_weight=None,
        **optimizer_options,
    ):
        """Train on arrays for a number of epochs (:meth:`train_epoch` each).

        The optimizer is set afresh (:meth:`set_optimizer`) and the per-epoch
        losses are kept in ``loss_curve_``.

        Parameters
        ----------
        X : array-like, sparse matrix or KernelInput of shape (n_samples, n_features)
        Y : array-like of shape (n_samples, n_outputs)
            Targets: one-hot for softmax, 0/1 for logistic, real otherwise.
        solver : str, default='sgd'
            As for :meth:`set_optimizer`.
        epochs : int, default=10
        batch_size : int, default=32
            1 for per-sample SGD.
        learning_rate : float, default=0.01
        alpha : float, default=0.0
            L2 penalty, as scikit-learn's.
        shuffle : bool, default=True
            Visit the rows in a new random order every epoch.
        random_state : int, RandomState instance or None, default=None
            Seeds the shuffles.
        sample_weight : array-like of shape (n_samples,), default=None
        **optimizer_options
            Passed to :meth:`set_optimizer` (``momentum``, ``beta_1``, ...).

        Returns
        -------
        self : Network
        """
        self.set_optimizer(solver, **optimizer_options)
        rng = as_random_state(random_state)
        X = self.prepare(X)
        n = X.n_samples
        self.loss_curve_ = []
        with self.training_threads(expected_epochs=epochs):
            for _ in range(int(epochs)):
                order = rng.permutation(n) if shuffle else None
                try:
                    loss = self.train_epoch(
                        X, Y, learning_rate, batch_size, order, alpha, sample_weight
                    )
                except EpochInterrupted as exc:
                    self.loss_curve_.append(exc.loss)  # the epoch was kept
                    raise
                self.loss_curve_.append(loss)
        return self

    def __repr__(self):
        return (
            f"Network(layer_sizes={list(self.layer_sizes)}, activation={self.activations}, "
            f"output={self.output!r}, loss={self.loss!r}, dtype={self.dtype.name!r}, "
            f"dropout={self._dropout.tolist()})"
        )
