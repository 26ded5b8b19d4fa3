"""Whether the next step of a kernel runs on Numba's thread pool: decided by timing.

A threaded step (two half batches, a layer's row blocks, a group of chunks of
rows to predict) ends in a barrier that waits for every thread of the region. On a
quiet machine that costs a microsecond or two. On a busy one (other processes
on the cores, a grid search beside the fit) the other thread may not run again
until the scheduler's next time slice, milliseconds later, and the threaded
step becomes 10-100 times slower than the same step on one thread.

Every threaded step in these kernels has a serial form that does the same
arithmetic in the same order (the split of the work is fixed by the shapes,
never by the number of threads), so the choice changes the speed, never the
bits. The kernels make it step by step from what they measure:

- a *policy* is a small float64 array owned by the caller, one per kind of
  step (per-sample epoch, split mini-batch epoch at one batch size, predict,
  the L-BFGS objective), kept across calls;
- each step is timed with the CPU's cycle counter (:func:`cycles`) and the
  time is added to the current *segment* of about :data:`SEGMENT_CYCLES`;
  a segment runs in one mode and ends with that mode's cost per row;
- the chosen mode's estimate is a running average of its segments (one
  preempted segment on a busy machine does not decide anything); the other
  mode is *probed*, one segment, every :data:`MIN_PROBE_INTERVAL` to
  :data:`MAX_PROBE_INTERVAL` segments: threads are chosen when a probe is
  :data:`THREADS_MARGIN` faster than one thread, one thread when it is
  faster at all; a probe already twice as slow as the chosen mode's estimate
  ends at once (so on a busy machine it costs one stalled step, not a
  segment of them);
- while threaded, a segment slower than the last one-thread estimate (load
  came) probes one thread at once; each lost probe and each switch away from
  the threads doubles the probe interval (it never shrinks: at its longest,
  about 0.1 s, it is how long a machine that became quiet waits for its
  threads, and probes cost about 1% of the time);
- the first :data:`WARMUP_STEPS` steps and :data:`WARMUP_CYCLES` after a
  switch, and those of a call long enough to spare them
  (:func:`begin_call`), are not timed: they pay for
  waking the pool's sleeping workers and for cold caches, which would make
  every probe of the threads look as slow as one thread on a quiet machine
  (a wake-up and a stall on a busy machine are both milliseconds; but the
  wake-up comes once, and a busy machine stalls the steps after it too).

A new policy starts serial and probes threads after its first segment: on a
quiet machine that costs a part of one segment, while starting threaded on a
busy one would cost a scheduler time slice per step. A probe costs at most
one segment (or one step, if longer) in the slower mode: under 2% of the time
once the interval has grown. Where the cycle counter does not advance (an
architecture without one), no segment ever ends and the kernels stay serial.

Which thread pool: Numba prefers TBB, whose work stealing lets the calling
thread run the tasks of a region that another thread has not started, but
the ``tbb`` package from PyPI puts ``libtbb`` where the dynamic loader does
not look, so Numba falls back to OpenMP, whose idle workers spin after each
region (GNU OpenMP's ``GOMP_SPINCOUNT``). Measured beside one busy process
with this policy: TBB kept the one-thread speed; OpenMP lost 5-30% (per-sample
and batch 32). :func:`load_tbb` makes the installed TBB visible to Numba.
"""

import ctypes
import os
import sys

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.core.extending import intrinsic

from ._jit import DISABLE_JIT, jit

_TBB_LIBRARY = {"linux": "libtbb.so.12", "darwin": "libtbb.12.dylib"}.get(sys.platform)


def _tbb_library_paths():
    """Where the ``tbb`` package may have put its library: the environment's
    ``lib/``, the user site's, and the files it lists."""
    roots = [sys.prefix, sys.base_prefix]
    try:
        import site

        roots.append(site.getuserbase())
    except Exception:
        pass
    for root in roots:
        yield os.path.join(root, "lib", _TBB_LIBRARY)
    try:
        from importlib.metadata import PackageNotFoundError, files

        for f in files("tbb") or ():
            if f.name == _TBB_LIBRARY:
                yield str(f.locate())
    except (ImportError, PackageNotFoundError):
        pass


