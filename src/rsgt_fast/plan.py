"""Every route, for every entry point and device, and the registry of compiled kernels.

The front ends (``batch.py``, ``augmentation.py``, ``normalization.py``,
``torch.py``, ``dask.py``) check their arguments and call one function here:

* :func:`transform` -- ``transform_batch`` and its replay, on any backend;
* :func:`facade` -- rsgt's ``random_smooth_grayvalue_transform``;
* :func:`normalize_ct`, :func:`normalize_mr` -- rsgt's normalisations.

Each decides its route from the input kind, the kind of range, the size and
the backend, then runs it on the backend: ``_cpu`` (numba kernels) or
``_gpu`` (Triton, for CUDA tensors).  A backend offers three calls:
``row_extremes(x2, kind)``, ``tables(plan, curve, table_dtype)`` and
``map_voxels(plan, x2, table, out2, selection=None)``, and four for a
selection (``mask=``, ``nan_policy="omit"``): ``selected_extremes``,
``restore_args`` (what ``map_voxels`` restores in its pass),
``restore_outside`` and ``overlaps``; the GPU one may also build 8/16-bit
tables on the device (``device_lookup``).  Every element's result depends on
its own curve, range and the input and output dtypes only, never on the
other elements, the batch size or the number of threads: that is what makes
a transformation replayable block by block.

:func:`signatures` is the registry: every kernel and the argument types a
route compiles it for, per input and output dtype.  ``warmup`` compiles what
it lists.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import numba
import numpy as np

from . import _cpu
from ._formulas import (
    SAMPLE_ERROR, TWO_PI, curve_value, grid_point, key_code, normalized, percentile_scaled,
    position_unit, stored,
)
from ._jit import python, spin, take
from ._layout import (
    AMPLITUDE, BASE, DENSE, FREQUENCY, HI, LAST, LO, N_PLACE, POINTS, SCALE, UNIT, UNIT_LO, Plan,
)
from .curves import engine_curves

__all__ = ["rows", "output", "finish", "ranges", "Selection", "transform", "applied",
           "make_plans", "facade", "normalize_ct", "normalize_mr", "rsgt_table", "signatures",
           "signatures_of_selections",
           "GRID_MAX", "CHUNK"]

#: Integer ranges holding at most this many values get one grid point per value.
GRID_MAX = 1 << 16
#: Interpolation error allowed on dense grids, relative to the curve's range:
#: integer input (promised within 1e-6 of rsgt's formula) and the rest
#: (promised within 1e-4 of the exact curve).
DENSE_TOLERANCE = {"int": 1e-8, "float": 1e-6, "half": 1e-6}
#: 8/16-bit input gets a table entry per representable value once each
#: element holds this many times as many values as the table (both tables
#: give the same results; the full one needs no clamping).
FULL_TABLE_MIN = 16
#: Values per task of the kernels that read every value.
CHUNK = _cpu.CHUNK
#: The facade samples rsgt's integer ranges of up to this many values exactly as rsgt does.
EXACT_MAX = 1 << 22
#: ... and computes its table in numpy, as rsgt does, up to this many entries (numpy
#: spends about 10 ns a sine, the compiled sampling about one a point).
EXACT_HOST = 64
#: Table indices of a range's low end are kept within this bound (the tables
#: are at most 65536 wide, so nothing changes but the arithmetic stays exact).
_FAR = float(1 << 40)
_INT64 = 1 << 63
_FLOAT32_MAX = float(np.finfo(np.float32).max)


# ---------------------------------------------------------------- layout


class _Writable:
    """Exposes a read-only array's memory as a writable one (see :func:`rows`)."""

    def __init__(self, array):
        interface = dict(array.__array_interface__)
        interface["data"] = (interface["data"][0], False)
        self.__array_interface__ = interface
        self.base = array


def rows(array):
    """``array`` as a C-contiguous, native ``(B, N)`` array and its kind.

    The kind is ``'int'`` (integers; bools come as uint8), ``'half'`` (float16,
    returned as its uint16 bit patterns) or ``'float'``.  Read-only input is
    passed to the kernels as writable (they never write it), so each kernel
    is compiled for one type of array.
    """
    kind = array.dtype.kind
    if kind == "b":
        array = array.view(np.uint8)
    elif not array.dtype.isnative:
        array = array.astype(array.dtype.newbyteorder("="))
    if not (array.flags.c_contiguous and array.flags.aligned):
        array = np.ascontiguousarray(array)
    if not array.flags.writeable:
        array = np.asarray(_Writable(array))
    flat = array.reshape(array.shape[0], -1)
    if kind == "f":
        if flat.dtype.itemsize == 2:
            return flat.view(np.uint16), "half"
        return flat, "float"
    return flat, "int"


