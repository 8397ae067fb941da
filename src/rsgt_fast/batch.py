"""The batch engine: checks, layout, random parameters, one kernel call."""

from __future__ import annotations

import numpy as np

from . import _validate
from ._jit import engine
from ._kernels import row_minmax, transform_clamped, transform_full, transform_interp
from .curves import Curves, dense_grid_points, position_unit, sample_parameters

__all__ = ["transform_batch"]

#: Integer ranges holding at most this many values get one grid point per value.
GRID_MAX = 1 << 16
#: Interpolation error allowed on dense grids, relative to the curve's range:
#: integer input (promised within 1e-6 of rsgt's formula) and float input
#: (promised within 1e-4 of the exact curve).
DENSE_TOLERANCE = {"int": 1e-8, "float": 1e-6}
#: 8/16-bit input gets a table entry per representable value once it holds
#: this many times as many values as the table.
FULL_TABLE_MIN = 16
#: Elements per parallel task.
CHUNK = 1 << 16


def transform_batch(x, *, n_sinusoids=4, min_frequency=0.2, max_frequency=1.6,
                    min_max_val=None, dtype="float32", rng=None, out=None,
                    return_curves=False):
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
    dtype : {'float32', 'float16', 'float64'}
        Output dtype.
    rng : None, int or numpy.random.Generator
        Source of the curve parameters (SPEC 7); an int seeds
        ``numpy.random.default_rng``.  The global ``np.random`` state is not used.
    out : ndarray, optional
        Array of ``x``'s shape and dtype ``dtype`` to write into; it may be
        ``x`` itself for an in-place float transform.
    return_curves : bool
        Also return the :class:`~rsgt_fast.curves.Curves` that were applied.

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

    Examples
    --------
    >>> import numpy as np
    >>> from rsgt_fast import transform_batch
    >>> batch = np.random.default_rng(0).integers(-1024, 3072, size=(4, 32, 32), dtype=np.int16)
    >>> out = transform_batch(batch, min_max_val=(-1024, 3071), rng=42)
    >>> out.shape, out.dtype, bool(out.min() >= 0 and out.max() <= 1)
    ((4, 32, 32), dtype('float32'), True)
    """
    n_sinusoids = _validate.n_sinusoids(n_sinusoids)
    min_frequency, max_frequency = _validate.frequencies(min_frequency, max_frequency)
    bounds = _validate.min_max_val(min_max_val)
    out_dtype = _validate.output_dtype(dtype)
    generator = _validate.rng(rng)
    if not isinstance(return_curves, (bool, np.bool_)):
        raise TypeError(f"return_curves must be a bool, got {return_curves!r}")
    array = _validate.input_array(x, "x")
    if out is not None:
        _validate.out_array(out, array.shape, out_dtype, array)

    x2, kind = rows(array)
    with engine(x2.size):
        ranges = element_ranges(x2, kind, bounds, "x")
        params = sample_parameters(generator, x2.shape[0], n_sinusoids, min_frequency, max_frequency)
        result, curves = apply(x2, kind, params, ranges, array.shape, out_dtype, out)
    return (result, curves) if return_curves else result


def rows(array):
    """``array`` as a C-contiguous native ``(B, N)`` array and its kind.

    The kind is ``'int'`` (integers; bools come as uint8), ``'half'`` (float16,
    returned as its uint16 bit patterns) or ``'float'``.
    """
    if array.dtype == np.bool_:
        array = array.view(np.uint8)
    if not array.dtype.isnative:
        array = array.astype(array.dtype.newbyteorder("="))
    flat = np.ascontiguousarray(array).reshape(array.shape[0], -1)
    if flat.dtype == np.float16:
        return flat.view(np.uint16), "half"
    return flat, "float" if flat.dtype.kind == "f" else "int"


_FLOAT_VIEWS = {2: np.int16, 4: np.int32, 8: np.int64}


def _scan(x2, kind):
    """Row min, max and non-finite flags; one parallel read of ``x2``."""
    if kind == "int":
        return row_minmax(x2, False, x2.dtype.type(0), x2.dtype.type(0), CHUNK)
    width = x2.dtype.itemsize
    view = _FLOAT_VIEWS[width]
    float_type = {2: np.float16, 4: np.float32, 8: np.float64}[width]
    info = np.finfo(float_type)
    flip = view(np.iinfo(view).max)
    exponent = view(((1 << info.nexp) - 1) << info.nmant)
    keys_lo, keys_hi, bad = row_minmax(x2.view(view), True, flip, exponent, CHUNK)

    def decode(keys):
        bits = keys ^ ((keys >> (8 * width - 1)) & flip)
        return bits.astype(view).view(float_type).astype(np.float64)

    return decode(keys_lo), decode(keys_hi), bad


def element_ranges(x2, kind, bounds, name):
    """``(lo, hi)`` of each row: ``bounds`` if given, else the row's min and max.

    Float rows are always scanned, so NaN or Inf raises ``ValueError`` before
    anything is written.
    """
    n_rows = x2.shape[0]
    if kind == "int" and bounds is not None:
        return [bounds] * n_rows
    lo, hi, bad = _scan(x2, kind)
    if bad.any():
        where = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{name} must be finite, but element {where} holds NaN or Inf")
    if bounds is not None:
        return [bounds] * n_rows
    cast = int if kind == "int" else float
    return [(cast(a), cast(b)) for a, b in zip(lo.tolist(), hi.tolist())]


def _clamp_bounds(dtype, ranges, G, per_unit=None):
    """Each range clamped to ``dtype`` and the grid position where the clamped range starts.

    Integer values are clamped to ``[lo_x, hi_x]`` (representable in ``dtype``)
    and measured from ``lo_x``; ``skip`` is the grid position of ``lo_x``: an
    index on an integer grid, a float (``per_unit`` grid points per integer)
    on a dense one.
    """
    info = np.iinfo(dtype)
    lo_x = [min(max(r[0], int(info.min)), int(info.max)) for r in ranges]
    hi_x = [min(max(r[1], int(info.min)), int(info.max)) for r in ranges]
    if per_unit is None:
        skip = [min(max(c - r[0], 0), g - 1) for c, r, g in zip(lo_x, ranges, G.tolist())]
    else:
        skip = [min(max(float(c - r[0]) * u, 0.0), g - 1.0)
                for c, r, g, u in zip(lo_x, ranges, G.tolist(), per_unit.tolist())]
    return np.array(lo_x, dtype), np.array(hi_x, dtype), np.array(skip)


def apply(x2, kind, params, ranges, shape, out_dtype, out=None, grid=None, grid_max=GRID_MAX):
    """Transform the rows of ``x2`` with the given curves; one kernel call.

    ``ranges`` holds each row's ``(lo, hi)``.  Integer rows whose integral range
    holds at most ``grid_max`` values are sampled on the integer grid, other
    rows on a dense grid.  ``grid=(Y, extrema)`` supplies precomputed integer
    grid values and their extrema instead of computing them in the kernel.
    """
    f, a, o = params
    n_rows = x2.shape[0]
    lo = np.array([float(r[0]) for r in ranges])
    hi = np.array([float(r[1]) for r in ranges])
    on_ints = [
        kind == "int" and isinstance(r[0], int) and isinstance(r[1], int)
        and r[1] - r[0] < grid_max
        for r in ranges
    ]
    if all(on_ints):
        # One grid point per integer: positions are value - lo, in halves.
        G = np.array([r[1] - r[0] + 1 for r in ranges], dtype=np.int64)
        polish = np.zeros(n_rows, dtype=bool)
        unit = np.full(n_rows, 0.5)
        scale = np.where(G > 1, 2.0, 0.0)
    else:
        dense = dense_grid_points(f, a, o, DENSE_TOLERANCE["int" if kind == "int" else "float"])
        G = np.array([
            1 if r[1] == r[0] else (r[1] - r[0] + 1 if exact else points)
            for r, exact, points in zip(ranges, on_ints, dense.tolist())
        ], dtype=np.int64)
        polish = np.array([not exact for exact in on_ints]) & (G > 1)
        unit = position_unit(lo, hi)
        # Spans of integer ranges come from Python integers: exact where float64
        # endpoints near 2**63 are not.
        unit_span = np.array([
            u * float(r[1] - r[0]) if isinstance(r[0], int) and isinstance(r[1], int)
            else u * h - u * l
            for r, l, h, u in zip(ranges, lo.tolist(), hi.tolist(), unit.tolist())
        ])
        scale = np.where(hi > lo, (G - 1) / np.where(hi > lo, unit_span, 1.0), 0.0)
    if grid is None:
        build = True
        Y = np.empty((n_rows, int(G.max())))
        ext = np.empty((n_rows, 2))
    else:
        build = False
        Y, ext = grid

    half_out = out_dtype == np.float16
    direct = out is not None and out.flags.c_contiguous and out.dtype.isnative
    result = out if direct else np.empty(shape, out_dtype)
    out2 = result.reshape(n_rows, -1)
    if half_out:
        out2 = out2.view(np.uint16)
    lut_dtype = np.uint16 if half_out else out_dtype
    width = max(int(G.max()), 2)  # two columns even for single-valued ranges

    # A table entry for every value an 8/16-bit dtype can hold needs no clamping;
    # it pays off once the input is much larger than the table.
    narrow_int = kind == "int" and x2.dtype.itemsize <= 2
    if kind == "half" or (narrow_int and (not all(on_ints) or x2.size >= FULL_TABLE_MIN << (8 * x2.dtype.itemsize))):
        info = np.iinfo(x2.dtype)
        dmin = 0 if kind == "half" else int(info.min)
        table = np.empty((n_rows, int(info.max) - int(info.min) + 1), lut_dtype)
        transform_full(x2, kind == "half", dmin, f, a, o, lo, hi, scale, G, polish, build,
                       Y, ext, table, out2, half_out, CHUNK)
    elif kind == "int" and all(on_ints):
        lo_x, hi_x, skip = _clamp_bounds(x2.dtype, ranges, G)
        table = np.empty((n_rows, width), lut_dtype)
        transform_clamped(x2, f, a, o, G, polish, build, Y, ext, lo_x, hi_x,
                          skip.astype(np.int64), table, out2, half_out, CHUNK)
    else:
        integer = kind == "int" and all(isinstance(v, int) for r in ranges for v in r)
        if integer:
            lo_x, hi_x, skip = _clamp_bounds(x2.dtype, ranges, G, scale * unit)
        else:
            lo_x = hi_x = np.zeros(n_rows, x2.dtype)
            skip = np.zeros(n_rows)
        # float32 arithmetic for float32 data, unless a bound is not a float32
        # number, the span is subnormal-small, or float64 output is wanted.
        narrow = (x2.dtype == np.float32 and out_dtype != np.float64 and np.all(unit == 0.5)
                  and np.array_equal(lo.astype(np.float32), lo)
                  and np.array_equal(hi.astype(np.float32), hi))
        work = np.float32 if narrow else np.float64
        params = np.stack([lo, hi, unit * lo, scale, unit, G - 1.0, skip], axis=1).astype(work)
        table = np.empty((n_rows, 2 * (int(G.max()) + 1)), work)
        pairs = table.view(np.uint64 if work == np.float32 else np.complex128)
        transform_interp(x2, f, a, o, G, polish, build, Y, ext, params, integer, lo_x, hi_x,
                         table, pairs, out2, half_out, CHUNK)

    if out is not None and not direct:
        np.copyto(out, result)
        result = out
    curves = Curves(
        frequencies=f, amplitudes=a, offsets=o,
        ranges=np.stack([lo, hi], axis=1), extrema=ext, _bounds=tuple(ranges),
    )
    return result, curves
