"""Argument checks shared by the facade and the batch engine.

Every check raises before any work, with a message that names the argument
and the offending value.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

FLOAT_OUTPUTS = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))


def _short(value):
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def real_scalar(value, name):
    """A finite real number (bools are refused)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {_short(value)}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {_short(value)}")
    return value


def n_sinusoids(value, name="n_sinusoids"):
    """A positive integer."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {_short(value)}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {_short(value)}")
    return int(value)


def frequencies(low, high, low_name="min_frequency", high_name="max_frequency"):
    """Two finite frequencies with ``0 < low < high``."""
    low = float(real_scalar(low, low_name))
    high = float(real_scalar(high, high_name))
    if low <= 0:
        raise ValueError(f"{low_name} must be > 0, got {low!r}")
    if high <= low:
        raise ValueError(f"{high_name} must be greater than {low_name}, got {high!r} <= {low!r}")
    return low, high


def min_max_val(value, name="min_max_val"):
    """``None`` or ``(lo, hi)`` with finite ``lo <= hi``; integral values come back as ints."""
    if value is None:
        return None
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != 2:
        raise ValueError(f"{name} must be None or a pair (lo, hi), got {_short(value)}")
    lo, hi = (real_scalar(v, name) for v in value)
    if hi < lo:
        raise ValueError(f"{name} must have lo <= hi, got {_short(value)}")
    return tuple(int(v) if float(v).is_integer() else float(v) for v in (lo, hi))


def output_dtype(value, name="dtype"):
    """float16, float32 or float64."""
    try:
        dtype = np.dtype(value)
    except TypeError as exc:
        raise TypeError(f"{name} must be a float dtype, got {_short(value)}") from exc
    if dtype.kind == "f":
        dtype = dtype.newbyteorder("=")  # results are written in native byte order
    if dtype not in FLOAT_OUTPUTS:
        raise ValueError(
            f"{name} must be float16, float32 or float64 (outputs lie in [0, 1]), got {dtype}"
        )
    return dtype


def input_array(value, name="x"):
    """A non-empty array of at least one dimension with an integer, bool or float dtype."""
    array = np.asanyarray(value)
    if array.dtype.kind not in "biuf" or (array.dtype.kind == "f" and array.dtype.itemsize not in (2, 4, 8)):
        raise TypeError(
            f"{name} must hold integers or float16/32/64 values, got dtype {array.dtype}"
        )
    if array.ndim == 0:
        raise ValueError(f"{name} must have at least one dimension, got a 0-d array")
    if array.size == 0:
        raise ValueError(f"{name} must not be empty, got shape {array.shape}")
    return array


def out_array(out, shape, dtype, source, name="out"):
    """A writeable float array of ``shape`` and ``dtype`` that does not overlap ``source``."""
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(out).__name__}")
    if out.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {out.shape}")
    if out.dtype != dtype:
        raise ValueError(f"{name} has dtype {out.dtype} but dtype={dtype} was requested")
    if not out.flags.writeable:
        raise ValueError(f"{name} must be writeable")
    if np.may_share_memory(out, source) and not (
        out.__array_interface__["data"][0] == source.__array_interface__["data"][0]
        and out.strides == source.strides
        and out.dtype.itemsize == source.dtype.itemsize
    ):
        raise ValueError(f"{name} overlaps the input; pass a separate array or the input itself")
    return out


def rng(value, name="rng"):
    """A ``numpy.random.Generator`` from None, an int, a SeedSequence or a Generator."""
    if isinstance(value, (bool, np.bool_, float)):
        raise TypeError(f"{name} must be None, an int or a numpy.random.Generator, got {_short(value)}")
    try:
        return np.random.default_rng(value)
    except (TypeError, ValueError) as exc:
        raise type(exc)(
            f"{name} must be None, an int or a numpy.random.Generator, got {_short(value)}"
        ) from exc
