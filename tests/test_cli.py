"""The ``fastmlp`` command, driven in a subprocess as a user would."""

import json
import os
import re
import subprocess
import sys
import warnings

import joblib
import numpy as np
import pytest
from numpy.testing import assert_array_equal
from sklearn.datasets import load_digits


def run(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "fastmlp", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


def test_train_on_digits_save_and_predict_a_csv(tmp_path):
    model_path = tmp_path / "model.joblib"
    done = run("train", "--epochs", "2", "--save", str(model_path))
    assert done.returncode == 0, done.stderr
    assert "test accuracy" in done.stdout and "speed-up" in done.stdout
    assert "samples/s" in done.stdout
    assert "\r" not in done.stdout  # not a terminal: a line per epoch, no redraws
    epochs = [line.split()[1] for line in done.stdout.splitlines() if line.startswith("epoch ")]
    assert epochs == ["1/2", "2/2"]
    # the suite's cache is warm by now, or the notice came before the wait
    assert ("kernels loaded from the on-disk cache" in done.stdout) or (
        done.stdout.index("compiling kernels") < done.stdout.index("kernels compiled in")
    )
    X, _ = load_digits(return_X_y=True)
    X = X[:15] / 16.0
    csv = tmp_path / "x.csv"
    np.savetxt(csv, X, delimiter=",", header=",".join(f"f{i}" for i in range(64)), comments="")
    out = tmp_path / "pred.csv"
    done = run("predict", str(model_path), str(csv), "-o", str(out))
    assert done.returncode == 0, done.stderr
    got = np.loadtxt(out, skiprows=1, dtype=int)
    assert_array_equal(got, joblib.load(model_path).predict(X))


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_on_a_terminal_the_progress_is_one_bar_that_fits_its_width():
    import fcntl
    import pty
    import struct
    import termios

    width = 44
    master, child_tty = pty.openpty()
    fcntl.ioctl(child_tty, termios.TIOCSWINSZ, struct.pack("HHHH", 24, width, 0, 0))
    env = {**os.environ, "TERM": "xterm-256color"}
    env.pop("COLUMNS", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "fastmlp", "train", "--epochs", "3", "--no-compare"],
        stdin=child_tty,
        stdout=child_tty,
        stderr=child_tty,
        env=env,
    )
    os.close(child_tty)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert proc.wait(timeout=300) == 0
    screen = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", b"".join(chunks).decode())
    pieces = re.split(r"\r\n|\n|\r", screen)
    bars = [piece for piece in pieces if piece.startswith("epoch ")]
    assert bars and all(len(bar.rstrip()) <= width for bar in bars), bars
    assert "epoch 3/3" in bars[-1] and "loss" in bars[-1]
    # the bar is redrawn in place (no line per epoch) ...
    assert "\n" not in screen[screen.index("epoch 1/3") : screen.rindex("epoch 3/3")]
    # ... and what comes after it starts a line of its own
    assert any(piece.startswith("fastmlp      test accuracy") for piece in pieces), pieces


def test_train_on_a_csv_with_regression_and_plot(tmp_path):
    pytest.importorskip("matplotlib")
    rng = np.random.RandomState(0)
    X = rng.randn(80, 2)
    y = X[:, 0] - 2 * X[:, 1]
    csv = tmp_path / "reg.csv"
    np.savetxt(csv, np.c_[X, y], delimiter=",", header="a,b,y", comments="")
    png = tmp_path / "curve.png"
    done = run(
        "train",
        str(csv),
        "--target",
        "y",
        "--regression",
        "--hidden",
        "8,4",
        "--epochs",
        "3",
        "--no-compare",
        "--plot",
        str(png),
    )
    assert done.returncode == 0, done.stderr
    assert "test R2" in done.stdout
    assert png.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    "content,args,message",
    [
        (None, ["--target", "y"], "no such file"),
        ("a,b,y\n1,2,0\n3,4,1\n", ["--target", "nope"], "target column 'nope'"),
        ("a,b,y\n1,x,0\n3,4,1\n", ["--target", "y"], "column 'b'"),
        ("a,b,y\n", ["--target", "y"], "no data rows"),
        ("a,b,y\n1,2,0\n3,4,1\n", [], "needs --target"),
        ("a,b,y\n1,,0\n3,4,1\n5,6,0\n", ["--target", "y"], "no value for column 'b' on line 2"),
        ("a,b,y\n1,2,0\n3,4,\n5,6,1\n", ["--target", "y"], "the target 'y' is missing on line 3"),
        ("a,b,y\n1,2,0\n", ["--target", "y", "--sep", "|"], "single column"),
    ],
)
def test_bad_csv_input_gives_one_line_and_exit_2(tmp_path, content, args, message):
    path = tmp_path / "data.csv"
    if content is not None:
        path.write_text(content)
    done = run("train", str(path), *args)
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_predict_with_missing_model_and_info():
    done = run("predict", "missing.joblib", "missing.csv")
    assert done.returncode == 2 and "no such model file" in done.stderr
    done = run("info")
    assert done.returncode == 0 and "numba cache" in done.stdout
    assert "threads:" in done.stdout and "layer" in done.stdout


