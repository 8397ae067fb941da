"""Every compiled function of rsgt_fast, and nothing else.

Arrays arrive 2-D and C-contiguous: ``x`` and ``out`` are ``(B, N)``, one row
per batch element.  Parallel loops run over *tasks*: elements, for the
kernels that build curves and tables, and chunks of one row, for those that
map voxels, so that a batch of one still keeps every core busy; a task's
index is made an int64 first, so that the serial and the parallel variant of
a kernel share every helper's compiled code.  The costly curve code lives in
one kernel, :func:`sample_grids`, which never sees the input or the output,
so it compiles once per variant and process whatever the dtypes; the
kernels that fill tables from its grids are small.  The planner runs both
serially unless the tables are large (their parallel variants, the curve
code above all, cost about a second more to compile).  The packed
arguments (``curve``, ``place``, ``clip``, ``grid``, ``job``) are described
in :mod:`._layout`; kernels draw no random numbers.  Until compiling them
pays, :func:`chunk_minmax`, :func:`sample_grids` and :func:`small_index_rows`
are stood in for by numpy code with the same results (:mod:`._stand_ins`).

Helpers are never called with an integer literal (``f(x, 0)``) but with an
int64 (``f(x, np.int64(0))``): numba compiles a helper once more for every
literal integer argument it meets.

Output arrays of itemsize 2 hold float16 bit patterns (the output viewed as
``uint16``): numba has no float16, so values are rounded by :func:`half_bits`.
"""

import math

import numpy as np
from numba import prange
from numba.extending import overload

from ._jit import OPTIONS, helper, kernel, serial_kernel
from ._layout import (
    AMPLITUDE, BASE, CLIP_HI, CLIP_LO, FREQUENCY, HI, LAST, LO, PHASE, SCALE, UNIT, UNIT_LO,
    YMAX, YMIN,
)

TWO_PI = 2.0 * math.pi
_HALF_MIN_NORMAL = 6.103515625e-05  # 2**-14

#: Order-key kinds (see :func:`order_key`).
KEY_SIGNED, KEY_UNSIGNED, KEY_FLOAT = 0, 1, 2

#: Values per block in the interpolating gather.
BLOCK = 512
#: A sweep of cosines and sines is exact every this many values (see :func:`_sweep`).
SWEEP_EXACT = 64


# ------------------------------------------------------------------ scalars


@helper
def curve_value(t, curve, b):
    """Raw (unnormalised) curve ``b`` at ``t``, summed in the original's order."""
    y = 0.0
    for k in range(curve.shape[2]):
        y += curve[b, AMPLITUDE, k] * math.sin(curve[b, FREQUENCY, k] * (t + curve[b, PHASE, k]))
    return y


@helper
def normalized(y, ymin, ymax):
    """``y`` scaled by the extrema into [0, 1]; 0.5 for a flat curve."""
    span = ymax - ymin
    if not span > 0.0:
        return 0.5
    v = (y - ymin) / span
    if v < 0.0:
        return 0.0
    if v > 1.0:
        return 1.0
    return v


@helper
def _round_half_even(q):
    r = math.floor(q)
    rem = q - r
    if rem > 0.5 or (rem == 0.5 and (int(r) & 1) == 1):
        r += 1.0
    return r


@helper
def half_bits(v):
    """float16 bit pattern of ``v`` in [0, 1], rounded to nearest even like numpy."""
    if not v > 0.0:
        return np.uint16(0)
    if v < _HALF_MIN_NORMAL:
        return np.uint16(int(_round_half_even(v * 16777216.0)))
    m, e = math.frexp(v)  # v = m * 2**e, 0.5 <= m < 1
    q = _round_half_even((2.0 * m - 1.0) * 1024.0)
    return np.uint16(((e + 14) << 10) + int(q))


@helper
def half_value(h):
    """The float value of float16 bit pattern ``h`` (finite patterns only)."""
    exponent = (h >> 10) & 31
    mantissa = h & 1023
    if exponent == 0:
        v = mantissa * 5.9604644775390625e-08  # 2**-24
    else:
        v = math.ldexp(1024.0 + mantissa, int(exponent) - 25)
    if h & 0x8000:
        return -v
    return v


