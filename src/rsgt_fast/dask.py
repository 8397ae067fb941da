"""The batch engine on Dask arrays: batches and volumes larger than one machine.

:func:`transform_batch` takes a ``dask.array.Array`` (batch on axis 0, any
chunking) and returns a lazy array whose computed value equals
``rsgt_fast.transform_batch`` on the same data, bit for bit, for the same
``rng`` and ``keys``:

1. the curve parameters are drawn on the client, exactly as the in-memory
   call draws them (one ``Generator`` for the batch, or one stream per key);
2. with ``min_max_val=None``, each element's min and max come from a Dask
   reduction over its spatial axes (lazily, as part of the graph);
3. every block is one ``rsgt_fast.transform_batch(block, curves=...)`` call
   with its rows' curves and ranges, so no block leaves the worker that holds
   it and the result does not depend on the chunking, the scheduler or which
   worker ran which block.

Building the graph computes and compiles nothing.  Requires the
``rsgt-fast[dask]`` extra (dask[array], distributed, zarr).

Examples
--------
>>> import numpy as np, dask.array as da, rsgt_fast, rsgt_fast.dask
>>> x = np.random.default_rng(0).integers(0, 4096, size=(4, 16, 16, 16), dtype=np.int16)
>>> lazy = rsgt_fast.dask.transform_batch(da.from_array(x, chunks=(1, 8, 8, 8)), rng=3)
>>> bool(np.array_equal(lazy.compute(), rsgt_fast.transform_batch(x, rng=3)))
True
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from . import _cpu, _validate, plan
from ._optional import require
from .batch import (
    MAX_FREQUENCY, MIN_FREQUENCY, N_SINUSOIDS, RngLike, by_channel, check_options, curve_draw,
    curve_source,
)
from .batch import transform_batch as _transform_batch
from .curves import Curves, engine_curves

_dask = require("dask", "dask", "rsgt_fast.dask")
da = require("dask.array", "dask", "rsgt_fast.dask")

__all__ = ["transform_batch", "warm_workers"]


def transform_batch(x, *, n_sinusoids: int = N_SINUSOIDS, min_frequency: float = MIN_FREQUENCY,
                    max_frequency: float = MAX_FREQUENCY,
                    min_max_val: tuple[float, float] | None = None, dtype="float32",
                    rng: RngLike = None, keys: Sequence[int] | None = None,
                    curves: Curves | None = None, nan_policy: str = "raise", mask=None,
                    fill: float = 0.0, channel_axis: int | None = None,
                    return_curves: bool = False):
    """Lazy random smooth gray value transformation of a Dask array, one curve per element.

    Parameters
    ----------
    x : dask.array.Array
        Batch on axis 0, any number of axes after it, any chunking (chunk
        sizes must be known).  Any integer or bool dtype, float16, float32 or
        float64.
    n_sinusoids, min_frequency, max_frequency, min_max_val, dtype, rng, keys, curves
        As for :func:`rsgt_fast.transform_batch`; the parameters are drawn
        here, on the client, when the graph is built.
    nan_policy, mask, fill
        As for :func:`rsgt_fast.transform_batch`; ``mask`` may be a Dask or
        numpy boolean array of ``x``'s shape or of one element's shape, and is
        rechunked like ``x``.
    channel_axis : int, optional
        As for :func:`rsgt_fast.transform_batch`: a curve per channel, keyed
        and ordered as there, so the result is the in-memory call's.
    return_curves : bool
        Also return the curves, as a ``dask.delayed`` object resolving to a
        :class:`~rsgt_fast.Curves` (its ranges may come from the reduction):
        ``out, curves = dask.compute(lazy, lazy_curves)`` computes both in one
        pass.

    Returns
    -------
    out : dask.array.Array
        Lazy result of dtype ``dtype``, chunked like ``x``.
    curves : dask.delayed.Delayed
        Only with ``return_curves=True``.

    Raises
    ------
    TypeError
        ``x`` is not a Dask array, or has an unsupported dtype.
    ValueError
        Bad curve options, unknown chunk sizes, or a conflict with
        ``curves=``; NaN or Inf in float input raises when computed.
    """
    if not isinstance(x, da.Array):
        raise TypeError(f"x must be a dask.array.Array, got {type(x).__name__} "
                        "(use rsgt_fast.transform_batch for in-memory arrays)")
    _validate.input_dtype(x.dtype, "x")
    opts, return_curves = check_options(n_sinusoids, min_frequency, max_frequency, min_max_val,
                                        _validate.like_input(dtype, x.dtype), rng, keys, curves,
                                        return_curves)
    axis = _validate.channel_axis(channel_axis, x.ndim)
    if x.ndim == 0:
        raise ValueError("x must have at least one dimension, got a 0-d array")
    if any(np.isnan(c) for sizes in x.chunks for c in sizes):
        raise ValueError("x has unknown chunk sizes; call x.compute_chunk_sizes() first")
    if x.size == 0:
        raise ValueError(f"x must not be empty, got shape {x.shape}")
    omit = _validate.nan_policy(nan_policy) == "omit"
    fill = _validate.fill_value(fill, opts.dtype)
    mask = _mask_like(mask, x)
    shape, channels = x.shape, 1
    if axis is not None:  # rows (element, channel), as the in-memory engine folds them
        channels = x.shape[axis]
        x = by_channel(x, axis)
        mask = None if mask is None else by_channel(mask, axis).rechunk(x.chunks)
    n_rows = x.shape[0]
    source, keys = curve_source(n_rows, rng, keys, curves, channels)
    kind = x.dtype.kind

    bounds, draw = curve_draw(curves, opts, source, keys, n_rows)
    params = draw()

    # Parameters and ranges travel as small arrays chunked like axis 0; known
    # ranges as Python numbers (an int and a float range place integer input
    # differently, so their types must survive).
    batch_chunks = (x.chunks[0],)
    params_d = da.from_array(params, chunks=batch_chunks + params.shape[1:])
    if bounds is None:
        ranges_d = (_reduced_ranges(x) if mask is None and not (omit and kind == "f")
                    else _selected_ranges(x, mask, omit))
    else:
        ranges_d = da.from_array(np.array(bounds, dtype=object), chunks=batch_chunks + (2,))
    spatial = tuple(range(1, x.ndim))
    out_index = (0,) + spatial
    selected = () if mask is None else (mask, out_index)
    out = da.blockwise(
        _apply_block, out_index,
        x, out_index,
        ranges_d, (0, x.ndim),
        params_d, (0, x.ndim + 1, x.ndim + 2),
        *selected,
        concatenate=True, dtype=opts.dtype,
        meta=np.empty((0,) * x.ndim, opts.dtype),
        reduced=bounds is None, kind=kind, out_dtype=opts.dtype,
        nan_policy="omit" if omit else "raise", fill=fill,
    )
    if axis is not None:
        moved = (shape[0], channels) + tuple(np.delete(shape, axis)[1:])
        out = da.moveaxis(out.reshape(moved), 1, axis)
    if not return_curves:
        return out
    lazy_curves = _dask.delayed(_curves, pure=True)(params, bounds if bounds is not None
                                                    else ranges_d, kind, x.dtype)
    return out, lazy_curves


def _reduced_ranges(x):
    """``(B, 2)`` lazy array of each element's min and max, in ``x``'s dtype."""
    axes = tuple(range(1, x.ndim))
    if x.dtype.kind == "b":
        x = x.astype(np.uint8)
    lo = x.min(axis=axes) if axes else x
    hi = x.max(axis=axes) if axes else x
    return da.stack([lo, hi], axis=1).rechunk((x.chunks[0], 2))


def _mask_like(mask, x):
    """``mask`` as a boolean Dask array of ``x``'s shape and chunks, or ``None``."""
    if mask is None:
        return None
    if not isinstance(mask, da.Array):
        mask = np.asarray(mask)
    if not _validate.mask_layout(mask.dtype, mask.shape, x.shape):
        mask = da.broadcast_to(da.asarray(mask), x.shape)
    return da.asarray(mask).rechunk(x.chunks)


