"""Drop-in replacement for ``rsgt.normalization`` (rsgt 1.1.0), in one compiled pass."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from . import _validate
from ._jit import engine
from ._kernels import collect_bin, ct_float, decode_keys, key_histogram, mr_affine
from .plan import CHUNK, clip_bounds, index_table, lookup_table, rows
from .scan import check_finite, key_code

__all__ = ["normalize_ct_scan", "normalize_mr_scan"]

_PARTS = 8


def _prepare(image, dtype):
    out_dtype = _validate.output_dtype(dtype)
    array = _validate.input_array(np.atleast_1d(np.asanyarray(image)), "image")
    x2, kind = rows(array.reshape(1, -1))
    result = np.empty(np.shape(image), out_dtype)
    out2 = result.reshape(1, -1)
    return x2, kind, out_dtype, result, out2.view(np.uint16) if out_dtype == np.float16 else out2


def _all_values(x2, kind):
    """Every value an 8/16-bit (or float16) row can hold, in bit-pattern order."""
    if kind == "half":
        return np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(np.float16)
    info = np.iinfo(x2.dtype)
    return np.arange(int(info.min), int(info.max) + 1, dtype=np.int64)


def _as_table(values, out_dtype):
    table = np.ascontiguousarray(values.astype(out_dtype))
    return (table.view(np.uint16) if out_dtype == np.float16 else table)[None, :]


def normalize_ct_scan(image: npt.ArrayLike, dtype: npt.DTypeLike = "float32") -> np.ndarray:
    """Map Hounsfield units from [-1000, 3096] linearly onto [0, 1].

    Parameters
    ----------
    image : array_like
        CT image in Hounsfield units, any shape, integer or float.
    dtype : {'float32', 'float16', 'float64'}
        Output dtype.

    Returns
    -------
    ndarray
        ``clip(image + 1000, 0, 4096) / 4096`` in ``dtype``.

    Notes
    -----
    Equal to ``rsgt.normalization.normalize_ct_scan`` (rounding steps
    included), except that integers near their dtype's maximum are shifted by
    1000 without wrapping around, and NaN or Inf raises ``ValueError``.

    Examples
    --------
    >>> import numpy as np
    >>> from rsgt_fast.normalization import normalize_ct_scan
    >>> normalize_ct_scan(np.array([-2000, -1000, 1048, 3096, 5000], np.int16))
    array([0. , 0. , 0.5, 1. , 1. ], dtype=float32)
    """
    x2, kind, out_dtype, result, out2 = _prepare(image, dtype)
    with engine(x2.size):
        if kind != "int":
            check_finite(x2, kind, "image")
        if kind == "half" or (kind == "int" and x2.dtype.itemsize <= 2):
            values = _all_values(x2, kind)
            with np.errstate(over="ignore", invalid="ignore"):  # inf/nan patterns never occur
                shifted = np.clip(values + (np.float16(1000) if kind == "half" else 1000), 0, 4096)
            lookup_table(x2, _as_table(shifted.astype(out_dtype) / 4096, out_dtype), out2)
        elif kind == "int":
            clip = clip_bounds(x2.dtype, [(-1000, 3096)])
            base = min(max(int(clip[0, 0]) + 1000, 0), 4096)
            table = _as_table(np.arange(4097).astype(out_dtype) / 4096, out_dtype)
            index_table(x2, clip, [base], table, out2)
        else:
            ct_float(x2, np.array([1000, 0, 4096], x2.dtype), out2, CHUNK)
    return result


# ------------------------------------------------------------------ MR


def _order_statistics(x1, ranks, dtype):
    """Exact ``sorted(x1)[ranks]`` without sorting: a key histogram, then one bin each.

    ``dtype`` is the values' real dtype (float16 rows arrive as uint16 bit
    patterns); the values come back as ``dtype``.
    """
    view, code = key_code(dtype)
    width = view.itemsize * 8
    x1 = x1.view(view)
    bits = min(width, 16)
    shift, offset, n_bins = width - bits, 1 << (bits - 1), 1 << bits
    parts = min(_PARTS, max(1, x1.size // CHUNK))
    hist = np.zeros((parts, n_bins), np.int64)
    key_histogram(x1, code, (shift, offset), hist)
    total = hist.sum(axis=0)
    ends = np.cumsum(total)
    keys = {}
    for bin_ in sorted({int(np.searchsorted(ends, r, side="right")) for r in ranks}):
        below = int(ends[bin_] - total[bin_])
        if shift == 0:
            # One key per bin: the bin is the key.
            for r in ranks:
                if below <= r < ends[bin_]:
                    keys[r] = bin_ - offset
            continue
        starts = np.concatenate([[0], np.cumsum(hist[:, bin_])[:-1]]).astype(np.int64)
        buf = np.empty(int(total[bin_]), np.int64)
        collect_bin(x1, code, (shift, offset), bin_, starts, buf)
        inside = sorted({r - below for r in ranks if below <= r < ends[bin_]})
        buf.partition(inside)
        for r in inside:
            keys[r + below] = int(buf[r])
    return decode_keys([keys[r] for r in ranks], code[0], dtype)


def _percentiles(x1, dtype, out_dtype):
    """numpy's linear 5th and 95th percentiles of ``x1`` cast to ``out_dtype``."""
    n = x1.size
    quantiles = np.array([5, 95]) / 100
    virtual = (n - 1) * quantiles
    previous = np.floor(virtual).astype(np.int64)
    following = np.minimum(previous + 1, n - 1)
    gamma = virtual - previous
    ranks = sorted({*previous.tolist(), *following.tolist()})
    stats = dict(zip(ranks, _order_statistics(x1, ranks, dtype).astype(out_dtype)))
    result = []
    for p, q, t in zip(previous.tolist(), following.tolist(), gamma):
        a, b = stats[p], stats[q]
        with np.errstate(over="ignore"):
            diff = b - a  # in out_dtype, then float64 with gamma, as numpy's _lerp
        if np.isfinite(diff):
            result.append(float(b - diff * (1 - t)) if t >= 0.5 else float(a + diff * t))
        else:  # the two neighbours span more than the dtype's range
            result.append(float(a) * float(1 - t) + float(b) * float(t))
    return result