def output(n_rows, shape, out_dtype, out=None):
    """The array to write and its ``(B, N)`` view, as ``uint16`` for float16.

    The array is ``out`` itself where it can be written directly.
    """
    direct = (out is not None and out.flags.c_contiguous and out.flags.aligned
              and out.dtype.isnative)
    result = out if direct else np.empty(shape, out_dtype)
    out2 = result.reshape(n_rows, -1)
    if out_dtype == np.float16:
        out2 = out2.view(np.uint16)
    return result, out2


def finish(result, out):
    """``result``, copied into ``out`` when ``out`` could not be written directly."""
    if out is not None and result is not out:
        np.copyto(out, result)
        return out
    return result


@functools.cache
def int_limits(dtype):
    """``(min, max)`` of an integer dtype, as Python ints."""
    info = np.iinfo(dtype)
    return int(info.min), int(info.max)


def clamped_bounds(dtype, bounds):
    """Each integer range clamped to what ``dtype`` holds, as a list of pairs of ints."""
    lo, hi = int_limits(dtype)
    return [(min(max(a, lo), hi), min(max(b, lo), hi)) for a, b in bounds]


def integral_range(pair):
    """Whether both ends of ``(lo, hi)`` are Python ints (ranges of integer data)."""
    return type(pair[0]) is int and type(pair[1]) is int


# ---------------------------------------------------------------- ranges


def ranges(x2, kind, bounds, name, backend=_cpu, channels=1):
    """``(lo, hi)`` of each row: ``bounds[b]`` if given, else the row's min and max.

    Integers come back as Python ints, floats as Python floats.  Float rows
    are always scanned, so NaN or Inf raises ``ValueError`` naming ``name``
    before anything is written.
    """
    if kind == "int" and bounds is not None:
        return bounds
    lo, hi, bad = backend.row_extremes(x2, kind)
    if bad is not None and bad.any():
        where = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{name} must be finite, but {_element(where, channels)} holds NaN or Inf")
    return bounds if bounds is not None else _pairs(lo, hi, kind)


def _element(row, channels):
    """Row ``row`` in a message: its element, and its channel where rows are channels."""
    if channels == 1:
        return f"element {row}"
    return f"element {row // channels}, channel {row % channels}"


def _pairs(lo, hi, kind):
    """Ranges from arrays of row ends: Python ints for integer rows, floats otherwise."""
    if kind == "int":
        return list(zip(lo.tolist(), hi.tolist()))
    return [(float(a), float(b)) for a, b in zip(lo.tolist(), hi.tolist())]


# ---------------------------------------------------------------- transform_batch


class Applied(NamedTuple):
    """What :func:`transform` applied: packed curves, ranges and extrema.

    On the device route ``bounds`` and ``extrema`` may stay on the device
    (``bounds`` a pair of ``lo``/``hi`` tensors) until :func:`applied` is asked.
    """

    curve: np.ndarray
    bounds: object
    extrema: object


class Selection(NamedTuple):
    """Which values of the rows count (``nan_policy="omit"``, ``mask=``).

    ``mask`` is ``None`` (every value) or uint8 rows, one per row or one for
    all; ``omit`` leaves NaN and Inf out of the ranges; values outside the
    mask get ``fill`` and NaN stays NaN.
    """

    mask: np.ndarray | None
    omit: bool
    fill: float


def _selected_ranges(x2, kind, bounds, select, name, backend, channels=1):
    """``(bounds, restore)``: the ranges over the selected values, and whether to restore.

    ``restore``: whether any value needs restoring after the transform (one
    scan tells: without a mask, rows whose every value counts need none);
    given ranges (replay, ``min_max_val``) are not scanned.
    """
    if select.mask is None and kind == "int":
        return ranges(x2, kind, bounds, name, backend, channels), False
    if bounds is not None:
        return bounds, True
    lo, hi, counts = backend.selected_extremes(x2, kind, select.mask, select.omit)
    if not counts.all():
        where = int(np.flatnonzero(counts == 0)[0])
        values = "finite value" if select.omit and kind != "int" else "value"
        if select.mask is None:
            raise ValueError(f"{name} {_element(where, channels)} holds no {values} "
                             "(nan_policy='omit')")
        raise ValueError(f"mask selects no {values} of {name} {_element(where, channels)}")
    bounds = _pairs(lo, hi, kind)
    if select.mask is None:
        return bounds, bool((counts < x2.shape[1]).any())
    if kind == "int":
        return bounds, True
    bad = [b for b, pair in enumerate(bounds) if not all(map(math.isfinite, pair))]
    if bad:  # selected by the mask, not left out by nan_policy
        raise ValueError(f"{name} must be finite, but {_element(bad[0], channels)} holds NaN "
                         "or Inf inside the mask")
    return bounds, True


def _restoring(x2, kind, select, out_dtype, backend):
    """What restores ``fill`` outside the mask and NaN where the input is NaN, for the backend."""
    fills = np.array([select.fill, np.nan], out_dtype)
    return backend.restore_args(x2, kind, select.mask, select.omit and kind != "int", fills)


