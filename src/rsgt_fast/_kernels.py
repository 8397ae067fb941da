"""Every compiled function of rsgt_fast, and nothing else.

Arrays arrive 2-D and C-contiguous: ``x`` and ``out`` are ``(B, N)``, one row
per batch element.  Parallel loops run over *tasks*, each one chunk of one
row, so that a batch of one still keeps every core busy.  Curve parameters
come in as float64 ``(B, n_sinusoids)`` arrays; kernels draw no random
numbers.

Every transform works from a *grid*: ``G[b]`` samples of element ``b``'s
curve at ``t_j = j * 2*pi / (G[b] - 1)`` (the last one exactly ``2*pi``),
the same points ``numpy.linspace(0, 2*pi, G[b])`` gives.  For integer input
whose range holds at most ``GRID_MAX`` values the grid has one point per
integer, so a voxel's output is one grid value; otherwise the grid is dense
and values are linearly interpolated from it.  Output tables hold float
values, or float16 bit patterns written through a ``uint16`` view of the
output.
"""

import math

import numpy as np
from numba import prange

from ._jit import helper, kernel

TWO_PI = 2.0 * math.pi
_HALF_MIN_NORMAL = 6.103515625e-05  # 2**-14


# ------------------------------------------------------------------ scalars


@helper
def curve_value(t, f, a, o, b):
    """Raw (unnormalised) curve ``b`` at ``t``, summed in the original's order."""
    y = 0.0
    for k in range(f.shape[1]):
        y += a[b, k] * math.sin(f[b, k] * (t + o[b, k]))
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
        v = math.ldexp(1024.0 + mantissa, exponent - 25)
    if h & 0x8000:
        return -v
    return v


@helper
def _store(table, b, j, v, half_out):
    if half_out:
        table[b, j] = half_bits(v)
    else:
        table[b, j] = v


@helper
def _task_span(task, n_chunks, chunk, length):
    b = task // n_chunks
    start = (task - b * n_chunks) * chunk
    stop = min(start + chunk, length)
    return b, start, stop


# ------------------------------------------------------------------ min/max


@helper
def _minmax_chunk(task, n_chunks, chunk, x, as_float, sign_flip, exponent, pmin, pmax, pbad):
    b, start, stop = _task_span(task, n_chunks, chunk, x.shape[1])
    xb = x[b, start:stop]
    lo = xb[0]
    hi = lo
    if as_float:
        # Signed-integer view of IEEE floats: flipping the magnitude bits of
        # negative patterns makes integer order equal value order.  A value is
        # NaN or Inf when all its exponent bits are set.
        shift = 8 * xb.itemsize - 1
        top = lo & exponent
        lo = lo ^ ((lo >> shift) & sign_flip)
        hi = lo
        for i in range(xb.shape[0]):
            v = xb[i]
            top = max(top, v & exponent)
            k = v ^ ((v >> shift) & sign_flip)
            lo = min(lo, k)
            hi = max(hi, k)
        pbad[task] = top == exponent
    else:
        for i in range(xb.shape[0]):
            lo = min(lo, xb[i])
            hi = max(hi, xb[i])
    pmin[task] = lo
    pmax[task] = hi


@kernel
def row_minmax(x, as_float, sign_flip, exponent, chunk):
    """Per-row min and max of ``x``, and whether a row holds NaN or Inf.

    Float rows come as a signed-integer view of their bits (``as_float``) and
    yield order keys, not values; a row is *bad* if any value's exponent bits
    are all set.  ``sign_flip`` is the magnitude mask, ``exponent`` the
    exponent mask, both of ``x``'s dtype.
    """
    n_rows, n = x.shape
    n_chunks = (n + chunk - 1) // chunk
    n_tasks = n_rows * n_chunks
    pmin = np.empty(n_tasks, x.dtype)
    pmax = np.empty(n_tasks, x.dtype)
    pbad = np.zeros(n_tasks, np.bool_)
    for task in prange(n_tasks):
        _minmax_chunk(task, n_chunks, chunk, x, as_float, sign_flip, exponent, pmin, pmax, pbad)
    lo = np.empty(n_rows, x.dtype)
    hi = np.empty(n_rows, x.dtype)
    bad = np.zeros(n_rows, np.bool_)
    for b in range(n_rows):
        first = b * n_chunks
        lo[b] = pmin[first:first + n_chunks].min()
        hi[b] = pmax[first:first + n_chunks].max()
        bad[b] = pbad[first:first + n_chunks].any()
    return lo, hi, bad