def load_tbb():
    """Load the ``tbb`` package's library so that Numba can use TBB as its
    threading layer; returns whether it was loaded.

    Nothing is done when the user chose a threading layer other than TBB
    (``NUMBA_THREADING_LAYER``), when Numba's thread pool is already running,
    on a platform without a known library name, or when no ``tbb`` is
    installed: Numba then picks its layer as usual (OpenMP, else workqueue).
    """
    if _TBB_LIBRARY is None or numba.config.THREADING_LAYER not in (
        "default", "safe", "threadsafe", "forksafe", "tbb"
    ):
        return False
    from numba.np.ufunc import parallel

    if parallel._is_initialized:
        return False
    for path in _tbb_library_paths():
        if os.path.exists(path):
            try:
                ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
                return True
            except OSError:
                continue
    return False


load_tbb()

# policy fields (a float64 array of N_POLICY)
P_ENABLED = 0  # set by the caller: 0 never threaded, 1 measured (the default), 2 always
P_MODE = 1  # mode of the current segment: 1 threaded, 0 serial
P_BEST = 2  # mode with the lower estimate
P_SEGMENT_CYCLES = 3  # cycles of the current segment so far
P_SEGMENT_ROWS = 4  # rows done in the current segment
P_COST = 5  # cycles per row: P_COST + 0 serial, P_COST + 1 threaded (0: not measured)
P_WAIT = 7  # segments in the chosen mode before the next probe
P_INTERVAL = 8  # probe interval (segments)
P_STEPS = 9  # steps run: P_STEPS + 0 serial, P_STEPS + 1 threaded (for tests and benchmarks)
P_SKIP = 11  # steps still to run untimed after a switch or at a call's start
P_SKIP_CYCLES = 12  # and cycles
N_POLICY = 13

SEGMENT_CYCLES = 1 << 22  # about 1.5 ms at 2.5-3 GHz
WARMUP_STEPS = 2
WARMUP_CYCLES = 1 << 20  # about 0.4 ms: an idle core of a virtual machine wakes slowly
THREADS_MARGIN = 0.1  # threads are chosen only when 10% faster: they hold two cores
MIN_PROBE_INTERVAL = 8
MAX_PROBE_INTERVAL = 64  # about 0.1 s of segments


def new_policy(enabled=1):
    """A fresh policy: serial first, threads measured by the first probe.

    Parameters
    ----------
    enabled : {0, 1, 2}, default=1
        0 never threaded, 1 chosen by timing, 2 always threaded (for tests
        and benchmarks).

    Returns
    -------
    policy : ndarray of float64, shape (N_POLICY,)
        The fields ``P_*`` of this module; the kernels update it in place.
    """
    policy = np.zeros(N_POLICY, dtype=np.float64)
    policy[P_ENABLED] = enabled
    policy[P_INTERVAL] = MIN_PROBE_INTERVAL
    return policy


@intrinsic
def cycles(typingctx):
    """The CPU's cycle counter (``llvm.readcyclecounter``: ``rdtsc`` on x86-64).

    Only differences matter. 0 on an architecture without a counter.
    """

    def codegen(context, builder, signature, args):
        fnty = ir.FunctionType(ir.IntType(64), [])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.readcyclecounter")
        return builder.call(fn, [])

    return types.int64(), codegen


@intrinsic
def set_chunk_size(typingctx, size):
    """``numba.set_parallel_chunksize(size)`` for this thread's next parallel
    regions; returns the previous size (0: Numba's default, one block per
    thread).

    Numba's own version calls the thread pool through a ctypes pointer, which
    makes any kernel that uses it uncacheable; this calls the same entry point
    by its symbol, which Numba registers when it launches the pool (launch it
    before the kernel is loaded).

    Parameters
    ----------
    size : int
        Iterations per block of the next parallel loops (0: Numba's default).

    Returns
    -------
    previous : int
    """
    if not isinstance(size, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        # declared as Numba's parfor lowering declares them (same module)
        size_t = ir.IntType(64)
        get = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(size_t, []), "get_parallel_chunksize"
        )
        put = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [size_t]), "set_parallel_chunksize"
        )
        previous = builder.call(get, [])
        builder.call(put, [context.cast(builder, args[0], signature.args[0], types.int64)])
        return previous

    return types.int64(size), codegen


if DISABLE_JIT:
    import time

    def cycles():
        """Nanoseconds of a monotonic clock (the Python twin of the cycle counter)."""
        return time.perf_counter_ns()

    def set_chunk_size(size):
        """Numba's ``set_parallel_chunksize`` (a no-op while the JIT is disabled)."""
        return numba.set_parallel_chunksize(size)


