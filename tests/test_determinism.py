"""Same random_state, same bits: whatever the thread, the thread count, the load,
the process start method and the state of the Numba cache.

Every setting fits the cases of :mod:`tests.determinism_cases` (each a kernel
path: per-sample with threaded row blocks, the split mini-batch epoch, serial
mini-batches, CSR input, L-BFGS, threaded predict) and must give the digests
of a plain run in this process.
"""

import json
import os
import subprocess
import sys
import threading
import warnings
from pathlib import Path

import pytest
from numpy.testing import assert_array_equal

from . import determinism_cases as cases

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def expected():
    return cases.digests()


def _digests_in_subprocess(setting, names=(), **env):
    """The cases' digests from ``python -m tests.determinism_cases`` in a fresh process."""
    environ = {
        k: v for k, v in os.environ.items() if k not in ("FASTMLP_THREADS", "NUMBA_NUM_THREADS")
    }
    environ.update(env)
    proc = subprocess.run(
        [sys.executable, "-m", "tests.determinism_cases", setting, *names],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_a_fit_in_a_worker_thread_equals_one_in_the_main_thread(expected):
    got = {}
    worker = threading.Thread(target=lambda: got.update(cases.digests()))
    worker.start()
    worker.join()
    assert got == expected


def test_two_fits_at_once_in_two_threads_equal_the_same_fits_in_a_row(expected):
    halves = (cases.CASE_NAMES[::2], cases.CASE_NAMES[1::2])
    got = {}
    workers = [
        threading.Thread(target=lambda names=names: got.update(cases.digests(names)))
        for names in halves
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert got == expected


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_child_processes_of_every_start_method_give_the_same_bits(expected, method):
    import multiprocessing

    if method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"no {method} start method on this platform")
    assert _digests_in_subprocess(method) == expected


@pytest.mark.slow
@pytest.mark.parametrize(
    "env",
    [
        {"NUMBA_NUM_THREADS": "1"},
        {"NUMBA_NUM_THREADS": "2"},
        {"NUMBA_NUM_THREADS": "4"},
        {"FASTMLP_THREADS": "0"},
        {"FASTMLP_THREADS": "always"},
    ],
    ids=lambda env: "-".join(f"{k}={v}" for k, v in env.items()),
)
def test_every_thread_count_and_setting_gives_the_same_bits(expected, env):
    assert _digests_in_subprocess("plain", **env) == expected


@pytest.mark.slow
@pytest.mark.parametrize("threads", ["1", "always"])
def test_a_busy_machine_gives_the_same_bits(expected, threads):
    # two CPU-bound processes beside the fits: the kernels switch between
    # threaded and serial steps as they measure, which must not show
    assert _digests_in_subprocess("busy", FASTMLP_THREADS=threads) == expected


@pytest.mark.slow
def test_cold_warm_and_disabled_cache_give_the_same_bits(expected, tmp_path):
    # Adam and RMSprop once gave other bits when freshly compiled than when
    # loaded from the cache (FMA contraction decided differently)
    names = ("split-adam-f64", "split-rmsprop-f64")  # one set of kernels: one cold compile
    want = {name: expected[name] for name in names}
    cache = str(tmp_path / "numba-cache")
    assert _digests_in_subprocess("plain", names, NUMBA_CACHE_DIR=cache) == want  # cold
    assert any(Path(cache).rglob("*.nbc")), "the cold run should have filled the cache"
    assert _digests_in_subprocess("plain", names, NUMBA_CACHE_DIR=cache) == want  # warm
    assert _digests_in_subprocess("plain", names, FASTMLP_CACHE="0") == want


@pytest.mark.slow
def test_a_warm_cache_compiles_nothing(expected):
    # ``expected`` ran every case in this process, so every kernel they use is
    # in the cache now; a kernel that Numba cannot cache (e.g. one holding a
    # ctypes pointer, as numba.set_parallel_chunksize does) compiles again in
    # every new process
    code = (
        "import importlib, json, pkgutil\n"
        "from tests import determinism_cases\n"
        "from fastmlp import kernels\n"
        "determinism_cases.digests()\n"
        "modules = [importlib.import_module('fastmlp.kernels.' + m.name)\n"
        "           for m in pkgutil.iter_modules(kernels.__path__)]\n"
        "missed = {f'{m.__name__}.{name}' for m in modules for name, d in vars(m).items()\n"
        "          if hasattr(d, 'stats') and d.stats.cache_misses}\n"
        "import sys\n"
        "compiler_set_up = 'numba.np.polynomial.polynomial_core' in sys.modules\n"
        "print(json.dumps([sorted(missed), compiler_set_up]))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, proc.stderr
    missed, compiler_set_up = json.loads(proc.stdout.strip().splitlines()[-1])
    assert missed == []
    # nor did loading them set Numba's compiler up (its typing and lowering
    # registries, ~0.15 s; one of the modules that this imports serves as the
    # marker): the kernels' cache loads without it (kernels/_jit.py)
    assert not compiler_set_up


@pytest.mark.slow
def test_grid_search_gives_the_same_models_with_one_job_and_two():
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import GridSearchCV

    from fastmlp import MLPClassifier

    X, y = cases._data(300, 100)
    results = []
    for n_jobs in (1, 2):
        search = GridSearchCV(
            MLPClassifier((64,), batch_size=64, max_iter=3, random_state=0),
            {"alpha": [1e-4, 1e-2], "solver": ["adam", "sgd"]},
            cv=2,
            n_jobs=n_jobs,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            search.fit(X, y)
        best = search.best_estimator_
        results.append(
            (
                search.cv_results_["split0_test_score"],
                search.cv_results_["split1_test_score"],
                best.coefs_ + best.intercepts_,
            )
        )
    assert_array_equal(results[0][0], results[1][0])
    assert_array_equal(results[0][1], results[1][1])
    for a, b in zip(results[0][2], results[1][2]):
        assert_array_equal(a, b)


def test_a_fresh_process_uses_tbb_when_it_is_installed():
    # PyPI's tbb puts libtbb where the loader does not look; fastmlp loads it
    # so that Numba picks TBB (work stealing) with no variable set
    from importlib.metadata import PackageNotFoundError, version

    try:
        version("tbb")
    except PackageNotFoundError:
        pytest.skip("the tbb package is not installed here")
    # (enough rows for predict to consider threads: that launches the pool)
    code = (
        "import numpy as np, numba; from fastmlp import Network;"
        "Network([40, 3]).forward(np.zeros((1000, 40)));"
        "print(numba.threading_layer())"
    )
    environ = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_THREADING")}
    proc = subprocess.run(
        [sys.executable, "-c", code], env=environ, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "tbb"