def transform(x2, kind, dtype, draw, bounds, out2, out_dtype, name="x", backend=_cpu,
              select=None, channels=1):
    """Transform rows ``x2`` of ``dtype`` into ``out2``, each with its own curve.

    Parameters
    ----------
    x2, kind
        Rows and kind from :func:`rows` (or the backend's equivalent).
    dtype : numpy dtype
        The rows' dtype as numpy names it (float16 as uint16 patterns).
    draw : callable
        Returns the packed curve parameters ``(B, 3, K)``; called once, after
        the ranges are known to be valid.
    bounds : list of (lo, hi) or None
        Each element's range; ``None`` for its own min and max.
    out2 : array
        The ``(B, N)`` output in the backend's form.
    out_dtype : numpy dtype
        The output's dtype.
    select : Selection, optional
        Which values count; ``None``: all of them, and NaN or Inf raise.
    channels : int
        Channels per element where the rows are ``(element, channel)`` pairs,
        for messages.

    Returns
    -------
    Applied
    """
    if select is not None:
        bounds, restore = _selected_ranges(x2, kind, bounds, select, name, backend, channels)
        if restore and select.omit and backend.overlaps(x2, out2):
            # in place: NaN must still be found after the transform
            x2 = x2.copy() if isinstance(x2, np.ndarray) else x2.clone()
        curve = draw()
        selection = _restoring(x2, kind, select, out_dtype, backend) if restore else None
        extrema = apply(x2, kind, dtype, curve, bounds, out2, out_dtype, backend, selection)
        return Applied(curve, bounds, extrema)
    if backend is _cpu and _fits_small(x2, kind, bounds) and _cpu.curves_compiled():
        # Small 8/16-bit elements on integer grids: one call does it all.
        curve = draw()
        n_rows = x2.shape[0]
        table = np.empty((n_rows, 5), np.int64)
        if bounds is not None:
            for b, ((lo, hi), (clip_lo, clip_hi)) in enumerate(
                    zip(bounds, clamped_bounds(x2.dtype, bounds))):
                table[b] = (lo, hi, clip_lo, clip_hi, min(max(clip_lo - lo, 0), hi - lo))
        extrema = np.empty((n_rows, 2))
        _cpu.small_rows(x2, curve, bounds is None, table, extrema, out2)
        return Applied(curve, bounds or table[:, :2].tolist(), extrema)
    if getattr(backend, "device_lookup", None) and _device_tables(kind, dtype, bounds):
        curve = draw()
        lo, hi, extrema = backend.device_lookup(x2, dtype, curve, bounds, out2, out_dtype)
        return Applied(curve, bounds or (lo, hi), extrema)
    bounds = ranges(x2, kind, bounds, name, backend, channels)
    curve = draw()
    return Applied(curve, bounds, apply(x2, kind, dtype, curve, bounds, out2, out_dtype,
                                        backend))


def applied(result):
    """The :class:`~rsgt_fast.Curves` of an :class:`Applied` (downloaded where on a device)."""
    bounds, extrema = result.bounds, result.extrema
    if not isinstance(bounds, list):  # ranges and extrema still on the device
        lo, hi = bounds
        bounds = [(int(a), int(b)) for a, b in zip(lo.tolist(), hi.tolist())]
    if not isinstance(extrema, np.ndarray):
        extrema = extrema.cpu().numpy()
    return engine_curves(result.curve, bounds, extrema)


def apply(x2, kind, dtype, curve, bounds, out2, out_dtype, backend=_cpu, selection=None):
    """Transform rows ``x2`` with curves ``curve`` over ranges ``bounds`` into ``out2``.

    Returns the ``(B, 2)`` extrema of the curves.  Elements that need
    different tables go in groups, one backend call each.  ``selection``
    (the backend's ``restore_args``): the values outside it are restored, in
    the mapping pass where the elements share their tables.
    """
    table_dtype = np.dtype(np.uint16) if out_dtype == np.float16 else np.dtype(out_dtype)
    plans = make_plans(dtype, x2.shape[1] * x2.shape[0], kind, curve, bounds, out_dtype)
    if len(plans) == 1:
        _, plan = plans[0]
        backend.map_voxels(plan, x2, backend.tables(plan, curve, table_dtype), out2, selection)
        return plan.extrema
    extrema = np.empty((x2.shape[0], 2))
    for members, plan in plans:
        part = out2[members]
        rows_ = x2[members]
        backend.map_voxels(plan, rows_, backend.tables(plan, curve[members], table_dtype), part)
        out2[members] = part
        extrema[members] = plan.extrema
    if selection is not None:
        backend.restore_outside(selection, out2)
    return extrema