def order_key_of(v, kind, magnitude, shift):
    """Signed integer key of a value's bit pattern ``v``, ordered as the values are.

    ``v`` is the value viewed as a signed integer of its width, ``magnitude``
    that width's largest value and ``shift`` its bit count minus one.  Signed
    integers are their own keys; unsigned ones flip the sign bit; IEEE floats
    flip the magnitude bits of negative patterns.  Applied to a key it gives
    the pattern back, and it works on scalars and numpy arrays alike.
    """
    if kind == KEY_UNSIGNED:
        return v ^ ~magnitude
    if kind == KEY_FLOAT:
        return v ^ ((v >> shift) & magnitude)
    return v


order_key = helper(order_key_of)


def decode_keys(keys, kind, dtype):
    """Values of ``dtype`` from int64 order keys made by :func:`order_key`."""
    width = np.dtype(dtype).itemsize * 8
    keys = np.asarray(keys, np.int64)
    patterns = order_key_of(keys, kind, np.int64((1 << (width - 1)) - 1), width - 1)
    return patterns.astype(f"int{width}").view(dtype)


@helper
def task_span(task, n_chunks, chunk, length):
    """Row and ``[start, stop)`` of task ``task`` (chunk ``task % n_chunks`` of its row)."""
    b = task // n_chunks
    start = (task - b * n_chunks) * chunk
    return b, start, min(start + chunk, length)


def rounded(row, v):
    """``v`` as ``row`` stores it: a float16 bit pattern or a value of ``row``'s type."""
    if row.itemsize == 2:
        return half_bits(v)
    return row.dtype.type(v)


@overload(rounded, jit_options=OPTIONS)
def _rounded(row, v):
    # Chosen by the row's type when a kernel is compiled: rows of float32 and
    # float64 never compile the float16 rounding.
    if row.dtype.bitwidth == 16:
        def rounded_half(row, v):
            return half_bits(v)
        return rounded_half

    def rounded_plain(row, v):
        return row.dtype.type(v)
    return rounded_plain


@helper
def store(row, j, v):
    """``row[j] = v``, as a float16 bit pattern where ``row`` holds them."""
    row[j] = rounded(row, v)


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


# ------------------------------------------------------------------ min/max


@helper
def extremes_of(values):
    """``(min, max)`` of a non-empty 1-D array: a plain loop, far cheaper to compile than
    ``ndarray.min``/``max``, whose generic implementations cost about a second each."""
    lo = hi = values[0]
    for i in range(1, values.shape[0]):
        lo = min(lo, values[i])
        hi = max(hi, values[i])
    return lo, hi


@helper
def key_extremes_of(values, code):
    """``(min, max)`` order key (:func:`order_key`) of a non-empty 1-D array of patterns;
    ``code`` holds ``(kind, magnitude, shift)``."""
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
def chunk_minmax(x, code, chunk, parts):
    """Smallest and largest order key of each task's chunk of ``x`` into ``parts[task]``.

    ``x`` holds the values' bit patterns read as signed integers of their
    width and ``code`` the key's ``(kind, magnitude, shift)`` in ``x``'s dtype
    (see ``scan.py``): signed integers are their own keys, so their min and
    max vectorise with no per-value arithmetic.  The caller combines the
    chunks: nothing is allocated here, which keeps the kernel quick to compile.
    """
    n_chunks = (x.shape[1] + chunk - 1) // chunk
    signed = code[0] == KEY_SIGNED
    for t in prange(parts.shape[0]):
        b, start, stop = task_span(np.int64(t), n_chunks, chunk, x.shape[1])
        if signed:
            parts[t, 0], parts[t, 1] = extremes_of(x[b, start:stop])
        else:
            parts[t, 0], parts[t, 1] = key_extremes_of(x[b, start:stop], code)


# ------------------------------------------------------------------ curves


