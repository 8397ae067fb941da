"""The batch engine's front end: checks, curve parameters, then the planner's route."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, overload

import numpy as np
import numpy.typing as npt

from . import _validate, plan
from ._validate import DefaultFloat, DefaultInt
from .curves import Curves, keyed_parameters, sample_parameters

__all__ = ["transform_batch", "check_options", "selection", "curve_source", "curve_draw",
           "draw_parameters"]

#: Defaults of the curve options, marked so that replay can tell them from
#: values the caller passed.
N_SINUSOIDS = DefaultInt(4)
MIN_FREQUENCY = DefaultFloat(0.2)
MAX_FREQUENCY = DefaultFloat(1.6)

RngLike = int | np.random.SeedSequence | np.random.Generator | None


@overload
def transform_batch(x: npt.ArrayLike, *, n_sinusoids: int = ..., min_frequency: float = ...,
                    max_frequency: float = ..., min_max_val: tuple[float, float] | None = ...,
                    dtype: npt.DTypeLike = ..., rng: RngLike = ...,
                    keys: Sequence[int] | None = ..., curves: Curves | None = ...,
                    out: np.ndarray | None = ..., nan_policy: str = ...,
                    mask: npt.ArrayLike | None = ..., fill: float = ...,
                    channel_axis: int | None = ...,
                    return_curves: Literal[False] = ...) -> np.ndarray: ...
@overload
def transform_batch(x: npt.ArrayLike, *, n_sinusoids: int = ..., min_frequency: float = ...,
                    max_frequency: float = ..., min_max_val: tuple[float, float] | None = ...,
                    dtype: npt.DTypeLike = ..., rng: RngLike = ...,
                    keys: Sequence[int] | None = ..., curves: Curves | None = ...,
                    out: np.ndarray | None = ..., nan_policy: str = ...,
                    mask: npt.ArrayLike | None = ..., fill: float = ...,
                    channel_axis: int | None = ...,
                    return_curves: Literal[True]) -> tuple[np.ndarray, Curves]: ...


def transform_batch(x, *, n_sinusoids=N_SINUSOIDS, min_frequency=MIN_FREQUENCY,
                    max_frequency=MAX_FREQUENCY, min_max_val=None, dtype="float32", rng=None,
                    keys=None, curves=None, out=None, nan_policy="raise", mask=None, fill=0.0,
                    channel_axis=None, return_curves=False):
    """Random smooth gray value transformation with its own curve per batch element.

    Parameters
    ----------
    x : array_like
        Batch of images, the batch on axis 0 and any number of axes after it.
        Any integer or bool dtype, float16, float32 or float64.  Never modified.
    n_sinusoids : int
        Sinusoids summed into each curve.
    min_frequency, max_frequency : float
        Frequencies are drawn uniformly from ``[min_frequency, max_frequency)``;
        higher frequencies give bumpier curves.
    min_max_val : (lo, hi) or None
        Input range mapped onto the curve, the same for every element; values
        outside are clipped.  ``None`` uses each element's own min and max.
    dtype : {'float32', 'float16', 'float64'} or None
        Output dtype.  ``None``: the input's where it is float16, float32 or
        float64, float32 for integer and bool input.
    rng : None, int, numpy.random.SeedSequence or numpy.random.Generator
        Source of the curve parameters (SPEC 7); an int seeds
        ``numpy.random.default_rng``.  The global ``np.random`` state is not used.
    keys : sequence of int, optional
        One non-negative key per element: element ``i``'s curve then depends
        only on ``rng`` (an int or a ``SeedSequence``) and ``keys[i]``, not on
        its position, the rest of the batch, the thread or the process.  The
        stream of key ``k`` is numpy's own: ``SeedSequence(entropy,
        spawn_key=(..., k))``, the ``k``-th child of ``SeedSequence(rng).spawn``.
    curves : Curves, optional
        Replay: apply these curves (from ``return_curves=True``, or built from
        parameters and ranges) with their stored ranges, one per element of
        ``x``; no random number is drawn and no range is scanned.  Cannot be
        combined with ``rng``, ``keys``, ``min_max_val`` or curve options.
    out : ndarray, optional
        Array of ``x``'s shape and dtype ``dtype`` (either byte order) to
        write into; it may be ``x`` itself for an in-place float transform.
    nan_policy : {'raise', 'omit'}
        ``'raise'``: NaN or Inf in float input raises ``ValueError``.
        ``'omit'``: each element's range comes from its finite values only,
        which are transformed as if the others were absent; NaN stays NaN
        and ±Inf lie beyond the range (they get its ends' values).  An
        element without a finite value raises ``ValueError``.
    mask : array_like of bool, optional
        Of ``x``'s shape, or of one element's shape (shared by all): only the
        values where it is true set each element's range and are
        transformed; the others get ``fill``.  Replay needs the same mask.
    fill : float
        The output where ``mask`` is false (NaN allowed).
    channel_axis : int, optional
        Give each channel on this axis of each element its own curve (and,
        without ``min_max_val``, its own range): element ``i``'s channel ``c``
        is drawn from ``rng`` in the order ``(i, c)``, or with ``keys`` from
        ``SeedSequence(rng, spawn_key=(keys[i], c))``, so a sample's channel
        keeps its curve whatever the batch.  The curves (returned and
        replayed) are one per channel, in that order.  ``None``: one curve per
        element.
    return_curves : bool
        Also return the :class:`~rsgt_fast.Curves` that were applied.

    Returns
    -------
    out : ndarray
        Transformed batch, values in [0, 1].
    curves : Curves
        Only with ``return_curves=True``.

    Notes
    -----
    Integer input is transformed as rsgt 1.1.0 transforms an image: the curve
    is sampled at every integer of the element's range and normalised by the
    extrema of those samples (within 1e-6 of rsgt's formula; ranges wider than
    65536 values are interpolated from a dense grid, within about 1e-8).  Float
    input is not truncated: each value is placed at its exact position in the
    range and the curve is normalised by its extrema over the whole interval.
    An element whose range is a single value maps to 0.5.

    Every element's output depends only on its own curve and range and on
    the input and output dtypes, so replaying ``curves[i:j]`` on any block
    ``x[i:j, ...]`` gives exactly the same numbers as the whole call.  Float
    input is still checked for NaN and Inf when replayed.

    Examples
    --------
    >>> import numpy as np
    >>> from rsgt_fast import transform_batch
    >>> batch = np.random.default_rng(0).integers(-1024, 3072, size=(4, 32, 32), dtype=np.int16)
    >>> out = transform_batch(batch, min_max_val=(-1024, 3071), rng=42)
    >>> out.shape, out.dtype, bool(out.min() >= 0 and out.max() <= 1)
    ((4, 32, 32), dtype('float32'), True)

    The same sample gets the same curve wherever it lands, given a key:

    >>> a = transform_batch(batch, rng=7, keys=[10, 11, 12, 13])
    >>> b = transform_batch(batch[2:], rng=7, keys=[12, 13])
    >>> bool(np.array_equal(a[2:], b))
    True
    """
    array = _validate.input_array(x, "x")
    opts, return_curves = check_options(n_sinusoids, min_frequency, max_frequency, min_max_val,
                                        _validate.like_input(dtype, array.dtype), rng, keys,
                                        curves, return_curves)
    axis = _validate.channel_axis(channel_axis, array.ndim)
    channels = 1 if axis is None else array.shape[axis]
    if out is not None:
        _validate.out_array(out, array.shape, opts.dtype, array)
    if mask is not None and axis is not None:
        mask = by_channel(_validate.mask_array(mask, array.shape), axis)
    work = array if axis is None else by_channel(array, axis)
    n_rows = work.shape[0]
    source, keys = curve_source(n_rows, rng, keys, curves, channels)
    select = selection(work.shape, opts.dtype, nan_policy, mask, fill)

    direct = axis is None or (axis == 1 and (out is None or out.flags.c_contiguous))
    target = out if axis is None or not direct or out is None else out.reshape(work.shape)
    x2, kind = plan.rows(work)
    result, out2 = plan.output(n_rows, work.shape, opts.dtype, target if direct else None)
    bounds, draw = curve_draw(curves, opts, source, keys, n_rows)
    done = plan.transform(x2, kind, x2.dtype, draw, bounds, out2, opts.dtype, select=select,
                          channels=channels)
    if axis is None:
        result = plan.finish(result, out)
    elif direct:
        result = plan.finish(result, target).reshape(array.shape)
        result = out if out is not None else result
    else:
        final = np.empty(array.shape, opts.dtype) if out is None else out
        np.copyto(np.moveaxis(final, axis, 1), result.reshape(
            (array.shape[0], channels) + np.moveaxis(array, axis, 1).shape[2:]))
        result = final
    if return_curves:
        return result, plan.applied(done)
    return result


def by_channel(array, axis):
    """``array`` with channel axis ``axis`` folded into the batch axis: rows ``(i, c)``.

    numpy and Dask arrays (``np.moveaxis`` dispatches to Dask's) and tensors alike.
    """
    moved = array.movedim(axis, 1) if hasattr(array, "movedim") else np.moveaxis(array, axis, 1)
    return moved.reshape((moved.shape[0] * moved.shape[1],) + moved.shape[2:])


def selection(shape, out_dtype, nan_policy, mask, fill):
    """The checked :class:`plan.Selection` of a batch of ``shape``; ``None``: every value counts."""
    if (mask is None and type(nan_policy) is str and nan_policy == "raise"
            and type(fill) is float and fill == 0.0):
        return None  # the defaults, checked quickly: most calls pass them
    omit = _validate.nan_policy(nan_policy) == "omit"
    mask2 = _validate.mask_rows(mask, shape)
    fill = _validate.fill_value(fill, out_dtype)
    if mask2 is None and not omit:
        return None
    return plan.Selection(mask2, omit, fill)


def check_options(n_sinusoids, min_frequency, max_frequency, min_max_val, dtype, rng, keys,
                  curves, return_curves):
    """The checked curve options and ``return_curves``; conflicts with ``curves`` raise."""
    opts = _validate.curve_options(n_sinusoids, min_frequency, max_frequency, min_max_val, dtype)
    return_curves = _validate.flag(return_curves, "return_curves")
    replay_conflicts(curves, rng=rng, keys=keys, min_max_val=min_max_val,
                     n_sinusoids=n_sinusoids, min_frequency=min_frequency,
                     max_frequency=max_frequency)
    return opts, return_curves


def curve_source(n_rows, rng, keys, curves, channels=1):
    """``(source, keys)`` for :func:`draw_parameters`, checked against ``n_rows`` rows.

    The source is a Generator, or the root SeedSequence when ``keys`` are
    given; both are ``None`` when ``curves`` replays stored ones.  With
    ``channels`` per element, the rows are ``(element, channel)`` pairs and
    each element's key ``k`` becomes the keys ``(k, c)``.
    """
    if curves is not None:
        if len(curves) != n_rows:
            each = f" of {channels} channels" if channels > 1 else ""
            raise ValueError(f"curves holds {len(curves)} curves but x has "
                             f"{n_rows // channels} elements{each} ({n_rows} curves needed)")
        return None, None
    if keys is not None:
        checked = _validate.keys(keys, n_rows // channels)
        if channels > 1:
            checked = [(k, c) for k in checked for c in range(channels)]
        return _validate.root_seed(rng), checked
    return _validate.rng(rng, once=True), None


def replay_conflicts(curves, **options):
    """Check ``curves`` (if given) is a :class:`Curves` and no drawing option was passed."""
    if curves is None:
        return
    conflicts = [name for name, value in options.items() if _validate.given(value)]
    if conflicts:
        raise ValueError(f"curves= replays stored curves and ranges; it cannot be combined "
                         f"with {', '.join(conflicts)}")
    if not isinstance(curves, Curves):
        raise TypeError(f"curves must be a rsgt_fast.Curves, got {type(curves).__name__}")


def curve_draw(curves, opts, source, keys, n_rows):
    """The ranges to apply and the function that draws the curves, for ``plan.transform``.

    The ranges are ``None`` for each element's own; the function hands back
    the replayed parameters where ``curves`` is given.
    """
    if curves is not None:
        return list(curves.bounds), curves.packed
    bounds = None if opts.min_max_val is None else [opts.min_max_val] * n_rows
    return bounds, lambda: draw_parameters(source, keys, n_rows, opts)


def draw_parameters(source, keys, n_rows, opts):
    """Packed curve parameters: from a Generator, or from a root SeedSequence and keys."""
    if keys is None:
        return sample_parameters(source, n_rows, opts.n_sinusoids, opts.min_frequency,
                                 opts.max_frequency)
    return keyed_parameters(source, keys, opts.n_sinusoids, opts.min_frequency,
                            opts.max_frequency)