def _selected_ranges(x, mask, omit):
    """``(B, 2)`` lazy array of each element's range over its selected values.

    Each block gives its rows' extremes and counts (the engine's scan over the
    selected values), then the blocks of a row are combined; the values keep
    their type (Python ints or floats), so no int64 loses a bit.
    """
    spatial = tuple(range(1, x.ndim))
    index = (0,) + spatial
    parts = da.blockwise(
        _block_extremes, index + (x.ndim,),
        x, index, *(() if mask is None else (mask, index)),
        new_axes={x.ndim: 3}, dtype=object, omit=omit,
        adjust_chunks={axis: 1 for axis in spatial},
        meta=np.empty((0,) * (x.ndim + 1), object),
    )
    parts = parts.rechunk((x.chunks[0],) + tuple((n,) for n in parts.shape[1:]))
    return da.map_blocks(_combine_extremes, parts, drop_axis=spatial, chunks=(x.chunks[0], (2,)),
                         dtype=object, meta=np.empty((0, 0), object))


def _block_extremes(block, mask=None, *, omit):
    """``(b, 1, ..., 1, 3)``: each row's smallest and largest selected value and count."""
    x2, kind = plan.rows(block)
    mask2 = None if mask is None else _validate.mask_rows(mask, block.shape)
    lo, hi, counts = _cpu.selected_extremes(x2, kind, mask2, omit)
    result = np.empty((block.shape[0], 3), object)
    convert = int if kind == "int" else float
    for b, (a, z, n) in enumerate(zip(lo.tolist(), hi.tolist(), counts.tolist())):
        result[b] = (convert(a), convert(z), int(n))
    return result.reshape((block.shape[0],) + (1,) * (block.ndim - 1) + (3,))


