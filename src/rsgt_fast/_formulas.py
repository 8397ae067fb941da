"""Every formula of the transform, each written once.

Each function here is plain Python that numba compiles for the kernels
(``_cpu.py``).  Where the host needs a formula too, it calls the same
function's Python version (:func:`._jit.python`) on numpy arrays: the source
is written so that it means the same on a number (compiled) and on an array
(numpy).  So a formula changes in one place, plus the Triton kernel
(``_gpu.py``), whose tests compare it with this one.

* :func:`curve_value` -- a curve ``sum_k a_k sin(f_k (t + o_k))``, summed in
  the sinusoids' order as rsgt sums them; host: rsgt's own numpy arithmetic.
* :func:`sweep`, :func:`sample_grid`, :func:`grid_extrema` -- a curve sampled
  on a grid of ``n`` points over [0, 2*pi] and the extrema that scale it
  (compiled only).
* :func:`grid_point` -- the position ``t`` of grid point ``j``, as
  ``numpy.linspace`` places it.
* :func:`normalized` -- a curve value scaled by its extrema onto [0, 1], with
  the flat rule (0.5); :func:`percentile_scaled` -- the same for MR
  percentiles, with their own flat rule.
* :func:`place`, :func:`place_integer` -- the position of an input value on
  its range, in units the caller chooses (grid steps, or radians).
* :func:`half_bits` -- float16 rounding (compiled; numba has no float16);
  host: numpy's own cast, :func:`stored`.
* :func:`order_key` -- a value's bit pattern as an integer ordered like the
  values (range scans and percentiles).

Helpers are never called with an integer literal (``f(x, 0)``) but with an
int64 (``f(x, np.int64(0))``): numba compiles a helper once more for every
literal integer argument it meets.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from numba.extending import overload

from ._jit import OPTIONS, formula, python
from ._layout import AMPLITUDE, FREQUENCY, PHASE

__all__ = ["TWO_PI", "curve_value", "sweep", "sample_grid", "grid_extrema", "grid_point",
           "normalized", "percentile_scaled", "place", "place_integer", "position_unit",
           "clamp", "extremes", "half_bits", "half_value", "rounded", "store", "stored",
           "order_key", "decode_keys", "SAMPLE_ERROR", "key_code", "KEY_SIGNED",
           "KEY_UNSIGNED", "KEY_FLOAT"]

TWO_PI = 2.0 * math.pi
_HALF_MIN_NORMAL = 6.103515625e-05  # 2**-14

#: A sweep of cosines and sines is exact every this many values (see :func:`sweep`).
SWEEP_EXACT = 64

#: Bound on the error of a grid sample (:func:`sample_grid`), per unit of
#: ``sum(|a| * (2 + f))`` over the curve's sinusoids.  Each value is two
#: products of table entries at most 63 rotations from an exact ``sin``/``cos``
#: (about 6e-14 at worst); the largest error seen is about 1.6e-15.
SAMPLE_ERROR = 2.0**-40

#: Order-key kinds (see :func:`order_key`).
KEY_SIGNED, KEY_UNSIGNED, KEY_FLOAT = 0, 1, 2


# ------------------------------------------------------------------ the curve


@formula
def curve_value(t, curve, b):
    """Raw (unnormalised) curve ``b`` of packed ``curve`` at ``t``.

    ``y = 0; y += a_k * sin(f_k * (t + o_k))`` for each sinusoid in turn: on
    an array ``t`` these are rsgt 1.1.0's numpy operations in rsgt's order.
    """
    y = 0.0
    for k in range(curve.shape[2]):
        y += curve[b, AMPLITUDE, k] * np.sin(curve[b, FREQUENCY, k] * (t + curve[b, PHASE, k]))
    return y


@formula
def grid_point(j, n):
    """Position ``t`` of point ``j`` of ``numpy.linspace(0, 2*pi, n)`` (``n >= 2``).

    ``j`` times the step, and the last point exactly ``2*pi``: near it
    ``2*pi - t`` is exact, so adding it back gives ``2*pi``.
    """
    t = j * (TWO_PI / (n - 1))
    return t + (j == n - 1) * (TWO_PI - t)


@formula
def sweep(angle, h, count, cos_out, sin_out):
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


@formula
def sample_grid(curve, b, n, start, stop, values):
    """``values[j]`` = raw curve ``b`` at grid point ``j`` of ``n`` for ``start <= j < stop``.

    Points come in blocks of ``lanes`` (about the square root of ``n``); with
    ``j = first + l``, each sinusoid's angle splits by angle addition into
    the block's angle ``A`` and ``l`` steps of angle ``h``:
    ``sin(A + l h) = sin(A) cos(l h) + cos(A) sin(l h)``.  Two short tables of
    cosines and sines (one per block, one per lane, see :func:`sweep`) then
    give every point in two products (:func:`_accumulate`).  The error stays
    below ``SAMPLE_ERROR`` per unit of ``sum(|a| * (2 + f))``.  The last point
    is :func:`curve_value` at ``2*pi`` exactly, as ``numpy.linspace`` places it.
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
    # Cosines and sines of each lane's steps, and of each block's angle.
    by_lane = np.empty((2, curve.shape[2], lanes))
    by_block = np.empty((2, curve.shape[2], n_blocks))
    for k in range(curve.shape[2]):
        f = curve[b, FREQUENCY, k]
        sweep(0.0, f * step, lanes, by_lane[0, k], by_lane[1, k])
        sweep(f * (first0 * step + curve[b, PHASE, k]), f * (lanes * step), n_blocks,
              by_block[0, k], by_block[1, k])
    _accumulate(curve, b, by_lane, by_block, first0, start, stop, values)
    if stop == n:
        values[n - 1] = curve_value(TWO_PI, curve, b)