def _fits_small(x2, kind, bounds):
    """Whether rows ``x2`` may take the one-call route.

    That is 8/16-bit integers in elements of at most ``CHUNK`` values over
    their own ranges or integral ranges of at most ``GRID_MAX`` integers.
    """
    if not (kind == "int" and x2.dtype.itemsize <= 2 and x2.shape[1] <= CHUNK):
        return False
    return bounds is None or all(
        integral_range(pair) and -_INT64 <= pair[0] and pair[1] < _INT64
        and pair[1] - pair[0] < GRID_MAX for pair in bounds)


def _device_tables(kind, dtype, bounds):
    """Whether 8/16-bit rows get tables built on the device.

    They do over their own ranges, or integral ranges inside the dtype's (the
    extrema are taken over the table's entries).  The choice depends on the
    dtype and the ranges only, never on the batch.
    """
    if kind != "int" or dtype.itemsize > 2:
        return False
    if bounds is None:
        return True
    low, high = int_limits(dtype)
    return all(integral_range(pair) and low <= pair[0] and pair[1] <= high for pair in bounds)


def _route(kind, itemsize, float32_in, pair, out_dtype, small_table):
    """What an element with range ``pair`` needs: ``(table, working float type, integer)``.

    ``integer``: integer input placed in integer arithmetic (integral ranges).
    """
    if kind == "half" or (kind == "int" and itemsize <= 2):
        return ("lookup" if kind == "half" or not small_table else "index"), np.float64, False
    if kind == "int":
        if integral_range(pair) and pair[1] - pair[0] < GRID_MAX:
            return "index", np.float64, False
        return "interp", np.float64, integral_range(pair)
    lo, hi = float(pair[0]), float(pair[1])
    if (float32_in and out_dtype != np.float64 and _is_float32(lo) and _is_float32(hi)
            and position_unit(lo, hi) == 0.5):
        return "interp", np.float32, False
    return "interp", np.float64, False


def _is_float32(value):
    """Whether the float ``value`` is a float32 value (no overflow warning for others)."""
    return abs(value) <= _FLOAT32_MAX and float(np.float32(value)) == value


def make_plans(dtype, size, kind, curve, bounds, out_dtype):
    """Plans for transforming rows of ``dtype`` with curves ``curve`` over ``bounds``.

    The rows hold ``size`` values in all, of the kind :func:`rows` gives.  Returns a list of
    ``(rows, plan)``: ``rows`` is ``None`` when the plan covers the whole batch, else the indices of
    the elements it covers.
    """
    dtype = np.dtype(dtype)
    itemsize = dtype.itemsize
    on_ints = [kind == "int" and integral_range(p) and p[1] - p[0] < GRID_MAX for p in bounds]
    # 8/16-bit rows on integer grids may take either table (the same values):
    # the full one pays off on large elements (each element has its own, so
    # it is the element's size that counts) and is needed by dense rows.
    exact = all(on_ints)
    small_table = exact and size // len(bounds) < FULL_TABLE_MIN << (8 * itemsize)
    if small_table or (exact and itemsize > 2):
        # Every element on an integer grid with a table per range: what _route
        # gives each of them, decided once.
        return [(None, _plan(dtype, kind, curve, bounds, on_ints, "index", np.float64, False))]
    float32_in = dtype == np.float32
    routes = [_route(kind, itemsize, float32_in, p, out_dtype, small_table) for p in bounds]
    first = routes[0]
    if all(route == first for route in routes):
        return [(None, _plan(dtype, kind, curve, bounds, on_ints, *first))]
    groups: dict = {}
    for b, route in enumerate(routes):
        groups.setdefault(route, []).append(b)
    return [(np.array(members), _plan(dtype, kind, curve[members],
                                      [bounds[b] for b in members],
                                      [on_ints[b] for b in members], *route))
            for route, members in groups.items()]


def dense_grid_points(curve, tolerance, smallest=1025, largest=65537):
    """Grid points per curve for linear interpolation within ``tolerance``.

    Interpolating a curve between grid points ``h`` apart errs by at most
    ``h**2 / 8 * max|y''|``, and ``max|y''| <= sum(|a| f**2)``; relative to the
    curve's range ``R`` (bounded from below by a coarse sampling) that gives
    the spacing needed.  Returns ``2**k + 1`` points, between ``smallest`` and
    ``largest``, one per curve of ``curve`` (packed, ``(B, 3, K)``).
    """
    t = np.linspace(0.0, TWO_PI, 257)
    # Every curve at once: a trailing axis makes each parameter broadcast against t.
    y = python(curve_value)(t, curve[..., None], slice(None))
    span = np.maximum(y.max(axis=1) - y.min(axis=1), 1e-300)
    bend = (np.abs(curve[:, AMPLITUDE]) * curve[:, FREQUENCY] ** 2).sum(axis=1)
    needed = TWO_PI * np.sqrt(bend / (8.0 * span * tolerance))
    steps = 2.0 ** np.ceil(np.log2(np.maximum(needed, 1.0)))
    return np.clip(steps + 1, smallest, largest).astype(np.int64)


