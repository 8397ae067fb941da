"""Per-element minimum and maximum, and the check that float input is finite.

One parallel read of the data gives both: values are compared through their
order keys (``_kernels.order_key``), so one compiled scan per integer width
serves signed and unsigned integers and IEEE floats alike.
"""

from __future__ import annotations

import numpy as np

from ._kernels import KEY_FLOAT, KEY_SIGNED, KEY_UNSIGNED, decode_keys, row_minmax

__all__ = ["key_code", "element_ranges", "check_finite"]

#: Elements per parallel task of the scan.
SCAN_CHUNK = 1 << 16


def key_code(dtype):
    """``(signed view dtype, (kind, magnitude, exponent))`` for order keys of ``dtype``.

    ``dtype`` is the dtype the values really have (float16 rather than its
    uint16 patterns); the view is the signed integer type of its width.
    """
    dtype = np.dtype(dtype)
    width = dtype.itemsize * 8
    magnitude = (1 << (width - 1)) - 1
    if dtype.kind == "f":
        info = np.finfo(dtype)
        exponent = ((1 << info.nexp) - 1) << info.nmant
        return np.dtype(f"int{width}"), (KEY_FLOAT, magnitude, exponent)
    kind = KEY_UNSIGNED if dtype.kind in "ub" else KEY_SIGNED
    return np.dtype(f"int{width}"), (kind, magnitude, 0)


def _scan(x2, kind):
    """Row minima and maxima (as ``x2``'s values) and non-finite flags."""
    dtype = np.dtype(np.float16) if kind == "half" else x2.dtype
    view, code = key_code(dtype)
    keys, bad = row_minmax(x2.view(view), code, SCAN_CHUNK)
    values = decode_keys(keys, code[0], dtype)
    return values[:, 0], values[:, 1], bad


def check_finite(x2, kind, name):
    """Raise ``ValueError`` naming ``name`` if a float row holds NaN or Inf; return the scan."""
    lo, hi, bad = _scan(x2, kind)
    if bad.any():
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
    if kind == "int" and bounds is not None:
        return [bounds] * n_rows
    lo, hi = check_finite(x2, kind, name)
    if bounds is not None:
        return [bounds] * n_rows
    cast = int if kind == "int" else float
    return [(cast(a), cast(b)) for a, b in zip(lo.tolist(), hi.tolist())]