@helper
def _sweep(angle, h, count, cos_out, sin_out):
    """``cos`` and ``sin`` of ``angle + i h`` for ``i < count``.

    Exact every ``SWEEP_EXACT`` values, advanced by rotation (angle addition)
    in between: a few multiplications instead of a ``sin`` and a ``cos``.
    """
    dc = math.cos(h)
    ds = math.sin(h)
    s = c = 0.0
    for i in range(count):
        if i % SWEEP_EXACT == 0:
            s = math.sin(angle + i * h)
            c = math.cos(angle + i * h)
        else:
            s, c = s * dc + c * ds, c * dc - s * ds
        cos_out[i] = c
        sin_out[i] = s


@helper
def sample_block(curve, b, n, start, stop, values):
    """``values[j]`` = raw curve ``b`` at ``t_j = j * 2*pi / (n - 1)`` for ``start <= j < stop``.

    Points come in blocks of ``lanes`` (about the square root of ``n``); with
    ``j = first + l``, each sinusoid's angle splits by angle addition into
    the block's angle ``A`` and ``l`` steps of angle ``h``:
    ``sin(A + l h) = sin(A) cos(l h) + cos(A) sin(l h)``.  Two short tables of
    cosines and sines (one per block, one per lane, see :func:`_sweep`) then
    give every point in two products, and the loop over a block's lanes
    vectorises.  The error stays below ``SAMPLE_ERROR`` per unit of
    ``sum(|a| * (2 + f))``.  The last point is ``t = 2*pi`` exactly, as in
    ``numpy.linspace``.
    """
    if n == 1:
        values[0] = curve_value(0.0, curve, b)
        return
    step = TWO_PI / (n - 1)
    lanes = 16
    while lanes * lanes < n and lanes < 1024:
        lanes *= 2
    first0 = start - start % lanes
    n_blocks = (stop - first0 + lanes - 1) // lanes
    n_terms = curve.shape[2]
    cos_l = np.empty((n_terms, lanes))
    sin_l = np.empty((n_terms, lanes))
    cos_b = np.empty((n_terms, n_blocks))
    sin_b = np.empty((n_terms, n_blocks))
    for k in range(n_terms):
        f = curve[b, FREQUENCY, k]
        _sweep(0.0, f * step, lanes, cos_l[k], sin_l[k])
        _sweep(f * (first0 * step + curve[b, PHASE, k]), f * (lanes * step), n_blocks,
               cos_b[k], sin_b[k])
    acc = np.empty(lanes)
    for block in range(n_blocks):
        first = first0 + block * lanes
        for lane in range(lanes):
            acc[lane] = 0.0
        # Terms are added in the order of the sinusoids, as rsgt adds them.
        for k in range(n_terms):
            a = curve[b, AMPLITUDE, k]
            sa = a * sin_b[k, block]
            ca = a * cos_b[k, block]
            cl = cos_l[k]
            sl = sin_l[k]
            for lane in range(lanes):
                acc[lane] += sa * cl[lane] + ca * sl[lane]
        if start <= first and first + lanes <= stop:  # a whole block
            row = values[first:first + lanes]
            for lane in range(lanes):
                row[lane] = acc[lane]
        else:
            for j in range(max(first, start), min(first + lanes, stop)):
                values[j] = acc[j - first]
    if stop == n:
        values[n - 1] = curve_value(TWO_PI, curve, b)


@helper
def _polish(curve, b, t_lo, t_hi, sign):
    """Largest ``sign * curve`` on [t_lo, t_hi] by golden-section search."""
    ratio = 0.6180339887498949
    lo = t_lo
    hi = t_hi
    c = hi - ratio * (hi - lo)
    d = lo + ratio * (hi - lo)
    fc = sign * curve_value(c, curve, b)
    fd = sign * curve_value(d, curve, b)
    for _ in range(60):
        if fc > fd:
            hi = d
            d = c
            fd = fc
            c = hi - ratio * (hi - lo)
            fc = sign * curve_value(c, curve, b)
        else:
            lo = c
            c = d
            fc = fd
            d = lo + ratio * (hi - lo)
            fd = sign * curve_value(d, curve, b)
    return sign * max(fc, fd)


