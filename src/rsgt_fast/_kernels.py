"""Every compiled function of rsgt_fast, and nothing else.

Arrays arrive 2-D and C-contiguous: ``x`` and ``out`` are ``(B, N)``, one row
per batch element.  Parallel loops run over *tasks*, each one chunk of one
row, so that a batch of one still keeps every core busy; a task's index is
made an int64 first, so that the serial and the parallel variant of a kernel
share every helper's compiled code.  The packed arguments (``curve``,
``place``, ``clip``, ``grid``, ``job``) are described in :mod:`._layout`;
kernels draw no random numbers.

Output arrays of itemsize 2 hold float16 bit patterns (the output viewed as
``uint16``): numba has no float16, so values are rounded by :func:`half_bits`.
"""

import math

import numpy as np
from numba import prange

from ._jit import helper, kernel
from ._layout import (
    AMPLITUDE, BASE, CLIP_HI, CLIP_LO, FREQUENCY, HI, LAST, LO, PHASE, RESTART, SCALE, UNIT,
    UNIT_LO, YMAX, YMIN,
)

TWO_PI = 2.0 * math.pi
_HALF_MIN_NORMAL = 6.103515625e-05  # 2**-14

#: Order-key kinds (see :func:`order_key`).
KEY_SIGNED, KEY_UNSIGNED, KEY_FLOAT = 0, 1, 2

#: Values per block in the interpolating gather.
BLOCK = 512


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


def _order_key(v, kind, magnitude, shift):
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


order_key = helper(_order_key)


def decode_keys(keys, kind, dtype):
    """Values of ``dtype`` from int64 order keys made by :func:`order_key`."""
    width = np.dtype(dtype).itemsize * 8
    keys = np.asarray(keys, np.int64)
    patterns = _order_key(keys, kind, np.int64((1 << (width - 1)) - 1), width - 1)
    return patterns.astype(f"int{width}").view(dtype)


@helper
def task_span(task, n_chunks, chunk, length):
    """Row and ``[start, stop)`` of task ``task`` (chunk ``task % n_chunks`` of its row)."""
    b = task // n_chunks
    start = (task - b * n_chunks) * chunk
    return b, start, min(start + chunk, length)


@helper
def store(row, j, v):
    """``row[j] = v``, as a float16 bit pattern where ``row`` holds them."""
    if row.itemsize == 2:
        row[j] = half_bits(v)
    else:
        row[j] = v


# ------------------------------------------------------------------ min/max


@helper
def _minmax_task(task, n_chunks, chunk, x, code, keys, bad):
    b, start, stop = task_span(task, n_chunks, chunk, x.shape[1])
    kind, magnitude, exponent = code
    shift = x.itemsize * 8 - 1
    lo = order_key(x[b, start], kind, magnitude, shift)
    hi = lo
    top = 0
    for i in range(start, stop):
        v = x[b, i]
        k = order_key(v, kind, magnitude, shift)
        lo = min(lo, k)
        hi = max(hi, k)
        top = max(top, v & exponent)
    keys[task, 0] = lo
    keys[task, 1] = hi
    bad[task] = exponent != 0 and top == exponent


@kernel
def row_minmax(x, code, chunk):
    """Per-row smallest and largest order key of ``x``, and whether a row holds NaN or Inf.

    ``x`` is the data viewed as signed integers of its width and ``code`` is
    ``(kind, magnitude, exponent)``: see :func:`order_key`; ``exponent`` is the
    exponent mask of a float dtype (a value is NaN or Inf when all its bits
    are set) and 0 for integers.  Returns int64 keys ``(B, 2)`` and flags ``(B,)``.
    """
    n_rows, n = x.shape
    n_chunks = (n + chunk - 1) // chunk
    n_tasks = n_rows * n_chunks
    keys = np.empty((n_tasks, 2), np.int64)
    bad = np.zeros(n_tasks, np.bool_)
    for t in prange(n_tasks):
        _minmax_task(np.int64(t), n_chunks, chunk, x, code, keys, bad)
    out = np.empty((n_rows, 2), np.int64)
    flags = np.zeros(n_rows, np.bool_)
    for b in range(n_rows):
        first = b * n_chunks
        out[b, 0] = keys[first:first + n_chunks, 0].min()
        out[b, 1] = keys[first:first + n_chunks, 1].max()
        flags[b] = bad[first:first + n_chunks].any()
    return out, flags