def normalize_mr_scan(image: npt.ArrayLike, dtype: npt.DTypeLike = "float32") -> np.ndarray:
    """Map an MR image's 5th..95th percentile range linearly onto [0, 1].

    Parameters
    ----------
    image : array_like
        MR image, any shape, integer or float.
    dtype : {'float32', 'float16', 'float64'}
        Output dtype; the image is cast to it before the percentiles are taken,
        as rsgt does.

    Returns
    -------
    ndarray
        ``clip((image - p5) / (p95 - p5), 0, 1)`` in ``dtype``.

    Notes
    -----
    The percentiles are numpy's (linear interpolation), found exactly from a
    histogram of the values' bit patterns instead of a partial sort.  Results
    equal rsgt 1.1.0's to within one unit in the last place of ``dtype`` (rsgt
    under numpy 2 returns float64 whatever ``dtype`` says; this returns
    ``dtype``).  Where ``p95 == p5`` rsgt divides by zero; here values below
    map to 0, above to 1 and equal to 0.5.  NaN or Inf raises ``ValueError``.

    Examples
    --------
    >>> import numpy as np
    >>> from rsgt_fast.normalization import normalize_mr_scan
    >>> out = normalize_mr_scan(np.arange(101, dtype=np.int16))
    >>> float(out[5]), float(out[50]), float(out[95])
    (0.0, 0.5, 1.0)
    """
    out_dtype = _validate.output_dtype(dtype)
    array = _validate.input_array(np.atleast_1d(np.asanyarray(image)), "image")
    if out_dtype == np.float16 and array.dtype != np.float16:
        if array.dtype.kind == "f":
            check_finite(*rows(array.reshape(1, -1)), "image")
        with np.errstate(over="ignore"):
            array = array.astype(np.float16)  # rsgt casts first, so do we
        if not np.isfinite(array).all():
            raise ValueError("image values must fit in float16 when dtype='float16'")
    x2, kind, out_dtype, result, out2 = _prepare(array, out_dtype)
    result = result.reshape(np.shape(image))
    with engine(x2.size):
        if kind != "int":
            lo, hi = check_finite(x2, kind, "image")
            magnitude = max(-float(lo[0]), float(hi[0]))
            if out_dtype == np.float32 and magnitude > float(np.finfo(np.float32).max):
                raise ValueError("image values must fit in float32 when dtype='float32'")
        p5, p95 = _percentiles(x2[0], np.float16 if kind == "half" else x2.dtype, out_dtype)
        if kind == "half" or (kind == "int" and x2.dtype.itemsize <= 2):
            span = p95 - p5
            raw = _all_values(x2, kind)
            with np.errstate(invalid="ignore", divide="ignore"):  # unused nan patterns
                values = raw.astype(out_dtype).astype(np.float64)
                if span > 0:
                    mapped = np.clip((values - p5) / span, 0, 1)
                else:
                    mapped = np.where(values < p5, 0.0, np.where(values > p5, 1.0, 0.5))
            lookup_table(x2, _as_table(np.nan_to_num(mapped), out_dtype), out2)
        else:
            cast = out_dtype == np.float32 and x2.dtype != np.float32
            mr_affine(x2, np.array([p5, p95, float(cast)]), out2, CHUNK)
    return result