@helper
def build_grid(b, curve, grid):
    """Sample curve ``b`` on its grid and find the extrema that scale it.

    Integer grids take the extrema of their samples, as rsgt does; dense
    grids refine them to those of the continuous curve.
    """
    g = grid.points[b]
    yb = grid.values[b]
    sample_block(curve, b, g, np.int64(0), g, yb)
    ymin, ymax = extremes_of(yb[:g])
    if grid.dense[b] and g > 1:
        # The first grid points holding the extrema bracket the curve's own.
        jlo = 0
        while jlo < g - 1 and yb[jlo] != ymin:
            jlo += 1
        jhi = 0
        while jhi < g - 1 and yb[jhi] != ymax:
            jhi += 1
        step = TWO_PI / (g - 1)
        ymin = min(ymin, _polish(curve, b, max(jlo - 1, 0) * step,
                                 min((jlo + 1) * step, TWO_PI), -1.0))
        ymax = max(ymax, _polish(curve, b, max(jhi - 1, 0) * step,
                                 min((jhi + 1) * step, TWO_PI), 1.0))
    grid.extrema[b, YMIN] = ymin
    grid.extrema[b, YMAX] = ymax


@helper
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


# ------------------------------------------------------------------ tables


@helper
def fill_lookup(b, grid, place, entries, table):
    """Output for every value an 8/16-bit dtype can hold; ``entries[k]`` is entry k's value.

    On an integer grid each grid value is normalised once (``place[b, BASE]``
    is the table index of the range's low end) and entries outside the range
    repeat the end values; on a dense grid every entry is placed and
    interpolated.
    """
    g = grid.points[b]
    yb = grid.values[b]
    ymin = grid.extrema[b, YMIN]
    ymax = grid.extrema[b, YMAX]
    row = table[b]
    width = row.shape[0]
    if not grid.dense[b]:
        first = int(place[b, BASE])
        start = min(max(first, 0), width)
        stop = min(max(first + g, 0), width)
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
        return
    lo = place[b, LO]
    hi = place[b, HI]
    unit_lo = place[b, UNIT_LO]
    scale = place[b, SCALE]
    unit = place[b, UNIT]
    for k in range(width):
        v = min(max(entries[k], lo), hi)
        store(row, k, normalized(_grid_at(yb, g, (unit * v - unit_lo) * scale), ymin, ymax))


@helper
def fill_index(b, grid, table):
    """Normalised grid values of element ``b``; columns past its grid repeat the last."""
    g = grid.points[b]
    ymin = grid.extrema[b, YMIN]
    ymax = grid.extrema[b, YMAX]
    row = table[b]
    for j in range(g):
        store(row, j, normalized(grid.values[b, j], ymin, ymax))
    for j in range(g, row.shape[0]):
        row[j] = row[g - 1]


@helper
def fill_pairs(b, grid, pairs):
    """``pairs[b, j]`` = (normalised grid value j, step to value j + 1) as one complex.

    One load then fetches both numbers an interpolation needs; the step is
    zero from the last grid point on.
    """
    g = grid.points[b]
    ymin = grid.extrema[b, YMIN]
    ymax = grid.extrema[b, YMAX]
    row = pairs[b]
    previous = row.dtype.type(normalized(grid.values[b, 0], ymin, ymax)).real
    for j in range(1, g):
        value = row.dtype.type(normalized(grid.values[b, j], ymin, ymax)).real
        row[j - 1] = complex(previous, value - previous)
        previous = value
    for j in range(g - 1, row.shape[0]):
        row[j] = complex(previous, 0.0)


# ------------------------------------------------------------------ grids and tables
#
# One task per element: sample its curve and find its extrema, then fill its table.


