"""The ``fastmlp`` command line: train, predict, info.

``fastmlp train`` with no arguments trains an MLPClassifier on scikit-learn's
bundled digits data, shows a progress bar, and compares test accuracy and fit
time with scikit-learn's MLPClassifier at the same settings.
"""

import argparse
import os
import sys
import time
import warnings

import numpy as np


class UsageError(Exception):
    """A user mistake reported as one line on stderr with exit status 2."""


def _hidden(text):
    try:
        sizes = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--hidden takes comma-separated integers, got {text!r}"
        ) from None
    if any(s < 1 for s in sizes):
        raise argparse.ArgumentTypeError(f"--hidden sizes must be positive, got {text!r}")
    return sizes


def _batch(text):
    if text == "auto":
        return text
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--batch-size takes an integer or 'auto', got {text!r}"
        ) from None
    if value < 1:
        raise argparse.ArgumentTypeError("--batch-size must be at least 1")
    return value


def build_parser():
    """The argparse parser of the ``fastmlp`` command."""
    parser = argparse.ArgumentParser(prog="fastmlp", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train a model (default: digits, compared with sklearn)")
    train.add_argument("data", nargs="?", help="CSV file with a header row (default: digits)")
    train.add_argument("--target", help="name of the target column of DATA.csv")
    train.add_argument("--regression", action="store_true", help="train an MLPRegressor")
    train.add_argument("--hidden", type=_hidden, default=(64,), help="hidden sizes, e.g. 128,64")
    train.add_argument("--activation", default="relu")
    train.add_argument("--solver", default="sgd")
    train.add_argument(
        "--batch-size",
        type=_batch,
        default=1,
        help="1 (default) is per-sample SGD; an integer or 'auto'",
    )
    train.add_argument("--lr", type=float, default=0.01, help="learning_rate_init")
    train.add_argument("--alpha", type=float, default=1e-4)
    train.add_argument("--epochs", type=int, default=20, help="max_iter")
    train.add_argument("--dtype", choices=["float32", "float64"], default=None)
    train.add_argument("--early-stopping", action="store_true")
    train.add_argument("--random-state", type=int, default=0)
    train.add_argument("--test-size", type=float, default=0.25)
    train.add_argument(
        "--no-compare", action="store_true", help="skip the scikit-learn comparison"
    )
    train.add_argument("--save", help="write the fitted model with joblib")
    train.add_argument("--plot", help="write the loss curve (and decision boundary) as PNG")

    predict = sub.add_parser("predict", help="predict a CSV with a saved model")
    predict.add_argument("model")
    predict.add_argument("data")
    predict.add_argument("-o", "--output", help="CSV to write (default: stdout)")

    sub.add_parser("info", help="versions, Numba cache and threading layer")
    return parser


def read_csv(path, target=None):
    """Features (and target column) from a CSV with a header row; clear errors."""
    if not os.path.exists(path):
        raise UsageError(f"no such file: {path}")
    try:
        with open(path, newline="") as f:
            header = f.readline().strip().split(",")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # an empty file is reported below
            raw = np.genfromtxt(path, delimiter=",", skip_header=1, dtype=str, ndmin=2)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise UsageError(f"cannot read {path} as CSV: {exc}") from None
    header = [h.strip() for h in header]
    if raw.size == 0:
        raise UsageError(f"{path} has no data rows")
    if raw.shape[1] != len(header):
        raise UsageError(f"{path}: rows have {raw.shape[1]} fields, header has {len(header)}")
    y = None
    if target is not None:
        if target not in header:
            raise UsageError(f"target column {target!r} not in {path} (columns: {header})")
        col = header.index(target)
        y = raw[:, col]
        raw = np.delete(raw, col, axis=1)
        header = header[:col] + header[col + 1 :]
    try:
        X = raw.astype(np.float64)
    except ValueError:
        bad = next(
            (h for j, h in enumerate(header) if not _is_numeric_column(raw[:, j])), header[0]
        )
        raise UsageError(f"feature column {bad!r} of {path} is not numeric") from None
    return X, y, header


def _is_numeric_column(values):
    try:
        values.astype(np.float64)
        return True
    except ValueError:
        return False


def _numeric_target(y, regression):
    if not regression:
        try:
            as_float = y.astype(np.float64)
            if np.all(as_float == np.round(as_float)):
                return as_float.astype(np.int64)
        except ValueError:
            pass
        return y
    try:
        return y.astype(np.float64)
    except ValueError:
        raise UsageError("--regression needs a numeric target column") from None


def _train(args):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    from . import MLPClassifier, MLPRegressor

    if args.data is None:
        X, y = load_digits(return_X_y=True)
        X = X / 16.0
        source = "scikit-learn digits (1797 samples, 64 features, 10 classes)"
        if args.regression:
            raise UsageError("--regression needs DATA.csv and --target")
    else:
        if args.target is None:
            raise UsageError("DATA.csv needs --target COLUMN")
        X, y, _ = read_csv(args.data, args.target)
        y = _numeric_target(y, args.regression)
        source = f"{args.data} ({X.shape[0]} samples, {X.shape[1]} features)"
    params = dict(
        hidden_layer_sizes=args.hidden,
        activation=args.activation,
        solver=args.solver,
        batch_size=args.batch_size,
        learning_rate_init=args.lr,
        alpha=args.alpha,
        max_iter=args.epochs,
        early_stopping=args.early_stopping,
        random_state=args.random_state,
    )
    stratify = None if args.regression else y
    try:
        X_train, X_test, y_train, y_test = train_test_split(
            X, y, test_size=args.test_size, random_state=args.random_state, stratify=stratify
        )
    except ValueError as exc:
        raise UsageError(f"cannot split the data: {exc}") from None
    Estimator = MLPRegressor if args.regression else MLPClassifier
    model = Estimator(dtype=args.dtype, verbose=2, **params)
    print(f"fastmlp: training {Estimator.__name__}{args.hidden} on {source}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            # Load (or compile, on a cold cache) the kernels with one epoch on
            # the same data (the same shapes pick the same kernels), so that the
            # timed fit below measures training and not the JIT.
            started = time.perf_counter()
            with _compile_notice() as compiling:
                try:
                    warm = Estimator(dtype=args.dtype, **{**params, "max_iter": 1})
                    warm.fit(X_train, y_train).predict(X_test)
                except ValueError:  # the real fit will tell
                    pass
            if compiling.seconds:
                print(
                    f"kernels compiled in {compiling.seconds:.1f} s (first use only: later "
                    "runs load them from the on-disk cache)"
                )
            else:
                print(
                    f"kernels loaded from the on-disk cache in "
                    f"{time.perf_counter() - started:.2f} s"
                )
            started = time.perf_counter()
            model.fit(X_train, y_train)
            fit_time = time.perf_counter() - started
        except (ValueError, TypeError) as exc:
            raise UsageError(str(exc).splitlines()[0]) from None
    metric = "R2" if args.regression else "accuracy"
    score = model.score(X_test, y_test)
    print(
        f"fastmlp      test {metric} {score:.4f}  fit {fit_time:.2f} s  ({model.n_iter_} epochs)"
    )
    if not args.no_compare:
        _compare_with_sklearn(args, params, X_train, X_test, y_train, y_test, metric, fit_time)
    if args.save:
        import joblib

        joblib.dump(model, args.save)
        print(f"model saved to {args.save}")
    if args.plot:
        _plot(model, X_train, y_train, args.plot)
        print(f"plot written to {args.plot}")
    return 0


def _compare_with_sklearn(args, params, X_train, X_test, y_train, y_test, metric, fit_time):
    from sklearn import neural_network

    if args.solver not in ("sgd", "adam", "lbfgs") or args.activation not in (
        "identity",
        "logistic",
        "tanh",
        "relu",
    ):
        print("scikit-learn comparison skipped: it has no such solver or activation")
        return
    Peer = neural_network.MLPRegressor if args.regression else neural_network.MLPClassifier
    peer = Peer(**params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        started = time.perf_counter()
        peer.fit(X_train, y_train)
        peer_time = time.perf_counter() - started
    print(
        f"scikit-learn test {metric} {peer.score(X_test, y_test):.4f}  fit {peer_time:.2f} s  "
        f"({peer.n_iter_} epochs)"
    )
    print(f"speed-up: {peer_time / max(fit_time, 1e-9):.1f}x (fit time, same settings)")


def _plot(model, X, y, path):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UsageError("--plot needs matplotlib: pip install 'fastmlp[plot]'") from None
    has_boundary = X.shape[1] == 2 and hasattr(model, "classes_")
    fig, axes = plt.subplots(1, 2 if has_boundary else 1, figsize=(10 if has_boundary else 5, 4))
    axes = np.atleast_1d(axes)
    if getattr(model, "loss_curve_", None):
        axes[0].plot(model.loss_curve_, label="training loss")
    if getattr(model, "validation_scores_", None):
        axes[0].plot(model.validation_scores_, label="validation score")
    axes[0].set_xlabel("epoch")
    axes[0].legend()
    if has_boundary:
        from sklearn.inspection import DecisionBoundaryDisplay

        DecisionBoundaryDisplay.from_estimator(model, X, ax=axes[1], alpha=0.5)
        axes[1].scatter(X[:, 0], X[:, 1], c=np.unique(y, return_inverse=True)[1], s=10)
    fig.tight_layout()
    fig.savefig(path)


def _predict(args):
    import joblib

    if not os.path.exists(args.model):
        raise UsageError(f"no such model file: {args.model}")
    try:
        model = joblib.load(args.model)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is a bad file
        raise UsageError(f"cannot load {args.model}: {exc}") from None
    X, _, _ = read_csv(args.data)
    try:
        pred = model.predict(X)
    except (ValueError, TypeError) as exc:
        raise UsageError(str(exc).splitlines()[0]) from None
    pred = np.asarray(pred)
    lines = ["prediction"] + [
        ",".join(map(str, row)) if np.ndim(row) else str(row) for row in pred
    ]
    text = "\n".join(lines) + "\n"
    if args.output:
        with open(args.output, "w") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    return 0


def _compile_notice():
    """A context that says "compiling kernels" when Numba starts compiling
    (before the wait, not after) and adds up the seconds spent compiling in
    ``.seconds``; loading a kernel from the on-disk cache is not compiling."""
    from numba.core import event

    class CompileNotice(event.Listener):
        seconds = 0.0
        _depth = 0
        _announced = False

        def on_start(self, event):
            if self._depth == 0:
                if not self._announced:
                    print("compiling kernels (first use only; this takes a while)...", flush=True)
                    self._announced = True
                self._started = time.perf_counter()
            self._depth += 1

        def on_end(self, event):
            self._depth -= 1
            if self._depth == 0:
                self.seconds += time.perf_counter() - self._started

        def __enter__(self):
            event.register("numba:compile", self)
            return self

        def __exit__(self, *exc):
            event.unregister("numba:compile", self)
            return False

    return CompileNotice()


def _info(args):
    import numba
    import numpy
    import scipy
    import sklearn

    from . import __version__, kernels

    cache_dir = numba.config.CACHE_DIR or os.path.join(
        os.path.dirname(kernels.__file__), "__pycache__"
    )
    n_cached = 0
    for root in {cache_dir, os.path.join(os.path.dirname(kernels.__file__), "__pycache__")}:
        if os.path.isdir(root):
            for _, _, files in os.walk(root):
                n_cached += sum(f.endswith(".nbi") for f in files)
    print(f"fastmlp {__version__}")
    print(
        f"numpy {numpy.__version__}, scipy {scipy.__version__}, "
        f"scikit-learn {sklearn.__version__}, numba {numba.__version__}"
    )
    print(f"python {sys.version.split()[0]}")
    print(
        f"numba cache: {'on' if kernels.CACHE_ENABLED else 'off (FASTMLP_CACHE=0)'}, "
        f"location {cache_dir}, "
        f"{'warm' if n_cached else 'cold'} ({n_cached} compiled entries)"
    )
    from ._threads import thread_setting, threads_usable

    usable = threads_usable()  # launches Numba's pool, which fixes its layer
    setting = {
        0: "off (FASTMLP_THREADS=0)",
        1: "chosen step by step by timing",
        2: "always (FASTMLP_THREADS=always)",
    }[thread_setting()]
    print(
        f"threads: {numba.threading_layer()} layer, {numba.config.NUMBA_NUM_THREADS} threads, "
        f"{setting if usable or thread_setting() == 0 else 'unused (one thread or no safe layer)'}"
    )
    return 0


def main(argv=None):
    """Entry point of the ``fastmlp`` command; returns the exit status."""
    args = build_parser().parse_args(argv)
    handlers = {"train": _train, "predict": _predict, "info": _info}
    try:
        return handlers[args.command](args)
    except UsageError as exc:
        print(f"fastmlp: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
