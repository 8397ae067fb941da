"""Drop-in replacement for ``rsgt.normalization`` (rsgt 1.1.0), in one compiled pass."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from . import _validate, plan

__all__ = ["normalize_ct_scan", "normalize_mr_scan"]


def _prepare(image, out_dtype):
    """Rows of a checked ``image``, their kind, the result and the rows it is written through."""
    array = _validate.input_array(np.atleast_1d(np.asanyarray(image)), "image")
    x2, kind = plan.rows(array.reshape(1, -1))
    result, out2 = plan.output(1, np.shape(image), out_dtype)
    return x2, kind, result, out2


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
    out_dtype = _validate.output_dtype(dtype)
    x2, kind, result, out2 = _prepare(image, out_dtype)
    plan.normalize_ct(x2, kind, out2, out_dtype)
    return result


# ------------------------------------------------------------------ MR


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
            rows, kind = plan.rows(array.reshape(1, -1))
            plan.ranges(rows, kind, None, "image")  # NaN or Inf raise
        with np.errstate(over="ignore"):
            array = array.astype(np.float16)  # rsgt casts first, so do we
        if not np.isfinite(array).all():
            raise ValueError("image values must fit in float16 when dtype='float16'")
    x2, kind, result, out2 = _prepare(array, out_dtype)
    result = result.reshape(np.shape(image))
    if kind != "int":
        ((lo, hi),) = plan.ranges(x2, kind, None, "image")  # NaN or Inf raise here
        if out_dtype == np.float32 and max(-lo, hi) > float(np.finfo(np.float32).max):
            raise ValueError("image values must fit in float32 when dtype='float32'")
    plan.normalize_mr(x2, kind, out2, out_dtype)
    return result