# ------------------------------------------------------------------ curves


@helper
def sample_block(curve, b, n, start, stop, values):
    """``values[j]`` = raw curve ``b`` at ``t_j = j * 2*pi / (n - 1)`` for ``start <= j < stop``.

    Each sinusoid is evaluated exactly (``sin``/``cos``) every ``RESTART``
    points and advanced by rotation (angle addition) in between, which costs
    a few multiplications per point instead of a ``sin``; the error stays
    below ``SAMPLE_ERROR`` per unit of ``sum(|a| * (2 + f))``.  The last point
    is ``t = 2*pi`` exactly, as in ``numpy.linspace``.
    """
    if n == 1:
        values[0] = curve_value(0.0, curve, b)
        return
    step = TWO_PI / (n - 1)
    m = curve.shape[2]
    s = np.empty(m)
    c = np.empty(m)
    ds = np.empty(m)
    dc = np.empty(m)
    for k in range(m):
        ds[k] = math.sin(curve[b, FREQUENCY, k] * step)
        dc[k] = math.cos(curve[b, FREQUENCY, k] * step)
    for first in range(start, stop, RESTART):
        for k in range(m):
            angle = curve[b, FREQUENCY, k] * (first * step + curve[b, PHASE, k])
            s[k] = math.sin(angle)
            c[k] = math.cos(angle)
        # The sinusoids advance independently, so the loop over k overlaps
        # their dependency chains.
        for j in range(first, min(first + RESTART, stop)):
            y = 0.0
            for k in range(m):
                y += curve[b, AMPLITUDE, k] * s[k]
                s[k], c[k] = s[k] * dc[k] + c[k] * ds[k], c[k] * dc[k] - s[k] * ds[k]
            values[j] = y
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
    sample_block(curve, b, g, 0, g, yb)
    jlo = 0
    jhi = 0
    for j in range(1, g):
        if yb[j] < yb[jlo]:
            jlo = j
        if yb[j] > yb[jhi]:
            jhi = j
    ymin = yb[jlo]
    ymax = yb[jhi]
    if grid.dense[b] and g > 1:
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
            store(row, 0, normalized(yb[0], ymin, ymax))
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


# ------------------------------------------------------------------ gathers


@helper
def gather_lookup(task, n_chunks, x, table, out, job):
    """``out = table[b, x + offset]`` over one task (8/16-bit input, no clamping)."""
    b, start, stop = task_span(task, n_chunks, job.chunk, x.shape[1])
    xb = x[b]
    ob = out[b]
    tb = table[b]
    offset = job.offset
    for i in range(start, stop):
        ob[i] = tb[np.uint64(np.int64(xb[i]) + offset)]


@helper
def gather_index(task, n_chunks, x, clip, place, table, out, job):
    """``out = table[b, BASE + clamp(x, CLIP_LO, CLIP_HI) - CLIP_LO]`` over one task."""
    b, start, stop = task_span(task, n_chunks, job.chunk, x.shape[1])
    xb = x[b]
    ob = out[b]
    tb = table[b, np.int64(place[b, BASE]):]
    lo = clip[b, CLIP_LO]
    hi = clip[b, CLIP_HI]
    for i in range(start, stop):
        ob[i] = tb[np.uint64(np.int64(min(max(xb[i], lo), hi)) - np.int64(lo))]


