"""The CPU backend: numba kernels, thin loops over :mod:`._formulas`, and the calls that run them.

Every kernel takes a range of tasks ``[t0, t1)`` as its last two arguments
and is compiled once (``_jit.kernel``); :func:`._jit.run` spreads the tasks of
one call over threads.  A task is an element, for the kernels that sample
curves and fill tables, or a chunk of one element's values, for those that
read every value, so that a batch of one still keeps every core busy.
Arrays arrive C-contiguous: ``x`` and ``out`` are ``(B, N)``, one row per
element, and an output of itemsize 2 holds float16 bit patterns (numba has
no float16).  The packed arguments are described in :mod:`._layout`; kernels
draw no random numbers, and each element's result depends on its own row
only.

The backend interface, shared with ``_gpu.py``: :func:`row_extremes` (each
row's smallest and largest value), :func:`tables` (each element's table for
a plan) and :func:`map_voxels` (every value through its row's table).  The
rest are CPU routes: :func:`small_rows` (the whole transform of small
8/16-bit elements in one call), rsgt's one-curve samples and their rounding
(:func:`sample_points`, :func:`round_table`), and the normalisations
(:func:`ct_float`, :func:`mr_affine` and the exact percentiles of
:func:`percentiles`).  :data:`KERNELS` lists every kernel for ``plan.py``'s
registry.
"""

from __future__ import annotations

import functools
import time

import numpy as np
from numba.extending import overload

from ._formulas import (
    KEY_SIGNED, TWO_PI, clamp, curve_value, decode_keys, extremes, grid_extrema, grid_point,
    half_bits, half_value, key_code, normalized, order_key, percentile_scaled, place,
    place_integer, rounded, sample_grid, store,
)
from ._jit import OPTIONS, formula, in_cache, kernel, python, run, seconds_from_env
from ._layout import (
    BASE, CLIP_HI, CLIP_LO, DENSE, HI, LAST, LO, POINTS, SCALE, UNIT, UNIT_LO, YMAX, YMIN,
)

__all__ = ["row_extremes", "selected_extremes", "restore_args", "restore_outside", "overlaps",
           "tables", "map_voxels", "small_rows", "sample_curve", "round_table", "ct_float",
           "mr_affine", "percentiles", "KERNELS", "CHUNK"]

#: Values per task of the kernels that read every value.
CHUNK = 1 << 16
#: Values per block in the interpolating gather.
BLOCK = 512


@formula
def task_span(task, n_chunks, chunk, length):
    """Row and ``[start, stop)`` of task ``task`` (chunk ``task % n_chunks`` of its row)."""
    b = task // n_chunks
    start = (task - b * n_chunks) * chunk
    stop = start + chunk
    return b, start, stop if stop < length else length