# ------------------------------------------------------------------ curves


@helper
def _grid_chunk(task, n_chunks, chunk, f, a, o, G, Y):
    """Curve values at grid points ``[start, stop)`` of one element.

    Each sinusoid is evaluated exactly at the chunk's first point and then
    advanced by rotation (angle addition), which costs a few multiplications
    per point instead of a ``sin``; over one chunk the drift stays near 1e-12.
    """
    b = task // n_chunks
    g = G[b]
    start = (task - b * n_chunks) * chunk
    stop = min(start + chunk, g)
    if start >= stop:
        return
    step = TWO_PI / (g - 1) if g > 1 else 0.0
    yb = Y[b, start:stop]
    yb[:] = 0.0
    for k in range(f.shape[1]):
        fk = f[b, k]
        ak = a[b, k]
        angle = fk * (start * step + o[b, k])
        s = math.sin(angle)
        c = math.cos(angle)
        ds = math.sin(fk * step)
        dc = math.cos(fk * step)
        for j in range(yb.shape[0]):
            yb[j] += ak * s
            s, c = s * dc + c * ds, c * dc - s * ds
    if stop == g and g > 1:
        yb[yb.shape[0] - 1] = curve_value(TWO_PI, f, a, o, b)


@helper
def _polish(b, f, a, o, t_lo, t_hi, sign):
    """Largest ``sign * curve`` on [t_lo, t_hi] by golden-section search."""
    ratio = 0.6180339887498949
    lo = t_lo
    hi = t_hi
    c = hi - ratio * (hi - lo)
    d = lo + ratio * (hi - lo)
    fc = sign * curve_value(c, f, a, o, b)
    fd = sign * curve_value(d, f, a, o, b)
    for _ in range(60):
        if fc > fd:
            hi = d
            d = c
            fd = fc
            c = hi - ratio * (hi - lo)
            fc = sign * curve_value(c, f, a, o, b)
        else:
            lo = c
            c = d
            fc = fd
            d = lo + ratio * (hi - lo)
            fd = sign * curve_value(d, f, a, o, b)
    return sign * max(fc, fd)


@helper
def _extrema(b, f, a, o, G, polish, Y, ext):
    """Extrema of grid ``b``; with ``polish`` those of the continuous curve."""
    g = G[b]
    jlo = 0
    jhi = 0
    for j in range(1, g):
        if Y[b, j] < Y[b, jlo]:
            jlo = j
        if Y[b, j] > Y[b, jhi]:
            jhi = j
    ymin = Y[b, jlo]
    ymax = Y[b, jhi]
    if polish[b] and g > 1:
        step = TWO_PI / (g - 1)
        ymin = min(ymin, _polish(b, f, a, o, max(jlo - 1, 0) * step,
                                 min((jlo + 1) * step, TWO_PI), -1.0))
        ymax = max(ymax, _polish(b, f, a, o, max(jhi - 1, 0) * step,
                                 min((jhi + 1) * step, TWO_PI), 1.0))
    ext[b, 0] = ymin
    ext[b, 1] = ymax


@helper
def _position(v, lo, half_lo, hi, scale):
    """Grid position of ``v`` clamped to [lo, hi]; halves keep huge spans finite."""
    if v < lo:
        v = lo
    elif v > hi:
        v = hi
    return (0.5 * v - half_lo) * scale


@helper
def _grid_at(Y, b, g, pos):
    if pos >= g - 1:
        return Y[b, g - 1]
    j = int(pos)
    fr = pos - j
    y0 = Y[b, j]
    if fr == 0.0:
        return y0
    return y0 + fr * (Y[b, j + 1] - y0)


@helper
def _table_chunk(task, n_chunks, chunk, G, Y, ext, table, half_out):
    """Normalised grid values into ``table`` (at least two columns per row)."""
    b, start, stop = _task_span(task, n_chunks, chunk, table.shape[1])
    g = G[b]
    ymin = ext[b, 0]
    ymax = ext[b, 1]
    for j in range(start, stop):
        _store(table, b, j, normalized(Y[b, min(j, g - 1)], ymin, ymax), half_out)