def _plan(dtype, kind, curve, bounds, on_ints, table, work, integer):
    n_rows = len(bounds)
    exact = all(on_ints)
    if exact:
        points = [hi - lo + 1 for lo, hi in bounds]
    else:
        dense_points = dense_grid_points(curve, DENSE_TOLERANCE[kind]).tolist()
        points = [hi - lo + 1 if on_int else (1 if hi == lo else dense_points[b])
                  for b, ((lo, hi), on_int) in enumerate(zip(bounds, on_ints))]
    clip = None
    if table == "index" or integer:
        clamped = clamped_bounds(dtype, bounds)
        clip = np.array(clamped, dtype)
        clip_lo = [lo for lo, _ in clamped]
    offset = -int_limits(dtype)[0] if table == "lookup" and kind == "int" else 0

    place = [None] * n_rows
    for b, ((lo, hi), g) in enumerate(zip(bounds, points)):
        lo_f, hi_f = float(lo), float(hi)
        if on_ints[b]:
            # Integer grids: one point per integer, so the span is g - 1 exactly.
            unit = 0.5
            span = 0.5 * (g - 1)
        else:
            unit = position_unit(lo_f, hi_f)
            # Spans of integer ranges come from Python integers: exact where
            # float64 endpoints near 2**63 are not.
            span = (unit * float(hi - lo) if integral_range((lo, hi))
                    else unit * hi_f - unit * lo_f)
        scale = (g - 1) / span if hi > lo else 0.0
        if table == "lookup":
            base = min(max(float(lo + offset), -_FAR), _FAR) if on_ints[b] else 0.0
        elif table == "index":
            base = float(min(max(clip_lo[b] - lo, 0), g - 1))
        elif integer:
            base = min(max(float(clip_lo[b] - lo) * unit * scale, 0.0), g - 1.0)
        else:
            base = 0.0
        row = place[b] = [0.0] * N_PLACE
        row[LO], row[HI], row[UNIT_LO], row[SCALE] = lo_f, hi_f, unit * lo_f, scale
        row[UNIT], row[LAST], row[BASE] = unit, g - 1.0, base
    grid = np.zeros((n_rows, 2), np.int64)
    grid[:, POINTS] = points
    if not exact:
        grid[:, DENSE] = [not on_int and g > 1 for on_int, g in zip(on_ints, points)]
    width = max(points)
    if table == "lookup":
        width = 1 << (8 * dtype.itemsize)
    elif table == "index":
        width = max(width, 2)
    if clip is None:
        clip = np.zeros((n_rows, 2), dtype)
    return Plan(table, width, grid, np.empty((n_rows, max(points))), np.empty((n_rows, 2)),
                np.array(place, work), clip,
                _values(dtype, kind) if table == "lookup" else None,
                offset, kind == "half", integer)


@functools.cache
def _values(dtype, kind, cast=np.dtype(np.float64)):
    """Every value an 8/16-bit integer (or float16) row can hold, as float64.

    In bit-pattern order, cast to ``cast`` first; ±Inf stay (a range's
    placement clamps them to its ends), NaN patterns come as 0 (their output
    is replaced by NaN, see :class:`Selection`).
    """
    with np.errstate(invalid="ignore", over="ignore"):
        values = _full_table(dtype, kind).astype(cast).astype(np.float64)
    values[np.isnan(values)] = 0.0
    return values


# ---------------------------------------------------------------- given tables


def _given(table, n_rows, dtype, clip=None, base=0):
    """A plan that maps rows of ``dtype`` through given tables.

    A full table of an 8/16-bit dtype (``clip`` ``None``), else an index table
    from ``base`` on.
    """
    if clip is None:
        offset = -int_limits(dtype)[0] if np.dtype(dtype).kind in "iu" else 0
        return Plan("lookup", table.shape[1], None, None, None, None, None, offset=offset)
    place = np.zeros((n_rows, N_PLACE))
    place[:, BASE] = base
    return Plan("index", table.shape[1], None, None, None, place,
                np.array(clip, dtype).reshape(n_rows, 2))


def _full_table(dtype, kind):
    """Every value an 8/16-bit integer (or float16) row can hold, in bit-pattern order."""
    if kind == "half":
        return np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(np.float16)
    lo, hi = int_limits(dtype)
    return np.arange(lo, hi + 1, dtype=np.int64)


def _lut(values, out_dtype):
    """Host table values as a ``(1, n)`` table of what the output stores."""
    return np.ascontiguousarray(stored(np.asarray(values, np.float64), out_dtype))[None, :]


# ---------------------------------------------------------------- the rsgt facade


