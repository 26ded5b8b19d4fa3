"""When fastmlp's kernels may use threads, how BLAS runs beside them, and where work is split.

Everything tuned about threads is here: the ``FASTMLP_THREADS`` setting, the
thread policies the kernels time their steps with (shared per process), when
a kernel's threaded version is worth compiling, the thresholds from which work
is split so that it can run on two threads, and BLAS pinned to one thread
around every kernel that calls it.
"""

import importlib
import os
import threading
from contextlib import contextmanager

import numba
import numpy as np

from . import kernels as K

_forked_child = False


def _note_fork():
    global _forked_child
    _forked_child = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_note_fork)


def thread_setting():
    """``FASTMLP_THREADS``: 0 ('0', 'false', 'no': kernels stay on one thread),
    2 ('always': every step that can be threaded is, and the threaded versions
    are compiled at once; for benchmarks, tests and warming a cache) or 1
    (anything else, the default: the kernels time both ways and keep the
    faster, see :mod:`fastmlp.kernels.thread_policy`; threaded versions are
    compiled when :func:`threads_worth_compiling`)."""
    value = os.environ.get("FASTMLP_THREADS", "1").strip().lower()
    if value in ("0", "false", "no"):
        return 0
    return 2 if value == "always" else 1


def _thread_pool_layer():
    """Numba's threading layer, its thread pool launched first if it was not
    (None if it cannot be).

    Launched even where fastmlp will not use it: the kernels that hold a
    parallel region refer to the pool's entry points, which Numba registers
    when it launches the pool, and code loaded from the on-disk cache was seen
    to crash on its serial path in a process that had never launched it."""
    try:
        return numba.threading_layer()
    except ValueError:  # not launched yet
        try:
            from numba.np.ufunc.parallel import _launch_threads

            _launch_threads()
            return numba.threading_layer()
        except Exception:
            return None


def threads_usable():
    """Whether kernels may run steps on Numba's thread pool at all: per-sample
    epochs updating big layers, split mini-batch epochs, predictions.

    Only with a thread-safe, low-latency threading layer (OpenMP or TBB; the
    fallback 'workqueue' layer is neither), more than one Numba thread, outside
    a process forked from this one (GNU OpenMP aborts there), and unless
    ``FASTMLP_THREADS=0``. Where it is, the kernels still choose step by step
    whether threads pay (:mod:`fastmlp.kernels.thread_policy`). The answer never
    changes the results: each threaded step has a serial form with the same
    arithmetic in the same order.
    """
    layer = _thread_pool_layer()  # first: see there
    if _forked_child or thread_setting() == 0:
        return False
    if numba.get_num_threads() < 2:
        return False
    return layer in ("omp", "tbb")


# Where the kernels split work so that it can run on two threads. The choice
# depends on the shapes alone, never on the threads or the load, so the bits
# are the same everywhere (a split sums a gradient in two parts: other bits
# than unsplit). The values were measured with ``asv_benchmarks/compare.py``
# and the split-against-serial runs listed in ``asv_benchmarks/README.md``.

# A mini-batch epoch on dense X splits each batch in two halves
# (``minibatch_epoch_split``) from this many rows x parameters per batch and
# this many rows: below, the per-half gemms on a few rows and the two parallel
# regions per batch cost more than the halves save.
SPLIT_BATCH_WORK = 1 << 18
SPLIT_BATCH_MIN_ROWS = 32
# Batches of 16 to 31 rows split from a larger size (there the unsplit
# kernel's BLAS calls would take two threads on a few rows).
SPLIT_SMALL_BATCH_WORK = 1_000_000
SPLIT_SMALL_BATCH_MIN_ROWS = 16
# Predict runs its chunks of rows as tasks on the threads from this many rows
# x parameters and twice this many rows; ``PREDICT_CHUNK`` rows per chunk (at
# most), ``PREDICT_GROUP`` chunks per threaded step (one task each, so that a
# thread which the scheduler parks leaves the rest to the other).
SPLIT_PREDICT_WORK = 1 << 16
SPLIT_PREDICT_MIN_ROWS = 64
PREDICT_CHUNK = 256
PREDICT_GROUP = 8
# The L-BFGS objective is computed in two halves from the mini-batch sizes.


def split_batches(batch_size, n_params, dropout):
    """Whether mini-batch epochs on dense X split each batch in two halves:
    batches big enough (:data:`SPLIT_BATCH_WORK`, :data:`SPLIT_SMALL_BATCH_WORK`)
    and no dropout (its masks are drawn in row order)."""
    work = batch_size * n_params
    big_enough = (batch_size >= SPLIT_BATCH_MIN_ROWS and work >= SPLIT_BATCH_WORK) or (
        batch_size >= SPLIT_SMALL_BATCH_MIN_ROWS and work >= SPLIT_SMALL_BATCH_WORK
    )
    return big_enough and not dropout


def split_objective(n_samples, n_params):
    """Whether the full-batch objective (L-BFGS) is computed in two halves."""
    return n_samples >= 2 * SPLIT_BATCH_MIN_ROWS and n_samples * n_params >= SPLIT_BATCH_WORK


def split_predict(n_samples, n_params):
    """Whether predict's groups of chunks may run on the threads."""
    return n_samples >= 2 * SPLIT_PREDICT_MIN_ROWS and n_samples * n_params >= SPLIT_PREDICT_WORK