@helper
def _full_chunk(task, n_chunks, chunk, half_in, dmin, lo, hi, scale, G, Y, ext, table, half_out):
    """Output for every value an 8/16-bit dtype can hold (index ``value - dmin``)."""
    b, start, stop = _task_span(task, n_chunks, chunk, table.shape[1])
    g = G[b]
    lo_b = lo[b]
    hi_b = hi[b]
    half_lo = 0.5 * lo_b
    ymin = ext[b, 0]
    ymax = ext[b, 1]
    for k in range(start, stop):
        if half_in:
            if (k & 0x7C00) == 0x7C00:  # inf/nan patterns never occur
                v = lo_b
            else:
                v = half_value(k)
        else:
            v = float(dmin + k)
        pos = _position(v, lo_b, half_lo, hi_b, scale[b])
        _store(table, b, k, normalized(_grid_at(Y, b, g, pos), ymin, ymax), half_out)


# ------------------------------------------------------------------ gathers


@helper
def _gather_full(task, n_chunks, chunk, x, offset, table, out):
    b, start, stop = _task_span(task, n_chunks, chunk, x.shape[1])
    xb = x[b, start:stop]
    ob = out[b, start:stop]
    tb = table[b]
    for i in range(xb.shape[0]):
        ob[i] = tb[np.uint64(np.int64(xb[i]) + offset)]


@helper
def _gather_clamped(task, n_chunks, chunk, x, lo_x, hi_x, skip, table, out):
    b, start, stop = _task_span(task, n_chunks, chunk, x.shape[1])
    xb = x[b, start:stop]
    ob = out[b, start:stop]
    tb = table[b, skip[b]:]
    lo = lo_x[b]
    hi = hi_x[b]
    for i in range(xb.shape[0]):
        ob[i] = tb[np.uint64(min(max(xb[i], lo), hi) - lo)]


BLOCK = 512


@helper
def _gather_interp(task, n_chunks, chunk, x, params, integer, lo_x, hi_x, table, out, half_out):
    """Linear interpolation of each value's position in the table.

    ``params[b]`` holds lo, hi, ``unit * lo``, grid points per ``unit``, ``unit``
    (a power of two keeping the arithmetic finite, usually 0.5), the last grid
    index, and for ``integer`` input the grid position of ``lo_x[b]``, all in
    the working float type, which the arithmetic keeps.  Integer input is clamped
    to ``[lo_x[b], hi_x[b]]`` (``x``'s dtype) and measured from ``lo_x[b]`` in
    integer arithmetic, so 64-bit values far from zero keep every digit.
    Work goes in blocks: the positions (vectorised), the table reads, then
    the blend (vectorised).
    """
    b, start, stop = _task_span(task, n_chunks, chunk, x.shape[1])
    xb = x[b, start:stop]
    ob = out[b, start:stop]
    tb = table[b]
    lo = params[b, 0]
    hi = params[b, 1]
    unit_lo = params[b, 2]
    scale = params[b, 3]
    unit = params[b, 4]
    last = params[b, 5]
    base = params[b, 6]
    zero = unit - unit
    low = lo_x[b]
    high = hi_x[b]
    idx = np.empty(BLOCK, np.uint32)
    frac = np.empty(BLOCK, params.dtype)
    y0 = np.empty(BLOCK, params.dtype)
    y1 = np.empty(BLOCK, params.dtype)
    n = xb.shape[0]
    for first in range(0, n, BLOCK):
        m = min(BLOCK, n - first)
        xs = xb[first:first + m]
        if integer:
            for i in range(m):
                d = np.uint64(min(max(xs[i], low), high) - low)
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
            j = idx[i]
            y0[i] = tb[j]
            y1[i] = tb[j + np.uint32(1)]
        os = ob[first:first + m]
        if half_out:
            for i in range(m):
                os[i] = half_bits(y0[i] + frac[i] * (y1[i] - y0[i]))
        else:
            for i in range(m):
                os[i] = y0[i] + frac[i] * (y1[i] - y0[i])