def _accumulate_numpy(curve, b, by_lane, by_block, first0, start, stop, values):
    acc = np.zeros((by_block.shape[2], by_lane.shape[2]))
    for k in range(curve.shape[2]):
        a = curve[b, AMPLITUDE, k]
        acc += ((a * by_block[1, k])[:, None] * by_lane[0, k]
                + (a * by_block[0, k])[:, None] * by_lane[1, k])
    values[start:stop] = acc.reshape(-1)[start - first0:stop - first0]


@formula(host=_accumulate_numpy)
def _accumulate(curve, b, by_lane, by_block, first0, start, stop, values):
    """The grid points ``[start, stop)`` from the tables of :func:`sample_grid`.

    Terms are added in the order of the sinusoids, as rsgt adds them, and the
    loop over a block's lanes vectorises (on the host, numpy does every block
    at once, with the same operations on each value).
    """
    lanes = by_lane.shape[2]
    acc = np.empty(lanes)
    for block in range(by_block.shape[2]):
        first = first0 + block * lanes
        for lane in range(lanes):
            acc[lane] = 0.0
        for k in range(curve.shape[2]):
            a = curve[b, AMPLITUDE, k]
            sa = a * by_block[1, k, block]
            ca = a * by_block[0, k, block]
            cl = by_lane[0, k]
            sl = by_lane[1, k]
            for lane in range(lanes):
                acc[lane] += sa * cl[lane] + ca * sl[lane]
        if start <= first and first + lanes <= stop:  # a whole block
            row = values[first:first + lanes]
            for lane in range(lanes):
                row[lane] = acc[lane]
        else:
            for j in range(first if first > start else start,
                           first + lanes if first + lanes < stop else stop):
                values[j] = acc[j - first]


def _extremes_numpy(values):
    return values.min(), values.max()


@formula(host=_extremes_numpy)
def extremes(values):
    """``(min, max)`` of a non-empty 1-D array.

    A plain loop: quick to compile, and it vectorises.
    """
    lo = hi = values[0]
    for i in range(1, values.shape[0]):
        lo = min(lo, values[i])
        hi = max(hi, values[i])
    return lo, hi


def _first_numpy(values, target):
    return int(np.argmax(values == target))


@formula(host=_first_numpy)
def _first(values, target):
    """Index of the first value equal to ``target``, which ``values`` holds."""
    j = 0
    while values[j] != target:
        j += 1
    return j


