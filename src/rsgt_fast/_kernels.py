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
        v = math.ldexp(1024.0 + mantissa, int(exponent) - 25)
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


@kernel
def exact_grid(f, a, o, n, chunk):
    """Curve 0 at ``numpy.linspace(0, 2*pi, n)``, one ``sin`` per sinusoid and point.

    The operations and their order are those of rsgt's numpy code, so the
    values equal it wherever numba's ``sin`` and numpy's agree (the facade
    checks that once before relying on it).
    """
    y = np.empty(n)
    step = TWO_PI / (n - 1) if n > 1 else 0.0
    n_chunks = (n + chunk - 1) // chunk
    for c in prange(n_chunks):
        for j in range(c * chunk, min((c + 1) * chunk, n)):
            y[j] = curve_value(j * step, f, a, o, 0)
    if n > 1:
        y[n - 1] = curve_value(TWO_PI, f, a, o, 0)
    return y


#: Grid points between exact evaluations of each sinusoid.
GRID_RESTART = 4096


@helper
def _grid(b, f, a, o, G, Y):
    """Curve ``b`` at its ``G[b]`` grid points.

    Each sinusoid is evaluated exactly every ``GRID_RESTART`` points and
    advanced by rotation (angle addition) in between, which costs a few
    multiplications per point instead of a ``sin``; the drift between two
    exact evaluations stays near 1e-12.
    """
    g = G[b]
    yb = Y[b, :g]
    if g == 1:
        yb[0] = curve_value(0.0, f, a, o, b)
        return
    step = TWO_PI / (g - 1)
    n = f.shape[1]
    s = np.empty(n)
    c = np.empty(n)
    ds = np.empty(n)
    dc = np.empty(n)
    for k in range(n):
        ds[k] = math.sin(f[b, k] * step)
        dc[k] = math.cos(f[b, k] * step)
    for start in range(0, g, GRID_RESTART):
        for k in range(n):
            angle = f[b, k] * (start * step + o[b, k])
            s[k] = math.sin(angle)
            c[k] = math.cos(angle)
        # The sinusoids advance independently, so the loop over k overlaps
        # their dependency chains.
        for j in range(start, min(start + GRID_RESTART, g)):
            y = 0.0
            for k in range(n):
                y += a[b, k] * s[k]
                s[k], c[k] = s[k] * dc[k] + c[k] * ds[k], c[k] * dc[k] - s[k] * ds[k]
            yb[j] = y
    yb[g - 1] = curve_value(TWO_PI, f, a, o, b)


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
def _fill_table(b, G, Y, ext, table, half_out):
    """Normalised grid values of element ``b``; columns past its grid repeat the last."""
    g = G[b]
    ymin = ext[b, 0]
    ymax = ext[b, 1]
    for j in range(g):
        _store(table, b, j, normalized(Y[b, j], ymin, ymax), half_out)
    for j in range(g, table.shape[1]):
        table[b, j] = table[b, g - 1]


@helper
def _fill_full(b, half_in, dmin, lo, hi, scale, polish, G, Y, ext, table, half_out):
    """Output for every value an 8/16-bit dtype can hold (index ``value - dmin``).

    On an integer grid (integer input, no ``polish``) each grid value is normalised once and
    values outside the range repeat the end values; otherwise every entry is
    interpolated from the grid at its value's position.
    """
    g = G[b]
    lo_b = lo[b]
    hi_b = hi[b]
    ymin = ext[b, 0]
    ymax = ext[b, 1]
    width = table.shape[1]
    if not half_in and not polish[b]:
        first = int(lo_b) - dmin  # table index of the range's ends (maybe outside the table)
        start = min(max(first, 0), width)
        stop = min(max(first + g, 0), width)
        for k in range(start, stop):
            _store(table, b, k, normalized(Y[b, k - first], ymin, ymax), half_out)
        if start > 0:
            _store(table, b, 0, normalized(Y[b, 0], ymin, ymax), half_out)
            for k in range(1, start):
                table[b, k] = table[b, 0]
        if stop < width:
            _store(table, b, width - 1, normalized(Y[b, g - 1], ymin, ymax), half_out)
            for k in range(stop, width - 1):
                table[b, k] = table[b, width - 1]
        return
    half_lo = 0.5 * lo_b
    for k in range(width):
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
        ob[i] = tb[np.uint64(np.int64(min(max(xb[i], lo), hi)) - np.int64(lo))]


BLOCK = 512


