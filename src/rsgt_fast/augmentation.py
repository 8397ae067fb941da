"""Drop-in replacement for ``rsgt.augmentation`` (rsgt 1.1.0)."""

from __future__ import annotations

import numpy as np

from . import _validate
from ._jit import _VARIANT, engine
from ._kernels import exact_grid
from .batch import apply, element_ranges, rows
from .curves import grid_values, legacy_parameters

__all__ = ["random_smooth_grayvalue_transform"]

#: Integer ranges up to this many values are sampled exactly as rsgt 1.1.0 does.
EXACT_MAX = 1 << 22

_INT64 = np.iinfo(np.int64)


_GRID_CHUNK = 1 << 9
_compiled_grid_agrees = {}


def _rsgt_grid(params, n_points):
    """rsgt's table of raw curve values, bit for bit.

    The compiled grid (parallel, and faster than numpy's ``sin``) is used once a
    probe has shown that, in this process and variant, it reproduces numpy's
    values exactly; otherwise numpy computes it as rsgt does.
    """
    variant = _VARIANT.get() or "parallel"
    if variant not in _compiled_grid_agrees:
        probe = np.random.default_rng(12345)
        f = probe.uniform(0.05, 4.0, (1, 6))
        a = probe.uniform(-20.0, 20.0, (1, 6))
        o = probe.uniform(0, 2 * np.pi, (1, 6))
        expected = grid_values(f[0], a[0], o[0], 3 * _GRID_CHUNK + 7)
        actual = exact_grid(f, a, o, expected.size, _GRID_CHUNK)
        _compiled_grid_agrees[variant] = bool(np.array_equal(expected, actual))
    if _compiled_grid_agrees[variant]:
        return exact_grid(*params, n_points, _GRID_CHUNK)
    return grid_values(params[0][0], params[1][0], params[2][0], n_points)


def random_smooth_grayvalue_transform(image, n_sinusoids=4, min_frequency=0.2,
                                      max_freqency=1.6, dtype="float32", min_max_val=None):
    """Apply one random smooth gray value transformation to an image.

    Same signature, random numbers and results as rsgt 1.1.0's function of the
    same name (including the spelling of ``max_freqency``), computed in one
    compiled pass.

    Parameters
    ----------
    image : array_like
        Image of any shape.  Values are treated as integers: float input is
        truncated toward zero, as rsgt does (use
        :func:`rsgt_fast.transform_batch` to keep float values exact).
    n_sinusoids : int
        Sinusoids summed into the curve.
    min_frequency, max_freqency : float
        Range of the random frequencies.
    dtype : {'float32', 'float16', 'float64'}
        Output dtype.
    min_max_val : (lo, hi) or None
        Input range mapped onto the curve; values outside are clipped.  ``None``
        uses the image's min and max.

    Returns
    -------
    ndarray
        Transformed image of ``image``'s shape, values in [0, 1].

    Notes
    -----
    The curve parameters come from the global ``np.random`` state, drawn as
    rsgt draws them, so for the same state the output equals rsgt's bit for
    bit wherever rsgt works for a range of up to 2**22 values.  Where rsgt
    fails this function does not: a single-valued image or range gives 0.5
    everywhere (rsgt gives NaN); a range wider than 2**22 values is sampled on
    a dense grid and interpolated (within about 1e-8 of the exact formula) in
    bounded memory; a non-integral ``min_max_val`` is used as given; bad
    arguments raise ``ValueError`` or ``TypeError`` before any random number is
    drawn.

    Examples
    --------
    >>> import numpy as np
    >>> from rsgt_fast.augmentation import random_smooth_grayvalue_transform
    >>> np.random.seed(0)
    >>> ct = np.random.randint(-1024, 3072, size=(64, 64))
    >>> out = random_smooth_grayvalue_transform(ct, dtype='float32')
    >>> out.dtype, bool(0 <= out.min() and out.max() <= 1)
    (dtype('float32'), True)
    """
    n_sinusoids = _validate.n_sinusoids(n_sinusoids)
    min_frequency, max_freqency = _validate.frequencies(
        min_frequency, max_freqency, "min_frequency", "max_freqency"
    )
    bounds = _validate.min_max_val(min_max_val)
    out_dtype = _validate.output_dtype(dtype)
    array = _validate.input_array(np.atleast_1d(np.asanyarray(image)), "image")
    shape = np.shape(image)

    x2, kind = rows(array.reshape(1, -1))
    with engine(x2.size):
        if kind != "int":
            # rsgt's contract: float values are truncated toward zero.
            low, high = element_ranges(x2, kind, None, "image")[0]
            if low < _INT64.min or high >= 2.0**63:
                raise ValueError(
                    f"image values must lie within the int64 range, got [{low:g}, {high:g}]"
                )
            x2 = x2.view(np.float16) if kind == "half" else x2
            x2, kind = x2.astype(np.int64), "int"
        lo, hi = element_ranges(x2, kind, bounds, "image")[0]
        params = legacy_parameters(n_sinusoids, min_frequency, max_freqency)
        grid = None
        if isinstance(lo, int) and isinstance(hi, int) and hi - lo < EXACT_MAX:
            y = _rsgt_grid(params, hi - lo + 1)
            grid = (y[None, :], np.array([[y.min(), y.max()]]))
        result, _ = apply(x2, kind, params, [(lo, hi)], shape, out_dtype,
                          grid=grid, grid_max=EXACT_MAX)
    return result
