"""scikit-learn's own MLP tests, from the installed scikit-learn, run against fastmlp.

    python -m tests.sklearn_mlp_suite [pytest options]

Copies ``sklearn/neural_network/tests/test_mlp.py`` into a temporary directory
with only the estimators' import swapped to fastmlp's, and runs it with pytest.
The tests listed in ``NOT_FOR_FASTMLP`` are deselected by name, each for the
reason given there: they set or read scikit-learn's private internals, or pin
a behaviour where fastmlp deliberately differs (documented in docs/user_guide/differences.md).
Exits with pytest's status; CI runs it.
"""

import pathlib
import re
import subprocess
import sys
import tempfile

import sklearn

NOT_FOR_FASTMLP = {
    "test_fit": "sets scikit-learn's private _coef_grads, _intercept_grads and "
    "_no_improvement_count and calls its private _fit",
    "test_gradient": "calls scikit-learn's private _loss_grad_lbfgs "
    "(fastmlp: gradient_check, tested in tests/test_beyond_sklearn.py)",
    "test_learning_rate_warmstart": "reads scikit-learn's private _optimizer.learning_rate",
    "test_adaptive_learning_rate": "reads scikit-learn's private _optimizer.learning_rate",
    "test_mlp_diverging_loss": "deliberate difference: a diverging fit stops with a "
    "ConvergenceWarning and keeps finite weights instead of recording NaN validation scores",
}

# scikit-learn's conftest provides this fixture to its own test suite
CONFTEST = """
import os

import pytest


@pytest.fixture
def global_random_seed():
    return int(os.environ.get("SKLEARN_TESTS_GLOBAL_RANDOM_SEED", "42").split("-")[0])
"""


def main(argv):
    source = pathlib.Path(sklearn.__file__).parent / "neural_network" / "tests" / "test_mlp.py"
    text = source.read_text()
    swapped, count = re.subn(
        r"^from sklearn\.neural_network import MLPClassifier, MLPRegressor$",
        "from fastmlp import MLPClassifier, MLPRegressor",
        text,
        flags=re.MULTILINE,
    )
    if count != 1:
        sys.exit(f"{source}: the estimators' import line was not found; update this script")
    with tempfile.TemporaryDirectory(prefix="fastmlp-sklearn-tests-") as tmp:
        tmp = pathlib.Path(tmp)
        (tmp / "test_sklearn_mlp.py").write_text(swapped)
        (tmp / "conftest.py").write_text(CONFTEST)
        deselect = []
        for name, reason in NOT_FOR_FASTMLP.items():
            print(f"not run: {name}: {reason}")
            deselect += ["--deselect", f"test_sklearn_mlp.py::{name}"]
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
        command += ["-o", "addopts=", "--rootdir", str(tmp), *deselect, *argv]
        print(f"scikit-learn {sklearn.__version__}: {source}", flush=True)
        return subprocess.call(command, cwd=tmp)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