def _combine_extremes(parts, block_info=None):
    """``(b, 2)`` ranges from a row's blocks' extremes; a row with nothing selected raises."""
    rows = parts.reshape(parts.shape[0], -1, 3)
    start = block_info[0]["array-location"][0][0] if block_info else 0
    result = np.empty((rows.shape[0], 2), object)
    for b in range(rows.shape[0]):
        found = [(lo, hi) for lo, hi, n in rows[b].tolist() if n > 0]
        if not found:
            raise ValueError(f"x element {start + b} holds no selected finite value "
                             "(mask= or nan_policy='omit')")
        result[b] = (min(lo for lo, _ in found), max(hi for _, hi in found))
    return result


def _bounds_of(ranges, kind):
    """Python ``(lo, hi)`` pairs from a reduced ``(b, 2)`` block, as the engine makes them."""
    if kind == "f":
        bad = ~np.isfinite(ranges.astype(np.float64)).all(axis=1)
        if bad.any():
            raise ValueError("x must be finite, but an element holds NaN or Inf")
        return [(float(lo), float(hi)) for lo, hi in ranges.tolist()]
    return [(int(lo), int(hi)) for lo, hi in ranges.tolist()]


def _apply_block(block, ranges, params, mask=None, *, reduced, kind, out_dtype, nan_policy,
                 fill):
    """One engine call on one block with its rows' curves and ranges."""
    if reduced and ranges.dtype == object:  # selected ranges: Python numbers already
        bounds = [tuple(pair) for pair in ranges.tolist()]
    elif reduced:
        bounds = _bounds_of(ranges, kind)
    else:
        bounds = [tuple(pair) for pair in ranges.tolist()]
    curves = engine_curves(params, bounds)
    return _transform_batch(block, curves=curves, dtype=out_dtype, nan_policy=nan_policy,
                            mask=mask, fill=fill)


def _curves(params, ranges, kind, dtype):
    """The applied curves, with the extrema the engine derives for them."""
    if isinstance(ranges, list):
        bounds = ranges
    else:
        bounds = _bounds_of(np.asarray(ranges), kind)
    curves = Curves.from_packed(params, bounds)
    # The extrema depend only on the curves, the ranges and the input dtype,
    # not on the values: any element of that dtype reproduces them.
    probe = np.zeros((len(bounds), 1), dtype)
    _, applied = _transform_batch(probe, curves=curves, return_curves=True)
    return applied


def warm_workers(client, dtypes=("int16", "float32"), out_dtypes=("float32",)):
    """Compile (or load) the kernels for ``dtypes`` once on every worker of ``client``.

    Each worker process otherwise pays for compilation (or for loading numba's
    cache) inside its first task.  This runs :func:`rsgt_fast.warmup.warmup`
    once on every worker, in a thread beside its event loop, not per task; workers that
    share a ``NUMBA_CACHE_DIR`` compile each path once between them and load
    it afterwards.

    Parameters
    ----------
    client : distributed.Client
        The cluster to warm.
    dtypes, out_dtypes : iterable of dtype-like
        As for :func:`rsgt_fast.warmup.warmup`.

    Returns
    -------
    dict
        Worker address to the seconds it took.
    """
    dtypes, out_dtypes = list(dtypes), list(out_dtypes)
    return client.run(_warm_in_thread, dtypes, out_dtypes)


async def _warm_in_thread(dtypes, out_dtypes):
    # client.run awaits this on each worker's event loop; compiling in a thread
    # keeps the loop (and the worker's heartbeats) running meanwhile.
    import asyncio

    return await asyncio.get_running_loop().run_in_executor(None, _warm, dtypes, out_dtypes)


def _warm(dtypes, out_dtypes):
    from .warmup import warmup

    return sum(warmup(dtypes, out_dtypes).seconds.values())