def facade(x2, kind, min_max_val, draw, out2, out_dtype):
    """Transform one row ``x2`` into ``out2`` as rsgt 1.1.0 does, the curve from ``draw``.

    rsgt's contract: values are integers (float input is truncated toward
    zero, which keeps the order, so the truncated range comes from the scan
    of the values themselves).  Integral ranges of up to ``EXACT_MAX`` values
    get rsgt's own table (:func:`rsgt_table`), bit for bit; wider or
    non-integral ranges the engine's dense grid.
    """
    if kind == "int":
        lo, hi = (min_max_val if min_max_val is not None
                  else ranges(x2, kind, None, "image")[0])
    else:
        low, high = ranges(x2, kind, None, "image")[0]
        if low < -_INT64 or high >= 2.0**63:
            raise ValueError(
                f"image values must lie within the int64 range, got [{low:g}, {high:g}]")
        x2 = (x2.view(np.float16) if kind == "half" else x2).astype(np.int64)
        lo, hi = min_max_val or (int(low), int(high))
    curve = draw()
    if integral_range((lo, hi)) and hi - lo < EXACT_MAX:
        table = rsgt_table(curve, hi - lo + 1, out_dtype)
        width = 1 << (8 * x2.dtype.itemsize)
        if x2.dtype.itemsize <= 2 and x2.size >= FULL_TABLE_MIN * width:
            # An entry per value the dtype holds (value v at v - dmin): the table where
            # the range covers the value, its ends repeated outside.
            first = lo - int_limits(x2.dtype)[0]
            full = np.empty((1, width), table.dtype)
            start, stop = min(max(first, 0), width), min(max(first + len(table), 0), width)
            full[0, :start] = table[0]
            full[0, start:stop] = table[start - first:stop - first]
            full[0, stop:] = table[-1]
            _cpu.map_voxels(_given(full, 1, x2.dtype), x2, full, out2)
        else:
            (clip,) = clamped_bounds(x2.dtype, [(lo, hi)])
            plan = _given(table[None], 1, x2.dtype, clip, min(max(clip[0] - lo, 0), hi - lo))
            _cpu.map_voxels(plan, x2, table[None], out2)
        return
    apply(x2, "int", x2.dtype, curve, [(lo, hi)], out2, out_dtype)


_checks: dict = {}


def _numpy_curves(kind):
    """Whether numpy evaluates curves as :func:`rsgt_table` needs, checked once per process.

    ``pointwise``: a curve at a point gets the same bits in any array (a SIMD
    path that treated an array's tail differently would show up), so a few
    of rsgt's samples can be recomputed on their own.  ``compiled``: the
    compiled curve (the C library's sines) gives numpy's bits, so the
    compiled code may recompute them.
    """
    if kind not in _checks:
        rng = np.random.default_rng(20240611)
        curve = np.array([[[0.3, 1.1, 1.57], [1.2, -0.4, 0.6], [0.5, 4.0, 2.5]]])
        n = 1031
        exact = python(curve_value)(np.linspace(0, TWO_PI, n), curve, 0)
        if kind == "pointwise":
            t = python(grid_point)(np.arange(n), n)
            picks = [rng.choice(n, size, replace=False) for size in (1, 2, 3, 7, 17, 100)]
            _checks[kind] = all(np.array_equal(python(curve_value)(t[p], curve, 0), exact[p])
                                for p in picks)
        else:
            values = np.zeros(n)  # every entry unsafe: all recomputed in compiled code
            _cpu.round_table(curve, values, np.zeros(2), np.inf, np.empty(n, np.float32),
                             np.empty(n, np.int64), True)
            _checks[kind] = bool(np.array_equal(values, exact))
    return _checks[kind]


def rsgt_table(curve, n_points, out_dtype):
    """The lookup table rsgt makes for curve 0 over ``n_points`` integers, bit for bit.

    The table holds what the output stores (float16 as bit patterns).

    rsgt samples the curve with numpy at ``linspace(0, 2*pi, n_points)``,
    scales it by the samples' extrema and casts it to the output dtype.  Small
    tables (and float64 ones, which need every exact sample) are computed
    just so.  Larger ones are sampled by the compiled grid sampling within a
    known error and rounded, and rsgt's exact samples are taken only where
    that error could matter (``_cpu.round_table``: at the samples that may be
    an extremum and at the entries whose rounding it could change, a few per
    thousand), in compiled code where its sines are numpy's, else in numpy.
    While curves are sampled on the host (``_cpu.curves_compiled``), tables of
    up to ``GRID_MAX`` entries are computed as rsgt computes them.
    """
    exact = python(curve_value)
    y = None
    if (n_points <= EXACT_HOST or out_dtype == np.float64
            or not _numpy_curves("pointwise")):
        y = exact(np.linspace(0, TWO_PI, n_points), curve, 0)
    elif n_points <= GRID_MAX:
        y = _cpu.host_samples(curve, n_points)  # while curves are sampled on the host
    if y is not None:
        return stored(python(normalized)(y, y.min(), y.max()), out_dtype)
    error = SAMPLE_ERROR * sum(abs(a) * (2.0 + f) for f, a in
                               zip(curve[0, FREQUENCY].tolist(), curve[0, AMPLITUDE].tolist()))
    values, extrema = _cpu.sample_curve(curve, n_points)
    table = np.empty(n_points, np.uint16 if out_dtype == np.float16 else out_dtype)
    unsafe = np.empty(n_points, np.int64)
    compiled = _numpy_curves("compiled")
    unsafe = unsafe[:_cpu.round_table(curve, values, extrema, error, table, unsafe, compiled)]
    if not compiled:
        # Every exact sample lies within the extrema and the unsafe ones include
        # both extrema, so their own extrema are the table's.
        y = exact(python(grid_point)(unsafe, n_points), curve, 0)
        table[unsafe] = stored(python(normalized)(y, y.min(), y.max()), out_dtype)
    return table


