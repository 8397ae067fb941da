"""Drop-in replacement for ``rsgt.augmentation`` (rsgt 1.1.0)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from . import _validate, plan
from .curves import legacy_parameters

__all__ = ["random_smooth_grayvalue_transform"]


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
    x2, kind = plan.rows(array.reshape(1, -1))
    result, out2 = plan.output(1, np.shape(image), opts.dtype)
    plan.facade(x2, kind, opts.min_max_val,
                lambda: legacy_parameters(opts.n_sinusoids, opts.min_frequency,
                                          opts.max_frequency), out2, opts.dtype)
    if type(dtype) is not str or dtype[:1] in "<>=|!":
        requested = np.dtype(dtype)
        if requested != result.dtype:  # a byte order asked for, as rsgt returns it
            result = result.astype(requested)
    return result