@kernel
def sample_grids(curve, grid):
    """Each element's curve sampled on its grid, and the extrema that scale it."""
    for i in prange(grid.points.shape[0]):
        build_grid(np.int64(i), curve, grid)


@kernel
def lookup_tables(grid, place, entries, table):
    """Tables with an entry per value of an 8/16-bit dtype (or float16 pattern)."""
    for i in prange(table.shape[0]):
        fill_lookup(np.int64(i), grid, place, entries, table)


@kernel
def index_tables(grid, table):
    """Tables with an entry per integer of each element's range."""
    for i in prange(table.shape[0]):
        fill_index(np.int64(i), grid, table)


@kernel
def pair_tables(grid, pairs):
    """(value, step) pairs of each element's grid, for interpolation."""
    for i in prange(pairs.shape[0]):
        fill_pairs(np.int64(i), grid, pairs)


# ------------------------------------------------------------------ small elements


@kernel
def small_index_rows(x, curve, own, ranges, extrema, out):
    """The whole transform of small 8/16-bit elements on integer grids, one task per element.

    ``ranges[b]`` holds element ``b``'s range, that range clamped to the
    dtype and the table index of the clamped low end, ``(lo, hi, clip lo,
    clip hi, base)``, as int64: given, or with ``own`` filled here from the
    row's minimum and maximum.  Per row: the range, the curve on its integer
    grid and the extrema of the samples (into ``extrema``), the normalised
    table and the gather.  The helpers and the arithmetic are those of
    ``chunk_minmax``, ``sample_grids``, ``index_tables`` and ``lookup_index``,
    so the results are the same bits; only the calls and the planning
    between them are gone, which is most of what a call on small images
    costs.  Rows must not be empty.
    """
    for i in prange(x.shape[0]):
        b = np.int64(i)
        if own:
            lo, hi = extremes_of(x[b])
            ranges[b, 0] = ranges[b, 2] = np.int64(lo)
            ranges[b, 1] = ranges[b, 3] = np.int64(hi)
            ranges[b, 4] = 0
        g = ranges[b, 1] - ranges[b, 0] + 1
        clip_lo = ranges[b, 2]
        clip_hi = ranges[b, 3]
        base = ranges[b, 4]
        yb = np.empty(g)
        sample_block(curve, b, g, np.int64(0), g, yb)
        ymin, ymax = extremes_of(yb)
        tb = np.empty(g, out.dtype)
        for j in range(g):
            store(tb, j, normalized(yb[j], ymin, ymax))
        tb = tb[base:]
        xb = x[b]
        ob = out[b]
        for k in range(xb.shape[0]):
            ob[k] = tb[np.uint64(min(max(np.int64(xb[k]), clip_lo), clip_hi) - clip_lo)]
        extrema[b, YMIN] = ymin
        extrema[b, YMAX] = ymax


# ------------------------------------------------------------------ gathers
#
# Parallel loops over chunks of rows: map each voxel through its row's table.


@helper
def gather_lookup(task, n_chunks, x, table, out, job):
    """``out = table[b, x + offset]`` over one task (8/16-bit input, no clamping)."""
    b, start, stop = task_span(task, n_chunks, job.chunk, x.shape[1])
    # Slices indexed from 0 let the compiler drop negative-index checks and vectorise.
    xb = x[b, start:stop]
    ob = out[b, start:stop]
    tb = table[b]
    offset = job.offset
    for i in range(stop - start):
        ob[i] = tb[np.uint64(np.int64(xb[i]) + offset)]


@helper
def gather_index(task, n_chunks, x, clip, place, table, out, job):
    """``out = table[b, BASE + clamp(x, CLIP_LO, CLIP_HI) - CLIP_LO]`` over one task."""
    b, start, stop = task_span(task, n_chunks, job.chunk, x.shape[1])
    xb = x[b, start:stop]
    ob = out[b, start:stop]
    tb = table[b, np.int64(place[b, BASE]):]
    lo = clip[b, CLIP_LO]
    hi = clip[b, CLIP_HI]
    for i in range(stop - start):
        ob[i] = tb[np.uint64(np.int64(min(max(xb[i], lo), hi)) - np.int64(lo))]


