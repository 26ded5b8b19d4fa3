"""The ``fastmlp`` command, driven in a subprocess as a user would."""

import subprocess
import sys

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
