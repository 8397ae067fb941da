"""Per-element minimum and maximum, and the check that float input is finite.

One parallel read gives both.  The kernel reduces each row's *order keys*:
the values' bit patterns read as signed integers of their width and, for
unsigned integers and IEEE floats, remapped so that the keys order as the
values do (``_kernels.order_key``: unsigned patterns flip their sign bit,
negative floats their magnitude bits).  The extreme keys decode back to the
extreme values, so one compiled scan per width serves signed and unsigned
integers and floats alike (int16, uint16 and float16 share one, as do the
32-bit and the 64-bit dtypes).  NaN and Inf have every exponent bit set, so
their keys lie beyond every finite value's: a positive one's is at least the
exponent mask, a negative one's at most minus one minus the mask.

On an empty numba cache the first scans of a process run the same
reduction in numpy (``_stand_ins``), which starts at once, until they
have taken as long as compiling the kernel would.
"""

from __future__ import annotations

import functools

import numpy as np

from . import _stand_ins
from ._jit import StandIn
from ._kernels import KEY_FLOAT, KEY_SIGNED, KEY_UNSIGNED, chunk_minmax, decode_keys

__all__ = ["element_ranges", "check_finite", "row_extrema", "key_code", "float_layout"]

#: Elements per parallel task of the scan.
SCAN_CHUNK = 1 << 16


@functools.cache
def float_layout(dtype):
    """Signed and unsigned views, exponent mask and sign bit of a float dtype's patterns."""
    width = dtype.itemsize * 8
    info = np.finfo(dtype)
    return (np.dtype(f"int{width}"), np.dtype(f"uint{width}"),
            ((1 << info.nexp) - 1) << info.nmant, 1 << (width - 1))


@functools.cache
def key_code(dtype):
    """``(signed view dtype, (kind, magnitude, exponent))`` for order keys of ``dtype``.

    ``dtype`` is the dtype the values really have (float16 rather than its
    uint16 patterns); see ``_kernels.order_key``.
    """
    dtype = np.dtype(dtype)
    width = dtype.itemsize * 8
    magnitude = (1 << (width - 1)) - 1
    if dtype.kind == "f":
        signed, _, exponent, _ = float_layout(dtype)
        return signed, (KEY_FLOAT, magnitude, exponent)
    kind = KEY_UNSIGNED if dtype.kind in "ub" else KEY_SIGNED
    return np.dtype(f"int{width}"), (kind, magnitude, 0)


@functools.cache
def _scan_code(dtype):
    """The signed view of ``dtype``'s patterns and the scan's ``(kind, magnitude, shift)``
    in that view's dtype (so the keys are computed at the patterns' width)."""
    view, (kind, magnitude, _) = key_code(dtype)
    code = np.array([kind, magnitude, view.itemsize * 8 - 1], view)
    code.flags.writeable = False
    return view, code


#: The scan: numpy until it has taken ``_jit.COMPILE_AFTER`` seconds, then compiled.
scan_parts = StandIn(chunk_minmax, _stand_ins.chunk_minmax,
                     key=lambda x, code, chunk, parts: x.dtype)


def row_keys(x2, dtype):
    """Per-row ``(B, 2)`` smallest and largest order key of rows ``x2`` of values of ``dtype``.

    ``dtype`` is the values' own dtype (float16 rows arrive as uint16 bit
    patterns); the keys come in the patterns' signed view dtype.
    """
    view, code = _scan_code(dtype)
    x = x2.view(view)
    n_rows, n = x.shape
    n_chunks = -(-n // SCAN_CHUNK)
    parts = np.empty((n_rows * n_chunks, 2), view)
    scan_parts(x, code, SCAN_CHUNK, parts)
    if n_chunks == 1:
        return parts
    parts = parts.reshape(n_rows, n_chunks, 2)
    return np.stack([parts[:, :, 0].min(axis=1), parts[:, :, 1].max(axis=1)], axis=1)


def row_extrema(x2, kind):
    """Per-row minima and maxima (arrays of the values' dtype) and non-finite flags.

    Integers get ``None`` for the flags.
    """
    dtype = np.dtype(np.float16) if kind == "half" else x2.dtype
    keys = row_keys(x2, dtype)
    view, (key_kind, _, exponent) = key_code(dtype)
    values = keys if key_kind == KEY_SIGNED else decode_keys(keys, key_kind, dtype)
    low, high = values[:, 0], values[:, 1]
    if kind == "int":
        return low, high, None
    wide = keys.astype(np.int64)
    bad = (wide[:, 1] >= exponent) | (wide[:, 0] <= -1 - exponent)
    return low, high, bad


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
        lo, hi, _ = row_extrema(x2, kind)
        return list(zip(lo.tolist(), hi.tolist()))  # Python ints
    lo, hi = check_finite(x2, kind, name)
    if bounds is not None:
        return [bounds] * n_rows
    return [(float(a), float(b)) for a, b in zip(lo.tolist(), hi.tolist())]
