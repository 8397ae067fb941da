"""Per-element minimum and maximum, and the check that float input is finite.

One parallel read gives both: the kernel reduces each row's bit patterns
read as signed and as unsigned integers, and the extrema follow from those
four numbers, so a single compiled scan per integer width serves signed and
unsigned integers and IEEE floats alike.  For floats:

* positive values (sign bit clear) order like their signed patterns and
  negative ones like their unsigned patterns, reversed;
* so the largest value is the largest signed pattern if any value is
  non-negative, else the smallest signed pattern (the negative value closest
  to zero), and the smallest value is the largest unsigned pattern if any
  value is negative, else the smallest signed pattern;
* NaN and Inf have every exponent bit set: a positive one is at least the
  exponent mask as a signed pattern, a negative one at least sign bit plus
  exponent mask as an unsigned pattern.
"""

from __future__ import annotations

import functools

import numpy as np

from ._kernels import chunk_minmax

__all__ = ["element_ranges", "check_finite", "row_extrema", "row_minmax", "float_layout"]

#: Elements per parallel task of the scan.
SCAN_CHUNK = 1 << 16


@functools.cache
def float_layout(dtype):
    """Signed and unsigned views, exponent mask and sign bit of a float dtype's patterns."""
    width = dtype.itemsize * 8
    info = np.finfo(dtype)
    return (np.dtype(f"int{width}"), np.dtype(f"uint{width}"),
            ((1 << info.nexp) - 1) << info.nmant, 1 << (width - 1))


def row_minmax(x, other=None):
    """Per-row ``(B, 2)`` (minimum, maximum) of ``x`` and, if given, of ``other`` (or ``None``)."""
    n_rows, n = x.shape
    n_chunks = -(-n // SCAN_CHUNK)
    x_parts = np.empty((n_rows * n_chunks, 2), x.dtype)
    other_parts = np.empty((0 if other is None else n_rows * n_chunks, 2),
                           x.dtype if other is None else other.dtype)
    chunk_minmax(x, x if other is None else other, SCAN_CHUNK, x_parts, other_parts)
    return [None if parts.shape[0] == 0 else _per_row(parts, n_rows, n_chunks)
            for parts in (x_parts, other_parts)]


def _per_row(parts, n_rows, n_chunks):
    if n_chunks == 1:
        return parts
    parts = parts.reshape(n_rows, n_chunks, 2)
    return np.stack([parts[:, :, 0].min(axis=1), parts[:, :, 1].max(axis=1)], axis=1)


def row_extrema(x2, kind):
    """Per-row minima and maxima (arrays of the values' dtype) and non-finite flags.

    Integers get ``None`` for the flags.
    """
    if kind == "int":
        values, _ = row_minmax(x2)
        return values[:, 0], values[:, 1], None
    dtype = np.dtype(np.float16) if kind == "half" else x2.dtype
    view, unsigned_view, exponent, sign = float_layout(dtype)
    signed, unsigned = row_minmax(x2.view(view), x2.view(unsigned_view))
    smin, smax = signed[:, 0].astype(np.int64), signed[:, 1].astype(np.int64)
    umax = unsigned[:, 1].astype(np.uint64)
    negative = smin < 0
    nonnegative = smax >= 0
    high = np.where(nonnegative, smax, smin)
    low = np.where(negative, umax.astype(view).astype(np.int64), smin)
    bad = (nonnegative & (smax >= exponent)) | (negative & (umax >= np.uint64(sign | exponent)))
    return low.astype(view).view(dtype), high.astype(view).view(dtype), bad


def check_finite(x2, kind, name):
    """Raise ``ValueError`` naming ``name`` if a float row holds NaN or Inf; return the scan."""
    lo, hi, bad = row_extrema(x2, kind)
    if bad is not None and bad.any():
        where = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{name} must be finite, but element {where} holds NaN or Inf")
    return lo, hi


def element_ranges(x2, kind, bounds, name):
    """``(lo, hi)`` of each row: ``bounds`` if given, else the row's min and max.

    Integers come back as Python ints, floats as Python floats.  Float rows
    are always scanned, so NaN or Inf raises ``ValueError`` before anything
    is written.
    """
    n_rows = x2.shape[0]
    if kind == "int":
        if bounds is not None:
            return [bounds] * n_rows
        return [(a, b) for a, b in row_minmax(x2)[0].tolist()]  # Python ints
    lo, hi = check_finite(x2, kind, name)
    if bounds is not None:
        return [bounds] * n_rows
    return [(float(a), float(b)) for a, b in zip(lo.tolist(), hi.tolist())]
