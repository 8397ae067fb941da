"""numpy stand-ins for kernels: the same results, bit for bit, with nothing to compile.

A process with an empty numba cache runs these instead of compiling the
kernels until they have taken as long as compiling would (``_jit.StandIn``):
the first calls then start at once.  Each follows its kernel's arithmetic
step for step (the same operations on the same float64 values in the same
order, and the C library's ``sin`` and ``cos`` through :mod:`math`, as the
compiled code calls them), so the kernel and its stand-in agree to the bit;
the tests hold them to that.
"""

from __future__ import annotations

import math

import numpy as np

from ._kernels import KEY_SIGNED, SWEEP_EXACT, TWO_PI, order_key_of
from ._layout import AMPLITUDE, FREQUENCY, PHASE, YMAX, YMIN

__all__ = ["chunk_minmax", "sample_grids", "small_index_rows"]

#: The golden section, as ``_kernels._polish`` uses it.
_RATIO = 0.6180339887498949


def order_keys(values, code):
    """``_kernels.order_key`` of a numpy array of bit patterns, ``code`` as for the scan."""
    kind, magnitude, shift = code
    return values if kind == KEY_SIGNED else order_key_of(values, kind, magnitude, shift)


def chunk_minmax(x, code, chunk, parts):
    """``_kernels.chunk_minmax``: the same tasks, order keys and extremes."""
    n_rows, n = x.shape
    n_chunks = -(-n // chunk)
    starts = np.arange(0, n, chunk)
    for b in range(n_rows):
        keys = order_keys(x[b], code)
        rows = slice(b * n_chunks, (b + 1) * n_chunks)
        parts[rows, 0] = np.minimum.reduceat(keys, starts)
        parts[rows, 1] = np.maximum.reduceat(keys, starts)


def _curve_value(t, terms):
    """``_kernels.curve_value``: the raw curve at ``t``, summed in the sinusoids' order."""
    y = 0.0
    for f, a, o in terms:
        y += a * math.sin(f * (t + o))
    return y


def _sweeps(angles, h, count):
    """``_kernels._sweep`` for many angles at once: ``(cos, sin)``, each ``(len(angles), count)``.

    Exact values (:mod:`math`) start every ``SWEEP_EXACT``-th column; the
    columns between advance by the same rotation as the kernel's loop,
    operation for operation.
    """
    rows = len(angles)
    cos_out = np.empty((rows, count))
    sin_out = np.empty((rows, count))
    dc = np.array([math.cos(v) for v in h])
    ds = np.array([math.sin(v) for v in h])
    for first in range(0, count, SWEEP_EXACT):
        c = np.array([math.cos(a + first * v) for a, v in zip(angles, h)])
        s = np.array([math.sin(a + first * v) for a, v in zip(angles, h)])
        cos_out[:, first] = c
        sin_out[:, first] = s
        for i in range(first + 1, min(first + SWEEP_EXACT, count)):
            s, c = s * dc + c * ds, c * dc - s * ds
            cos_out[:, i] = c
            sin_out[:, i] = s
    return cos_out, sin_out


def _terms(curve, b):
    """Curve ``b``'s sinusoids as ``(frequency, amplitude, phase)`` Python floats."""
    return list(zip(curve[b, FREQUENCY].tolist(), curve[b, AMPLITUDE].tolist(),
                    curve[b, PHASE].tolist()))


def _sample_block(terms, n, values):
    """``_kernels.sample_block`` over the whole grid (``start = 0``, ``stop = n``)."""
    f, a, o = (list(column) for column in zip(*terms))
    if n == 1:
        values[0] = _curve_value(0.0, terms)
        return
    step = TWO_PI / (n - 1)
    lanes = 16
    while lanes * lanes < n and lanes < 1024:
        lanes *= 2
    n_blocks = (n + lanes - 1) // lanes
    cos_l, sin_l = _sweeps([0.0] * len(f), [fk * step for fk in f], lanes)
    cos_b, sin_b = _sweeps([fk * (0 * step + ok) for fk, ok in zip(f, o)],
                           [fk * (lanes * step) for fk in f], n_blocks)
    acc = np.zeros((n_blocks, lanes))
    for k, ak in enumerate(a):
        sa = ak * sin_b[k]
        ca = ak * cos_b[k]
        acc += sa[:, None] * cos_l[k] + ca[:, None] * sin_l[k]
    values[:n] = acc.reshape(-1)[:n]
    values[n - 1] = _curve_value(TWO_PI, terms)


def _polish(terms, t_lo, t_hi, sign):
    """``_kernels._polish``: the largest ``sign * curve`` on [t_lo, t_hi], golden section."""
    lo = t_lo
    hi = t_hi
    c = hi - _RATIO * (hi - lo)
    d = lo + _RATIO * (hi - lo)
    fc = sign * _curve_value(c, terms)
    fd = sign * _curve_value(d, terms)
    for _ in range(60):
        if fc > fd:
            hi = d
            d = c
            fd = fc
            c = hi - _RATIO * (hi - lo)
            fc = sign * _curve_value(c, terms)
        else:
            lo = c
            c = d
            fc = fd
            d = lo + _RATIO * (hi - lo)
            fd = sign * _curve_value(d, terms)
    return sign * max(fc, fd)


def sample_grids(curve, grid):
    """``_kernels.sample_grids``: each element's grid samples and extrema (``_kernels.build_grid``)."""
    for b in range(grid.points.shape[0]):
        g = int(grid.points[b])
        yb = grid.values[b]
        terms = _terms(curve, b)
        _sample_block(terms, g, yb)
        ymin = float(yb[:g].min())
        ymax = float(yb[:g].max())
        if grid.dense[b] and g > 1:
            jlo = min(int(np.argmax(yb[:g] == ymin)), g - 1)
            jhi = min(int(np.argmax(yb[:g] == ymax)), g - 1)
            step = TWO_PI / (g - 1)
            ymin = min(ymin, _polish(terms, max(jlo - 1, 0) * step,
                                     min((jlo + 1) * step, TWO_PI), -1.0))
            ymax = max(ymax, _polish(terms, max(jhi - 1, 0) * step,
                                     min((jhi + 1) * step, TWO_PI), 1.0))
        grid.extrema[b, YMIN] = ymin
        grid.extrema[b, YMAX] = ymax


def _rounded(q, out):
    """float64 values in [0, 1] as ``out`` stores them (``_kernels.store``): float16 rows
    hold bit patterns, rounded to nearest even as numpy rounds them."""
    if out.dtype.itemsize == 2:
        return q.astype(np.float16).view(np.uint16)
    return q.astype(out.dtype)


def small_index_rows(x, curve, own, ranges, extrema, out):
    """``_kernels.small_index_rows``: scan, curve, table and map of each small row."""
    for b in range(x.shape[0]):
        xb = x[b]
        if own:
            lo = int(xb.min())
            hi = int(xb.max())
            ranges[b] = (lo, hi, lo, hi, 0)
        g = int(ranges[b, 1] - ranges[b, 0] + 1)
        clip_lo, clip_hi, base = (int(v) for v in ranges[b, 2:5])
        yb = np.empty(g)
        _sample_block(_terms(curve, b), g, yb)
        ymin = float(yb.min())
        ymax = float(yb.max())
        span = ymax - ymin
        if span > 0.0:
            q = np.minimum(np.maximum((yb - ymin) / span, 0.0), 1.0)
        else:
            q = np.full(g, 0.5)
        table = _rounded(q, out)[base:]
        out[b] = table[np.clip(xb.astype(np.int64), clip_lo, clip_hi) - clip_lo]
        extrema[b, YMIN] = ymin
        extrema[b, YMAX] = ymax