# ---------------------------------------------------------------- normalisations


def normalize_ct(x2, kind, out2, out_dtype):
    """Map rows ``x2`` into ``out2`` as ``clip(x + 1000, 0, 4096).astype(dtype) / 4096``.

    8/16-bit rows (and float16) go through a table of every value they can
    hold, wider integers through a table of the 4097 values of the window,
    floats through one compiled pass.
    """
    if kind != "int":
        ranges(x2, kind, None, "image")  # NaN or Inf raise here
    if kind == "half" or kind == "int":
        table = _ct_table(x2.dtype, kind, out_dtype)
        if kind == "half" or x2.dtype.itemsize <= 2:
            _cpu.map_voxels(_given(table, 1, x2.dtype), x2, table, out2)
        else:
            (clip,) = clamped_bounds(x2.dtype, [(-1000, 3096)])
            plan = _given(table, 1, x2.dtype, clip, min(max(clip[0] + 1000, 0), 4096))
            _cpu.map_voxels(plan, x2, table, out2)
    else:
        _cpu.ct_float(x2, out2)


@functools.cache
def _ct_table(dtype, kind, out_dtype):
    """The CT window as a table, in rsgt's steps and roundings.

    Of every value an 8/16-bit (or float16) row can hold, else of the 4097
    integers from -1000 to 3096.
    """
    if kind == "half" or dtype.itemsize <= 2:
        values = _full_table(dtype, kind)
        with np.errstate(over="ignore", invalid="ignore"):  # inf/nan patterns never occur
            shifted = np.clip(values + (np.float16(1000) if kind == "half" else 1000), 0, 4096)
        return _lut(shifted.astype(out_dtype) / 4096, out_dtype)
    return _lut(np.arange(4097).astype(out_dtype) / 4096, out_dtype)


def normalize_mr(x2, kind, out2, out_dtype):
    """Map one row ``x2`` as ``clip((x - p5) / (p95 - p5), 0, 1)`` in ``out_dtype``.

    The percentiles are numpy's (linear), found exactly by the backend
    (``_cpu.percentiles``).  8/16-bit rows (and float16) go through a table
    of every value they can hold, the rest through one compiled pass.
    """
    dtype = np.dtype(np.float16) if kind == "half" else x2.dtype
    p5, p95 = _cpu.percentiles(x2[0], dtype, out_dtype)
    if kind == "half" or (kind == "int" and x2.dtype.itemsize <= 2):
        values = _values(x2.dtype, kind, out_dtype)
        table = _lut(python(percentile_scaled)(values, p5, p95), out_dtype)
        _cpu.map_voxels(_given(table, 1, x2.dtype), x2, table, out2)
    else:
        _cpu.mr_affine(x2, p5, p95, out_dtype == np.float32 and x2.dtype != np.float32, out2)


# ---------------------------------------------------------------- the registry


def _array(dtype, ndim=2):
    return numba.types.Array(numba.from_dtype(np.dtype(dtype)), ndim, "C")


