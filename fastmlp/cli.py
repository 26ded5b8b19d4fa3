"""The ``fastmlp`` command line: train, predict, info, compile.

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

# as the estimators take them (kept here so that --help needs no import of them)
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
SOLVERS = ("sgd", "adam", "lbfgs", "rmsprop", "adagrad", "adadelta")


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
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="fastmlp",
        description="Train multilayer perceptrons at compiled speed, predict CSV files with "
        "them, and report versions, cache and threads.",
    )
    parser.add_argument("--version", action="version", version=f"fastmlp {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train a model (default: digits, compared with sklearn)")
    train.add_argument(
        "data",
        nargs="?",
        help="CSV file with a header row and numeric feature columns (text columns are "
        "refused: encode them first); default: scikit-learn's digits",
    )
    train.add_argument("--target", help="name of the target column of DATA.csv")
    train.add_argument(
        "--sep", help="column separator of DATA.csv (default: detected, e.g. ',' or ';')"
    )
    train.add_argument(
        "--no-scale",
        action="store_true",
        help="do not standardize the features (and, with --regression, the target)",
    )
    train.add_argument("--regression", action="store_true", help="train an MLPRegressor")
    train.add_argument("--hidden", type=_hidden, default=(64,), help="hidden sizes, e.g. 128,64")
    train.add_argument(
        "--activation",
        default="relu",
        choices=HIDDEN_ACTIVATIONS,
        help="hidden activation (default: relu)",
    )
    train.add_argument("--solver", default="sgd", choices=SOLVERS, help="optimizer (default: sgd)")
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
    predict.add_argument("--sep", help="column separator of DATA (default: detected)")
    predict.add_argument("--keep", help="a column of DATA to copy into the output (e.g. an id)")
    predict.add_argument(
        "--proba", action="store_true", help="class probabilities instead of classes"
    )

    sub.add_parser("info", help="versions, Numba cache and threading layer")
    compile_ = sub.add_parser(
        "compile",
        help="compile the kernels of every kind of fit and predict into the cache now",
        description="Compile (or load) the kernels of every kind of fit and predict, so "
        "that later processes load them from Numba's on-disk cache instead of compiling "
        "on first use: e.g. in a container image's build step, or before a parallel "
        "grid search whose workers would each compile the same kernels.",
    )
    compile_.add_argument(
        "--dtype",
        nargs="+",
        choices=["float64", "float32"],
        default=["float64"],
        help="dtypes to train in (default: float64; float32 input trains in float32)",
    )
    compile_.add_argument(
        "--threads",
        action="store_true",
        help="also the threaded versions (otherwise compiled once threads pay for it)",
    )
    return parser


def read_csv(path, target=None, sep=None):
    """A CSV file with a header row as a pandas DataFrame of numeric features
    (and the target column), with one-line errors for what goes wrong.

    pandas reads it (quoting, a UTF-8 byte-order mark, the separator detected
    unless ``sep`` is given). A first column without a name holding 0, 1, 2,
    ... (pandas' ``to_csv`` index) is dropped with a note. Missing values are
    reported by row and column; text feature columns are refused by name.
    """
    if not os.path.exists(path):
        raise UsageError(f"no such file: {path}")
    try:
        import pandas as pd
    except ImportError:
        raise UsageError("reading CSV files needs pandas: pip install pandas") from None
    try:
        frame = pd.read_csv(
            path, sep=sep, engine="python" if sep is None else "c", encoding="utf-8-sig"
        )
    except (OSError, UnicodeDecodeError, ValueError, pd.errors.ParserError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UsageError(f"cannot read {path} as CSV: {first}") from None
    if frame.shape[0] == 0:
        raise UsageError(f"{path} has no data rows")
    if frame.shape[1] == 1:
        hint = "give its separator with --sep" if sep is None else f"is {sep!r} its separator?"
        raise UsageError(f"{path} has a single column {str(frame.columns[0])!r}: {hint}")
    first = str(frame.columns[0])
    if first == "" or first.startswith("Unnamed: 0"):
        values = frame.iloc[:, 0]
        if values.dtype.kind in "iu" and (values.to_numpy() == np.arange(len(values))).all():
            print(
                f"note: dropped the unnamed first column of {path} (a row index)",
                file=sys.stderr,
            )
            frame = frame.iloc[:, 1:]
    y = None
    if target is not None:
        if target not in frame.columns:
            raise UsageError(
                f"target column {target!r} not in {path} (columns: {list(frame.columns)})"
            )
        y = frame[target]
        if y.isna().any():
            row = int(np.flatnonzero(y.isna().to_numpy())[0]) + 2  # 1-based, after the header
            raise UsageError(f"{path}: the target {target!r} is missing on line {row}")
        frame = frame.drop(columns=[target])
    text = [str(c) for c in frame.columns if frame[c].dtype.kind not in "biuf"]
    if text:
        raise UsageError(
            f"feature column {text[0]!r} of {path} is not numeric (text or categories): "
            "encode it, or drop it"
        )
    missing = frame.isna().to_numpy()
    if missing.any():
        row, col = np.argwhere(missing)[0]
        raise UsageError(
            f"{path}: no value for column {str(frame.columns[col])!r} on line {row + 2} "
            f"({int(missing.sum())} missing in all): fill or drop them first"
        )
    frame.columns = [str(c) for c in frame.columns]
    return frame.astype(np.float64), (None if y is None else y.to_numpy())


def _numeric_target(y, regression):
    """Class labels as integers when they are whole numbers (else as read);
    regression targets as floats."""
    if not regression:
        try:
            as_float = y.astype(np.float64)
            if np.all(as_float == np.round(as_float)):
                return as_float.astype(np.int64)
        except (TypeError, ValueError):
            pass
        return y
    try:
        return y.astype(np.float64)
    except (TypeError, ValueError):
        raise UsageError("--regression needs a numeric target column") from None


def _fitted_estimator(model):
    """The MLP inside what ``train`` fits (a pipeline, perhaps inside a
    TransformedTargetRegressor)."""
    if hasattr(model, "regressor_"):
        model = model.regressor_
    return model[-1] if hasattr(model, "steps") else model


def _with_scaling(estimator, regression, scale):
    """``estimator`` as ``train`` fits it: after a StandardScaler of X, and for
    regression with y standardized too (both undone at predict)."""
    if not scale:
        return estimator
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), estimator)
    if regression:
        return TransformedTargetRegressor(regressor=model, transformer=StandardScaler())
    return model


def _report_warnings(caught):
    """Each distinct warning of a fit once, on one line."""
    seen = set()
    for w in caught:
        text = str(w.message).strip().splitlines()[0]
        if text not in seen:
            seen.add(text)
            print(f"warning: {text}")


def _train(args):
    # the user's mistakes first, before the imports of the estimators (seconds)
    if args.plot:
        _check_matplotlib()
    if args.data is None:
        if args.regression:
            raise UsageError("--regression needs DATA.csv and --target")
        from sklearn.datasets import load_digits

        X, y = load_digits(return_X_y=True)
        X = X / 16.0
        source = "scikit-learn digits (1797 samples, 64 features, 10 classes)"
    else:
        if args.target is None:
            raise UsageError("DATA.csv needs --target COLUMN")
        X, y = read_csv(args.data, args.target, sep=args.sep)
        y = _numeric_target(y, args.regression)
        source = f"{args.data} ({X.shape[0]} samples, {X.shape[1]} features)"
    from sklearn.model_selection import train_test_split

    from . import MLPClassifier, MLPRegressor

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
    progress = _progress_printer()
    scale = args.data is not None and not args.no_scale  # digits comes scaled to [0, 1]
    model = _with_scaling(
        Estimator(dtype=args.dtype, callbacks=[progress], **params),
        args.regression,
        scale,
    )
    scaling = " (features scaled" + (", target scaled)" if args.regression else ")")
    print(
        f"fastmlp: training {Estimator.__name__}{args.hidden} on {source}"
        + (scaling if scale else "")
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            # Load (or compile, on a cold cache) the kernels with one epoch on
            # the same data (the same shapes pick the same kernels), so that the
            # timed fit below measures training and not the JIT.
            started = time.perf_counter()
            with _compile_notice() as compiling:
                try:
                    warm = Estimator(dtype=args.dtype, **{**params, "max_iter": 1})
                    warm = _with_scaling(warm, args.regression, scale)
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
            del caught[:]  # the warm-up's warnings are not the fit's
            started = time.perf_counter()
            # a long fit may compile an epoch's threaded version once it pays
            # (fastmlp._threads.THREADS_PAYBACK_SECONDS): said when it starts,
            # and left out of the fit's time
            with _compile_notice("compiling threaded kernels (first use only)...") as more:
                try:
                    model.fit(X_train, y_train)
                finally:
                    progress.close()  # a fit that stopped early, failed or was interrupted
            fit_time = time.perf_counter() - started - more.seconds
            if more.seconds:
                print(
                    f"threaded kernels compiled in {more.seconds:.1f} s during the fit "
                    "(first use only; not in the fit's time)"
                )
            fitted = _fitted_estimator(model)
        except (ValueError, TypeError) as exc:
            raise UsageError(str(exc).splitlines()[0]) from None
    _report_warnings(caught)
    metric = "R2" if args.regression else "accuracy"
    score = model.score(X_test, y_test)
    print(
        f"fastmlp      test {metric} {score:.4f}  fit {fit_time:.2f} s  ({fitted.n_iter_} epochs)"
    )
    if args.regression and score <= 0:
        print("note: R2 <= 0: the model predicts no better than the mean of y")
    elif not args.regression and len(np.unique(model.predict(X_test))) == 1 < len(np.unique(y)):
        print("note: the model predicts one class for every test row")
    if not args.no_compare:
        peer = _peer(args, params)
        if peer is not None:
            _compare_with_sklearn(
                _with_scaling(peer, args.regression, scale),
                X_train,
                X_test,
                y_train,
                y_test,
                metric,
                fit_time,
            )
    if args.save:
        import joblib

        # the progress printer belongs to this run, not to the saved model
        fitted.set_params(callbacks=None)
        if hasattr(model, "regressor"):  # the unfitted template beside regressor_
            _fitted_estimator(model.regressor).set_params(callbacks=None)
        joblib.dump(model, args.save)
        print(f"model written to {args.save}")
    if args.plot:
        _plot(fitted, model, X_train, y_train, args.plot)
        print(f"plot written to {args.plot}")
    return 0


def _peer(args, params):
    """scikit-learn's estimator at the same settings, or None (with a note)."""
    from sklearn import neural_network

    if args.solver not in ("sgd", "adam", "lbfgs") or args.activation not in (
        "identity",
        "logistic",
        "tanh",
        "relu",
    ):
        print("scikit-learn comparison skipped: it has no such solver or activation")
        return None
    Peer = neural_network.MLPRegressor if args.regression else neural_network.MLPClassifier
    return Peer(**params)


def _compare_with_sklearn(peer, X_train, X_test, y_train, y_test, metric, fit_time):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        started = time.perf_counter()
        peer.fit(X_train, y_train)  # Ctrl-C here: main reports it (exit 130)
        peer_time = time.perf_counter() - started
    print(
        f"scikit-learn test {metric} {peer.score(X_test, y_test):.4f}  fit {peer_time:.2f} s  "
        f"({_fitted_estimator(peer).n_iter_} epochs)"
    )
    print(f"speed-up: {speed_up_text(peer_time, fit_time)} (fit time, same settings)")


def speed_up_text(peer_seconds, our_seconds):
    """How many times faster fastmlp was, to two significant digits, or how
    many times slower ("0.5x" would hide which way it went)."""
    ratio = peer_seconds / max(our_seconds, 1e-9)
    if ratio >= 1:
        return f"{ratio:.1f}x" if ratio < 10 else f"{ratio:.0f}x"
    slower = 1 / max(ratio, 1e-9)
    return (f"{slower:.1f}x" if slower < 10 else f"{slower:.0f}x") + " slower than scikit-learn"


def _check_matplotlib():
    """Before training: --plot needs matplotlib."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise UsageError("--plot needs matplotlib: pip install matplotlib") from None


def _plot(estimator, model, X, y, path):
    """Loss per epoch (and validation score), and for 2-D classification the
    decision regions of ``model`` (what ``train`` fitted, scaling included)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    has_boundary = X.shape[1] == 2 and hasattr(estimator, "classes_")
    fig, axes = plt.subplots(1, 2 if has_boundary else 1, figsize=(10 if has_boundary else 5, 4))
    axes = np.atleast_1d(axes)
    curve = getattr(estimator, "loss_curve_", None)
    ax = axes[0]
    if curve:
        epochs = np.arange(1, len(curve) + 1)
        lines = ax.plot(
            epochs, curve, marker="o" if len(curve) < 30 else None, label="training loss"
        )
        ax.set_xlabel("epoch")
        ax.set_ylabel("training loss")
        ax.xaxis.get_major_locator().set_params(integer=True)
        scores = getattr(estimator, "validation_scores_", None)
        title = "training loss"
        if scores:
            right = ax.twinx()
            lines += right.plot(epochs, scores, color="tab:orange", label="validation score")
            right.set_ylabel("validation score")
            title += " and validation score"
        ax.legend(lines, [line.get_label() for line in lines], loc="center right")
        ax.set_title(f"{type(estimator).__name__}: {title} per epoch")
    else:  # L-BFGS keeps no per-epoch losses
        ax.axis("off")
        ax.text(
            0.5,
            0.5,
            f"solver={estimator.solver!r}: no loss per epoch\n"
            f"final loss {estimator.loss_:.4g} after {estimator.n_iter_} iterations",
            ha="center",
            va="center",
        )
    if has_boundary:
        from sklearn.inspection import DecisionBoundaryDisplay

        DecisionBoundaryDisplay.from_estimator(model, X, ax=axes[1], alpha=0.5)
        values = np.asarray(X)
        axes[1].scatter(values[:, 0], values[:, 1], c=np.unique(y, return_inverse=True)[1], s=10)
        axes[1].set_title("decision regions (training data)")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _feature_names(model):
    """The column names the model was fitted on (None if it was fitted on an array)."""
    for candidate in (model, getattr(model, "regressor_", None)):
        names = getattr(candidate, "feature_names_in_", None)
        if names is not None:
            return [str(n) for n in names]
    return None


def _predict(args):
    import joblib

    if not os.path.exists(args.model):
        raise UsageError(f"no such model file: {args.model}")
    try:
        model = joblib.load(args.model)
    except Exception:  # noqa: BLE001 - any unpickling failure is a bad file
        raise UsageError(
            f"cannot load {args.model}: not a model saved by 'fastmlp train --save' (or joblib)"
        ) from None
    if not hasattr(model, "predict"):
        raise UsageError(
            f"{args.model} holds a {type(model).__name__}, not a model with a predict method"
        )
    names = _feature_names(model)
    if args.keep is None:
        frame, _ = read_csv(args.data, sep=args.sep)
    else:  # the kept column (an id) may hold text: read it apart
        import pandas as pd

        whole = pd.read_csv(args.data, sep=args.sep, engine="python", encoding="utf-8-sig")
        if args.keep not in whole.columns:
            raise UsageError(f"--keep: no column {args.keep!r} in {args.data}")
        kept = whole[args.keep]
        if names is not None and args.keep in names:  # a feature as well
            frame, _ = read_csv(args.data, sep=args.sep)
        else:
            frame, _ = read_csv(args.data, target=args.keep, sep=args.sep)
    if names is not None:
        missing = [n for n in names if n not in frame.columns]
        if missing:
            raise UsageError(f"{args.data} lacks the model's columns {missing}")
        ignored = [c for c in frame.columns if c not in names]
        if ignored:
            print(f"note: columns not used by the model ignored: {ignored}", file=sys.stderr)
        if list(frame.columns[: len(names)]) != names or ignored:
            frame = frame[names]  # by name, in the model's order
    try:
        if args.proba:
            if not hasattr(model, "predict_proba"):
                raise UsageError("--proba needs a classifier")
            values = model.predict_proba(frame)
            classes = _fitted_estimator(model).classes_
            header = [f"proba_{c}" for c in classes]
        else:
            values = np.asarray(model.predict(frame))
            header = ["prediction"]
    except (ValueError, TypeError) as exc:
        raise UsageError(str(exc).splitlines()[0]) from None
    rows = [",".join(map(str, row)) if np.ndim(row) else str(row) for row in values]
    if args.keep is not None:
        header = [args.keep] + header
        rows = [f"{k},{r}" for k, r in zip(kept.astype(str), rows)]
    text = "\n".join([",".join(header)] + rows) + "\n"
    if args.output:
        with open(args.output, "w") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    return 0


def _progress_printer():
    """A fit callback that shows each epoch.

    On a terminal, one bar drawn by ``rich`` and redrawn in place, sized to the
    terminal's width; anything printed meanwhile goes above it on its own line.
    Otherwise (logs, pipes), one plain line per epoch. ``.close()`` ends the bar
    of a fit that stopped before ``max_iter`` (or was interrupted).
    """
    # State in a closure, not in an object: a clone (TransformedTargetRegressor
    # clones its regressor) deep-copies the callbacks list, and functions are
    # copied by reference, so the clone's fit and .close() share the bar.
    state = {}
    # decided once: while the bar is up, rich redirects sys.stdout (and older
    # rich's proxy does not say it is a terminal)
    on_terminal = sys.stdout.isatty()

    def show(model, info):
        epoch, total = info["epoch"], model.max_iter
        text = f"loss {info['loss']:.6f}"
        if info["validation_score"] is not None:
            text += f"  validation {info['validation_score']:.4f}"
        text += f"  {info['samples_per_s']:,.0f} samples/s"
        if not on_terminal:
            print(f"epoch {epoch}/{total}  {text}", flush=True)
            return False
        if "progress" not in state:
            from rich.progress import BarColumn, Progress, TextColumn
            from rich.table import Column

            # On a narrow terminal the bar goes first, then the end of the
            # status; the epoch count always shows.
            progress = Progress(
                TextColumn(
                    "epoch {task.completed}/{task.total}",
                    table_column=Column(no_wrap=True, min_width=len(f"epoch {total}/{total}")),
                ),
                BarColumn(bar_width=24),
                TextColumn(
                    "{task.fields[status]}", table_column=Column(no_wrap=True, overflow="ellipsis")
                ),
                auto_refresh=False,
            )
            progress.start()
            state["progress"] = progress
            state["task"] = progress.add_task("fit", total=total, status="")
        state["progress"].update(state["task"], completed=epoch, status=text, refresh=True)
        if epoch == total:
            close()
        return False

    def close():
        progress = state.pop("progress", None)
        if progress is not None:
            progress.stop()

    show.close = close
    return show


def _compile_notice(message="compiling kernels (first use only; this takes a while)..."):
    """A context that prints ``message`` when Numba starts compiling (before
    the wait, not after) and adds up the seconds spent compiling in
    ``.seconds``; loading a kernel from the on-disk cache is not compiling."""
    from ._compiling import CompileWatch

    return CompileWatch(announce=message)


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


def _compile(args):
    import numba

    from . import kernels
    from ._compiling import warm_up

    if numba.config.DISABLE_JIT:
        raise UsageError("compile: NUMBA_DISABLE_JIT=1 is set, so there is nothing to compile")
    if not kernels.CACHE_ENABLED:
        raise UsageError(
            "compile: the on-disk cache is off (FASTMLP_CACHE=0), so no later process "
            "could load what this compiles"
        )

    def report(description, seconds=None, compile_seconds=None):
        if seconds is None:  # starting: say what the wait is for
            print(f"{description}: ", end="", flush=True)
        else:
            how = "compiled" if compile_seconds > 0 else "loaded from the cache"
            print(f"{how}, {seconds:.1f} s", flush=True)

    print("compiling the kernels (or loading them from Numba's cache)...", flush=True)
    started = time.perf_counter()
    dtypes = list(dict.fromkeys(args.dtype))  # each once
    compiled = warm_up(dtypes, threads=args.threads, report=report)
    print(
        f"done in {time.perf_counter() - started:.1f} s ({compiled:.1f} s of compiling); "
        "later processes load these kernels from the cache"
    )
    return 0


def main(argv=None):
    """Entry point of the ``fastmlp`` command; returns the exit status."""
    args = build_parser().parse_args(argv)
    handlers = {"train": _train, "predict": _predict, "info": _info, "compile": _compile}
    try:
        return handlers[args.command](args)
    except UsageError as exc:
        print(f"fastmlp: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nfastmlp: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
