"""Drop-in replacement for ``rsgt.augmentation`` (rsgt 1.1.0)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from . import _validate
from ._jit import StandIn, engine
from ._kernels import sample_curve, scale_table, sines
from ._layout import AMPLITUDE, FREQUENCY, SAMPLE_ERROR
from .curves import legacy_parameters, rsgt_samples
from .plan import FULL_TABLE_MIN, apply, clip_bounds, index_table, lookup_table, rows
from .scan import element_ranges

__all__ = ["random_smooth_grayvalue_transform"]

#: Integer ranges up to this many values are sampled exactly as rsgt 1.1.0 does.
EXACT_MAX = 1 << 22

#: Grid points per parallel task when sampling rsgt's curve.
SAMPLES_CHUNK = 1 << 14

_INT64 = np.iinfo(np.int64)

_sin_checks = {}


def _numpy_sin_is_pointwise():
    """Whether numpy's float64 ``sin`` gives each element the same value in any array.

    Evaluating rsgt's table at a few grid points instead of all relies on
    it; checked once per process on a probe (a SIMD path that treated an
    array's tail differently would show up here).
    """
    if "pointwise" not in _sin_checks:
        rng = np.random.default_rng(20240611)
        t = rng.uniform(-40.0, 40.0, 1031)
        full = np.sin(t)
        picks = [rng.choice(t.size, size, replace=False) for size in (1, 2, 3, 7, 17, 100)]
        _sin_checks["pointwise"] = all(np.array_equal(np.sin(t[p]), full[p]) for p in picks)
    return _sin_checks["pointwise"]


def _compiled_sin_is_numpys():
    """Whether the compiled ``sin`` equals numpy's (both the C library's, say).

    Checked once per process on 4096 arguments over the range curves use:
    implementations that differ (a SIMD ``sin`` in numpy, say) disagree in
    the last bit on a good share of them.  Where they agree, rsgt's exact
    samples are computed in compiled code.
    """
    if "compiled" not in _sin_checks:
        t = np.random.default_rng(11).uniform(-80.0, 80.0, 4096)
        _sin_checks["compiled"] = bool(np.array_equal(sines(t), np.sin(t)))
    return _sin_checks["compiled"]


def _cast_exact(y, ymin, ymax, lut_dtype):
    """rsgt's ``((y - ymin) / (ymax - ymin)).astype(dtype)`` (0.5 for a flat curve)."""
    q = np.full(y.shape, 0.5) if not ymax > ymin else (y - ymin) / (ymax - ymin)
    if lut_dtype == np.uint16:
        return q.astype(np.float16).view(np.uint16)
    return q.astype(lut_dtype)


def rsgt_table(curve, n_points, lut_dtype):
    """rsgt's lookup table for curve 0 over ``n_points`` integers, bit for bit.

    rsgt samples the curve with numpy at ``linspace(0, 2*pi, n_points)``,
    scales it by the samples' extrema and casts it to the output dtype
    (``lut_dtype``: ``uint16`` stands for float16 bit patterns).  Here a
    compiled kernel samples the curve within a known error instead (see
    ``_kernels.scale_table``), and numpy's exact arithmetic is redone,
    in one call, only where that error could matter: at the samples that may
    be an extremum and at the entries whose rounding the error could change
    (a few per thousand).  float64 output needs every exact sample.  Until
    the compiled sampling pays for its compilation, tables of up to
    ``EXACT_STAND_IN`` entries are computed exactly as rsgt does.
    """
    if n_points == 1 or lut_dtype == np.float64 or not _numpy_sin_is_pointwise():
        return _exact_table(curve, n_points, lut_dtype)
    if n_points <= EXACT_STAND_IN:
        return _table(curve, n_points, lut_dtype)
    return _sampled_table(curve, n_points, lut_dtype)


def _exact_table(curve, n_points, lut_dtype):
    """rsgt's own computation of its table, in numpy."""
    y = rsgt_samples(curve, n_points)
    return _cast_exact(y, y.min(), y.max(), lut_dtype)