@formula
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
    return sign * (fc if fc > fd else fd)


@formula
def _bracket(j, step):
    """A grid step either side of grid point ``j``, within [0, 2*pi]."""
    lo = (j - 1) * step
    hi = (j + 1) * step
    return (lo if lo > 0.0 else 0.0), (hi if hi < TWO_PI else TWO_PI)


@formula
def grid_extrema(curve, b, values, dense):
    """The extrema that scale curve ``b``, sampled on its grid into ``values``.

    Integer grids take the extrema of their samples, as rsgt does; ``dense``
    grids refine them to those of the continuous curve (the first grid points
    holding the extrema bracket the curve's own).
    """
    g = values.shape[0]
    ymin, ymax = extremes(values)
    if dense and g > 1:
        jlo = _first(values, ymin)
        jhi = _first(values, ymax)
        step = TWO_PI / (g - 1)
        ymin = min(ymin, _polish(curve, b, *_bracket(jlo, step), -1.0))
        ymax = max(ymax, _polish(curve, b, *_bracket(jhi, step), 1.0))
    return ymin, ymax


# ------------------------------------------------------------------ scaling and placing


@formula
def normalized(y, lo, hi):
    """``y`` scaled by the extrema ``lo`` and ``hi`` onto [0, 1]; 0.5 for a flat curve.

    For ``lo <= y <= hi`` the clipping changes nothing, so on arrays this is
    rsgt's ``(y - min) / (max - min)`` where rsgt's is defined (rsgt gives NaN
    for a flat curve).
    """
    span = hi - lo
    if span > 0.0:
        return clamp((y - lo) / span, 0.0, 1.0)
    return y * 0.0 + 0.5


@formula
def percentile_scaled(v, p5, p95):
    """``v`` scaled by MR percentiles: :func:`normalized` on ``[p5, p95]``.

    Where the two are equal, values below map to 0, above to 1 and on them to
    0.5 (rsgt divides by zero there).
    """
    if p95 > p5:
        return normalized(v, p5, p95)
    return (v > p5) * 0.5 + (v >= p5) * 0.5


def clamp(v, lo, hi):
    """``v`` limited to ``[lo, hi]``: numpy's on arrays, two comparisons when compiled.

    Compiled, NaN gives ``lo`` (each comparison is false for NaN and picks
    the bound), so a position is always within its table even for a value
    whose output is replaced afterwards; the comparisons are the ones
    ``maxps``/``minps`` make, so the loop still vectorises.
    """
    return np.minimum(np.maximum(v, lo), hi)


@overload(clamp, jit_options=OPTIONS)
def _clamp(v, lo, hi):
    def clamp_scalar(v, lo, hi):
        above = v if v > lo else lo
        return above if above < hi else hi
    return clamp_scalar


@formula
def place(v, lo, hi, unit, unit_lo, scale):
    """Position of value ``v`` on its range: ``(unit * clamp(v, lo, hi) - unit_lo) * scale``.

    ``unit`` is a power of two that keeps the arithmetic finite (0.5 unless
    the span is tiny, see :func:`position_unit`), ``unit_lo`` is
    ``unit * lo``, and ``scale`` turns the span into the caller's units: grid
    steps or radians.  The arithmetic is in the type of ``lo`` (float32 or
    float64); the position is never negative.
    """
    return (unit * clamp(v, lo, hi) - unit_lo) * scale


def position_unit(lo, hi):
    """Host: the power of two ``unit`` of :func:`place` for the range ``[lo, hi]`` (floats).

    Halves (0.5) keep ``hi - lo`` from overflowing for ranges as wide as the
    float64 line; for spans below 1e-30 (subnormal data) the unit grows so that
    the inverse span stays finite, even in float32.
    """
    half_span = 0.5 * hi - 0.5 * lo if hi > lo else 1.0
    if half_span < 1e-30:
        # A span of a few subnormals halves to zero: its exponent is the span's, less one.
        exponent = (math.frexp(half_span)[1] if half_span > 0.0
                    else math.frexp(hi - lo)[1] - 1)
        return math.ldexp(1.0, min(1000, -exponent))
    return 0.5