@helper
def _blend(ob, first, m, pairs, idx, frac):
    """``ob[first + i]`` = pair ``idx[i]``'s value plus ``frac[i]`` of its step, for ``i < m``."""
    os = ob[first:first + m]
    for i in range(m):
        pair = pairs[idx[i]]
        store(os, i, pair.real + frac[i] * pair.imag)


@helper
def gather_interp(task, n_chunks, x, place, pairs, out, job):
    """Each value's position on its row's grid, interpolated between two grid values.

    The arithmetic is in ``place``'s float type: a value is clamped to
    ``[LO, HI]`` and placed at ``(UNIT * v - UNIT_LO) * SCALE``.  Work goes in
    blocks: positions (vectorised; positions are never negative, so
    truncation is the floor), then one load and one blend per value.
    """
    b, start, stop = task_span(task, n_chunks, job.chunk, x.shape[1])
    xb = x[b, start:stop]
    ob = out[b, start:stop]
    lo = place[b, LO]
    hi = place[b, HI]
    unit_lo = place[b, UNIT_LO]
    scale = place[b, SCALE]
    unit = place[b, UNIT]
    last = place[b, LAST]
    zero = unit - unit
    work = place.dtype.type
    idx = np.empty(BLOCK, np.int32)
    frac = np.empty(BLOCK, place.dtype)
    for first in range(0, stop - start, BLOCK):
        m = min(BLOCK, stop - start - first)
        xs = xb[first:first + m]
        for i in range(m):
            pos = min((unit * min(max(xs[i] + zero, lo), hi) - unit_lo) * scale, last)
            j = np.int32(pos)
            idx[i] = j
            frac[i] = pos - work(j)
        _blend(ob, first, m, pairs[b], idx, frac)


@helper
def gather_interp_integers(task, n_chunks, x, clip, place, pairs, out, job):
    """:func:`gather_interp` for integers over integral ranges, in integer arithmetic.

    A value is clamped to ``clip`` and its distance from ``CLIP_LO`` taken
    modulo 2**64, which is exact for every integer dtype, so 64-bit values
    far from zero keep every digit; ``BASE`` is ``CLIP_LO``'s grid position.
    """
    b, start, stop = task_span(task, n_chunks, job.chunk, x.shape[1])
    xb = x[b, start:stop]
    ob = out[b, start:stop]
    scale = place[b, SCALE]
    unit = place[b, UNIT]
    last = place[b, LAST]
    base = place[b, BASE]
    low = clip[b, CLIP_LO]
    high = clip[b, CLIP_HI]
    idx = np.empty(BLOCK, np.int32)
    frac = np.empty(BLOCK)
    for first in range(0, stop - start, BLOCK):
        m = min(BLOCK, stop - start - first)
        xs = xb[first:first + m]
        for i in range(m):
            d = np.uint64(np.int64(min(max(xs[i], low), high)) - np.int64(low))
            pos = min(max(base + (unit * d) * scale, 0.0), last)
            j = np.int32(pos)
            idx[i] = j
            frac[i] = pos - float(j)
        _blend(ob, first, m, pairs[b], idx, frac)


@kernel
def lookup(x, table, out, job):
    """``out[b, i] = table[b, x[b, i] + job.offset]`` (8/16-bit input, no clamping)."""
    n_chunks = (x.shape[1] + job.chunk - 1) // job.chunk
    for t in prange(x.shape[0] * n_chunks):
        gather_lookup(np.int64(t), n_chunks, x, table, out, job)


@kernel
def lookup_index(x, clip, place, table, out, job):
    """``out[b, i] = table[b, BASE + clamp(x[b, i], CLIP_LO, CLIP_HI) - CLIP_LO]``."""
    n_chunks = (x.shape[1] + job.chunk - 1) // job.chunk
    for t in prange(x.shape[0] * n_chunks):
        gather_index(np.int64(t), n_chunks, x, clip, place, table, out, job)