@jit(inline="always")
def begin_call(policy, n_steps):
    """A kernel call of ``n_steps`` steps starts: its first ``WARMUP_STEPS``
    steps are not timed when it has more than twice as many (the pool may
    have slept since the last call); shorter calls time every step, or a
    kernel called for one step at a time would never be measured.

    Parameters
    ----------
    policy : ndarray of float64, shape (N_POLICY,)
        The kind of step's policy; updated.
    n_steps : int
        The steps this call will run.
    """
    if n_steps > 2 * WARMUP_STEPS:
        _start_warmup(policy)


@jit(inline="always")
def use_threads(policy):
    """Whether the next step runs on the thread pool.

    Parameters
    ----------
    policy : ndarray of float64, shape (N_POLICY,)
        The kind of step's policy.

    Returns
    -------
    bool
    """
    return policy[P_ENABLED] == 2 or (policy[P_ENABLED] == 1 and policy[P_MODE] != 0)


@jit(internal=True)
def record_step(policy, threaded, elapsed, rows):
    """Account a step, and choose the mode of the next segment when this one ends.

    Parameters
    ----------
    policy : ndarray of float64, shape (N_POLICY,)
        The kind of step's policy; updated.
    threaded : bool
        The mode the step ran in.
    elapsed : int
        The step's time in cycles (:func:`cycles`).
    rows : int
        The rows the step trained on.
    """
    mode = 1 if threaded else 0
    policy[P_STEPS + mode] += 1
    if policy[P_ENABLED] != 1:
        return
    if policy[P_SKIP] > 0 or policy[P_SKIP_CYCLES] > 0:
        policy[P_SKIP] -= 1
        policy[P_SKIP_CYCLES] -= elapsed
        return
    if elapsed > 0:  # (a thread moved between cores with unsynchronized counters)
        policy[P_SEGMENT_CYCLES] += elapsed
    policy[P_SEGMENT_ROWS] += rows
    best_cost = policy[P_COST + int(policy[P_BEST])]
    losing = (
        mode != policy[P_BEST]
        and best_cost > 0
        and policy[P_SEGMENT_CYCLES] > 2 * best_cost * policy[P_SEGMENT_ROWS]
    )
    if policy[P_SEGMENT_CYCLES] < SEGMENT_CYCLES and not losing:
        return
    cost = policy[P_SEGMENT_CYCLES] / max(policy[P_SEGMENT_ROWS], 1.0)
    policy[P_SEGMENT_CYCLES] = 0
    policy[P_SEGMENT_ROWS] = 0
    best = int(policy[P_BEST])
    other = 1 - best
    if mode != best:  # a probe
        policy[P_COST + mode] = cost
        margin = 1 + THREADS_MARGIN if mode == 1 else 1.0
        if cost * margin < policy[P_COST + best]:
            policy[P_BEST] = mode
            if mode == 0:  # threads left
                _longer_interval(policy)
        else:
            _longer_interval(policy)
        policy[P_WAIT] = policy[P_INTERVAL]
        _switch(policy, policy[P_BEST])
        return
    estimate = policy[P_COST + best]
    policy[P_COST + best] = cost if estimate == 0 else 0.5 * (estimate + cost)
    policy[P_WAIT] -= 1
    if (
        policy[P_COST + other] == 0  # never measured
        or policy[P_WAIT] <= 0
        or (best == 1 and cost > policy[P_COST + 0])  # threaded, and slower than one thread
    ):
        _switch(policy, other)


@jit(inline="always")
def _longer_interval(policy):
    """Double the probe interval of ``policy`` (float64[N_POLICY]), up to
    ``MAX_PROBE_INTERVAL``."""
    policy[P_INTERVAL] = min(2 * policy[P_INTERVAL], MAX_PROBE_INTERVAL)


@jit(inline="always")
def _switch(policy, mode):
    """Run the next segment in ``mode``, its first steps untimed if it is a switch.

    Parameters
    ----------
    policy : ndarray of float64, shape (N_POLICY,)
        Updated.
    mode : int or float
        1 threaded, 0 serial.
    """
    if policy[P_MODE] != mode:
        policy[P_MODE] = mode
        _start_warmup(policy)


@jit(inline="always")
def _start_warmup(policy):
    """Leave the next steps of ``policy`` (float64[N_POLICY]) untimed:
    ``WARMUP_STEPS`` steps and ``WARMUP_CYCLES`` cycles."""
    policy[P_SKIP] = WARMUP_STEPS
    policy[P_SKIP_CYCLES] = WARMUP_CYCLES
