"""One decorator policy for every kernel.

Every kernel is compiled with ``cache=True`` (unless ``FASTMLP_CACHE=0``, useful
where the on-disk cache misbehaves, e.g. under some multiprocessing setups),
``nogil=True`` so that two models can train in two threads, and
``error_model="numpy"`` so that a division by zero gives inf/nan instead of
raising inside a compiled loop. ``fastmath`` stays off by default: the epoch
loops must see NaN and inf to stop on them.

The on-disk cache is Numba's, made tolerant: an unreadable entry (a truncated
or corrupted file, a pickle from another Numba) is deleted and the kernel
recompiled with a warning, and a cache directory that cannot be used disables
caching for that kernel with a warning, instead of failing the import or the
first call.
A kernel loaded from it skips Numba's compiler set-up (its typing and
lowering registries, ~0.15 s once per process), which loaded machine code
does not need: a warm process's first fit costs 0.08 s more than the next.
"""

import os
import warnings

import numba
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.core.caching import FunctionCache
from numba.core.extending import intrinsic
from numba.core.runtime import rtsys

CACHE = os.environ.get("FASTMLP_CACHE", "1") not in ("0", "false", "False", "no")
# ``NUMBA_DISABLE_JIT=1``: every kernel runs as the plain Python it is written
# in (slow; for debugging and coverage). The few pieces Numba supplies at
# compile time (intrinsics, an overload) get Python twins where they are defined.
DISABLE_JIT = bool(numba.config.DISABLE_JIT)


class CacheWarning(UserWarning):
    """The Numba cache could not be read or written; kernels are compiled instead."""


class _TolerantFunctionCache(FunctionCache):
    """Numba's function cache, except that a bad entry means "compile", not "crash"."""

    def load_overload(self, sig, target_context):
        try:
            # Numba's own load_overload first refreshes the target context:
            # it imports and installs every typing and lowering registry (all
            # of NumPy's functions), 0.15-0.2 s, a compiler's needs, which a
            # compiled kernel loaded from disk does not have. What the loaded
            # machine code calls into must be in place: Numba's runtime (NRT)
            # symbols, installed here; its C helpers and math functions are
            # installed when the context is made; parallel kernels start their
            # thread pool themselves on load. A compile later in the process
            # refreshes the context as usual.
            rtsys.initialize(target_context)
            with self._guard_against_spurious_io_errors():
                return self._load_overload(sig, target_context)
        except Exception as exc:
            index = getattr(self._cache_file, "_index_path", None)
            try:
                if index is not None:
                    os.unlink(index)  # rewritten by the next save
            except OSError:
                pass
            warnings.warn(
                f"fastmlp: unreadable Numba cache entry for {self._name} ({exc!r}); "
                "compiling instead",
                CacheWarning,
                stacklevel=2,
            )
            return None

    def save_overload(self, sig, data):
        try:
            super().save_overload(sig, data)
        except Exception as exc:
            warnings.warn(
                f"fastmlp: could not write the Numba cache for {self._name} ({exc!r})",
                CacheWarning,
                stacklevel=2,
            )


def _enable_tolerant_cache(dispatcher):
    """``dispatcher`` with a :class:`_TolerantFunctionCache`, or uncached with
    a warning when no cache directory can be used."""
    try:
        dispatcher._cache = _TolerantFunctionCache(dispatcher.py_func)
    except Exception as exc:  # e.g. no usable cache directory
        warnings.warn(
            f"fastmlp: Numba cache unavailable for {dispatcher.py_func.__qualname__} ({exc}); "
            "kernels will be compiled in every new process",
            CacheWarning,
            stacklevel=3,
        )
    return dispatcher


# ``parallel=PRANGE_ONLY``: explicit ``prange`` loops only. Numba's other
# parallel rewrites (array expressions, ``np.zeros``, reductions, fusion) made
# each of the kernels' small scratch allocations (``np.zeros(2)``) a parallel
# region of its own, one more thread-pool launch per call for a few elements.
PRANGE_ONLY = {
    "prange": True,
    "numpy": False,
    "reduction": False,
    "setitem": False,
    "stencil": False,
    "fusion": False,
    "comprehension": False,
    "inplace_binop": False,
}


