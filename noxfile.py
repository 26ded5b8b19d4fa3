"""CI's version matrix (``pip install nox && nox``): the oldest supported Python
with the oldest supported dependencies, the newest Python with the newest
releases, and the fast subset on the versions between.

The README's test command (``python -m pytest``, current Python and newest
releases) stays the one a user runs; these sessions are CI's. Each session
uses a fresh Numba cache, so kernels compile as on a user's first run.
"""

import tempfile

import nox

nox.options.default_venv_backend = "venv"
nox.options.sessions = ["oldest", "newest", "between"]

# The lowest versions the package declares (pyproject.toml), pinned: the
# suite passes on them.
OLDEST_PINS = [
    "numpy==1.24.4",
    "numba==0.59.1",
    "scipy==1.10.1",
    "scikit-learn==1.6.0",
    "joblib==1.2.0",
    "threadpoolctl==3.1.0",
    "tbb==2021.6.0",
    "rich==13.0.0",
    "skl2onnx==1.16.0",
    "onnx==1.16.0",
    "onnxruntime==1.16.3",
]


def _env():
    return {"NUMBA_CACHE_DIR": tempfile.mkdtemp(prefix="fastmlp-nox-")}


def _versions(session):
    session.run(
        "python",
        "-c",
        "import sys, numpy, numba, scipy, sklearn; print('python', sys.version.split()[0],"
        " 'numpy', numpy.__version__, 'numba', numba.__version__, 'scipy', scipy.__version__,"
        " 'scikit-learn', sklearn.__version__)",
    )


@nox.session(python="3.10")
def oldest(session):
    """The full suite and scikit-learn's MLP tests on the lowest supported versions."""
    session.install(*OLDEST_PINS)
    session.install("-e", ".[test]")
    _versions(session)
    env = _env()
    session.run("python", "-m", "pytest", "-q", env=env)
    session.run("python", "-m", "tests.sklearn_mlp_suite", "-q", env=env)


@nox.session(python="3.13")
def newest(session):
    """The full suite and scikit-learn's MLP tests on the newest Python and releases."""
    session.install("--upgrade", "-e", ".[test]")
    _versions(session)
    env = _env()
    session.run("python", "-m", "pytest", "-q", env=env)
    session.run("python", "-m", "tests.sklearn_mlp_suite", "-q", env=env)


@nox.session(python="3.12")
def between(session):
    """An install and the fast subset on the Python between."""
    session.install("-e", ".[test]")
    _versions(session)
    session.run("python", "-m", "pytest", "-q", "-m", "not slow", env=_env())
