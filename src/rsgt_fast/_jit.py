"""Every numba option, the cache fallback and the serial/parallel choice.

Each kernel is compiled twice from the same Python source: a ``parallel``
variant (``prange`` runs on numba's threading layer) and a ``serial`` variant
(``prange`` is a plain ``range``).  The serial one never touches the threading
layer, which makes it safe where the parallel one is not:

* in a process forked from a parent that already used a parallel region
  (GNU OpenMP, numba's usual layer on Linux, kills such a child);
* inside a PyTorch DataLoader worker (each worker is already one of many
  processes sharing the cores);
* while another thread of the same process is inside a parallel call
  (the ``workqueue`` layer aborts on concurrent use, and several parallel
  calls at once only oversubscribe the cores);
* for tiny inputs, where starting threads costs more than it saves;
* under ``thread_limit(1)``.

The threading layer itself is never configured here.

Compiling costs time that a first call on a small input never earns back,
so code is compiled when the work it speeds up starts to pay for it
(:data:`COMPILE_AFTER` seconds of that work, per kernel and argument types):

* A parallel variant costs a few tenths of a second more to compile than
  its serial one.  The serial variant runs first, also in calls large
  enough for the parallel one, until it has spent that long on them.
* A kernel with a numpy stand-in (:class:`StandIn`: the range scan, the
  curves, small 8/16-bit elements, the facade's table) runs the stand-in,
  which gives the same bits, until the stand-in has spent that long, unless
  numba's cache holds the kernel.

``RSGT_FAST_COMPILE_AFTER=0``, and :func:`rsgt_fast.warmup` in its own
process, compile everything on its first call.  Every tier gives the same
bits.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import sys
import threading
import time
import types
import warnings
from collections.abc import Iterator

import numba
import numpy as np

__all__ = ["thread_limit", "kernel", "serial_kernel", "helper", "engine", "serial_reason",
           "compile_at_once", "COMPILE_AFTER", "StandIn"]

logger = logging.getLogger("rsgt_fast")

#: Options shared by every compiled function.
OPTIONS = {"nogil": True, "error_model": "numpy", "boundscheck": False, "fastmath": False}

#: Inputs with fewer elements than this run the serial variant.
SERIAL_BELOW = 1 << 15


def _seconds_from_env(name, default):
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not seconds >= 0.0:  # also rejects nan
        warnings.warn(f"rsgt_fast: ignoring {name}={value!r}, which is not a number of "
                      f"seconds >= 0; using {default}", RuntimeWarning, stacklevel=2)
        return default
    return seconds


#: Seconds of work in a cheaper-to-start tier (a numpy stand-in, or the
#: serial variant on calls large enough for the parallel one) after which a
#: kernel compiles the next tier for those argument types: about what
#: compiling one costs.  0 compiles everything on its first call.  Set by
#: ``RSGT_FAST_COMPILE_AFTER``.
COMPILE_AFTER = _seconds_from_env("RSGT_FAST_COMPILE_AFTER", 0.3)


#: Cache directories already shown to be writable (one check per directory).
_WRITABLE_CACHE_PATHS = set()


def _njit(fn, **extra):
    """Compile ``fn`` with the shared options, caching where a cache is writable."""
    options = dict(OPTIONS, no_cfunc_wrapper=True, **extra)
    if numba.config.DISABLE_JIT:  # kernels run as Python: nothing to compile or keep
        return numba.njit(**options)(fn)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", numba.NumbaWarning)
            dispatcher = numba.njit(cache=True, **options)(fn)
        # Some locators (a package inside a zip archive, for one) only find out
        # at the first compilation that their directory cannot be written.
        locator = dispatcher._cache._impl.locator
        path = locator.get_cache_path()
        if path not in _WRITABLE_CACHE_PATHS:
            locator.ensure_cache_path()
            _WRITABLE_CACHE_PATHS.add(path)
        return dispatcher
    except (RuntimeError, OSError, AttributeError):
        # No writable cache location (read-only install, unwritable
        # NUMBA_CACHE_DIR or home): compile in memory instead.
        _warn_no_cache()
        return numba.njit(cache=False, **options)(fn)


_warned_no_cache = False


def _warn_no_cache():
    """Say once per process that nothing compiled here will be kept."""
    global _warned_no_cache
    if _warned_no_cache:
        return
    _warned_no_cache = True
    warnings.warn(
        "rsgt_fast: numba cannot write its cache here (read-only install or unwritable "
        "NUMBA_CACHE_DIR), so every process compiles the kernels in memory, which costs "
        "seconds on each first call; set NUMBA_CACHE_DIR to a writable folder to keep them",
        RuntimeWarning, stacklevel=2)


def cache_location():
    """Where compiled kernels are kept: a folder, or ``None`` when they are compiled in memory."""
    from . import _kernels

    for value in vars(_kernels).values():
        if isinstance(value, Kernel):
            impl = getattr(getattr(value.serial, "_cache", None), "_impl", None)
            return None if impl is None else impl.locator.get_cache_path()
    return None


def helper(fn=None, *, from_python=False):
    """Compile a helper: a function called by kernels (and, ``from_python``, by Python).

    Helpers hold no ``prange`` and are shared by both variants.  Those called
    only by kernels get no Python wrapper and no cache entry of their own:
    their code is linked into each calling kernel, which is cached whole, so
    both would only cost compile time.
    """
    if fn is None:
        return lambda f: helper(f, from_python=from_python)
    if from_python:
        return _njit(fn)
    return numba.njit(cache=False, no_cpython_wrapper=True, no_cfunc_wrapper=True,
                      **OPTIONS)(fn)


def serial_kernel(fn):
    """Compile a kernel that only ever runs serially: it holds no ``prange`` and
    never touches the threading layer, so it is safe wherever it is called."""
    return _njit(fn)


def _renamed(fn, suffix):
    # numba's cache file name comes from the qualified name, and its index key
    # does not include the ``parallel`` flag: give each variant its own name so
    # the serial variant can never load the parallel one's machine code.
    clone = types.FunctionType(
        fn.__code__, fn.__globals__, fn.__name__ + suffix, fn.__defaults__, fn.__closure__
    )
    clone.__qualname__ = fn.__qualname__ + suffix
    clone.__module__ = fn.__module__
    clone.__doc__ = fn.__doc__
    return clone


def _type_key(args):
    """What tells one compiled specialisation of a kernel from another, cheaply."""
    return tuple((a.dtype, a.ndim, a.flags.c_contiguous) if isinstance(a, np.ndarray) else type(a)
                 for a in args)


def _cache_counts(dispatcher):
    """Signatures this dispatcher has loaded from the cache and compiled, so far."""
    stats = getattr(dispatcher, "stats", None)  # a plain function under NUMBA_DISABLE_JIT
    if stats is None:
        return 0, 0
    return sum(stats.cache_hits.values()), sum(stats.cache_misses.values())


class Kernel:
    """A kernel compiled in a parallel and a serial variant."""

    def __init__(self, fn):
        self.__name__ = fn.__name__
        self.__doc__ = fn.__doc__
        self.parallel = _njit(_renamed(fn, "__parallel"), parallel=True)
        self.serial = _njit(_renamed(fn, "__serial"), parallel=False)
        #: Per argument-type key: serial seconds spent at parallel size, or
        #: ``None`` once the parallel variant has taken over.
        self.serial_seconds: dict[tuple, float | None] = {}

    def __call__(self, *args):
        """Run the variant chosen by the innermost :func:`engine` block (serial outside one).

        In a parallel block the serial variant stands in until the parallel
        one is worth compiling (see the module's docstring).
        """
        if _VARIANT.get() != "parallel":
            return self.serial(*args)
        key = _type_key(args)
        spent = self.serial_seconds.get(key, 0.0)
        if spent is None:
            return self.parallel(*args)
        if spent >= COMPILE_AFTER or _EAGER.get():
            self.serial_seconds[key] = None
            return self.parallel(*args)
        counts = _cache_counts(self.serial)
        start = time.perf_counter()
        result = self.serial(*args)
        elapsed = time.perf_counter() - start
        if _cache_counts(self.serial) == counts:  # compiling or loading it is not work
            self.serial_seconds[key] = spent + elapsed
        return result


def _has_cache_index(dispatcher):
    """Whether numba's cache holds an index for ``dispatcher`` (some signature compiled before)."""
    try:
        return os.path.exists(dispatcher._cache._cache_file._index_path)
    except AttributeError:  # no cache (compiled in memory, NUMBA_DISABLE_JIT) or another numba
        return False


class StandIn:
    """A :class:`Kernel` with a numpy function that gives the same results until it is compiled.

    Per argument types, the stand-in runs while it has spent less than
    :data:`COMPILE_AFTER` seconds, unless numba's cache holds the kernel
    (for some argument types: loading is cheap, and a warmed cache holds them
    all).
    """

    def __init__(self, kernel, stand_in, key=None, dispatchers=None):
        self.kernel = kernel
        self.stand_in = stand_in
        #: ``key(*args)``: what tells the kernel's specialisations apart (by
        #: default every argument's type); called on every call, so keep it cheap.
        self.key = key or (lambda *args: _type_key(args))
        #: The compiled functions whose cache entries make the stand-in needless
        #: (by default the kernel's two variants).
        self.dispatchers = dispatchers
        #: Per argument-type key: the stand-in's seconds, or ``None`` once compiled.
        self.seconds: dict = {}
        self._cached = None

    def __call__(self, *args, serial=False):
        """Run the stand-in or the kernel (its ``serial`` variant when asked)."""
        key = self.key(*args)
        spent = self.seconds.get(key, 0.0)
        if spent is not None:
            if self._stand_in_may_run(spent):
                start = time.perf_counter()
                result = self.stand_in(*args)
                self.seconds[key] = spent + time.perf_counter() - start
                return result
            self.seconds[key] = None
        return (self.kernel.serial if serial else self.kernel)(*args)

    def _stand_in_may_run(self, spent):
        if spent >= COMPILE_AFTER or _EAGER.get() or numba.config.DISABLE_JIT:
            return False
        if self._cached is None:
            compiled = self.dispatchers or (self.kernel.serial, self.kernel.parallel)
            self._cached = any(_has_cache_index(d) for d in compiled)
        return not self._cached


def kernel(fn):
    """Compile ``fn`` (which may use ``prange``) as a :class:`Kernel`."""
    return Kernel(fn)


# ---------------------------------------------------------------- the choice

_THREAD_LIMIT: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "rsgt_fast_thread_limit", default=None
)
_VARIANT: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "rsgt_fast_variant", default=None
)
_EAGER: contextvars.ContextVar[bool] = contextvars.ContextVar("rsgt_fast_eager", default=False)
_parallel_lock = threading.Lock()
_parallel_used = False
_forked_after_parallel = False