def jit(func=None, **overrides):
    """Compile ``func`` with the project's Numba options (see module docstring).

    Parameters
    ----------
    func : callable or None
        The kernel; None to use ``jit`` as a decorator with options.
    **overrides
        Numba options (``parallel``, ``fastmath``, ``inline``, ...), and
        ``internal=True`` for a kernel called only from other kernels (no
        Python or C entry point), ``cache=False`` to keep it off the disk.

    Returns
    -------
    numba dispatcher, or ``func`` itself under ``NUMBA_DISABLE_JIT``
    """
    options = dict(nogil=True, error_model="numpy", fastmath=False)
    options.update(overrides)
    cache = options.pop("cache", CACHE)
    if options.pop("internal", False):
        # Called only from other kernels: no Python or C entry point to
        # generate, optimize and emit (it saves compile time, and more the
        # more arguments a kernel takes).
        options.update(no_cpython_wrapper=True, no_cfunc_wrapper=True)

    def decorate(f):
        if DISABLE_JIT:
            return f
        dispatcher = numba.njit(**options)(f)
        return _enable_tolerant_cache(dispatcher) if cache else dispatcher

    if func is None:
        return decorate
    return decorate(func)


def is_ready(kernel, args):
    """Whether ``kernel(*args)`` would run without compiling first.

    True when the version for these argument types is compiled in this process
    or stored in the on-disk cache (from which loading takes milliseconds); False
    when calling it would compile it. Always True under ``NUMBA_DISABLE_JIT``.

    Parameters
    ----------
    kernel : numba dispatcher
        A kernel made by :func:`jit`.
    args : tuple
        The arguments it would be called with.

    Returns
    -------
    bool
    """
    if DISABLE_JIT or not hasattr(kernel, "typeof_pyval"):
        return True
    signature = tuple(kernel.typeof_pyval(value) for value in args)
    if signature in kernel.overloads:
        return True
    cache = kernel._cache
    if not isinstance(cache, FunctionCache) or not getattr(cache, "_enabled", False):
        return False
    try:
        key = cache._index_key(signature, kernel.targetctx.codegen())
        return key in cache._cache_file._load_index()
    except Exception:  # an unreadable index: loading would fail, so it would compile
        return False


@intrinsic
def unliteral(typingctx, value):
    """``value`` typed as a plain runtime value, not as a literal constant.

    Numba compiles a callee once per literal that a caller passes it
    (``f(x, True)`` and ``f(x, flag)`` are two compilations). Passing
    ``unliteral(True)`` lets every caller share one compiled version.

    Parameters
    ----------
    value : bool, int or float
        A constant, typically.

    Returns
    -------
    The same value, typed as a runtime value.
    """
    runtime_type = types.unliteral(value)

    def codegen(context, builder, signature, args):
        return context.cast(builder, args[0], signature.args[0], runtime_type)

    return runtime_type(value), codegen


# LLVM's prefetch intrinsic is named after its pointer type: ``i8*`` under the
# typed pointers of older llvmlite (LLVM 14), ``ptr`` (opaque) under newer ones
_TYPED_POINTERS = str(ir.IntType(8).as_pointer()) == "i8*"
_PREFETCH = "llvm.prefetch.p0i8" if _TYPED_POINTERS else "llvm.prefetch.p0"


@intrinsic
def prefetch(typingctx, array, row, column):
    """Ask the CPU to bring ``array[row, column]`` (2-D) into cache, without waiting.

    A hint (a prefetch instruction): it never faults and retires at once, so a
    loop can prefetch the rows it will need a few iterations ahead while it
    works on the current one, keeping several cache misses in flight.

    Parameters
    ----------
    array : ndarray, 2-D
    row, column : int
        The element whose cache line to load.
    """

    def codegen(context, builder, signature, args):
        array_type = signature.args[0]
        array_value = context.make_array(array_type)(context, builder, args[0])
        indices = [
            context.cast(builder, value, value_type, types.intp)
            for value, value_type in zip(args[1:], signature.args[1:])
        ]
        pointer = cgutils.get_item_pointer(
            context, builder, array_type, array_value, indices, wraparound=False
        )
        byte_pointer = ir.IntType(8).as_pointer()
        int32 = ir.IntType(32)
        function = cgutils.get_or_insert_function(
            builder.module,
            ir.FunctionType(ir.VoidType(), [byte_pointer, int32, int32, int32]),
            _PREFETCH,
        )
        # read, keep in all cache levels, data
        builder.call(
            function,
            [builder.bitcast(pointer, byte_pointer), int32(0), int32(3), int32(1)],
        )
        return context.get_dummy_value()

    return types.void(array, row, column), codegen


if DISABLE_JIT:

    def unliteral(value):
        """``value`` itself (plain Python has no literal types)."""
        return value

    def prefetch(array, row, column):
        """Nothing (a cache hint has no meaning in plain Python)."""
