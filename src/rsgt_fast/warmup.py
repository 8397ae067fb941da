"""Compile every kernel for some input dtypes ahead of time, into numba's cache.

A process that finds a kernel in numba's on-disk cache loads it in a few
milliseconds; one that does not compiles it, which takes a fraction of a
second per kernel.  :func:`warmup` compiles every kernel the planner's
registry (:func:`rsgt_fast.plan.signatures`) lists for the given input and
output dtypes, so that a Docker image, a cluster node or a CI runner pays for
compilation once, when it is built.  Running it again only loads the cache.
Also available as ``rsgt-fast warmup [--dtypes int16,float32] [--out-dtypes
float32]``.

:func:`preload` loads what the cache already holds for the transforms of
some dtypes into this process, without compiling anything: the MONAI,
TorchIO and batchgeneratorsv2 transforms call it when they are built, so that
DataLoader workers forked afterwards start with the kernels in memory.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from typing import NamedTuple

from numba.core import event

from . import _jit, plan
from ._validate import input_dtype, output_dtype

__all__ = ["warmup", "preload", "Warmup", "DTYPES"]

#: Input dtypes warmed by default: the ones CT and MR images come in.
DTYPES = ("uint8", "int16", "uint16", "int32", "float16", "float32", "float64")


class Warmup(NamedTuple):
    """What :func:`warmup` did."""

    #: Seconds per input dtype.
    seconds: dict
    #: The folder numba keeps compiled kernels in, or ``None`` (compiled in memory).
    cache: str | None
    #: Kernel signatures compiled or loaded.
    kernels: int


def _signatures(dtypes, out_dtypes, everything=True):
    """Per input dtype, the distinct ``(kernel, types)`` of every route."""
    found = {}
    for dtype in dtypes:
        seen = {}
        for out in out_dtypes:
            entries = plan.signatures(dtype, out)
            if everything:
                entries += plan.signatures_of_normalizations(dtype, out)
                entries += plan.signatures_of_selections(dtype, out)
            for name, kernel, types in entries:
                seen[(name, types)] = (kernel, types)
        found[dtype] = list(seen.values())
    return found


def warmup(dtypes: Iterable = DTYPES, out_dtypes: Iterable = ("float32",)) -> Warmup:
    """Compile (or load) every kernel for input ``dtypes`` and output ``out_dtypes``.

    Parameters
    ----------
    dtypes : iterable of dtype-like
        Input dtypes, e.g. ``("int16", "float32")``.
    out_dtypes : iterable of {'float32', 'float16', 'float64'}
        Output dtypes of the transforms and normalisations.

    Returns
    -------
    Warmup
        Seconds per input dtype, the cache folder and the number of kernel
        signatures compiled or loaded.

    Examples
    --------
    >>> from rsgt_fast.warmup import warmup
    >>> done = warmup(["uint8"])
    >>> sorted(done.seconds)
    ['uint8']
    """
    if isinstance(dtypes, (str, type)) or hasattr(dtypes, "kind"):
        dtypes = [dtypes]
    if isinstance(out_dtypes, (str, type)) or hasattr(out_dtypes, "kind"):
        out_dtypes = [out_dtypes]
    dtypes = [input_dtype(d, "dtypes") for d in dtypes]
    out_dtypes = [output_dtype(d, "out_dtypes") for d in out_dtypes]
    if not dtypes or not out_dtypes:
        raise ValueError("warmup needs at least one input and one output dtype")
    seconds = {}
    count = 0
    for dtype, entries in _signatures(dtypes, out_dtypes).items():
        start = time.perf_counter()
        if _jit.compiling():  # kernels that run as Python have nothing to compile
            for kernel, types in entries:
                kernel.compile(types)
        count += len(entries)
        seconds[dtype.name] = time.perf_counter() - start
    return Warmup(seconds, _jit.cache_location(), count)


def preload(dtypes: Iterable = ("float32",), out_dtype="float32") -> int:
    """Load the transforms' kernels for ``dtypes`` that numba's cache holds.

    A process forked afterwards (a PyTorch DataLoader worker, say) inherits
    them, so its first call need not load them itself.  Loading starts no
    thread, and nothing is compiled (a compilation numba would start after
    missing the cache is stopped through numba's event API); a pair of dtypes
    is looked at once per process.

    Parameters
    ----------
    dtypes : iterable of dtype-like
        Input dtypes of the images to come.
    out_dtype : dtype-like
        Output dtype of the transforms.

    Returns
    -------
    int
        Kernel signatures loaded.
    """
    if not _jit.compiling():
        return 0
    out_dtype = output_dtype(out_dtype)
    dtypes = [d for d in (input_dtype(d, "dtypes") for d in dtypes)
              if (d, out_dtype) not in _preloaded]
    loaded = 0
    with event.install_listener("numba:compile", _LoadOnly()):
        for dtype, entries in _signatures(dtypes, [out_dtype], everything=False).items():
            for kernel, types in entries:
                if _jit.in_cache(kernel):
                    try:
                        kernel.compile(types)
                        loaded += 1
                    except _NotCached:
                        pass
            _preloaded.add((dtype, out_dtype))
    return loaded


class _NotCached(Exception):
    """Stops a compilation that :func:`preload` would have started."""


class _LoadOnly(event.Listener):
    """Stops the compilations this thread starts, so that only what the cache holds loads.

    numba raises its compile event after a cache miss only.
    """

    def __init__(self):
        self.thread = threading.get_ident()

    def on_start(self, ev):
        if threading.get_ident() == self.thread:
            raise _NotCached

    def on_end(self, ev):
        pass


#: The ``(input dtype, output dtype)`` pairs :func:`preload` has been through.
_preloaded: set = set()