# A kernel's threaded version is a second compiled version of it (its
# parallel regions and Numba's thread-pool wrappers): 7-8 s more for the first
# default fit on a 2-core machine, where threads save about a third of an
# epoch's time on one thread, and 3 s more for the first predict. So an epoch,
# predict and the split objective run the version without threads until the
# threaded one is ready (compiled in this process, or in the on-disk cache) or
# one thread has spent, and the fit is expected to spend, this much time on
# such calls (:func:`threads_worth_compiling`): the compile waits until the
# threads could have saved about what it costs (rent or buy), and is then paid
# once per cache. The bits do not depend on it. Measured with
# ``asv_benchmarks/README.md``'s JIT cost runs.
THREADS_PAYBACK_SECONDS = 20.0

# Thread policies (see thread_policy), by kind of step, layer sizes and dtype
_thread_policies = {}
# One-thread seconds of the calls run without their threaded version, same keys
_serial_seconds = {}


def _policy_key(kind, layer_sizes, dtype):
    return (kind, tuple(int(size) for size in layer_sizes), np.dtype(dtype).char)


def threads_worth_compiling(kind, layer_sizes, dtype, expected_seconds=0.0):
    """Whether a kernel's threaded version is worth compiling now.

    Yes with ``FASTMLP_THREADS=always``; otherwise once the one-thread calls of
    this kind of step (and network shape and dtype) in this process, spent
    (:func:`add_serial_seconds`) and ``expected_seconds`` still to come, reach
    :data:`THREADS_PAYBACK_SECONDS`. (A version already compiled or cached
    is used without asking.)
    """
    if thread_setting() == 2:
        return True
    spent = _serial_seconds.get(_policy_key(kind, layer_sizes, dtype), 0.0)
    return spent + expected_seconds >= THREADS_PAYBACK_SECONDS


# Whether a kernel's version for some arguments is compiled or cached
# (kernels.is_ready), by kernel and argument kinds: asked once per process, not
# at every epoch (it reads the cache's index, 0.2-0.4 ms)
_versions_ready = {}


def _argument_kinds(args):
    """What decides the compiled version: each argument's dtype, number of
    dimensions, layout and writeability for arrays, its type otherwise (tuples
    element by element)."""
    kinds = []
    for value in args:
        if isinstance(value, np.ndarray):
            flags = value.flags
            kinds.append((value.dtype.char, value.ndim, flags.c_contiguous, flags.writeable))
        elif isinstance(value, tuple):
            kinds.append(_argument_kinds(value))
        else:
            kinds.append(type(value))
    return tuple(kinds)


def version_ready(kernel, args):
    """Whether ``kernel(*args)`` would run without compiling first
    (:func:`fastmlp.kernels.is_ready`), asked once per kernel and argument kinds
    in a process (:func:`note_ready` records the versions run since)."""
    key = (kernel, _argument_kinds(args))
    ready = _versions_ready.get(key)
    if ready is None:
        ready = _versions_ready[key] = K.is_ready(kernel, args)
    return ready


def note_ready(kernel, args):
    """Record that ``kernel(*args)`` has run: its version is compiled now."""
    _versions_ready[(kernel, _argument_kinds(args))] = True


def add_serial_seconds(kind, layer_sizes, dtype, seconds):
    """Count ``seconds`` of a call run without its threaded version."""
    key = _policy_key(kind, layer_sizes, dtype)
    _serial_seconds[key] = _serial_seconds.get(key, 0.0) + seconds


def thread_policy(kind, layer_sizes, dtype, allowed=True):
    """The thread policy of one kind of step (see :mod:`fastmlp.kernels.thread_policy`);
    threads enabled when ``allowed`` and the thread pool is usable, as
    :func:`thread_setting` says.

    Shared by every network of this process with the same layer sizes and
    dtype, so that the fits of a grid search or a cross-validation start from
    what the earlier ones measured. A policy changes the speed only, never the
    results, and a race between two threads on one is harmless."""
    key = _policy_key(kind, layer_sizes, dtype)
    policy = _thread_policies.get(key)
    if policy is None:
        policy = _thread_policies.setdefault(key, K.new_policy())
    usable = threads_usable()  # (launches the pool, which every caller needs)
    policy[K.thread_policy.P_ENABLED] = thread_setting() if allowed and usable else 0
    return policy


_blas_lock = threading.Lock()
_blas_users = 0
_blas_saved = []  # (library controller, its thread count) while users > 0
_blas_controllers = None


def _blas_libraries():
    """threadpoolctl's controllers of the loaded BLAS libraries (found once),
    among them the one the kernels' ``np.dot`` calls (SciPy's)."""
    global _blas_controllers
    if _blas_controllers is None:
        try:
            from threadpoolctl import ThreadpoolController

            importlib.import_module("scipy.linalg.cython_blas")  # Numba's BLAS: loaded

            _blas_controllers = ThreadpoolController().select(user_api="blas").lib_controllers
        except Exception:
            _blas_controllers = []
    return _blas_controllers


@contextmanager
def blas_on_one_thread():
    """Run the block with every BLAS library on one thread; yields whether it could.

    Every kernel that calls BLAS runs inside it. OpenBLAS's gemm gives other
    bits with another thread count, so results would otherwise depend on
    it; and the split kernels call BLAS from two threads of their own, where
    a BLAS pool of two more would spin against them on the same cores. Nested
    and concurrent uses are counted; the last one out restores the thread
    counts.
    """
    global _blas_users
    libraries = _blas_libraries()
    if not libraries:
        yield False
        return
    with _blas_lock:
        if _blas_users == 0:
            _blas_saved[:] = [(lib, lib.num_threads) for lib in libraries]
            for lib in libraries:
                lib.set_num_threads(1)
        _blas_users += 1
    try:
        yield True
    finally:
        with _blas_lock:
            _blas_users -= 1
            if _blas_users == 0:
                for lib, n_threads in _blas_saved:
                    lib.set_num_threads(n_threads)
                _blas_saved.clear()