@kernel
def interpolate(x, place, pairs, out, job):
    """Every value interpolated on its row's grid (:func:`gather_interp`)."""
    n_chunks = (x.shape[1] + job.chunk - 1) // job.chunk
    for t in prange(x.shape[0] * n_chunks):
        gather_interp(np.int64(t), n_chunks, x, place, pairs, out, job)


@kernel
def interpolate_integers(x, clip, place, pairs, out, job):
    """Every integer interpolated on its row's grid (:func:`gather_interp_integers`)."""
    n_chunks = (x.shape[1] + job.chunk - 1) // job.chunk
    for t in prange(x.shape[0] * n_chunks):
        gather_interp_integers(np.int64(t), n_chunks, x, clip, place, pairs, out, job)


# ------------------------------------------------------------------ rsgt's table


@serial_kernel
def sample_curve(curve, values, chunk):
    """``values`` = raw curve 0 on ``len(values)`` points, ``chunk`` of them at a time."""
    n = values.shape[0]
    for start in range(0, n, chunk):
        sample_block(curve, np.int64(0), n, np.int64(start), min(start + chunk, n), values)


@helper(from_python=True)
def scale_table(curve, error, values, table, finish):
    """Samples ``values`` (within ``error`` of numpy's) scaled onto [0, 1], rounded into ``table``.

    ``table`` is float32 or float16 bit patterns.  Returns the indices of the
    *unsafe* entries, which the caller recomputes exactly: those within
    ``2 error`` of an approximate extremum (one of them holds the exact
    extremum) and those whose error interval, ``delta`` around the scaled
    value, rounds to two different outputs.  The sample, the minimum and the
    span are each off by at most ``error`` (the span by twice that), so the
    scaled value is off by at most ``4 error / (span - 2 error)`` plus a few
    roundings.  A (nearly) flat curve returns every index.

    With ``finish`` (where this ``sin`` is known to be numpy's), the unsafe
    entries are recomputed here (:func:`finish_table`).
    """
    n = table.shape[0]
    unsafe = np.empty(n, np.int64)  # plain loops: np.arange and np.nonzero cost compile time
    amin, amax = extremes_of(values)
    if not amax - amin > 4.0 * error:
        for j in range(n):
            unsafe[j] = j
        count = n
    else:
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
    unsafe = unsafe[:count]
    if finish:
        finish_table(curve, table, unsafe)
    return unsafe


@helper
def rsgt_sample(curve, n, j):
    """rsgt's raw sample ``j`` of ``n``: numpy's operations, in numpy's order.

    ``linspace`` gives ``t = j * step`` (the last point exactly ``2*pi``);
    each sinusoid adds ``a * sin(f * (t + o))`` to a sum that starts at 0.
    Equal to numpy's value wherever this ``sin`` is numpy's.
    """
    t = TWO_PI if j == n - 1 else j * (TWO_PI / (n - 1))
    y = 0.0
    for k in range(curve.shape[2]):
        y += curve[0, AMPLITUDE, k] * math.sin(curve[0, FREQUENCY, k] * (t + curve[0, PHASE, k]))
    return y


@helper(from_python=True)
def sines(x):
    """``sin`` of every value, as the compiled code computes it."""
    out = np.empty_like(x)
    for i in range(x.shape[0]):
        out[i] = math.sin(x[i])
    return out


@helper
def finish_table(curve, table, indices):
    """Entries ``indices`` of ``table`` from rsgt's exact samples, scaled by their own extrema.

    Those are the table's: every exact sample lies within them, and the
    unsafe entries (see :func:`scale_table`) include both.
    """
    n = table.shape[0]
    exact = np.empty(indices.shape[0])
    for i in range(indices.shape[0]):
        exact[i] = rsgt_sample(curve, n, indices[i])
    ymin, ymax = extremes_of(exact)
    for i in range(indices.shape[0]):
        q = (exact[i] - ymin) / (ymax - ymin) if ymax > ymin else 0.5
        store(table, indices[i], q)


