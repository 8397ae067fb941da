"""Every numba option, the cache fallback, and the threads a call runs on.

Compiling
    :func:`formula` compiles a helper that kernels call (its Python function
    stays the host version, see :mod:`._formulas`); :func:`kernel` compiles a
    function that Python calls, cached on disk where numba can write a cache
    and in memory where it cannot (with one warning).  Each kernel exists once:
    there is no parallel variant.  Nothing here reads numba's private
    attributes; whether the cache folder can be written is found out by
    writing to it.

Threads
    A kernel takes a range of *tasks* ``[t0, t1)`` as its last two arguments
    (elements, or chunks of elements) and releases the GIL while it runs.
    :func:`run` splits the tasks of one call into equal contiguous shares, one
    per thread: the calling thread takes the first, a small pool of
    persistent Python threads the rest, and the calling thread also runs any
    share a helper has not taken by the time its own is done (a helper whose
    core another program's spinning threads hold starts late).  Hand-overs go
    through counters read by spinning without the GIL: a few microseconds a
    call.  numba's threading layer is never
    used, so nothing here minds ``fork`` (GNU OpenMP, numba's usual layer on
    Linux, kills a forked child of a process that used it), and every result
    is the same whatever the number of threads.  :func:`threads` decides how
    many a call gets: one for small work, inside PyTorch DataLoader workers
    (each is already one of many processes), under ``thread_limit(1)``, and
    while another thread of the process has the pool; else up to
    ``NUMBA_NUM_THREADS`` (numba's setting) and the CPUs the process may run
    on.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import re
import sys
import tempfile
import threading
import time
import types
import warnings
from collections.abc import Iterator

import numba
import numpy as np
from llvmlite import ir
from numba.extending import intrinsic

__all__ = ["OPTIONS", "formula", "compiling", "python", "kernel", "in_cache", "seconds_from_env",
           "spin", "take", "cache_location", "thread_limit", "threads", "serial_reason", "run",
           "spread", "PARALLEL_WORK"]

logger = logging.getLogger("rsgt_fast")

#: Options shared by every compiled function.
OPTIONS = {"nogil": True, "error_model": "numpy", "boundscheck": False, "fastmath": False}


# ---------------------------------------------------------------- compiling


#: Each compiled function's host version: its own Python source run on numbers or numpy
#: arrays, or the numpy version it was given (see :func:`formula`).
_HOST: dict = {}


def formula(fn=None, *, host=None):
    """Compile ``fn`` for kernels to call.

    It gets neither a Python wrapper nor a cache entry of its own: its code
    is linked into each kernel that calls it, which is cached whole.  Its
    host version (:func:`python`) is ``fn`` itself, or ``host``: a numpy
    version of a loop that numpy runs far faster, with the same arithmetic
    on each value (so the same bits).
    """
    if fn is None:
        return lambda f: formula(f, host=host)
    compiled = fn if numba.config.DISABLE_JIT else numba.njit(
        cache=False, no_cpython_wrapper=True, no_cfunc_wrapper=True, **OPTIONS)(fn)
    _HOST[id(compiled)] = (compiled, fn, host)
    return compiled


def compiling():
    """Whether kernels are compiled (not run as Python under ``NUMBA_DISABLE_JIT=1``)."""
    return not numba.config.DISABLE_JIT


def python(fn):
    """The host version of a compiled function (:func:`formula` or :func:`kernel`).

    That is its Python source, run with every compiled function it calls
    replaced by their host versions, or the numpy version it was given.
    Anything else is returned as it is.
    """
    entry = _HOST.get(id(fn))
    if entry is None:
        return fn
    compiled, source, given = entry
    if given is not None:
        return given
    key = ("python", id(fn))
    if key not in _HOST:
        names = dict(source.__globals__)
        _HOST[key] = types.FunctionType(source.__code__, names, source.__name__,
                                        source.__defaults__, source.__closure__)
        # Registered before its callees are resolved, so that functions calling
        # one another end up calling one another's host versions.
        for name, value in source.__globals__.items():
            if id(value) in _HOST and _HOST[id(value)][0] is value:
                names[name] = python(value)
    return _HOST[key]


#: Where compiled kernels are kept, once a kernel has been decorated with a cache.
_cache = {"path": None, "writable": set()}


def kernel(fn, *, nogil=True):
    """Compile ``fn`` as a kernel called from Python, cached where a cache can be written.

    ``nogil=False`` keeps the GIL through the call: for calls of a few
    nanoseconds, where releasing and taking it back would cost more.
    """
    options = dict(OPTIONS, no_cfunc_wrapper=True, nogil=nogil)
    if numba.config.DISABLE_JIT:  # kernels run as Python: nothing to compile or keep
        return fn
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", numba.NumbaWarning)
            dispatcher = numba.njit(cache=True, **options)(fn)
        _HOST[id(dispatcher)] = (dispatcher, fn, None)
        path = dispatcher.stats.cache_path
        if path not in _cache["writable"]:
            # numba only finds out when it first saves; find out now, once per folder.
            os.makedirs(path, exist_ok=True)
            tempfile.TemporaryFile(dir=path).close()
            _cache["writable"].add(path)
        _cache["path"] = path
        return dispatcher
    except (RuntimeError, OSError):
        # No writable cache location (read-only install, unwritable
        # NUMBA_CACHE_DIR or home): compile in memory instead.
        _warn_no_cache()
        dispatcher = numba.njit(cache=False, **options)(fn)
        _HOST[id(dispatcher)] = (dispatcher, fn, None)
        return dispatcher


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
        RuntimeWarning, stacklevel=3)


def in_cache(dispatcher):
    """Whether numba's cache holds code of ``dispatcher`` (for some argument types).

    numba documents one index file per function in its cache folder, named
    after the function; its presence is what is checked (without reading
    numba's private attributes).
    """
    if numba.config.DISABLE_JIT or _warned_no_cache:
        return False
    try:
        names = os.listdir(dispatcher.stats.cache_path)
    except (AttributeError, OSError, TypeError):  # no cache (compiled in memory)
        return False
    # "<module>.<function>-<line>.py<version>.nbi" (numba 0.68 writes the dot, older
    # versions an underscore).
    index = re.compile(rf".*[._]{re.escape(dispatcher.py_func.__name__)}-\d+\.py\d+\.nbi")
    return any(index.fullmatch(name) for name in names)


def seconds_from_env(name, default):
    """A number of seconds >= 0 from environment variable ``name``, else ``default``.

    A value that is not one gives a warning.
    """
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


def cache_location():
    """Where compiled kernels are kept: a folder, or ``None`` when they are compiled in memory."""
    return None if _warned_no_cache else _cache["path"]


# ---------------------------------------------------------------- threads

#: Work (values read) below which a call runs on the calling thread alone: handing a
#: share to a thread of the pool costs about as much as mapping this many values that
#: are not in cache yet, as in a training loop, where each call reads a new image.
PARALLEL_WORK = 3 << 17

_THREAD_LIMIT: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "rsgt_fast_thread_limit", default=None
)


@contextlib.contextmanager
def thread_limit(n_threads: int | None) -> Iterator[None]:
    """Cap the number of threads used by the calls made inside the block.

    Parameters
    ----------
    n_threads : int or None
        The most threads any call inside the block may use; ``1`` runs every
        call on the calling thread, ``None`` lifts the cap.  The cap applies
        to the current thread (and asyncio task) only.

    Yields
    ------
    None
        The block runs with the cap.

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


def _cores():
    """Threads a call may use at most: numba's setting and the CPUs this process may use.

    Read once per process.
    """
    if not _core_count:
        try:
            usable = len(os.sched_getaffinity(0))
        except (AttributeError, OSError):  # pragma: no cover - not Linux
            usable = os.cpu_count() or 1
        _core_count.append(max(1, min(numba.config.NUMBA_NUM_THREADS, usable)))
    return _core_count[0]


_core_count: list[int] = []


def _in_torch_worker():
    data = sys.modules.get("torch.utils.data")
    if data is None:
        return False
    try:
        return data.get_worker_info() is not None
    except Exception:  # pragma: no cover - a torch too old or too new to ask
        return False


def serial_reason(work):
    """Why a call reading ``work`` values runs on the calling thread alone, or ``None``.

    The cheapest check comes first: most calls on small inputs are made many
    times a second.
    """
    if work < PARALLEL_WORK:
        return "small input"
    if numba.config.DISABLE_JIT:
        return "kernels run as Python"
    if _in_torch_worker():
        return "PyTorch DataLoader worker"
    if _THREAD_LIMIT.get() == 1 or _cores() == 1:
        return "thread limit of 1"
    return None


def threads(work):
    """How many threads a call reading ``work`` values may use (see the module notes)."""
    reason = serial_reason(work)
    if reason is not None:
        if work >= PARALLEL_WORK:
            logger.debug("one thread for %d values: %s", work, reason)
        return 1
    limit = _THREAD_LIMIT.get()
    cores = _cores()
    return max(1, min(cores if limit is None else min(limit, cores), work // (PARALLEL_WORK >> 1)))


@intrinsic
def _load_acquire(typingctx, flags, i):
    """``flags[i]`` read with acquire ordering: a spinning loop sees another thread's write."""
    def codegen(context, builder, signature, args):
        array = context.make_array(signature.args[0])(context, builder, args[0])
        return builder.load_atomic(builder.gep(array.data, [args[1]]), ordering="acquire",
                                   align=8)
    return numba.types.int64(flags, i), codegen


#: Reads a helper thread spins for its next job before it sleeps (a few tenths of a
#: millisecond), the calling thread for the helpers' shares (a few milliseconds), and
#: a helper that got a job before it asks for the GIL (a few microseconds).
_SPIN_HELPER, _SPIN_CALLER, _SPIN_GIL = 1 << 18, 1 << 21, 1 << 12


def _spin(flags, i, target, limit, settle):
    """Whether ``flags[i]`` reaches ``target`` within ``limit`` reads, without the GIL.

    ``settle`` reads more once it has.
    """
    for _ in range(limit):
        if _load_acquire(flags, i) >= target:
            # A helper reads a few microseconds more, by which time the caller
            # has entered its own part and released the GIL: asking for it
            # earlier puts a helper to sleep on it, which costs tens of
            # microseconds.
            for _ in range(settle):
                _load_acquire(flags, i)
            return True
    return False


@intrinsic
def _fetch_add(typingctx, counters, i):
    """``counters[i] += 1``, atomically; the value before."""
    def codegen(context, builder, signature, args):
        array = context.make_array(signature.args[0])(context, builder, args[0])
        return builder.atomic_rmw("add", builder.gep(array.data, [args[1]]),
                                  ir.Constant(ir.IntType(64), 1), "seq_cst")
    return numba.types.int64(counters, i), codegen


def _take(counters, i):
    """Take the next number of ``counters[i]`` (atomically, without the GIL)."""
    return _fetch_add(counters, i)


def _share(fn, args, t0, t1, counters, h, errors):
    """Run the ``h``-th helper's share ``fn(*args, t0, t1)``, unless another thread took it.

    ``counters[h]`` tells whether someone took the share (whoever takes it
    first runs it: the helper, or the calling thread once its own share is
    done, so that a helper that starts late, one whose core another program
    is using, holds nothing up) and ``counters[-1]`` counts the shares run.
    """
    if take(counters, h) != 0:
        return
    try:
        fn(*args, t0, t1)
    except BaseException as exc:  # handed to the calling thread
        errors.append(exc)
    finally:
        take(counters, len(counters) - 1)


class _Worker:
    """A persistent helper thread that takes part in one call at a time.

    A call is handed over through ``started[slot]`` (the number of the last
    call posted), which the helper watches by spinning without the GIL (a few
    microseconds, where a lock handed back and forth costs tens); after
    spinning a while it sleeps on a semaphore instead.
    """

    __slots__ = ("slot", "job", "count", "sleeping", "wake")

    def __init__(self, slot):
        self.slot = slot
        self.job = None
        self.count = 0
        self.sleeping = False
        self.wake = threading.Lock()  # held while the helper may sleep on it
        self.wake.acquire()
        threading.Thread(target=self._loop, args=(_pool.started,), name="rsgt_fast",
                         daemon=True).start()

    def _loop(self, started):
        slot = self.slot
        while True:
            target = self.count + 1
            if not spin(started, slot, target, _SPIN_HELPER, _SPIN_GIL):
                # Sleep until a call wakes this helper, with a job or to spin for the next.
                self.sleeping = True
                if started[slot] < target:
                    self.wake.acquire()
                self.sleeping = False
                continue
            self.count = int(started[slot])
            job = self.job  # None where the call ended without this helper
            if job is not None:
                _share(*job)
            del job  # the call's arrays are the caller's to free

    def start(self, job, count):
        """Take part in call number ``count``: ``job`` is the arguments of :func:`_share`."""
        self.job = job
        _pool.started[self.slot] = count
        self.nudge()

    def nudge(self):
        """Wake the helper if it sleeps."""
        if self.sleeping:
            try:
                self.wake.release()
            except RuntimeError:  # released already: the helper is waking up
                pass


class _Pool:
    """The helper threads of this process and their counters (made on first use)."""

    def __init__(self):
        self.workers: list[_Worker] = []
        self.started = np.zeros(64, np.int64)
        self.count = 0
        #: Held by the thread whose call is using the pool.
        self.lock = threading.Lock()

    def helpers(self, n):
        while len(self.workers) < min(n, len(self.started)):
            self.workers.append(_Worker(len(self.workers)))
        return self.workers[:n]


#: The spin of a helper or the caller, and the taking of a number: kernels (cached),
#: compiled by ``warmup`` too.
spin = kernel(_spin)
take = kernel(_take, nogil=False)
_pool = _Pool()


def _after_fork_in_child():
    global _pool
    # Threads do not survive a fork, and a lock held by one of the parent's
    # threads at that moment would stay held forever.
    _pool = _Pool()
    _core_count.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def run(fn, args, n_tasks, work):
    """``fn(*args, t0, t1)`` over tasks ``[0, n_tasks)``, on the threads ``work`` earns.

    ``work`` is in values read, or their equivalent (see :func:`threads`).
    """
    spread(fn, args, n_tasks, threads(work) if n_tasks > 1 else 1)


def spread(fn, args, n_tasks, n_threads):
    """``fn(*args, t0, t1)`` over tasks ``[0, n_tasks)`` on up to ``n_threads`` threads.

    The tasks are split into equal contiguous shares, one per thread: the
    calling thread runs the first, then any helper's share that the helper
    has not taken yet (:func:`_share`).  Where another thread is using the
    pool, or kernels run as Python, the call runs on the calling thread alone.
    The result is the same either way.
    """
    n_threads = min(n_threads, n_tasks)
    pool = _pool
    if n_threads <= 1 or not compiling() or not pool.lock.acquire(blocking=False):
        fn(*args, 0, n_tasks)
        return
    try:
        helpers = pool.helpers(n_threads - 1)
        n_shares = len(helpers) + 1
        bounds = [n_tasks * k // n_shares for k in range(n_shares + 1)]
        counters = np.zeros(n_shares, np.int64)  # a claim per helper's share, then the count
        errors: list[BaseException] = []
        jobs = [(fn, args, bounds[h + 1], bounds[h + 2], counters, h, errors)
                for h in range(len(helpers))]
        pool.count += 1
        for worker, job in zip(helpers, jobs):
            worker.start(job, pool.count)
        try:
            fn(*args, bounds[0], bounds[1])
        finally:
            for job in jobs:
                _share(*job)
            # Every share is run to its end before the call returns: the helpers
            # write into arrays the caller is about to free or read.
            if not spin(counters, n_shares - 1, n_shares - 1, _SPIN_CALLER, 0):
                while counters[-1] < n_shares - 1:
                    time.sleep(50e-6)
            for worker in helpers:
                worker.job = None
        if errors:
            raise errors[0]
    finally:
        pool.lock.release()