@pytest.mark.parametrize(
    "variable, message",
    [("FASTMLP_CACHE", "the on-disk cache is off"), ("NUMBA_DISABLE_JIT", "nothing to compile")],
)
def test_compile_refuses_where_nothing_would_be_kept(variable, message):
    done = subprocess.run(
        [sys.executable, "-m", "fastmlp", "compile"],
        capture_output=True,
        text=True,
        env=dict(os.environ, **{variable: "0" if variable == "FASTMLP_CACHE" else "1"}),
        timeout=300,
    )
    assert done.returncode == 2 and message in done.stderr
    assert done.stdout == "" and len(done.stderr.strip().splitlines()) == 1


def test_the_compile_notice_speaks_before_compiling_and_not_for_compiled_code(capsys):
    import numba

    from fastmlp.cli import _compile_notice

    @numba.njit
    def add_one(x):
        return x + 1

    with _compile_notice() as notice:
        assert add_one(1) == 2
    assert "compiling kernels" in capsys.readouterr().out and notice.seconds > 0
    with _compile_notice() as notice:
        assert add_one(2) == 3  # compiled already: nothing to say
    assert capsys.readouterr().out == "" and notice.seconds == 0


def test_a_compile_during_the_fit_is_announced_and_left_out_of_its_time(monkeypatch, capsys):
    # a long fit may compile an epoch's threaded version once it pays back
    # (fastmlp._threads): here the second epoch of the timed fit "compiles"
    # (Numba's compile event, 0.5 s) and the report says so and leaves it out
    import time

    from numba.core import event

    from fastmlp import Network
    from fastmlp.cli import main

    real_epoch = Network.train_epoch
    calls = []

    def train_epoch(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 3:  # warm-up epoch, then the fit's first and second
            with event.trigger_event("numba:compile", data={"dispatcher": None, "args": ()}):
                time.sleep(0.5)
        return real_epoch(self, *args, **kwargs)

    monkeypatch.setattr(Network, "train_epoch", train_epoch)
    assert main(["train", "--epochs", "2", "--no-compare"]) == 0
    out = capsys.readouterr().out
    assert out.index("compiling threaded kernels") < out.index("epoch 2/2")
    seconds = float(re.search(r"threaded kernels compiled in ([0-9.]+) s during the fit", out)[1])
    fit = float(re.search(r"fit ([0-9.]+) s", out)[1])
    assert 0.5 <= seconds < 5 and fit < seconds


def test_version_help_and_files_that_are_not_models(tmp_path):
    from fastmlp import __version__

    done = run("--version")
    assert done.returncode == 0 and done.stdout.strip() == f"fastmlp {__version__}"
    done = run("--help")
    assert done.returncode == 0 and "``" not in done.stdout
    done = run("train", "--help")
    assert "{sgd,adam,lbfgs" in done.stdout and "{identity,logistic" in done.stdout
    not_a_model = tmp_path / "list.joblib"
    joblib.dump([1, 2, 3], not_a_model)
    csv = tmp_path / "data.csv"
    csv.write_text("a,b\n1,2\n")
    for model, message in ((not_a_model, "holds a list, not a model"), (csv, "not a model")):
        done = run("predict", str(model), str(csv))
        assert done.returncode == 2 and message in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


@pytest.mark.parametrize(
    "peer,ours,text",
    [
        (3.7, 0.1, "37x"),
        (0.5, 0.1, "5.0x"),
        (1.0, 2.0, "2.0x slower than scikit-learn"),
        (0.01, 1.0, "100x slower than scikit-learn"),
    ],
)
def test_speed_up_says_which_way_it_went(peer, ours, text):
    from fastmlp.cli import speed_up_text

    assert speed_up_text(peer, ours) == text


def _bundled_csvs(tmp_path):
    pd = pytest.importorskip("pandas")
    from sklearn.datasets import load_breast_cancer, load_diabetes

    cancer = load_breast_cancer(as_frame=True).frame
    paths = {"cancer": tmp_path / "cancer.csv", "diabetes": tmp_path / "diabetes.csv"}
    cancer.to_csv(paths["cancer"], index=False)
    load_diabetes(as_frame=True).frame.to_csv(paths["diabetes"], index=False)
    # the same data as users' files come: reordered columns, a pandas index,
    # semicolons and a byte-order mark, a quoted field with a comma in a text id
    cancer[list(cancer.columns[::-1])].to_csv(tmp_path / "reordered.csv", index=False)
    cancer.to_csv(tmp_path / "with_index.csv")
    with open(tmp_path / "excel.csv", "w", encoding="utf-8-sig") as f:
        cancer.to_csv(f, sep=";", index=False)
    quoted = cancer.assign(name=[f"patient {i}, ward {i % 3}" for i in range(len(cancer))])
    quoted.to_csv(tmp_path / "quoted.csv", index=False)
    cancer.drop(columns=["mean radius"]).to_csv(tmp_path / "missing.csv", index=False)
    return pd, cancer, paths


def test_train_scales_and_predict_goes_by_column_name(tmp_path):
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier as SkMLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    pd, cancer, paths = _bundled_csvs(tmp_path)
    model = tmp_path / "cancer.joblib"
    done = run(
        "train",
        str(paths["cancer"]),
        "--target",
        "target",
        "--epochs",
        "20",
        "--no-compare",
        "--save",
        str(model),
    )
    assert done.returncode == 0, done.stderr
    accuracy = float(done.stdout.split("test accuracy")[1].split()[0])
    X, y = cancer.drop(columns=["target"]), cancer["target"]
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, random_state=0, stratify=y
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        peer = make_pipeline(
            StandardScaler(),
            SkMLPClassifier(
                (64,),
                solver="sgd",
                batch_size=1,
                learning_rate_init=0.01,
                max_iter=20,
                random_state=0,
            ),
        ).fit(X_train, y_train)
    assert accuracy >= peer.score(X_test, y_test) - 0.01 and accuracy > 0.9
    reference = run("predict", str(model), str(paths["cancer"]))
    assert reference.returncode == 0 and "ignored: ['target']" in reference.stderr
    for name in ("reordered.csv", "with_index.csv", "excel.csv"):
        done = run("predict", str(model), str(tmp_path / name))
        assert done.returncode == 0, done.stderr
        assert done.stdout == reference.stdout  # by name: never a silent reordering
    done = run("predict", str(model), str(tmp_path / "quoted.csv"), "--keep", "name")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[1].startswith("patient 0, ward 0,") or (
        done.stdout.splitlines()[1].startswith("patient 0")
    )
    done = run("predict", str(model), str(tmp_path / "missing.csv"))
    assert done.returncode == 2 and "lacks the model's columns ['mean radius']" in done.stderr
    done = run("train", str(tmp_path / "quoted.csv"), "--target", "target")
    assert done.returncode == 2 and "feature column 'name'" in done.stderr


def test_regression_scales_the_target_too(tmp_path):
    _, _, paths = _bundled_csvs(tmp_path)
    done = run(
        "train", str(paths["diabetes"]), "--target", "target", "--regression",
        "--solver", "adam", "--batch-size", "32", "--epochs", "30",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "target scaled" in done.stdout
    ours = float(done.stdout.split("fastmlp      test R2")[1].split()[0])
    theirs = float(done.stdout.split("scikit-learn test R2")[1].split()[0])
    # the same scaled pipeline as scikit-learn's (unscaled, R2 was -0.05 and
    # predict gave one constant)
    assert ours >= theirs - 0.01 and ours > 0.1


def test_the_choices_in_help_are_the_estimators():
    # kept in the CLI so that --help does not import the kernels
    from fastmlp import MLPClassifier, cli, network

    assert cli.HIDDEN_ACTIVATIONS == network.HIDDEN_ACTIVATIONS
    assert set(cli.SOLVERS) == set(network.SOLVERS) | {"lbfgs"}
    assert set(cli.SOLVERS) == set(MLPClassifier._parameter_constraints["solver"][0].options)


def test_help_version_and_usage_errors_import_neither_sklearn_nor_numba(tmp_path):
    # ``import fastmlp`` defers its names: the command answers these at once
    code = (
        "import sys, fastmlp\n"
        "assert not {'sklearn', 'numba', 'scipy'} & set(sys.modules), 'imported too early'\n"
        "assert 'MLPClassifier' in dir(fastmlp) and fastmlp.__version__\n"
        "from fastmlp.cli import main\n"
        "for argv in (['--version'], ['--help'], ['train', '--regression'],\n"
        "             ['train', sys.argv[1]]):\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "assert not {'sklearn', 'numba'} & set(sys.modules), 'imported for a usage error'\n"
        "from fastmlp import MLPClassifier, Network, to_onnx\n"
        "assert 'numba' in sys.modules\n"
        "try:\n"
        "    fastmlp.no_such_name\n"
        "except AttributeError as exc:\n"
        "    assert 'no_such_name' in str(exc)\n"
        "else:\n"
        "    raise AssertionError('no AttributeError')\n"
    )
    csv = tmp_path / "data.csv"
    csv.write_text("a,b,y\n1,2,0\n3,4,1\n")
    done = subprocess.run(
        [sys.executable, "-c", code, str(csv)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    from fastmlp import __version__

    assert f"fastmlp {__version__}" in done.stdout and "needs DATA.csv" in done.stderr
    assert "needs --target" in done.stderr


_FITS_OF_EVERY_KIND = """
import json, pkgutil, sys, warnings
import numpy as np, scipy.sparse as sp
from fastmlp import MLPClassifier, MLPRegressor, kernels
from fastmlp.cli import main

def signatures():
    found = {}
    for info in pkgutil.iter_modules(kernels.__path__):
        module = __import__("fastmlp.kernels." + info.name, fromlist=["_"])
        for name, value in vars(module).items():
            if hasattr(value, "overloads"):
                found[f"{info.name}.{name}"] = {str(key) for key in value.overloads}
    return found

assert main(["compile", *sys.argv[1:]]) == 0
after_compile = signatures()
warnings.simplefilter("ignore")
rng = np.random.RandomState(1)
for dtype in sys.argv[sys.argv.index("--dtype") + 1:][:2]:
    X = rng.rand(700, 30).astype(dtype)
    y = rng.randint(0, 5, 700)
    target = X @ rng.rand(30)
    X_sparse = sp.csr_matrix(np.where(X > 0.7, X, 0))
    wide = (1200,)  # 36,000 first-layer weights: per-sample steps can thread
    MLPClassifier(max_iter=2).fit(X, y).score(X, y)
    MLPClassifier(max_iter=2, early_stopping=True).fit(X, y > 2).predict_proba(X)
    MLPRegressor(hidden_layer_sizes=(20, 10), activation="tanh", max_iter=2).fit(X, target)
    MLPRegressor(loss="huber", solver="rmsprop", max_iter=2).fit(X, target).predict(X)
    MLPClassifier(solver="sgd", batch_size=1, max_iter=2).fit(X, y)
    MLPClassifier(wide, solver="sgd", batch_size=1, max_iter=1).fit(X[:50], y[:50])
    MLPClassifier(solver="sgd", batch_size=32, max_iter=2, dropout=0.2).fit(X, y)
    MLPClassifier(batch_size=10, max_iter=2, activation="gelu").fit(X, y, sample_weight=y + 1.0)
    MLPClassifier(solver="lbfgs", max_iter=5).fit(X, y).transform(X)
    MLPRegressor(solver="lbfgs", max_iter=5).fit(X[:30], target[:30])
    MLPClassifier(solver="sgd", max_iter=2).fit(X_sparse, y).score(X_sparse, y)
    MLPClassifier(solver="sgd", batch_size=1, max_iter=2).fit(X_sparse, y)
    MLPClassifier(max_iter=2).fit(X_sparse, y).predict(X_sparse)
    MLPClassifier(solver="lbfgs", max_iter=3).fit(X_sparse, y)
    MLPClassifier().partial_fit(X, y, classes=np.arange(5)).partial_fit(X, y)
after_fits = signatures()
print(json.dumps({name: sorted(after_fits[name] - after_compile.get(name, set()))
                  for name in after_fits if after_fits[name] - after_compile.get(name, set())}))
"""


@pytest.mark.slow
@pytest.mark.parametrize("threads", [False, True])
def test_compile_leaves_what_every_kind_of_fit_and_predict_needs(tmp_path, threads):
    # at the level of signatures: a fit that needed one that ``fastmlp
    # compile`` did not call would load it from the cache or compile it,
    # and either adds it to the kernel's overloads
    script = tmp_path / "fits.py"
    script.write_text(_FITS_OF_EVERY_KIND)
    # threads: float64 alone (which versions are threaded does not depend on
    # the dtype; each is 40 s of compiling here)
    args = ["--threads", "--dtype", "float64"] if threads else ["--dtype", "float64", "float32"]
    # fits on one thread, or threaded wherever they can be: a fit with threads
    # chosen by timing uses versions of both kinds
    environ = dict(os.environ, FASTMLP_THREADS="always" if threads else "0")
    proc = subprocess.run(
        [sys.executable, str(script), *args],
        capture_output=True,
        text=True,
        env=environ,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[0].startswith("compiling the kernels")
    per_dtype = [sum(f", {dtype}: " in line for line in lines) for dtype in ("float64", "float32")]
    assert per_dtype[0] > 0 and per_dtype[1] == (0 if threads else per_dtype[0])
    from fastmlp._threads import threads_usable

    assert any(", threaded, " in line for line in lines) == (threads and threads_usable())
    assert re.match(r"done in [\d.]+ s \([\d.]+ s of compiling\)", lines[-2])
    assert json.loads(lines[-1]) == {}