def _after_fork_in_child():
    global _forked_after_parallel, _parallel_lock
    _forked_after_parallel = _forked_after_parallel or _parallel_used
    # A lock held by another thread of the parent at fork time stays held forever.
    _parallel_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _in_torch_worker():
    data = sys.modules.get("torch.utils.data")
    if data is None:
        return False
    try:
        return data.get_worker_info() is not None
    except Exception:  # pragma: no cover - a torch too old or too new to ask
        return False


@contextlib.contextmanager
def thread_limit(n_threads: int | None) -> Iterator[None]:
    """Cap the number of threads used by the calls made inside the block.

    Parameters
    ----------
    n_threads : int or None
        The most threads any call inside the block may use; ``1`` selects the
        serial kernels, ``None`` lifts the cap.  The cap applies to the
        current thread (and asyncio task) only.

    Examples
    --------
    >>> import numpy as np, rsgt_fast
    >>> with rsgt_fast.thread_limit(1):
    ...     out = rsgt_fast.transform_batch(np.arange(8).reshape(2, 4), rng=0)
    """
    if n_threads is not None:
        if isinstance(n_threads, bool) or not isinstance(n_threads, (int, np.integer)):
            raise TypeError(f"n_threads must be an int or None, got {n_threads!r}")
        if n_threads < 1:
            raise ValueError(f"n_threads must be >= 1, got {n_threads!r}")
        n_threads = int(n_threads)
    token = _THREAD_LIMIT.set(n_threads)
    try:
        yield
    finally:
        _THREAD_LIMIT.reset(token)


