"""From curves and input rows to kernel calls: a plan per group of rows, then the dispatch.

:func:`make_plans` decides, for each element, which grid its curve is
sampled on and which table maps its voxels; elements that need the same
kernel form one :class:`Plan` (almost always one for the whole batch).
:func:`run` executes a plan: one kernel call builds every element's table,
one more maps the voxels.  Every element's result
depends on its own curve, range and the input and output dtypes only, never
on the other elements, the batch size or the number of threads: that is what
makes a transformation replayable block by block.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np

from . import _stand_ins
from ._jit import StandIn
from ._kernels import (
    index_tables, interpolate, interpolate_integers, lookup, lookup_index, lookup_tables,
    pair_tables, sample_grids, small_index_rows,
)
from ._layout import (
    BASE, HI, LAST, LO, N_PLACE, SCALE, UNIT, UNIT_LO, Grid, Job,
)
from .curves import dense_grid_points, position_unit

__all__ = ["Plan", "make_plans", "build_tables", "run", "apply", "small_rows", "fits_small",
           "rows", "clip_bounds", "clamped_bounds", "integral_range", "lookup_table",
           "index_table", "CHUNK"]

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
#: Elements per parallel task.
CHUNK = 1 << 16
#: Tables are built in parallel (where the call is) from this many grid points
#: or table entries on: below it the serial kernels take a millisecond or less,
#: and the parallel ones, the curve code above all, cost about a second more
#: to compile on an empty cache.
PARALLEL_TABLES = 1 << 17
#: Table indices of a range's low end are kept within this bound (the tables
#: are at most 65536 wide, so nothing changes but the arithmetic stays exact).
_FAR = float(1 << 40)
_INT64 = 1 << 63
_FLOAT32_MAX = float(np.finfo(np.float32).max)


def rows(array):
    """``array`` as a C-contiguous native ``(B, N)`` array and its kind.

    The kind is ``'int'`` (integers; bools come as uint8), ``'half'`` (float16,
    returned as its uint16 bit patterns) or ``'float'``.
    """
    kind = array.dtype.kind
    if kind == "b":
        array = array.view(np.uint8)
    elif not array.dtype.isnative:
        array = array.astype(array.dtype.newbyteorder("="))
    if not array.flags.c_contiguous:
        array = np.ascontiguousarray(array)
    flat = array.reshape(array.shape[0], -1)
    if kind == "f":
        if flat.dtype.itemsize == 2:
            return flat.view(np.uint16), "half"
        return flat, "float"
    return flat, "int"


@functools.cache
def int_limits(dtype):
    """``(min, max)`` of an integer dtype, as Python ints."""
    info = np.iinfo(dtype)
    return int(info.min), int(info.max)


def clamped_bounds(dtype, bounds):
    """Each integer range clamped to what ``dtype`` holds, as a list of pairs of ints."""
    lo, hi = int_limits(dtype)
    return [(min(max(a, lo), hi), min(max(b, lo), hi)) for a, b in bounds]


def clip_bounds(dtype, bounds):
    """Each integer range clamped to what ``dtype`` holds, as a ``(B, 2)`` array of ``dtype``."""
    return np.array(clamped_bounds(dtype, bounds), dtype)


class Plan(NamedTuple):
    """How one kernel call maps a group of elements (immutable).

    Attributes
    ----------
    table : {'lookup', 'index', 'interp'}
        ``lookup``: an entry per value an 8/16-bit dtype holds (or per float16
        pattern); ``index``: one per integer of the range, indexed after
        clamping; ``interp``: (value, step) pairs of a grid interpolated at
        each voxel's position.
    grid : Grid
        Each element's grid points and whether it is dense, with room for the
        samples and extrema the kernel computes.
    place, clip : ndarray
        Per-element placement and integer clamping (see ``_layout``).
    job : Job
        The call's scalar settings.
    """

    table: str
    grid: Grid
    place: np.ndarray
    clip: np.ndarray
    job: Job


def integral_range(pair):
    """Whether both ends of ``(lo, hi)`` are Python ints (ranges of integer data)."""
    return type(pair[0]) is int and type(pair[1]) is int


def _route(kind, itemsize, float32_in, pair, out_dtype, small_table):
    """What element with range ``pair`` needs: ``(table, working float type, integer)``.

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
    """Plans for transforming rows of ``dtype`` (``size`` values in all, of the kind
    :func:`rows` gives) with curves ``curve`` over ranges ``bounds``.

    Returns a list of ``(rows, plan)``: ``rows`` is ``None`` when the plan
    covers the whole batch, else the indices of the elements it covers.
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
    groups = {}
    for b, route in enumerate(routes):
        groups.setdefault(route, []).append(b)
    return [(np.array(members), _plan(dtype, kind, curve[members],
                                      [bounds[b] for b in members],
                                      [on_ints[b] for b in members], *route))
            for route, members in groups.items()]


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
    width = max(points)
    grid = Grid(points=np.array(points, np.int64),
                dense=np.zeros(n_rows, np.bool_) if exact else
                np.array([not on_int and g > 1 for on_int, g in zip(on_ints, points)]),
                values=np.empty((n_rows, width)), extrema=np.empty((n_rows, 2)))
    if clip is None:
        clip = np.zeros((n_rows, 2), dtype)
    return Plan(table, grid, np.array(place, work), clip, _job(offset, kind == "half", integer))


@functools.cache
def _entries(dtype, half):
    """The input value of each lookup-table entry of an 8/16-bit dtype (float16 patterns)."""
    if half:
        values = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(np.float16)
        with np.errstate(invalid="ignore"):
            values = values.astype(np.float64)
        values[~np.isfinite(values)] = 0.0  # inf/nan patterns never occur in checked input
    else:
        info = np.iinfo(dtype)
        values = np.arange(int(info.min), int(info.max) + 1, dtype=np.float64)
    values.flags.writeable = False
    return values


#: The curves, and everything for small rows: numpy until that has taken
#: ``_jit.COMPILE_AFTER`` seconds, then compiled.
grids = StandIn(sample_grids, _stand_ins.sample_grids, key=lambda curve, grid: 0)
small = StandIn(small_index_rows, _stand_ins.small_index_rows,
                key=lambda x, curve, own, ranges, extrema, out: (x.dtype, out.dtype))


def build_tables(plan, dtype, curve, table_dtype):
    """Each element's table for ``plan`` on rows of ``dtype``: two kernel calls, one
    sampling the curves and one filling the tables, in the variant the call
    runs if they are large (see ``PARALLEL_TABLES``), else serially.

    ``table_dtype`` is the output's (``uint16`` for float16 bit patterns);
    interpolating plans get (value, step) pairs as complex numbers of the
    working float type instead.  Fills ``plan.grid.values`` and ``plan.grid.extrema``.
    """
    grid = plan.grid
    n_rows, width = grid.values.shape
    if plan.table == "lookup":
        table = np.empty((n_rows, 1 << (8 * np.dtype(dtype).itemsize)), table_dtype)
        fill, args = lookup_tables, (plan.place, _entries(dtype, plan.job.half_in), table)
    elif plan.table == "index":
        table = np.empty((n_rows, max(width, 2)), table_dtype)
        fill, args = index_tables, (table,)
    else:
        table = np.empty((n_rows, width),
                         np.complex64 if plan.place.dtype == np.float32 else np.complex128)
        fill, args = pair_tables, (table,)
    many_points = int(grid.points.sum()) >= PARALLEL_TABLES
    many_entries = table.size >= 8 * PARALLEL_TABLES  # filling an entry costs less
    grids(curve, grid, serial=not many_points)
    (fill if many_points or many_entries else fill.serial)(grid, *args)
    return table


def run(plan, x2, curve, out2):
    """Execute ``plan`` on rows ``x2``: build each element's table, then map its voxels.

    ``out2`` is the ``(B, N)`` output, viewed as ``uint16`` for float16.
    Fills ``plan.grid.extrema``.
    """
    job = plan.job
    table = build_tables(plan, x2.dtype, curve, out2.dtype)
    if plan.table == "lookup":
        lookup(x2, table, out2, job)
    elif plan.table == "index":
        lookup_index(x2, plan.clip, plan.place, table, out2, job)
    elif job.integer:
        interpolate_integers(x2, plan.clip, plan.place, table, out2, job)
    else:
        interpolate(x2, plan.place, table, out2, job)


def apply(x2, kind, curve, bounds, shape, out_dtype, out=None):
    """Transform rows ``x2`` with curves ``curve`` over ranges ``bounds``.

    Returns the result, of ``shape`` and ``out_dtype`` (``out`` itself when
    given), and the ``(B, 2)`` extrema of the curves.
    """
    result, out2 = _output(x2, shape, out_dtype, out)
    plans = make_plans(x2.dtype, x2.size, kind, curve, bounds, out_dtype)
    extrema = None if plans[0][0] is None else np.empty((x2.shape[0], 2))
    for members, plan in plans:
        if members is None:
            run(plan, x2, curve, out2)
            extrema = plan.grid.extrema
        else:
            part = np.empty((len(members), out2.shape[1]), out2.dtype)
            run(plan, x2[members], curve[members], part)
            out2[members] = part
            extrema[members] = plan.grid.extrema
    return _finish(result, out), extrema


def _output(x2, shape, out_dtype, out):
    """The array to write (``out`` itself where it can be written directly) and its
    ``(B, N)`` view, as ``uint16`` for float16."""
    direct = (out is not None and out.flags.c_contiguous and out.flags.aligned
              and out.dtype.isnative)
    result = out if direct else np.empty(shape, out_dtype)
    out2 = result.reshape(x2.shape[0], -1)
    if out_dtype == np.float16:
        out2 = out2.view(np.uint16)
    return result, out2


def _finish(result, out):
    if out is not None and result is not out:
        np.copyto(out, result)
        return out
    return result


def fits_small(x2, kind, bounds=None):
    """Whether rows ``x2`` may take :func:`small_rows`: 8/16-bit integers in elements
    of at most ``CHUNK`` values (as much as one task of the general route maps),
    over their own ranges (``bounds`` ``None``) or one integral range of at
    most ``GRID_MAX`` integers."""
    if not (kind == "int" and x2.dtype.itemsize <= 2 and x2.size > 0
            and x2.shape[1] <= CHUNK):
        return False
    return bounds is None or (integral_range(bounds) and -_INT64 <= bounds[0]
                              and bounds[1] < _INT64 and bounds[1] - bounds[0] < GRID_MAX)


def small_rows(x2, curve, shape, out_dtype, bounds=None, out=None):
    """:func:`apply` for rows that pass :func:`fits_small` with ``bounds``.

    One kernel call (scans,) samples, tabulates and maps every row, one task
    per row; the results are the bits that scanning and :func:`apply` give.
    Returns the result, the ``(B, 2)`` int64 ranges and the ``(B, 2)`` extrema.
    """
    result, out2 = _output(x2, shape, out_dtype, out)
    n_rows = x2.shape[0]
    ranges = np.empty((n_rows, 5), np.int64)
    if bounds is not None:
        (lo, hi), = clamped_bounds(x2.dtype, [bounds])
        ranges[:] = (*bounds, lo, hi, min(max(lo - bounds[0], 0), bounds[1] - bounds[0]))
    extrema = np.empty((n_rows, 2))
    small(x2, curve, bounds is None, ranges, extrema, out2)
    return _finish(result, out), ranges[:, :2], extrema


@functools.cache
def _job(offset, half_in, integer):
    return Job(chunk=CHUNK, offset=offset, half_in=half_in, integer=integer)


def lookup_table(x2, table, out2):
    """``out2 = table[x2 - dtype min]``: a full table of an 8/16-bit dtype, one call."""
    offset = -int_limits(x2.dtype)[0] if x2.dtype.kind in "iu" else 0
    lookup(x2, table, out2, _job(offset, False, False))


def index_table(x2, clip, base, table, out2):
    """``out2 = table[base + clamp(x2, clip) - clip lo]`` (one row of bounds per element)."""
    place = np.zeros((x2.shape[0], N_PLACE))
    place[:, BASE] = base
    lookup_index(x2, clip, place, table, out2, _job(0, False, False))