def signatures(in_dtype, out_dtype):
    """Every kernel a transform of ``in_dtype`` into ``out_dtype`` may run, and its types.

    A list of ``(name, kernel, types)``: the argument types the routes pass it.

    ``in_dtype`` is the input's own dtype; the kernels see bools as uint8 and
    float16 as its uint16 patterns.
    """
    dtype = np.dtype(in_dtype)
    out_dtype = np.dtype(out_dtype)
    kind = "half" if dtype == np.float16 else "float" if dtype.kind == "f" else "int"
    view = np.dtype(np.uint8) if dtype.kind == "b" else (
        np.dtype(np.uint16) if kind == "half" else dtype)
    table = np.dtype(np.uint16) if out_dtype == np.float16 else out_dtype
    i64, boolean = numba.types.int64, numba.types.boolean
    x, out, tab = _array(view), _array(table), _array(table)
    grid, values, f64_2 = _array(np.int64), _array(np.float64), _array(np.float64)
    signed = np.dtype(f"int{8 * view.itemsize}")
    found = [("spin", (_array(np.int64, 1), i64, i64, i64, i64)),
             ("take", (_array(np.int64, 1), i64)),
             ("scan", (_array(signed), i64, _array(signed), i64, i64)) if dtype.kind == "i" else
             ("scan_keys", (_array(signed), _array(signed, 1), i64, _array(signed), i64, i64)),
             ("sample_grids", (_array(np.float64, 3), grid, values, f64_2, i64, i64))]
    narrow = kind == "half" or (kind == "int" and view.itemsize <= 2)
    if narrow:
        found += [("lookup_tables", (values, grid, f64_2, f64_2, _array(np.float64, 1), tab,
                                     i64, i64)),
                  ("lookup", (x, tab, out, i64, i64, i64, i64))]
    if kind == "int":
        found += [("index_tables", (values, grid, f64_2, tab, i64, i64)),
                  ("lookup_index", (x, _array(view), f64_2, tab, out, i64, i64, i64))]
    if narrow and kind == "int":
        found.append(("small_index_rows", (x, _array(np.float64, 3), boolean,
                                           _array(np.int64), f64_2, out, i64, i64)))
    pairs = [np.float64]
    if kind == "float" or (kind == "int" and view.itemsize > 2):
        if dtype == np.float32 and out_dtype != np.float64:
            pairs.append(np.float32)
        for work in pairs:
            pair = _array(np.complex64 if work == np.float32 else np.complex128)
            found += [("pair_tables", (values, grid, f64_2, _array(work), i64, i64)),
                      ("interpolate", (x, _array(work), pair, out, i64, i64, i64))]
        if kind == "int":
            found.append(("interpolate_integers", (x, _array(view), f64_2,
                                                   _array(np.complex128), out, i64, i64, i64)))
    kernels = dict(_cpu.KERNELS, spin=spin, take=take)
    return [(name, kernels[name], types) for name, types in found]


def signatures_of_selections(in_dtype, out_dtype):
    """:func:`signatures` of the kernels ``nan_policy="omit"`` and ``mask=`` add."""
    dtype = np.dtype(in_dtype)
    view = key_code(np.dtype(np.uint8) if dtype.kind == "b" else dtype)[0]
    table = np.dtype(np.uint16) if np.dtype(out_dtype) == np.float16 else np.dtype(out_dtype)
    i64 = numba.types.int64
    x, code, mask = _array(view), _array(view, 1), _array(np.uint8)
    found = [("scan_selected", (x, code, mask, i64, _array(np.int64), i64, i64)),
             ("restore", (x, code, mask, _array(table, 1), _array(table), i64, i64, i64))]
    selection = numba.types.Tuple((x, code, mask, _array(table, 1)))
    for name, _, types in signatures(in_dtype, out_dtype):
        if name in ("lookup", "lookup_index", "interpolate", "interpolate_integers"):
            found.append((f"{name}_restoring",
                          (numba.types.Tuple(types[:-2]), selection, i64, i64)))
    return [(name, _cpu.KERNELS[name], types) for name, types in found]


def signatures_of_normalizations(in_dtype, out_dtype):
    """:func:`signatures` for the facade and the normalisations of ``in_dtype`` input."""
    dtype = np.dtype(in_dtype)
    out_dtype = np.dtype(out_dtype)
    i64, f64 = numba.types.int64, numba.types.float64
    table = np.dtype(np.uint16) if out_dtype == np.float16 else out_dtype
    view = np.dtype(np.uint8) if dtype.kind == "b" else (
        np.dtype(np.uint16) if dtype == np.float16 else dtype)
    signed = np.dtype(f"int{8 * view.itemsize}")
    x, out, tab = _array(view), _array(table), _array(table)
    f64_2 = _array(np.float64)
    found = []
    narrow = dtype == np.float16 or (dtype.kind in "biu" and dtype.itemsize <= 2)
    if narrow:
        found.append(("lookup", (x, tab, out, i64, i64, i64, i64)))
    elif dtype.kind in "iu":
        found.append(("lookup_index", (x, _array(view), f64_2, tab, out, i64, i64, i64)))
    else:
        found += [("ct_kernel", (x, _array(view, 1), out, i64, i64, i64)),
                  ("mr_kernel", (x, _array(np.float64, 1), out, i64, i64, i64))]
    if dtype.kind in "iuf":
        one = _array(signed, 1)
        found += [("histogram_kernel", (one, _array(signed, 1), _array(np.int64, 1),
                                        _array(np.int64), i64, i64)),
                  ("collect_kernel", (one, _array(signed, 1), _array(np.int64, 1), i64,
                                      _array(np.int64, 1), _array(np.int64, 1), i64, i64))]
    if out_dtype != np.float64:
        found.append(("round_table", (_array(np.float64, 3), _array(np.float64, 1),
                                      _array(np.float64, 1), f64,
                                      _array(table, 1), _array(np.int64, 1),
                                      numba.types.boolean)))
    found = [(name, _cpu.KERNELS[name], types) for name, types in found]
    if dtype.kind == "f":  # the facade truncates float input to int64
        found += signatures(np.int64, out_dtype)
    return found