@helper
def gather_interp(task, n_chunks, x, clip, place, pairs, out, job):
    """Each value's position on the grid, interpolated between two normalised grid values.

    The arithmetic is in ``place``'s float type.  Float input is clamped to
    ``[LO, HI]`` and placed at ``(UNIT * v - UNIT_LO) * SCALE``; integer input
    (``job.integer``) is clamped to ``clip`` and measured from ``CLIP_LO`` in
    integer arithmetic, so that 64-bit values far from zero keep every digit.
    Work goes in blocks: positions (vectorised), one load per value, then the
    blend (vectorised).
    """
    b, start, stop = task_span(task, n_chunks, job.chunk, x.shape[1])
    xb = x[b, start:stop]
    ob = out[b, start:stop]
    tb = pairs[b]
    lo = place[b, LO]
    hi = place[b, HI]
    unit_lo = place[b, UNIT_LO]
    scale = place[b, SCALE]
    unit = place[b, UNIT]
    last = place[b, LAST]
    base = place[b, BASE]
    zero = unit - unit
    low = clip[b, CLIP_LO]
    high = clip[b, CLIP_HI]
    idx = np.empty(BLOCK, np.uint32)
    frac = np.empty(BLOCK, place.dtype)
    fetched = np.empty(BLOCK, pairs.dtype)
    n = xb.shape[0]
    for first in range(0, n, BLOCK):
        m = min(BLOCK, n - first)
        xs = xb[first:first + m]
        if job.integer:
            for i in range(m):
                # Modulo 2**64 the difference is exact for every integer dtype.
                d = np.uint64(np.int64(min(max(xs[i], low), high)) - np.int64(low))
                pos = min(max(base + (unit * d) * scale, zero), last)
                whole = np.floor(pos)
                idx[i] = np.uint32(whole)
                frac[i] = pos - whole
        else:
            for i in range(m):
                pos = (unit * min(max(xs[i] + zero, lo), hi) - unit_lo) * scale
                whole = min(np.floor(pos), last)
                idx[i] = np.uint32(whole)
                frac[i] = pos - whole
        for i in range(m):
            fetched[i] = tb[idx[i]]
        os = ob[first:first + m]
        for i in range(m):
            store(os, i, fetched[i].real + frac[i] * fetched[i].imag)


# ------------------------------------------------------------------ transforms
#
# Each transform is one call with two parallel loops: over elements, each
# sampling its curve, finding its extrema and filling its table; then over
# (element, chunk) tasks mapping every voxel.


@kernel
def transform_lookup(x, curve, grid, place, entries, table, out, job):
    """8/16-bit integer or float16 input: a table entry per representable value."""
    n_rows = x.shape[0]
    for i in prange(n_rows):
        b = np.int64(i)
        build_grid(b, curve, grid)
        fill_lookup(b, grid, place, entries, table)
    n_chunks = (x.shape[1] + job.chunk - 1) // job.chunk
    for t in prange(n_rows * n_chunks):
        gather_lookup(np.int64(t), n_chunks, x, table, out, job)


@kernel
def transform_index(x, curve, grid, place, clip, table, out, job):
    """Integer input whose range holds one grid point per integer: index the grid."""
    n_rows = x.shape[0]
    for i in prange(n_rows):
        b = np.int64(i)
        build_grid(b, curve, grid)
        fill_index(b, grid, table)
    n_chunks = (x.shape[1] + job.chunk - 1) // job.chunk
    for t in prange(n_rows * n_chunks):
        gather_index(np.int64(t), n_chunks, x, clip, place, table, out, job)


@kernel
def transform_interp(x, curve, grid, place, clip, pairs, out, job):
    """Float input, or integers over a wide or non-integral range: interpolate a dense grid."""
    n_rows = x.shape[0]
    for i in prange(n_rows):
        b = np.int64(i)
        build_grid(b, curve, grid)
        fill_pairs(b, grid, pairs)
    n_chunks = (x.shape[1] + job.chunk - 1) // job.chunk
    for t in prange(n_rows * n_chunks):
        gather_interp(np.int64(t), n_chunks, x, clip, place, pairs, out, job)