@contextlib.contextmanager
def compile_at_once() -> Iterator[None]:
    """Inside the block, calls compile (or load) the kernels and variants they may use at once."""
    token = _EAGER.set(True)
    try:
        yield
    finally:
        _EAGER.reset(token)


def serial_reason(size):
    """Why a call on ``size`` elements must run serially, or ``None``.

    The cheapest check comes first: most calls on small inputs are made many
    times a second.
    """
    if size < SERIAL_BELOW:
        return "small input"
    if _forked_after_parallel:
        return "forked child of a process that used parallel kernels"
    if _in_torch_worker():
        return "PyTorch DataLoader worker"
    limit = _THREAD_LIMIT.get()
    if limit == 1 or numba.config.NUMBA_NUM_THREADS == 1:
        return "thread limit of 1"
    return None


class engine:
    """Choose the variant for one call on ``size`` elements; kernels called inside use it.

    A context manager whose ``__enter__`` returns the variant's name,
    ``"parallel"`` or ``"serial"``; the reason for a serial choice is logged
    at DEBUG level on the ``rsgt_fast`` logger.
    """

    __slots__ = ("size", "variant", "_token", "_previous")

    def __init__(self, size):
        self.size = size

    def __enter__(self):
        global _parallel_used
        reason = serial_reason(self.size)
        if reason is None and not _parallel_lock.acquire(blocking=False):
            reason = "another thread is in a parallel call"
        self._previous = None
        if reason is not None:
            logger.debug("serial kernels for %d elements: %s", self.size, reason)
            self.variant = "serial"
        else:
            self.variant = "parallel"
            _parallel_used = True
            limit = _THREAD_LIMIT.get()
            if limit is not None:
                self._previous = numba.get_num_threads()
                numba.set_num_threads(min(limit, numba.config.NUMBA_NUM_THREADS))
        self._token = _VARIANT.set(self.variant)
        return self.variant

    def __exit__(self, *exc):
        _VARIANT.reset(self._token)
        if self.variant == "parallel":
            if self._previous is not None:
                numba.set_num_threads(self._previous)
            _parallel_lock.release()
        return False