@helper
def _fill_pairs(b, G, Y, ext, table):
    """Normalised grid values and their forward differences, interleaved.

    ``table[b, 2*j]`` is grid value ``j`` and ``table[b, 2*j + 1]`` the step to
    value ``j + 1`` (zero from the last grid point on), so one load fetches
    both numbers an interpolation needs.
    """
    g = G[b]
    ymin = ext[b, 0]
    ymax = ext[b, 1]
    row = table[b]
    previous = normalized(Y[b, 0], ymin, ymax)
    row[0] = previous
    for j in range(1, g):
        value = normalized(Y[b, j], ymin, ymax)
        row[2 * j] = value
        row[2 * j - 1] = row[2 * j] - row[2 * j - 2]
    for j in range(g, row.shape[0] // 2):
        row[2 * j] = row[2 * g - 2]
    for j in range(g - 1, row.shape[0] // 2):
        row[2 * j + 1] = 0.0


@helper
def _gather_interp(task, n_chunks, chunk, x, params, integer, lo_x, hi_x, pairs, out, half_out):
    """Linear interpolation of each value's position in the table.

    ``params[b]`` holds lo, hi, ``unit * lo``, grid points per ``unit``, ``unit``
    (a power of two keeping the arithmetic finite, usually 0.5), the last grid
    index, and for ``integer`` input the grid position of ``lo_x[b]``, all in
    the working float type, which the arithmetic keeps.  Integer input is
    clamped to ``[lo_x[b], hi_x[b]]`` (``x``'s dtype) and measured from
    ``lo_x[b]`` in integer arithmetic, so 64-bit values far from zero keep every
    digit.  ``pairs`` is the :func:`_fill_pairs` table viewed with one
    (value, step) pair per element.  Work goes in blocks: positions
    (vectorised), one load per value, then the blend (vectorised).
    """
    b, start, stop = _task_span(task, n_chunks, chunk, x.shape[1])
    xb = x[b, start:stop]
    ob = out[b, start:stop]
    tb = pairs[b]
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
    fetched = np.empty(BLOCK, tb.dtype)
    values = fetched.view(params.dtype)
    n = xb.shape[0]
    for first in range(0, n, BLOCK):
        m = min(BLOCK, n - first)
        xs = xb[first:first + m]
        if integer:
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
        if half_out:
            for i in range(m):
                os[i] = half_bits(values[2 * i] + frac[i] * values[2 * i + 1])
        else:
            for i in range(m):
                os[i] = values[2 * i] + frac[i] * values[2 * i + 1]


# ------------------------------------------------------------------ transforms
#
# Each transform is one call with two parallel loops: over elements, each
# computing its grid values and extrema (unless ``build`` is false and the
# caller filled ``Y`` and ``ext``) and its output table; then over (element,
# chunk) tasks mapping every voxel.  Shared arguments:
#   f, a, o        curve parameters, (B, n_sinusoids)
#   G              grid points per element; ``polish`` marks dense grids whose
#                  extrema are refined to those of the continuous curve
#   Y, ext         (B, max G) float64 grid values and (B, 2) extrema


@helper
def _curve_tables(b, f, a, o, G, polish, build, Y, ext):
    if build:
        _grid(b, f, a, o, G, Y)
        _extrema(b, f, a, o, G, polish, Y, ext)


@kernel
def transform_full(x, half_in, dmin, f, a, o, lo, hi, scale, G, polish, build, Y, ext,
                   table, out, half_out, chunk):
    """8/16-bit integer or float16 input: one table entry per representable value.

    ``lo``, ``hi`` and ``scale`` (grid points per half unit) are float64 per
    element; integer grids are those without ``polish``.
    """
    n_rows = x.shape[0]
    for b in prange(n_rows):
        _curve_tables(b, f, a, o, G, polish, build, Y, ext)
        _fill_full(b, half_in, dmin, lo, hi, scale, polish, G, Y, ext, table, half_out)
    xc = (x.shape[1] + chunk - 1) // chunk
    for task in prange(n_rows * xc):
        _gather_full(task, xc, chunk, x, -dmin, table, out)


@kernel
def transform_clamped(x, f, a, o, G, polish, build, Y, ext, lo_x, hi_x, skip,
                      table, out, half_out, chunk):
    """Wider integer input, range of at most ``GRID_MAX`` values: index the grid."""
    n_rows = x.shape[0]
    for b in prange(n_rows):
        _curve_tables(b, f, a, o, G, polish, build, Y, ext)
        _fill_table(b, G, Y, ext, table, half_out)
    xc = (x.shape[1] + chunk - 1) // chunk
    for task in prange(n_rows * xc):
        _gather_clamped(task, xc, chunk, x, lo_x, hi_x, skip, table, out)


@kernel
def transform_interp(x, f, a, o, G, polish, build, Y, ext, params, integer, lo_x, hi_x, table,
                     pairs, out, half_out, chunk):
    """Float input, or integers over a wide range: interpolate a dense grid.

    ``table`` (working float type) holds ``2 * (max G + 1)`` columns for
    :func:`_fill_pairs`; ``pairs`` is the same memory with one element per
    pair (uint64 for float32, complex128 for float64).
    """
    n_rows = x.shape[0]
    for b in prange(n_rows):
        _curve_tables(b, f, a, o, G, polish, build, Y, ext)
        _fill_pairs(b, G, Y, ext, table)
    xc = (x.shape[1] + chunk - 1) // chunk
    for task in prange(n_rows * xc):
        _gather_interp(task, xc, chunk, x, params, integer, lo_x, hi_x, pairs, out, half_out)


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
            k = np.int64(_order_key(x[i], kind, sign_bit, magnitude, shift_sign))
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
            k = np.int64(_order_key(x[i], kind, sign_bit, magnitude, shift_sign))
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