# ------------------------------------------------------------------ transforms
#
# Each transform is one call: grid values and extrema of every element (unless
# ``build`` is false and the caller filled ``Y`` and ``ext``), then each
# element's output table, then every voxel of every element.  Shared arguments:
#   f, a, o        curve parameters, (B, n_sinusoids)
#   G              grid points per element; ``polish`` marks dense grids whose
#                  extrema are refined to those of the continuous curve
#   Y, ext         (B, max G) float64 grid values and (B, 2) extrema
#   lo, hi, scale  float64 range per element and grid points per unit/2
#                  (interpolation takes them in ``params``, in its float type)


@kernel
def transform_full(x, half_in, dmin, f, a, o, lo, hi, scale, G, polish, build, Y, ext,
                   table, out, half_out, chunk):
    """8/16-bit integer or float16 input: one table entry per representable value."""
    n_rows = x.shape[0]
    if build:
        gc = (Y.shape[1] + chunk - 1) // chunk
        for task in prange(n_rows * gc):
            _grid_chunk(task, gc, chunk, f, a, o, G, Y)
        for b in prange(n_rows):
            _extrema(b, f, a, o, G, polish, Y, ext)
    tc = (table.shape[1] + chunk - 1) // chunk
    for task in prange(n_rows * tc):
        _full_chunk(task, tc, chunk, half_in, dmin, lo, hi, scale, G, Y, ext, table, half_out)
    xc = (x.shape[1] + chunk - 1) // chunk
    for task in prange(n_rows * xc):
        _gather_full(task, xc, chunk, x, -dmin, table, out)


@kernel
def transform_clamped(x, f, a, o, G, polish, build, Y, ext, lo_x, hi_x, skip,
                      table, out, half_out, chunk):
    """Wider integer input, range of at most ``GRID_MAX`` values: index the grid."""
    n_rows = x.shape[0]
    if build:
        gc = (Y.shape[1] + chunk - 1) // chunk
        for task in prange(n_rows * gc):
            _grid_chunk(task, gc, chunk, f, a, o, G, Y)
        for b in prange(n_rows):
            _extrema(b, f, a, o, G, polish, Y, ext)
    tc = (table.shape[1] + chunk - 1) // chunk
    for task in prange(n_rows * tc):
        _table_chunk(task, tc, chunk, G, Y, ext, table, half_out)
    xc = (x.shape[1] + chunk - 1) // chunk
    for task in prange(n_rows * xc):
        _gather_clamped(task, xc, chunk, x, lo_x, hi_x, skip, table, out)


@kernel
def transform_interp(x, f, a, o, G, polish, build, Y, ext, params, integer, lo_x, hi_x, table,
                     out, half_out, chunk):
    """Float input, or integers over a wide range: interpolate a dense grid.

    ``table`` (working float type) has a column more than the largest grid,
    so the last grid point needs no special case.
    """
    n_rows = x.shape[0]
    if build:
        gc = (Y.shape[1] + chunk - 1) // chunk
        for task in prange(n_rows * gc):
            _grid_chunk(task, gc, chunk, f, a, o, G, Y)
        for b in prange(n_rows):
            _extrema(b, f, a, o, G, polish, Y, ext)
    tc = (table.shape[1] + chunk - 1) // chunk
    for task in prange(n_rows * tc):
        _table_chunk(task, tc, chunk, G, Y, ext, table, False)
    xc = (x.shape[1] + chunk - 1) // chunk
    for task in prange(n_rows * xc):
        _gather_interp(task, xc, chunk, x, params, integer, lo_x, hi_x, table, out, half_out)


# ------------------------------------------------------------------ normalisation


@kernel
def lookup_full(x, offset, table, out, chunk):
    """``out[b, i] = table[b, x[b, i] + offset]`` (8/16-bit input, no clamping)."""
    xc = (x.shape[1] + chunk - 1) // chunk
    for task in prange(x.shape[0] * xc):
        _gather_full(task, xc, chunk, x, offset, table, out)


@kernel
def lookup_clamped(x, lo_x, hi_x, skip, table, out, chunk):
    """``out[b, i] = table[b, skip[b] + clamp(x[b, i], lo_x[b], hi_x[b]) - lo_x[b]]``."""
    xc = (x.shape[1] + chunk - 1) // chunk
    for task in prange(x.shape[0] * xc):
        _gather_clamped(task, xc, chunk, x, lo_x, hi_x, skip, table, out)