@formula
def place_integer(v, low, high, base, unit, scale, last):
    """:func:`place` for an integer ``v`` over an integral range, in integer arithmetic.

    ``v`` is clamped to ``[low, high]`` (the range clamped to ``v``'s dtype)
    and its distance from ``low`` taken modulo 2**64, which is exact for
    every integer dtype, so 64-bit values far from zero keep every digit;
    ``base`` is ``low``'s position.
    """
    d = np.uint64(np.int64(clamp(v, low, high)) - np.int64(low))
    return clamp(base + (unit * d) * scale, 0.0, last)


# ------------------------------------------------------------------ float16 and storing


@formula
def _round_half_even(q):
    r = math.floor(q)
    rem = q - r
    if rem > 0.5 or (rem == 0.5 and (int(r) & 1) == 1):
        r += 1.0
    return r


@formula
def half_bits(v):
    """float16 bit pattern of ``v`` in [0, 1], rounded to nearest even as numpy rounds."""
    if not v > 0.0:
        return np.uint16(0)
    if v < _HALF_MIN_NORMAL:
        return np.uint16(int(_round_half_even(v * 16777216.0)))
    m, e = math.frexp(v)  # v = m * 2**e, 0.5 <= m < 1
    q = _round_half_even((2.0 * m - 1.0) * 1024.0)
    return np.uint16(((e + 14) << 10) + int(q))


@formula
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


def rounded(row, v):
    """``v`` as ``row`` stores it.

    A float16 bit pattern where ``row`` holds them (itemsize 2), else a value
    of ``row``'s type.
    """
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


@formula
def store(row, j, v):
    """``row[j] = v``, as a float16 bit pattern where ``row`` holds them."""
    row[j] = rounded(row, v)


def stored(q, dtype):
    """Host: float64 values ``q`` as an output of ``dtype`` stores them.

    float16 comes as bit patterns (``uint16``), rounded by numpy, which
    :func:`half_bits` follows.
    """
    dtype = np.dtype(dtype)
    if dtype.itemsize == 2:
        return q.astype(np.float16).view(np.uint16)
    return q.astype(dtype)


# ------------------------------------------------------------------ order keys


@formula
def order_key(v, kind, magnitude, shift):
    """Signed integer key of a value's bit pattern ``v``, ordered as the values are.

    ``v`` is the value viewed as a signed integer of its width, ``magnitude``
    that width's largest value and ``shift`` its bit count minus one.  Signed
    integers are their own keys; unsigned ones flip the sign bit; IEEE floats
    flip the magnitude bits of negative patterns.  Applied to a key it gives
    the pattern back, and it works on numbers and numpy arrays alike.
    """
    if kind == KEY_UNSIGNED:
        return v ^ ~magnitude
    if kind == KEY_FLOAT:
        return v ^ ((v >> shift) & magnitude)
    return v



def decode_keys(keys, kind, dtype):
    """Values of ``dtype`` from int64 order keys made by :func:`order_key`."""
    width = np.dtype(dtype).itemsize * 8
    keys = np.asarray(keys, np.int64)
    patterns = python(order_key)(keys, kind, np.int64((1 << (width - 1)) - 1), width - 1)
    return patterns.astype(f"int{width}").view(dtype)


@functools.cache
def key_code(dtype):
    """``(signed view dtype, (kind, magnitude, exponent mask))`` of order keys of ``dtype``.

    ``dtype`` is the dtype the values really have (float16 rather than its
    uint16 patterns); the keys are computed on the patterns viewed as the
    signed integers of the same width.
    """
    dtype = np.dtype(dtype)
    width = dtype.itemsize * 8
    magnitude = (1 << (width - 1)) - 1
    signed = np.dtype(f"int{width}")
    if dtype.kind == "f":
        info = np.finfo(dtype)
        return signed, (KEY_FLOAT, magnitude, ((1 << info.nexp) - 1) << info.nmant)
    return signed, (KEY_UNSIGNED if dtype.kind in "ub" else KEY_SIGNED, magnitude, 0)