# ------------------------------------------------------------------ given tables


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


@helper
def _samples_task(task, chunk, curve, values):
    n = values.shape[0]
    start = task * chunk
    sample_block(curve, 0, n, start, min(start + chunk, n), values)


@kernel
def curve_samples(curve, n, chunk):
    """Curve 0 at ``numpy.linspace(0, 2*pi, n)``, in parallel chunks (see :func:`sample_block`)."""
    values = np.empty(n)
    for t in prange((n + chunk - 1) // chunk):
        _samples_task(np.int64(t), chunk, curve, values)
    return values


@helper
def _round_task(task, chunk, values, extrema, delta, table, unsafe):
    start = task * chunk
    ymin = extrema[YMIN]
    span = extrema[YMAX] - ymin
    for j in range(start, min(start + chunk, values.shape[0])):
        q = (values[j] - ymin) / span
        if table.itemsize == 2:
            low = half_bits(q - delta)
            high = half_bits(q + delta)
        else:
            low = np.float32(q - delta)
            high = np.float32(q + delta)
        table[j] = low
        unsafe[j] = low != high


@kernel
def rounded_table(values, extrema, delta, table, chunk):
    """``(values - ymin) / (ymax - ymin)`` rounded to ``table``'s dtype (float32 or float16 bits).

    ``values`` may be off by ``delta`` (in units of the scaled curve): an
    entry is *unsafe* when the two ends of its error interval round to
    different outputs, and only then can its rounding differ from the exact
    value's.  Returns the unsafe flags; the caller recomputes those entries.
    """
    unsafe = np.empty(values.shape[0], np.bool_)
    for t in prange((values.shape[0] + chunk - 1) // chunk):
        _round_task(np.int64(t), chunk, values, extrema, delta, table, unsafe)
    return unsafe


# ------------------------------------------------------------------ normalisation


@helper
def _ct_task(task, n_chunks, x, consts, out, chunk):
    b, start, stop = task_span(task, n_chunks, chunk, x.shape[1])
    xb = x[b]
    ob = out[b]
    shift = consts[0]
    low = consts[1]
    high = consts[2]
    for i in range(start, stop):
        c = min(max(xb[i] + shift, low), high)
        if ob.itemsize == 2:
            ob[i] = half_bits(half_value(half_bits(c)) / 4096.0)
        else:
            ob[i] = c
            ob[i] = ob[i] / 4096.0


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
def key_histogram(x, code, shift, offset, n_bins, n_parts):
    """Counts of ``(order_key >> shift) + offset`` over ``n_parts`` contiguous parts of 1-D ``x``.

    ``x`` and ``code`` are as for :func:`row_minmax`.
    """
    n = x.shape[0]
    per = (n + n_parts - 1) // n_parts
    kind, magnitude, _ = code
    sign_shift = x.itemsize * 8 - 1
    hist = np.zeros((n_parts, n_bins), np.int64)
    for p in prange(n_parts):
        hp = hist[p]
        for i in range(p * per, min(n, (p + 1) * per)):
            k = order_key(x[i], kind, magnitude, sign_shift)
            hp[np.uint64((k >> shift) + offset)] += 1
    return hist


@kernel
def collect_bin(x, code, shift, offset, target, starts, keys):
    """Order keys of the values in bin ``target``, written from ``starts[p]`` for part ``p``.

    The parts are those of :func:`key_histogram` (``len(starts)`` of them).
    """
    n = x.shape[0]
    n_parts = starts.shape[0]
    per = (n + n_parts - 1) // n_parts
    kind, magnitude, _ = code
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
    xb = x[b]
    ob = out[b]
    p5 = bounds[0]
    p95 = bounds[1]
    as_float32 = bounds[2] != 0.0
    # Halves keep differences of values near the float64 maximum finite; scaling
    # by a power of two changes no rounding.
    half_p5 = 0.5 * p5
    span = 0.5 * p95 - half_p5
    for i in range(start, stop):
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