@helper
def _ct_chunk(task, n_chunks, chunk, x, consts, out, half_out):
    b, start, stop = _task_span(task, n_chunks, chunk, x.shape[1])
    xb = x[b, start:stop]
    ob = out[b, start:stop]
    shift = consts[0]
    low = consts[1]
    high = consts[2]
    for i in range(xb.shape[0]):
        c = min(max(xb[i] + shift, low), high)
        if half_out:
            ob[i] = half_bits(half_value(half_bits(c)) / 4096.0)
        else:
            ob[i] = c
            ob[i] = ob[i] / 4096.0


@kernel
def ct_float(x, consts, out, half_out, chunk):
    """``clip(x + 1000, 0, 4096)`` in ``x``'s float type, cast to the output, / 4096.

    ``consts`` holds 1000, 0 and 4096 in ``x``'s dtype; the steps and their
    rounding are those of ``rsgt.normalization.normalize_ct_scan``.
    """
    xc = (x.shape[1] + chunk - 1) // chunk
    for task in prange(x.shape[0] * xc):
        _ct_chunk(task, xc, chunk, x, consts, out, half_out)


@helper
def _order_key(v, kind, sign_bit, magnitude, shift_sign):
    """Signed key of a signed-integer view whose order is the values' order.

    kind 0: signed integers; 1: unsigned integers; 2: IEEE floats.
    """
    if kind == 1:
        return v ^ sign_bit
    if kind == 2:
        return v ^ ((v >> shift_sign) & magnitude)
    return v


@kernel
def key_histogram(x, kind, sign_bit, magnitude, shift_sign, shift, offset, n_bins, n_parts):
    """Counts of ``(key >> shift) + offset`` over ``n_parts`` contiguous parts of 1-D ``x``."""
    n = x.shape[0]
    per = (n + n_parts - 1) // n_parts
    hist = np.zeros((n_parts, n_bins), np.int64)
    for p in prange(n_parts):
        hp = hist[p]
        for i in range(p * per, min(n, (p + 1) * per)):
            k = _order_key(x[i], kind, sign_bit, magnitude, shift_sign)
            hp[np.uint64((k >> shift) + offset)] += 1
    return hist


@kernel
def collect_bin(x, kind, sign_bit, magnitude, shift_sign, shift, offset, n_parts, target,
                starts, buf):
    """Keys of the values in bin ``target``, written from ``starts[p]`` for part ``p``."""
    n = x.shape[0]
    per = (n + n_parts - 1) // n_parts
    for p in prange(n_parts):
        w = starts[p]
        for i in range(p * per, min(n, (p + 1) * per)):
            k = _order_key(x[i], kind, sign_bit, magnitude, shift_sign)
            if (k >> shift) + offset == target:
                buf[w] = k
                w += 1


@helper
def _mr_chunk(task, n_chunks, chunk, x, as_float32, p5, p95, out, half_out):
    b, start, stop = _task_span(task, n_chunks, chunk, x.shape[1])
    xb = x[b, start:stop]
    ob = out[b, start:stop]
    # Halves keep differences of values near the float64 maximum finite; scaling
    # by a power of two changes no rounding.
    half_p5 = 0.5 * p5
    span = 0.5 * p95 - half_p5
    for i in range(xb.shape[0]):
        v = float(np.float32(xb[i])) if as_float32 else float(xb[i])
        if span > 0.0:
            y = min(max((0.5 * v - half_p5) / span, 0.0), 1.0)
        elif v < p5:
            y = 0.0
        elif v > p5:
            y = 1.0
        else:
            y = 0.5
        if half_out:
            ob[i] = half_bits(y)
        else:
            ob[i] = y


@kernel
def mr_affine(x, as_float32, p5, p95, out, half_out, chunk):
    """``clip((cast(x) - p5) / (p95 - p5), 0, 1)`` in float64; 0.5 where that is 0/0."""
    xc = (x.shape[1] + chunk - 1) // chunk
    for task in prange(x.shape[0] * xc):
        _mr_chunk(task, xc, chunk, x, as_float32, p5, p95, out, half_out)