# ------------------------------------------------------------------ normalisation


@helper
def _ct_task(task, n_chunks, x, consts, out, chunk):
    b, start, stop = task_span(task, n_chunks, chunk, x.shape[1])
    xb = x[b, start:stop]
    ob = out[b, start:stop]
    shift = consts[0]
    low = consts[1]
    high = consts[2]
    for i in range(stop - start):
        ct_store(ob, i, min(max(xb[i] + shift, low), high))


@kernel
def ct_float(x, consts, out, chunk):
    """``clip(x + 1000, 0, 4096)`` in ``x``'s float type, cast to the output, / 4096.

    ``consts`` holds 1000, 0 and 4096 in ``x``'s dtype; the steps and their
    rounding are those of ``rsgt.normalization.normalize_ct_scan``.
    """
    n_chunks = (x.shape[1] + chunk - 1) // chunk
    for t in prange(x.shape[0] * n_chunks):
        _ct_task(np.int64(t), n_chunks, x, consts, out, chunk)


@kernel
def key_histogram(x, code, bins, hist):
    """Counts of ``(order_key >> shift) + offset`` into ``hist[p]``, one task per part ``p``.

    ``bins`` is ``(shift, offset)``; 1-D ``x`` is split into ``len(hist)``
    contiguous parts; ``code`` is ``(kind, magnitude, exponent)`` as for
    :func:`order_key`.
    """
    n = x.shape[0]
    n_parts = hist.shape[0]
    per = (n + n_parts - 1) // n_parts
    kind, magnitude, _ = code
    shift, offset = bins
    sign_shift = x.itemsize * 8 - 1
    for p in prange(n_parts):
        hp = hist[p]
        for i in range(p * per, min(n, (p + 1) * per)):
            k = order_key(x[i], kind, magnitude, sign_shift)
            hp[np.uint64((k >> shift) + offset)] += 1


@kernel
def collect_bin(x, code, bins, target, starts, keys):
    """Order keys of the values in bin ``target``, written from ``starts[p]`` for part ``p``.

    The parts and ``bins`` are those of :func:`key_histogram` (``len(starts)`` parts).
    """
    n = x.shape[0]
    n_parts = starts.shape[0]
    per = (n + n_parts - 1) // n_parts
    kind, magnitude, _ = code
    shift, offset = bins
    sign_shift = x.itemsize * 8 - 1
    for p in prange(n_parts):
        w = starts[p]
        for i in range(p * per, min(n, (p + 1) * per)):
            k = order_key(x[i], kind, magnitude, sign_shift)
            if (k >> shift) + offset == target:
                keys[w] = k
                w += 1


@helper
def _mr_task(task, n_chunks, x, bounds, out, chunk):
    b, start, stop = task_span(task, n_chunks, chunk, x.shape[1])
    xb = x[b, start:stop]
    ob = out[b, start:stop]
    p5 = bounds[0]
    p95 = bounds[1]
    as_float32 = bounds[2] != 0.0
    # Halves keep differences of values near the float64 maximum finite; scaling
    # by a power of two changes no rounding.
    half_p5 = 0.5 * p5
    span = 0.5 * p95 - half_p5
    for i in range(stop - start):
        v = float(np.float32(xb[i])) if as_float32 else float(xb[i])
        if span > 0.0:
            y = min(max((0.5 * v - half_p5) / span, 0.0), 1.0)
        elif v < p5:
            y = 0.0
        elif v > p5:
            y = 1.0
        else:
            y = 0.5
        store(ob, i, y)


@kernel
def mr_affine(x, bounds, out, chunk):
    """``clip((cast(x) - p5) / (p95 - p5), 0, 1)`` in float64; 0.5 where that is 0/0.

    ``bounds`` holds p5, p95 and a flag: non-zero casts ``x`` to float32 first.
    """
    n_chunks = (x.shape[1] + chunk - 1) // chunk
    for t in prange(x.shape[0] * n_chunks):
        _mr_task(np.int64(t), n_chunks, x, bounds, out, chunk)
