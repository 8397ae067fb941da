"""Compile every kernel path for some input dtypes ahead of time, into numba's cache.

A process that finds a kernel in numba's on-disk cache loads it in well under
a second; one that does not compiles it, which takes seconds per path.
:func:`warmup` runs each path once on small inputs (both the serial and, where
this process may use it, the parallel variant), so that a Docker image, a
cluster node or a CI runner pays for compilation once, when it is built.
Later calls in the same process then use the parallel variants at once.

Running it again only loads the cache.  Also available as
``rsgt-fast warmup [--dtypes int16,float32] [--out-dtypes float32]``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import NamedTuple

import numpy as np

from . import _jit
from ._validate import input_dtype, output_dtype
from .augmentation import random_smooth_grayvalue_transform
from .batch import transform_batch
from .normalization import normalize_ct_scan, normalize_mr_scan
from .plan import CHUNK, FULL_TABLE_MIN, GRID_MAX

__all__ = ["warmup", "Warmup", "DTYPES"]

#: Input dtypes warmed by default: the ones CT and MR images come in.
DTYPES = ("uint8", "int16", "uint16", "int32", "float16", "float32", "float64")


class Warmup(NamedTuple):
    """What :func:`warmup` did."""

    #: Seconds per input dtype.
    seconds: dict
    #: The folder numba keeps compiled kernels in, or ``None`` (compiled in memory).
    cache: str | None
    #: Whether the parallel variants were warmed too.
    parallel: bool


def _rows(values, dtype, n_rows):
    """``n_rows`` copies of ``values`` as rows of ``dtype``."""
    return values.astype(dtype).reshape(1, -1).repeat(n_rows, axis=0)


def _inputs(dtype, elements, n_rows=2):
    """``n_rows`` rows of ``dtype`` with ``elements`` values each, spanning a modest range."""
    values = np.arange(elements) % 200
    return _rows(values % 2 if dtype.kind == "b" else values, dtype, n_rows)


def _large_tables(dtype):
    """Rows whose curves and tables are large enough to be built in parallel
    (``plan.PARALLEL_TABLES`` grid points), and ranges for them; ``None`` for
    8-bit dtypes, whose tables never are in batches of a practical size."""
    bits = 8 * dtype.itemsize
    if dtype.kind == "b" or bits == 8:
        return None
    if dtype.kind in "iu" and bits == 16:  # two elements spanning the dtype: 2 * 65536 points
        values = np.arange(CHUNK + 1) % (1 << 16) + int(np.iinfo(dtype).min)
        return _rows(values, dtype, 2), [None]
    # 64 elements with 4096 grid points each (dense grids for floats and wide ranges)
    x = _rows(np.arange(512) * 8, dtype, 64)
    return x, [None, (0, 4 * GRID_MAX)] if dtype.kind in "iu" else [None]


def _paths(dtype, out_dtypes, parallel):
    """The calls that compile each path for input ``dtype``, and whether each runs serially.

    Small elements take the one-call route of small 8/16-bit elements, serially
    or, in batches large enough, in parallel; elements just too large for it
    take the general kernels, serially (under ``thread_limit(1)``) and, where
    this process may use them, in parallel, with large tables too.
    """
    general = CHUNK + 1
    sizes = [(64, 2, True), (general, 2, True)]
    if parallel:
        bits = 8 * dtype.itemsize
        sizes += [(64, _jit.SERIAL_BELOW // 64, False), (general, 2, False)]
        if dtype.kind in "biu" and bits <= 16 and FULL_TABLE_MIN << bits > general:
            sizes.append((FULL_TABLE_MIN << bits, 1, False))  # the full-table variant
    ranges = [None, (0, 150)]
    if dtype.kind in "iu" and dtype.itemsize >= 4:
        ranges.append((0, 4 * GRID_MAX))  # interpolated integer ranges
    if dtype.kind == "f":
        ranges.append((0.1, 150.3))  # ranges placed in float64 arithmetic
    calls = []
    for n, n_rows, serial in sizes:
        x = _inputs(dtype, n, n_rows)
        first = len(calls)
        for out in out_dtypes:
            for bounds in ranges:
                calls.append(lambda x=x, out=out, bounds=bounds: transform_batch(
                    x, min_max_val=bounds, dtype=out, rng=0))
            if dtype.kind != "b":
                calls.append(lambda x=x, out=out: normalize_mr_scan(x.reshape(-1), dtype=out))
                calls.append(lambda x=x, out=out: normalize_ct_scan(x.reshape(-1), dtype=out))
        if dtype.kind != "b":
            calls.append(lambda x=x: random_smooth_grayvalue_transform(x.reshape(-1)))
            calls.append(lambda x=x: random_smooth_grayvalue_transform(x.reshape(-1),
                                                                       min_max_val=(0, 150)))
        if serial:
            calls[first:] = [_serially(call) for call in calls[first:]]
    large = _large_tables(dtype) if parallel else None
    if large is not None:
        x, large_ranges = large
        calls += [lambda x=x, out=out, bounds=bounds: transform_batch(
            x, min_max_val=bounds, dtype=out, rng=0)
            for out in out_dtypes for bounds in large_ranges]
    return calls


def _serially(call):
    def run():
        with _jit.thread_limit(1):
            call()
    return run


def warmup(dtypes: Iterable = DTYPES, out_dtypes: Iterable = ("float32",)) -> Warmup:
    """Compile (or load) every kernel path for input ``dtypes`` and output ``out_dtypes``.

    Parameters
    ----------
    dtypes : iterable of dtype-like
        Input dtypes, e.g. ``("int16", "float32")``.
    out_dtypes : iterable of {'float32', 'float16', 'float64'}
        Output dtypes of the transforms and normalisations.

    Returns
    -------
    Warmup
        Seconds per input dtype, the cache folder and whether the parallel
        variants were included (not in a process where they may not run,
        e.g. a forked child of one that used them).

    Examples
    --------
    >>> from rsgt_fast.warmup import warmup
    >>> done = warmup(["uint8"])
    >>> sorted(done.seconds)
    ['uint8']
    """
    if isinstance(dtypes, (str, np.dtype, type)):
        dtypes = [dtypes]
    if isinstance(out_dtypes, (str, np.dtype, type)):
        out_dtypes = [out_dtypes]
    dtypes = [input_dtype(d, "dtypes") for d in dtypes]
    out_dtypes = [output_dtype(d, "out_dtypes") for d in out_dtypes]
    if not dtypes or not out_dtypes:
        raise ValueError("warmup needs at least one input and one output dtype")
    parallel = _jit.serial_reason(_jit.SERIAL_BELOW) is None
    state = np.random.get_state()  # the facade draws from the global state
    seconds = {}
    try:
        for dtype in dtypes:
            start = time.perf_counter()
            with _jit.compile_at_once():
                for call in _paths(dtype, out_dtypes, parallel):
                    call()
            seconds[dtype.name] = time.perf_counter() - start
    finally:
        np.random.set_state(state)
    return Warmup(seconds, _jit.cache_location(), parallel)