def _chunked(x2, chunk=CHUNK):
    """Chunks per row and tasks in all for rows ``x2``."""
    n_chunks = -(-x2.shape[1] // chunk)
    return n_chunks, x2.shape[0] * n_chunks


# ------------------------------------------------------------------ range scan


@formula
def _key_extremes(values, code):
    """``(min, max)`` order key of a non-empty 1-D array of bit patterns.

    ``code`` holds the key's kind, magnitude and shift.
    """
    kind = code[0]
    magnitude = code[1]
    shift = code[2]
    lo = hi = order_key(values[0], kind, magnitude, shift)
    for i in range(1, values.shape[0]):
        key = order_key(values[i], kind, magnitude, shift)
        lo = min(lo, key)
        hi = max(hi, key)
    return lo, hi


@kernel
def scan(x, chunk, parts, t0, t1):
    """Smallest and largest value of each task's chunk of signed integers ``x``.

    They go into ``parts[task]``; signed integers are their own order keys, and
    their min and max vectorise.
    """
    n_chunks = (x.shape[1] + chunk - 1) // chunk
    for t in range(t0, t1):
        b, start, stop = task_span(t, n_chunks, chunk, x.shape[1])
        parts[t, 0], parts[t, 1] = extremes(x[b, start:stop])


@kernel
def scan_keys(x, code, chunk, parts, t0, t1):
    """Smallest and largest order key of each task's chunk of ``x`` into ``parts[task]``.

    ``x`` holds the values' bit patterns read as signed integers of their
    width (unsigned integers and floats); ``code`` is the key's kind,
    magnitude and shift.
    """
    n_chunks = (x.shape[1] + chunk - 1) // chunk
    for t in range(t0, t1):
        b, start, stop = task_span(t, n_chunks, chunk, x.shape[1])
        parts[t, 0], parts[t, 1] = _key_extremes(x[b, start:stop], code)


@functools.cache
def _scan_code(dtype):
    """The signed view of ``dtype``'s patterns and the scan's key code.

    The code, ``(kind, magnitude, shift)``, is in the view's dtype, so that the
    keys are computed at the patterns' width.
    """
    view, (kind, magnitude, _) = key_code(dtype)
    return view, np.array([kind, magnitude, view.itemsize * 8 - 1], view)


def row_extremes(x2, kind):
    """Each row's smallest and largest value, and which rows hold NaN or Inf.

    Rows ``x2`` are of ``kind`` (float16 rows arrive as uint16 bit patterns); the values come back
    in their own dtype.  One read finds both ends of every row: the extreme order keys decode back
    to the extreme values.  NaN and Inf have every exponent bit set, so their keys lie beyond every
    finite value's; integers get ``None`` for the flags.
    """
    dtype = np.dtype(np.float16) if kind == "half" else x2.dtype
    view, code = _scan_code(dtype)
    keys = _row_keys(x2.view(view), code)
    key_kind, _, exponent = key_code(dtype)[1]
    values = keys if key_kind == KEY_SIGNED else decode_keys(keys, key_kind, dtype)
    if dtype.kind != "f":
        return values[:, 0], values[:, 1], None
    wide = keys.astype(np.int64)
    return values[:, 0], values[:, 1], (wide[:, 1] >= exponent) | (wide[:, 0] <= -1 - exponent)


#: How many signed integers the scan reads for the work of mapping one value.
SCAN_SHARE = 8


def _row_keys(x, code):
    """Per-row ``(B, 2)`` smallest and largest order key of rows ``x`` (signed patterns)."""
    n_chunks, n_tasks = _chunked(x)
    parts = np.empty((n_tasks, 2), x.dtype)
    if code[0] == KEY_SIGNED:
        # min and max of signed integers vectorise: about a tenth of a lookup's work a value
        run(scan, (x, CHUNK, parts), n_tasks, x.size // SCAN_SHARE)
    else:
        run(scan_keys, (x, code, CHUNK, parts), n_tasks, x.size)
    return parts if n_chunks == 1 else _row_ends(parts, x.shape[0], n_chunks)


def _row_ends(parts, n_rows, n_chunks):
    """Per-row ``(B, 2)`` smallest and largest key from each chunk's ``parts[task, :2]``."""
    parts = parts.reshape(n_rows, n_chunks, parts.shape[1])
    return np.stack([parts[:, :, 0].min(axis=1), parts[:, :, 1].max(axis=1)], axis=1)


# ------------------------------------------------------------------ selected values


@formula
def _masked_extremes(xs, ms, top, bottom):
    """Smallest and largest of the signed integers ``xs`` where ``ms`` is nonzero.

    ``top`` and ``bottom`` are the dtype's ends, in its type: with nothing
    selected the result is ``(top, bottom)``, the only case where the first
    exceeds the second.  Nothing widens, so the loop vectorises as a plain
    min and max.
    """
    lo = top
    hi = bottom
    for i in range(xs.shape[0]):
        ok = ms[i] != 0
        lo = min(lo, xs[i] if ok else top)
        hi = max(hi, xs[i] if ok else bottom)
    return lo, hi


@kernel
def scan_selected(x, code, mask, chunk, parts, t0, t1):
    """Extreme order keys of each task's chunk over its selected values, and their count.

    ``x`` is as in :func:`scan_keys`; ``code`` (:func:`_selection_args`)
    holds the key's kind, magnitude and shift, the finite check (``0``, or
    the float keys' exponent mask: keys at or beyond it are Inf or NaN, which
    are left out), the smallest and largest key kept, and the smallest key.
    A value is selected where ``mask`` (a row per row of ``x``, one row for
    all, or no row: every value) is nonzero and its key is kept.
    ``parts[task]`` gets the smallest and largest key and the count (for
    signed integers under a mask, which need no more: 1 if any value is
    selected, else 0).  The loops have no branch, so that they vectorise: a
    value not selected counts as the far end of the other side.
    """
    kind = code[0]
    magnitude = code[1]
    shift = code[2]
    low = code[4]
    high = code[5]
    bottom = code[6]
    n_chunks = (x.shape[1] + chunk - 1) // chunk
    # Signed integers under a mask are their own keys, all kept: a plain masked min and max.
    masked_values = kind == KEY_SIGNED and code[3] == 0 and mask.shape[0] > 0
    for t in range(t0, t1):
        b, start, stop = task_span(t, n_chunks, chunk, x.shape[1])
        lo = magnitude
        hi = bottom
        n = 0
        xs = x[b, start:stop]
        if masked_values:
            least, most = _masked_extremes(
                xs, mask[0 if mask.shape[0] == 1 else b, start:stop], magnitude, bottom)
            parts[t, 0] = least
            parts[t, 1] = most
            parts[t, 2] = 1 if least <= most else 0
            continue
        if mask.shape[0] > 0:
            ms = mask[0 if mask.shape[0] == 1 else b, start:stop]
            for i in range(xs.shape[0]):
                key = order_key(xs[i], kind, magnitude, shift)
                ok = (key >= low) & (key <= high) & (ms[i] != 0)
                lo = min(lo, key if ok else magnitude)
                hi = max(hi, key if ok else bottom)
                n += ok
        else:
            for i in range(xs.shape[0]):
                key = order_key(xs[i], kind, magnitude, shift)
                ok = (key >= low) & (key <= high)
                lo = min(lo, key if ok else magnitude)
                hi = max(hi, key if ok else bottom)
                n += ok
        parts[t, 0] = lo
        parts[t, 1] = hi
        parts[t, 2] = n


@kernel
def restore(x, code, mask, fills, out, chunk, t0, t1):
    """``fills[0]`` where ``mask`` is zero and ``fills[1]`` where ``x`` holds NaN, into ``out``.

    Arguments as in :func:`scan_selected`; the other values keep what the
    transform wrote (±Inf are values beyond the range).  Without a finite
    check only the mask is applied; the loops use selects, not branches, so
    they vectorise.
    """
    kind = code[0]
    magnitude = code[1]
    shift = code[2]
    finite = np.int64(code[3])
    n_chunks = (x.shape[1] + chunk - 1) // chunk
    fill = fills[0]
    nan = fills[1]
    for t in range(t0, t1):
        b, start, stop = task_span(t, n_chunks, chunk, x.shape[1])
        xs = x[b, start:stop]
        os = out[b, start:stop]
        if finite != 0:
            for i in range(xs.shape[0]):
                key = np.int64(order_key(xs[i], kind, magnitude, shift))
                os[i] = nan if (key > finite) | (key < -1 - finite) else os[i]
        if mask.shape[0] > 0:
            ms = mask[0 if mask.shape[0] == 1 else b, start:stop]
            for i in range(xs.shape[0]):
                os[i] = os[i] if ms[i] != 0 else fill


def _selection_args(x2, kind, mask2, omit):
    """The signed view of rows ``x2``, its dtype, key code with the finite check, and mask."""
    dtype = np.dtype(np.float16) if kind == "half" else x2.dtype
    view, (key_kind, magnitude, exponent) = key_code(dtype)
    finite = exponent if omit and dtype.kind == "f" else 0
    low, high = (-finite, finite - 1) if finite else (-magnitude - 1, magnitude)
    code = np.array([key_kind, magnitude, view.itemsize * 8 - 1, finite, low, high,
                     -magnitude - 1], view)
    mask = np.empty((0, 0), np.uint8) if mask2 is None else mask2
    return dtype, x2.view(view), code, mask


def selected_extremes(x2, kind, mask2, omit):
    """Each row's smallest and largest selected value and a count of its selected values.

    ``mask2`` is ``None`` (every value) or uint8 rows, one per row of ``x2`` or
    one for all; ``omit`` leaves NaN and Inf out.  Rows with no selected value
    get meaningless extremes and a count of 0; the count is exact except for
    signed integers under a mask (where only whether it is 0 matters), which
    count chunks with a selected value.
    """
    dtype, x, code, mask = _selection_args(x2, kind, mask2, omit)
    n_chunks, n_tasks = _chunked(x)
    parts = np.empty((n_tasks, 3), np.int64)
    run(scan_selected, (x, code, mask, CHUNK, parts), n_tasks, x.size)
    keys = _row_ends(parts, x.shape[0], n_chunks)
    key_kind = code[0]
    values = keys if key_kind == KEY_SIGNED else decode_keys(keys, key_kind, dtype)
    return values[:, 0], values[:, 1], parts[:, 2].reshape(x.shape[0], n_chunks).sum(axis=1)


def restore_args(x2, kind, mask2, omit, fills):
    """:func:`restore`'s arguments before ``out``, for rows ``x2``.

    ``fills[0]`` goes outside the mask, ``fills[1]`` over NaN input; ``fills``
    is in the output's dtype (float16 as its bit patterns, as ``out2`` holds it).
    """
    _, x, code, mask = _selection_args(x2, kind, mask2, omit)
    return x, code, mask, fills.view(np.uint16) if fills.dtype == np.float16 else fills


def overlaps(x2, out2):
    """Whether rows ``x2`` and output ``out2`` may share memory (an in-place transform)."""
    return np.may_share_memory(x2, out2)


def restore_outside(selection, out2):
    """:func:`restore` with ``selection`` from :func:`restore_args`, over all of ``out2``."""
    _, n_tasks = _chunked(out2)
    run(restore, selection + (out2, CHUNK), n_tasks, out2.size)


# ------------------------------------------------------------------ curves and tables


@kernel
def sample_grids(curve, grid, values, extrema, t0, t1):
    """Each element's curve sampled on its grid, and the extrema that scale it."""
    for b in range(t0, t1):
        g = grid[b, POINTS]
        yb = values[b, :g]
        sample_grid(curve, b, g, np.int64(0), g, yb)
        extrema[b, YMIN], extrema[b, YMAX] = grid_extrema(curve, b, yb, grid[b, DENSE] != 0)


@formula
def _grid_at(yb, g, pos):
    """Grid ``yb`` (``g`` points) linearly interpolated at position ``pos >= 0``."""
    if pos >= g - 1:
        return yb[g - 1]
    j = int(pos)
    fr = pos - j
    y0 = yb[j]
    if fr == 0.0:
        return y0
    return y0 + fr * (yb[j + 1] - y0)


@kernel
def lookup_tables(values, grid, extrema, place_, entries, table, t0, t1):
    """Tables with an entry per value an 8/16-bit dtype holds; ``entries[k]`` is entry k's value.

    On an integer grid each grid value is normalised once
    (``place_[b, BASE]`` is the table index of the range's low end) and
    entries outside the range repeat the end values; on a dense grid every
    entry is placed and interpolated.
    """
    for b in range(t0, t1):
        g = grid[b, POINTS]
        yb = values[b]
        ymin = extrema[b, YMIN]
        ymax = extrema[b, YMAX]
        row = table[b]
        width = row.shape[0]
        if grid[b, DENSE] == 0:
            first = int(place_[b, BASE])
            start = 0 if first < 0 else (width if first > width else first)
            stop = 0 if first + g < 0 else (width if first + g > width else first + g)
            for k in range(start, stop):
                store(row, k, normalized(yb[k - first], ymin, ymax))
            if start > 0:
                store(row, np.int64(0), normalized(yb[0], ymin, ymax))
                for k in range(1, start):
                    row[k] = row[0]
            if stop < width:
                store(row, width - 1, normalized(yb[g - 1], ymin, ymax))
                for k in range(stop, width - 1):
                    row[k] = row[width - 1]
            continue
        lo = place_[b, LO]
        hi = place_[b, HI]
        unit_lo = place_[b, UNIT_LO]
        scale = place_[b, SCALE]
        unit = place_[b, UNIT]
        for k in range(width):
            pos = place(entries[k], lo, hi, unit, unit_lo, scale)
            store(row, k, normalized(_grid_at(yb, g, pos), ymin, ymax))


@kernel
def index_tables(values, grid, extrema, table, t0, t1):
    """Tables with an entry per integer of each element's range.

    Columns past an element's grid repeat its last entry.
    """
    for b in range(t0, t1):
        g = grid[b, POINTS]
        ymin = extrema[b, YMIN]
        ymax = extrema[b, YMAX]
        row = table[b]
        for j in range(g):
            store(row, j, normalized(values[b, j], ymin, ymax))
        for j in range(g, row.shape[0]):
            row[j] = row[g - 1]


@kernel
def pair_tables(values, grid, extrema, pairs, t0, t1):
    """(normalised grid value j, step to value j + 1) side by side, ``pairs[b, 2j:2j + 2]``.

    The interpolation reads each pair as one complex number, so one load
    fetches both numbers it needs; the step is zero from the last grid point
    on.  The arithmetic is in ``pairs``' float type.
    """
    work = pairs.dtype.type
    for b in range(t0, t1):
        g = grid[b, POINTS]
        ymin = extrema[b, YMIN]
        ymax = extrema[b, YMAX]
        row = pairs[b]
        previous = work(normalized(values[b, 0], ymin, ymax))
        for j in range(1, g):
            value = work(normalized(values[b, j], ymin, ymax))
            row[2 * j - 2] = previous
            row[2 * j - 1] = value - previous
            previous = value
        for j in range(g - 1, row.shape[0] // 2):
            row[2 * j] = previous
            row[2 * j + 1] = 0.0


#: Seconds of curve sampling on the host after which :func:`sample_grids` is compiled
#: (about what compiling it costs); ``RSGT_FAST_COMPILE_AFTER``, 0 compiles it at once.
COMPILE_AFTER = seconds_from_env("RSGT_FAST_COMPILE_AFTER", 1.0)

#: The host's seconds of curve sampling so far, or ``None`` once the compiled sampler runs.
_host_curves: dict = {"seconds": 0.0, "cached": None}


def curves_compiled():
    """Whether curves are sampled by the compiled :func:`sample_grids`.

    The one cold-start tier: the curve sampler is the largest piece of code
    to compile (about a second), so until its host version (the same source
    run by numpy, :func:`._jit.python`, the same bits) has spent
    ``COMPILE_AFTER`` seconds, the host samples the curves, unless the
    sampler is compiled in this process already or numba's cache holds it.
    """
    if _host_curves["seconds"] is None:
        return True
    if _host_curves["cached"] is None:
        _host_curves["cached"] = in_cache(sample_grids)
    if (_host_curves["seconds"] >= COMPILE_AFTER or _host_curves["cached"]
            or not hasattr(sample_grids, "signatures") or sample_grids.signatures):
        _host_curves["seconds"] = None
        return True
    return False


def _curve_work(curve, grid):
    """What sampling the curves on ``grid`` costs, in values read by a gather.

    About 8 per point and sinusoid.
    """
    return 8 * curve.shape[2] * int(grid[:, POINTS].sum())


def sample_curves(curve, grid, values, extrema, work):
    """:func:`sample_grids` for every element, compiled or on the host (:func:`curves_compiled`).

    ``work`` is what the call costs, for :func:`._jit.run`.
    """
    n_rows = grid.shape[0]
    if curves_compiled():
        run(sample_grids, (curve, grid, values, extrema), n_rows, work)
        return
    start = time.perf_counter()
    python(sample_grids)(curve, grid, values, extrema, 0, n_rows)
    _host_curves["seconds"] += time.perf_counter() - start


def tables(plan, curve, table_dtype):
    """Each element's table for ``plan``: sample the curves, then fill the tables.

    ``table_dtype`` is the output's (``uint16`` for float16 bit patterns);
    interpolating plans get (value, step) pairs as complex numbers of the
    working float type instead.  Fills ``plan.extrema``.
    """
    n_rows = plan.grid.shape[0]
    work = _curve_work(curve, plan.grid) + n_rows * plan.width
    sample_curves(curve, plan.grid, plan.values, plan.extrema, work)
    if plan.table == "interp":
        table = np.empty((n_rows, plan.width),
                         np.complex64 if plan.place.dtype == np.float32 else np.complex128)
        fill, args = pair_tables, (plan.values, plan.grid, plan.extrema,
                                   table.view(table.real.dtype))
    else:
        table = np.empty((n_rows, plan.width), table_dtype)
        if plan.table == "lookup":
            fill, args = lookup_tables, (plan.values, plan.grid, plan.extrema, plan.place,
                                         plan.entries, table)
        else:
            fill, args = index_tables, (plan.values, plan.grid, plan.extrema, table)
    run(fill, args, n_rows, work)
    return table


# ------------------------------------------------------------------ mapping voxels


@formula
def _entry(tb, v, offset):
    """The table entry of 8/16-bit value ``v``: ``tb[v + offset]``."""
    return tb[np.uint64(np.int64(v) + offset)]


@kernel
def lookup(x, table, out, offset, chunk, t0, t1):
    """``out[b, i] = table[b, x[b, i] + offset]`` (8/16-bit input, no clamping)."""
    n_chunks = (x.shape[1] + chunk - 1) // chunk
    for t in range(t0, t1):
        b, start, stop = task_span(t, n_chunks, chunk, x.shape[1])
        # Slices indexed from 0 let the compiler drop negative-index checks and vectorise.
        xb = x[b, start:stop]
        ob = out[b, start:stop]
        tb = table[b]
        for i in range(stop - start):
            ob[i] = _entry(tb, xb[i], offset)


@kernel
def lookup_index(x, clip, place_, table, out, chunk, t0, t1):
    """``out[b, i] = table[b, BASE + clamp(x[b, i], CLIP_LO, CLIP_HI) - CLIP_LO]``."""
    n_chunks = (x.shape[1] + chunk - 1) // chunk
    for t in range(t0, t1):
        b, start, stop = task_span(t, n_chunks, chunk, x.shape[1])
        xb = x[b, start:stop]
        ob = out[b, start:stop]
        tb = table[b, np.int64(place_[b, BASE]):]
        lo = clip[b, CLIP_LO]
        hi = clip[b, CLIP_HI]
        for i in range(stop - start):
            ob[i] = tb[np.uint64(np.int64(clamp(xb[i], lo, hi)) - np.int64(lo))]


@formula
def _blend(ob, first, m, pairs, idx, frac):
    """``ob[first + i]`` = pair ``idx[i]``'s value plus ``frac[i]`` of its step, for ``i < m``."""
    os = ob[first:first + m]
    for i in range(m):
        pair = pairs[idx[i]]
        store(os, i, pair.real + frac[i] * pair.imag)


@kernel
def interpolate(x, place_, pairs, out, chunk, t0, t1):
    """Each value interpolated between two grid values of its row.

    Its position on the grid is :func:`._formulas.place`.  The arithmetic is in ``place_``'s float
    type.  Work goes in blocks: positions (vectorised; positions are never negative, so truncation
    is the floor), then one load and one blend per value.
    """
    n_chunks = (x.shape[1] + chunk - 1) // chunk
    work = place_.dtype.type
    idx = np.empty(BLOCK, np.int32)
    frac = np.empty(BLOCK, place_.dtype)
    for t in range(t0, t1):
        b, start, stop = task_span(t, n_chunks, chunk, x.shape[1])
        xb = x[b, start:stop]
        ob = out[b, start:stop]
        lo = place_[b, LO]
        hi = place_[b, HI]
        unit_lo = place_[b, UNIT_LO]
        scale = place_[b, SCALE]
        unit = place_[b, UNIT]
        last = place_[b, LAST]
        zero = unit - unit
        for first in range(0, stop - start, BLOCK):
            m = stop - start - first if stop - start - first < BLOCK else BLOCK
            xs = xb[first:first + m]
            for i in range(m):
                pos = min(place(xs[i] + zero, lo, hi, unit, unit_lo, scale), last)
                j = np.int32(pos)
                idx[i] = j
                frac[i] = pos - work(j)
            _blend(ob, first, m, pairs[b], idx, frac)


@kernel
def interpolate_integers(x, clip, place_, pairs, out, chunk, t0, t1):
    """:func:`interpolate` for integers over integral ranges (:func:`._formulas.place_integer`)."""
    n_chunks = (x.shape[1] + chunk - 1) // chunk
    idx = np.empty(BLOCK, np.int32)
    frac = np.empty(BLOCK)
    for t in range(t0, t1):
        b, start, stop = task_span(t, n_chunks, chunk, x.shape[1])
        xb = x[b, start:stop]
        ob = out[b, start:stop]
        scale = place_[b, SCALE]
        unit = place_[b, UNIT]
        last = place_[b, LAST]
        base = place_[b, BASE]
        low = clip[b, CLIP_LO]
        high = clip[b, CLIP_HI]
        for first in range(0, stop - start, BLOCK):
            m = stop - start - first if stop - start - first < BLOCK else BLOCK
            xs = xb[first:first + m]
            for i in range(m):
                pos = place_integer(xs[i], low, high, base, unit, scale, last)
                j = np.int32(pos)
                idx[i] = j
                frac[i] = pos - float(j)
            _blend(ob, first, m, pairs[b], idx, frac)


# Each mapping kernel followed, task by task, by :func:`restore` on the chunk it
# has just written, while that chunk is still in cache: the transform of a
# selection in one pass.  ``args`` are the mapping kernel's, ``selection``
# :func:`restore`'s before ``out``.


@kernel
def lookup_restoring(args, selection, t0, t1):
    """:func:`lookup`, then :func:`restore`, task by task; a mask alone in the same loop."""
    x, table, out, offset, chunk = args
    xk, code, mask, fills = selection
    if code[3] != 0 or mask.shape[0] == 0:  # float16 NaN to find: the two steps
        for t in range(t0, t1):
            lookup(x, table, out, offset, chunk, t, t + 1)
            restore(xk, code, mask, fills, out, chunk, t, t + 1)
        return
    n_chunks = (x.shape[1] + chunk - 1) // chunk
    fill = fills[0]
    for t in range(t0, t1):
        b, start, stop = task_span(t, n_chunks, chunk, x.shape[1])
        xb = x[b, start:stop]
        ob = out[b, start:stop]
        ms = mask[0 if mask.shape[0] == 1 else b, start:stop]
        tb = table[b]
        for i in range(stop - start):
            ob[i] = _entry(tb, xb[i], offset) if ms[i] != 0 else fill


@kernel
def lookup_index_restoring(args, selection, t0, t1):
    """:func:`lookup_index`, then :func:`restore`, task by task."""
    x, clip, place_, table, out, chunk = args
    xk, code, mask, fills = selection
    for t in range(t0, t1):
        lookup_index(x, clip, place_, table, out, chunk, t, t + 1)
        restore(xk, code, mask, fills, out, chunk, t, t + 1)


@kernel
def interpolate_restoring(args, selection, t0, t1):
    """:func:`interpolate`, then :func:`restore`, task by task."""
    x, place_, pairs, out, chunk = args
    xk, code, mask, fills = selection
    for t in range(t0, t1):
        interpolate(x, place_, pairs, out, chunk, t, t + 1)
        restore(xk, code, mask, fills, out, chunk, t, t + 1)


@kernel
def interpolate_integers_restoring(args, selection, t0, t1):
    """:func:`interpolate_integers`, then :func:`restore`, task by task."""
    x, clip, place_, pairs, out, chunk = args
    xk, code, mask, fills = selection
    for t in range(t0, t1):
        interpolate_integers(x, clip, place_, pairs, out, chunk, t, t + 1)
        restore(xk, code, mask, fills, out, chunk, t, t + 1)


_RESTORING = {lookup: lookup_restoring, lookup_index: lookup_index_restoring,
              interpolate: interpolate_restoring,
              interpolate_integers: interpolate_integers_restoring}


def map_voxels(plan, x2, table, out2, selection=None):
    """Map every value of rows ``x2`` through its row's ``table`` into ``out2``.

    ``out2`` is viewed as ``uint16`` for float16; ``plan`` says which table.
    ``selection`` (from :func:`restore_args`): each chunk's values outside
    the selection are then restored in the same pass.
    """
    n_chunks, n_tasks = _chunked(x2)
    if plan.table == "lookup":
        fn, args = lookup, (x2, table, out2, plan.offset, CHUNK)
    elif plan.table == "index":
        fn, args = lookup_index, (x2, plan.clip, plan.place, table, out2, CHUNK)
    elif plan.integer:
        fn, args = interpolate_integers, (x2, plan.clip, plan.place, table, out2, CHUNK)
    else:
        fn, args = interpolate, (x2, plan.place, table, out2, CHUNK)
    if selection is None:
        run(fn, args, n_tasks, x2.size)
    else:
        run(_RESTORING[fn], (args, selection), n_tasks, x2.size)


# ------------------------------------------------------------------ small elements


@kernel
def small_index_rows(x, curve, own, ranges, extrema, out, t0, t1):
    """The whole transform of small 8/16-bit elements on integer grids, one task per element.

    ``ranges[b]`` holds element ``b``'s range, that range clamped to the
    dtype and the table index of the clamped low end, ``(lo, hi, clip lo,
    clip hi, base)``, as int64: given, or with ``own`` filled here from the
    row's minimum and maximum.  Per row: the range, the curve on its integer
    grid and the extrema of the samples, the normalised table and the
    gather, with the formulas of :func:`scan`, :func:`sample_grids`,
    :func:`index_tables` and :func:`lookup_index`, so the results are their
    bits; only the calls and the planning between them are gone, which is
    most of what a call on small images costs.  Rows must not be empty.
    """
    for b in range(t0, t1):
        if own:
            lo, hi = extremes(x[b])
            ranges[b, 0] = ranges[b, 2] = np.int64(lo)
            ranges[b, 1] = ranges[b, 3] = np.int64(hi)
            ranges[b, 4] = 0
        g = ranges[b, 1] - ranges[b, 0] + 1
        clip_lo = ranges[b, 2]
        clip_hi = ranges[b, 3]
        base = ranges[b, 4]
        yb = np.empty(g)
        sample_grid(curve, b, g, np.int64(0), g, yb)
        ymin, ymax = grid_extrema(curve, b, yb, own != own)  # a bool, not a literal
        tb = np.empty(g, out.dtype)
        for j in range(g):
            store(tb, j, normalized(yb[j], ymin, ymax))
        tb = tb[base:]
        xb = x[b]
        ob = out[b]
        for k in range(xb.shape[0]):
            ob[k] = tb[np.uint64(clamp(np.int64(xb[k]), clip_lo, clip_hi) - clip_lo)]
        extrema[b, YMIN] = ymin
        extrema[b, YMAX] = ymax


def small_rows(x2, curve, own, ranges, extrema, out2):
    """Run :func:`small_index_rows` over every row."""
    if own:  # a guess before the scan: CT in int16 spans 4096 values
        points = x2.shape[0] * (256 if x2.dtype.itemsize == 1 else 4096)
    else:
        points = int((ranges[:, 1] - ranges[:, 0]).sum()) + x2.shape[0]
    run(small_index_rows, (x2, curve, own, ranges, extrema, out2), x2.shape[0],
        x2.size + 8 * curve.shape[2] * points)


# ------------------------------------------------------------------ rsgt's one curve


def host_samples(curve, n):
    """The samples rsgt takes of curve 0 on ``n`` points, by numpy, while the host samples.

    That is while :func:`curves_compiled` says no (the time counts towards
    compiling them); else ``None``.
    """
    if curves_compiled():
        return None
    start = time.perf_counter()
    y = python(curve_value)(np.linspace(0, TWO_PI, n), curve, 0)
    _host_curves["seconds"] += time.perf_counter() - start
    return y


def sample_curve(curve, n):
    """Raw curve 0 on ``n`` grid points, and the samples' extrema.

    The samples are within ``SAMPLE_ERROR`` of the exact values.
    """
    values = np.empty((1, n))
    extrema = np.empty((1, 2))
    sample_curves(curve, np.array([[n, 0]]), values, extrema, 8 * curve.shape[2] * n)
    return values[0], extrema[0]


@formula
def _unsafe_entries(values, extrema, error, table, unsafe):
    """Round ``values`` into ``table`` and list the entries the sampling error could change.

    ``extrema`` are the samples' own.  Returns the count (see :func:`round_table`).
    """
    n = table.shape[0]
    amin = extrema[YMIN]
    amax = extrema[YMAX]
    if not amax - amin > 4.0 * error:
        for j in range(n):
            unsafe[j] = j
        return n
    near = 2.0 * error
    delta = 4.0 * error / (amax - amin - 2.0 * error) * (1.0 + 2.0**-20) + 2.0**-50
    span = amax - amin
    flags = np.empty(n, np.bool_)
    for j in range(n):  # no branch: this loop vectorises
        v = values[j]
        q = (v - amin) / span
        low = rounded(table, q - delta)
        high = rounded(table, q + delta)
        table[j] = low
        flags[j] = low != high or v <= amin + near or v >= amax - near
    count = 0
    for j in range(n):
        if flags[j]:
            unsafe[count] = j
            count += 1
    return count


@kernel
def round_table(curve, values, extrema, error, table, unsafe, exact):
    """The table rsgt makes of curve 0, from samples ``values`` within ``error`` of exact.

    ``table`` is float32 or float16 bit patterns.  Each sample is scaled onto
    [0, 1] by the samples' ``extrema`` and rounded; the indices of the *unsafe*
    entries go into ``unsafe`` and their count is returned: those within
    ``2 error`` of an approximate extremum (one of them holds the exact
    extremum) and those whose error interval, ``delta`` around the scaled
    value, rounds to two different outputs.  The sample, the minimum and the
    span are each off by at most ``error`` (the span by twice that), so the
    scaled value is off by at most ``4 error / (span - 2 error)`` plus a few
    roundings.  A (nearly) flat curve makes every index unsafe.

    With ``exact`` (where this process's compiled sines are numpy's), the
    unsafe entries are redone here from the exact samples
    (:func:`._formulas.curve_value` at :func:`._formulas.grid_point`, which
    are also written into ``values``), scaled by their own extrema: those are
    the table's, since every exact sample lies within them and the unsafe
    entries hold both.
    """
    count = _unsafe_entries(values, extrema, error, table, unsafe)
    if exact:
        n = table.shape[0]
        for i in range(count):
            j = unsafe[i]
            values[j] = curve_value(grid_point(j, n), curve, np.int64(0))
        ymin, ymax = extremes(values[unsafe[:count]])
        for i in range(count):
            store(table, unsafe[i], normalized(values[unsafe[i]], ymin, ymax))
    return count


# ------------------------------------------------------------------ normalisation


def ct_store(row, j, c):
    """``row[j] = c / 4096``, ``c`` cast to ``row``'s type first (or rounded to float16)."""
    if row.itemsize == 2:
        row[j] = half_bits(half_value(half_bits(c)) / 4096.0)
    else:
        row[j] = c
        row[j] = row[j] / 4096.0


@overload(ct_store, jit_options=OPTIONS)
def _ct_store(row, j, c):
    if row.dtype.bitwidth == 16:
        def ct_store_half(row, j, c):
            row[j] = half_bits(half_value(half_bits(c)) / 4096.0)
        return ct_store_half

    def ct_store_plain(row, j, c):
        row[j] = c
        row[j] = row[j] / 4096.0
    return ct_store_plain


@kernel
def ct_kernel(x, consts, out, chunk, t0, t1):
    """``clip(x + 1000, 0, 4096)`` in ``x``'s float type, cast to the output, / 4096.

    ``consts`` holds 1000, 0 and 4096 in ``x``'s dtype; the steps and their
    rounding are those of ``rsgt.normalization.normalize_ct_scan``.
    """
    n_chunks = (x.shape[1] + chunk - 1) // chunk
    shift = consts[0]
    low = consts[1]
    high = consts[2]
    for t in range(t0, t1):
        b, start, stop = task_span(t, n_chunks, chunk, x.shape[1])
        xb = x[b, start:stop]
        ob = out[b, start:stop]
        for i in range(stop - start):
            ct_store(ob, i, clamp(xb[i] + shift, low, high))


def ct_float(x2, out2):
    """:func:`ct_kernel` over float rows ``x2``."""
    _, n_tasks = _chunked(x2)
    run(ct_kernel, (x2, np.array([1000, 0, 4096], x2.dtype), out2, CHUNK), n_tasks, x2.size)


@kernel
def mr_kernel(x, bounds, out, chunk, t0, t1):
    """``clip((cast(x) - p5) / (p95 - p5), 0, 1)`` in float64, by ``percentile_scaled``.

    ``bounds`` holds p5, p95, a flag that casts ``x`` to float32 first and
    one that halves every value first (for spans beyond the float64 range;
    halving changes no rounding of ordinary values).
    """
    n_chunks = (x.shape[1] + chunk - 1) // chunk
    p5 = bounds[0]
    p95 = bounds[1]
    as_float32 = bounds[2] != 0.0
    factor = 0.5 if bounds[3] != 0.0 else 1.0
    lo = factor * p5
    hi = factor * p95
    for t in range(t0, t1):
        b, start, stop = task_span(t, n_chunks, chunk, x.shape[1])
        xb = x[b, start:stop]
        ob = out[b, start:stop]
        for i in range(stop - start):
            v = float(np.float32(xb[i])) if as_float32 else float(xb[i])
            store(ob, i, percentile_scaled(factor * v, lo, hi))


def mr_affine(x2, p5, p95, cast_float32, out2):
    """:func:`mr_kernel` over rows ``x2``."""
    _, n_tasks = _chunked(x2)
    halve = not np.isfinite(p95 - p5)
    bounds = np.array([p5, p95, float(cast_float32), float(halve)])
    run(mr_kernel, (x2, bounds, out2, CHUNK), n_tasks, x2.size)


@formula
def _binning(x, code, bins, n_parts):
    """Values per part of 1-D ``x`` split into ``n_parts``, and the key and bin parameters.

    Returns ``(per, kind, magnitude, sign shift, shift, offset)`` as scalars.
    """
    return ((x.shape[0] + n_parts - 1) // n_parts, code[0], code[1], x.itemsize * 8 - 1,
            bins[0], bins[1])


@kernel
def histogram_kernel(x, code, bins, hist, t0, t1):
    """Counts of ``(order_key >> shift) + offset`` into ``hist[p]``, one task per part ``p``.

    ``bins`` is ``(shift, offset)``; 1-D ``x`` is split into ``len(hist)``
    contiguous parts; ``code`` is ``(kind, magnitude, exponent)``.
    """
    n = x.shape[0]
    per, kind, magnitude, sign_shift, shift, offset = _binning(x, code, bins, hist.shape[0])
    for p in range(t0, t1):
        hp = hist[p]
        for i in range(p * per, n if n < (p + 1) * per else (p + 1) * per):
            k = order_key(x[i], kind, magnitude, sign_shift)
            hp[np.uint64((k >> shift) + offset)] += 1


@kernel
def collect_kernel(x, code, bins, target, starts, keys, t0, t1):
    """Order keys of the values in bin ``target``, written from ``starts[p]`` for part ``p``.

    The parts and ``bins`` are those of :func:`histogram_kernel` (``len(starts)`` parts).
    """
    n = x.shape[0]
    per, kind, magnitude, sign_shift, shift, offset = _binning(x, code, bins, starts.shape[0])
    for p in range(t0, t1):
        w = starts[p]
        for i in range(p * per, n if n < (p + 1) * per else (p + 1) * per):
            k = order_key(x[i], kind, magnitude, sign_shift)
            if (k >> shift) + offset == target:
                keys[w] = k
                w += 1


def key_histogram(x1, code, bins, hist):
    """:func:`histogram_kernel`: one part of ``x1`` per row of ``hist``."""
    run(histogram_kernel, (x1, code, bins, hist), hist.shape[0], x1.size)


def collect_bin(x1, code, bins, target, starts, keys):
    """:func:`collect_kernel`: the keys of bin ``target``, part by part."""
    run(collect_kernel, (x1, code, bins, target, starts, keys), starts.shape[0], x1.size)


#: Every kernel, by name, for the planner's registry.
KERNELS = {
    "scan": scan, "scan_keys": scan_keys, "sample_grids": sample_grids,
    "lookup_tables": lookup_tables,
    "index_tables": index_tables, "pair_tables": pair_tables, "lookup": lookup,
    "lookup_index": lookup_index, "interpolate": interpolate,
    "interpolate_integers": interpolate_integers, "small_index_rows": small_index_rows,
    "round_table": round_table, "ct_kernel": ct_kernel,
    "mr_kernel": mr_kernel, "histogram_kernel": histogram_kernel,
    "collect_kernel": collect_kernel, "scan_selected": scan_selected, "restore": restore,
    "lookup_restoring": lookup_restoring, "lookup_index_restoring": lookup_index_restoring,
    "interpolate_restoring": interpolate_restoring,
    "interpolate_integers_restoring": interpolate_integers_restoring,
}


# ------------------------------------------------------------------ percentiles

#: Parts the histogram of a large row is split into (one task each).
_PARTS = 8


def order_statistics(x1, ranks, dtype):
    """Exact ``sorted(x1)[ranks]`` without sorting: a key histogram, then one bin each.

    ``dtype`` is the values' real dtype (float16 rows arrive as uint16 bit
    patterns); the values come back as ``dtype``.
    """
    view, code = _scan_code(dtype)
    width = view.itemsize * 8
    x1 = x1.view(view)
    bits = min(width, 16)
    shift, offset, n_bins = width - bits, 1 << (bits - 1), 1 << bits
    parts = min(_PARTS, max(1, x1.size // CHUNK))
    hist = np.zeros((parts, n_bins), np.int64)
    bins = np.array([shift, offset], np.int64)
    key_histogram(x1, code, bins, hist)
    total = hist.sum(axis=0)
    ends = np.cumsum(total)
    keys = {}
    for bin_ in sorted({int(np.searchsorted(ends, r, side="right")) for r in ranks}):
        below = int(ends[bin_] - total[bin_])
        if shift == 0:
            # One key per bin: the bin is the key.
            for r in ranks:
                if below <= r < ends[bin_]:
                    keys[r] = bin_ - offset
            continue
        starts = np.concatenate([[0], np.cumsum(hist[:, bin_])[:-1]]).astype(np.int64)
        buf = np.empty(int(total[bin_]), np.int64)
        collect_bin(x1, code, bins, bin_, starts, buf)
        inside = sorted({r - below for r in ranks if below <= r < ends[bin_]})
        buf.partition(inside)
        for r in inside:
            keys[r + below] = int(buf[r])
    return decode_keys([keys[r] for r in ranks], code[0], dtype)


def percentiles(x1, dtype, out_dtype):
    """The 5th and 95th percentiles of row ``x1`` as numpy finds them (linear).

    ``x1`` holds values of ``dtype``; they are cast to ``out_dtype`` first, and
    the percentiles come back as Python floats.
    """
    n = x1.size
    virtual = (n - 1) * (np.array([5, 95]) / 100)
    previous = np.floor(virtual).astype(np.int64)
    following = np.minimum(previous + 1, n - 1)
    gamma = virtual - previous
    ranks = sorted({*previous.tolist(), *following.tolist()})
    stats = dict(zip(ranks, order_statistics(x1, ranks, dtype).astype(out_dtype)))
    result = []
    for p, q, t in zip(previous.tolist(), following.tolist(), gamma):
        a, b = stats[p], stats[q]
        with np.errstate(over="ignore"):
            diff = b - a  # in out_dtype, then float64 with gamma, as numpy's _lerp
        if np.isfinite(diff):
            result.append(float(b - diff * (1 - t)) if t >= 0.5 else float(a + diff * t))
        else:  # the two neighbours span more than the dtype's range
            result.append(float(a) * float(1 - t) + float(b) * float(t))
    return result