def _sampled_table(curve, n_points, lut_dtype):
    """rsgt's table from compiled samples, numpy's arithmetic redone where it matters."""
    error = SAMPLE_ERROR * sum(abs(a) * (2.0 + f) for f, a in
                               zip(curve[0, FREQUENCY].tolist(), curve[0, AMPLITUDE].tolist()))
    table = np.empty(n_points, lut_dtype)
    finish = _compiled_sin_is_numpys()
    values = np.empty(n_points)
    sample_curve(curve, values, SAMPLES_CHUNK)
    unsafe = scale_table(curve, error, values, table, finish)
    if finish:
        return table
    exact = rsgt_samples(curve, n_points, unsafe)
    # Every exact sample lies within the extrema and the unsafe ones include
    # both extrema, so their own extrema are the table's.
    table[unsafe] = _cast_exact(exact, exact.min(), exact.max(), lut_dtype)
    return table


#: Tables of at most this many entries are computed as rsgt computes them, in
#: numpy, until that has taken ``_jit.COMPILE_AFTER`` seconds (the compiled
#: sampling then pays); larger ones always use the compiled sampling, whose
#: memory stays bounded.
EXACT_STAND_IN = 1 << 16

_table = StandIn(_sampled_table, _exact_table, key=lambda curve, n_points, lut_dtype: lut_dtype,
                 dispatchers=(sample_curve, scale_table))


def random_smooth_grayvalue_transform(
        image: npt.ArrayLike, n_sinusoids: int = 4, min_frequency: float = 0.2,
        max_freqency: float = 1.6, dtype: npt.DTypeLike = "float32",
        min_max_val: tuple[float, float] | None = None) -> np.ndarray:
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
        Output dtype (a byte order given with it, ``'>f4'`` say, is kept).
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
    opts = _validate.curve_options(n_sinusoids, min_frequency, max_freqency, min_max_val, dtype,
                                   max_name="max_freqency")
    array = _validate.input_array(np.atleast_1d(np.asanyarray(image)), "image")
    shape = np.shape(image)

    x2, kind = rows(array.reshape(1, -1))
    with engine(x2.size):
        if kind == "int":
            lo, hi = element_ranges(x2, kind, opts.min_max_val, "image")[0]
        else:
            # rsgt's contract: float values are truncated toward zero (which
            # keeps their order, so the truncated range comes from this scan).
            low, high = element_ranges(x2, kind, None, "image")[0]
            if low < _INT64.min or high >= 2.0**63:
                raise ValueError(
                    f"image values must lie within the int64 range, got [{low:g}, {high:g}]"
                )
            x2 = (x2.view(np.float16) if kind == "half" else x2).astype(np.int64)
            lo, hi = opts.min_max_val or (int(low), int(high))
        curve = legacy_parameters(opts.n_sinusoids, opts.min_frequency, opts.max_frequency)
        if isinstance(lo, int) and isinstance(hi, int) and hi - lo < EXACT_MAX:
            result = np.empty(shape, opts.dtype)
            _gather(x2, lo, hi, rsgt_table(curve, hi - lo + 1, _lut_dtype(opts.dtype)),
                    result.reshape(1, -1))
        else:
            result, _ = apply(x2, "int", curve, [(lo, hi)], shape, opts.dtype)
    if type(dtype) is not str or dtype[:1] in "<>=|!":
        requested = np.dtype(dtype)
        if requested != result.dtype:  # a byte order asked for, as rsgt returns it
            result = result.astype(requested)
    return result


def _lut_dtype(out_dtype):
    return np.dtype(np.uint16) if out_dtype == np.float16 else out_dtype


def _gather(x2, lo, hi, table, out2):
    """``out2 = table[clip(x2, lo, hi) - lo]`` for one row."""
    if out2.dtype == np.float16:
        out2 = out2.view(np.uint16)
    width = 1 << (8 * x2.dtype.itemsize)
    if x2.dtype.itemsize <= 2 and x2.size >= FULL_TABLE_MIN * width:
        # An entry per value the dtype holds: table index of value v is v - dmin.
        dmin = int(np.iinfo(x2.dtype).min)
        far = len(table) + width  # beyond this the range starts before or after every entry
        first = min(max(lo - dmin, -far), far)
        full = table[np.clip(np.arange(width) - first, 0, len(table) - 1)]
        lookup_table(x2, full[None], out2)
        return
    clip = clip_bounds(x2.dtype, [(lo, hi)])
    base = min(max(int(clip[0, 0]) - lo, 0), len(table) - 1)
    index_table(x2, clip, [base], table[None], out2)
