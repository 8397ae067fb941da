"""MONAI transforms: random smooth gray value transformations in MONAI pipelines.

* :class:`RandSmoothGrayValue` -- array transform for one channel-first image;
* :class:`RandSmoothGrayValued` -- its dictionary version;
* :class:`RandSmoothGrayValueBatch` -- for a collated ``(B, C, ...)`` batch,
  each sample with its own curve, in one call.

They follow MONAI's conventions: the random factors come from ``self.R``
(seeded by :meth:`set_random_state`, by ``monai.utils.set_determinism`` and in
``monai.data.DataLoader`` workers); numpy arrays, torch tensors and
``MetaTensor`` are accepted, and the result has the input's type, device and
metadata (affine included) with the dtype ``dtype``.  CUDA tensors stay on
their GPU (see :mod:`rsgt_fast.torch`).

RSGT replaces intensity normalisation: outputs lie in [0, 1].  An image the
transform leaves alone (probability ``1 - prob``) is returned unchanged, so
normalise the image to [0, 1] first and give ``min_max_val=(0, 1)`` when both
kinds should reach the network in the same range::

    Compose([
        LoadImaged("image"), EnsureChannelFirstd("image"),
        ScaleIntensityRanged("image", a_min=-1024, a_max=3071, b_min=0, b_max=1, clip=True),
        RandSmoothGrayValued("image", prob=0.5, min_max_val=(0, 1)),
    ])

Requires the ``rsgt-fast[monai]`` extra.
"""

from __future__ import annotations

import numpy as np

from . import _validate
from ._optional import require
from .batch import transform_batch
from .warmup import preload

_transforms = require("monai.transforms", "monai", "monai")
_utils = require("monai.utils", "monai", "monai")

from . import torch as _tensors  # noqa: E402  (after the check that names the extra)

__all__ = [
    "RandSmoothGrayValue", "RandSmoothGrayValued", "RandSmoothGrayValueD",
    "RandSmoothGrayValueDict", "RandSmoothGrayValueBatch",
]

#: Curve seeds are drawn from ``self.R`` in [0, SEED_LIMIT).
SEED_LIMIT = 2**32


class _Options:
    """The curve options shared by the transforms, checked once."""

    def _set_options(self, n_sinusoids, min_frequency, max_frequency, min_max_val, dtype,
                     nonzero=False, nan_policy="raise"):
        self.options = _validate.curve_options(n_sinusoids, min_frequency, max_frequency,
                                               min_max_val, "float32")
        self.nonzero = _validate.flag(nonzero, "nonzero")
        self.nan_policy = _validate.nan_policy(nan_policy)
        self.dtype = _tensors.checked_dtype(dtype)
        self.curves = None
        # MONAI loads images as float32: DataLoader workers forked later find
        # those kernels in memory.
        preload(("float32",), self.dtype if isinstance(self.dtype, np.dtype) else "float32")

    def _transform(self, rows, seed, keys=None, channels=False, name="the image"):
        """``rows`` transformed: a numpy array, or a tensor (on its device).

        ``channels``: a curve per channel (axis 1 of ``rows``).  ``name`` says
        what the rows are in a message about their values.
        """
        _validate.image_values(rows.dtype, name)
        self._numpy_dtype(rows, name)
        rng = seed if keys is not None else np.random.default_rng(seed)
        engine = _tensors.transform_batch if _tensors.torch.is_tensor(rows) else transform_batch
        try:
            out, self.curves = engine(rows, rng=rng, keys=keys, return_curves=True,
                                      nan_policy=self.nan_policy,
                                      mask=(rows != 0) if self.nonzero else None,
                                      channel_axis=1 if channels else None,
                                      **dict(self.options.as_kwargs(), dtype=self.dtype))
        except ValueError as exc:
            raise _validate.in_users_terms(exc, name, "nonzero=True") from None
        return out

    def _output_dtype(self, array):
        """The dtype of a transformed ``array``: ``dtype``, or the input's float dtype."""
        if _tensors.torch.is_tensor(array):
            return _tensors.output_for(self.dtype, array)
        self._numpy_dtype(array, "the batch")
        return _validate.like_input(self.dtype, array.dtype)

    def _numpy_dtype(self, array, name):
        """Refuse ``dtype=torch.bfloat16`` for a numpy image, which cannot hold it."""
        if self.dtype == _tensors.torch.bfloat16 and not _tensors.torch.is_tensor(array):
            raise TypeError(f"{name} is a numpy array, which cannot hold dtype=torch.bfloat16; "
                            "pass a tensor, or a float16/32/64 dtype")


def _values(data):
    """The values of ``data``: a tensor as it is (on its device), anything else as numpy's."""
    if _tensors.torch.is_tensor(data):
        return data.as_tensor() if hasattr(data, "as_tensor") else data
    return _utils.convert_to_numpy(data)


class RandSmoothGrayValue(_Options, _transforms.RandomizableTransform):
    """Random smooth gray value transformation of a channel-first image.

    Parameters
    ----------
    prob : float
        Probability of transforming an image.
    n_sinusoids : int
        Sinusoids summed into a curve.
    min_frequency, max_frequency : float
        Range of the random frequencies.
    min_max_val : (lo, hi) or None
        Input range mapped onto the curve; values outside are clipped.
        ``None``: the image's (or channel's) own min and max.
    channel_wise : bool
        Give each channel its own curve (and, with ``min_max_val=None``, its
        own range) instead of one curve for the whole image.
    dtype : numpy or torch dtype, or None
        float16, float32 or float64 (``np.float16``, ``'float32'`` or
        ``torch.float64``, for example), or ``torch.bfloat16`` for tensors:
        the dtype of a transformed image.  ``None``: the image's own float
        dtype (float32 for an integer image), as MONAI's ``dtype=None``.
    nonzero : bool
        Only nonzero voxels set the range and are transformed; zeros stay 0
        (as ``NormalizeIntensity(nonzero=True)`` leaves them).
    nan_policy : {'raise', 'omit'}
        ``'omit'``: NaN voxels stay NaN and take no part in the range (see
        :func:`rsgt_fast.transform_batch`).

    Attributes
    ----------
    curves : rsgt_fast.Curves or None
        The transfer functions of the last transformed image (one per channel
        with ``channel_wise=True``), e.g. for ``curves.sample()`` plots.

    Examples
    --------
    >>> import numpy as np
    >>> from rsgt_fast.monai import RandSmoothGrayValue
    >>> t = RandSmoothGrayValue(prob=1.0, min_max_val=(-1024, 3071)).set_random_state(0)
    >>> ct = np.random.default_rng(0).integers(-1024, 3072, size=(1, 16, 16, 16))
    >>> out = t(ct)
    >>> type(out).__name__, out.dtype, out.shape
    ('ndarray', dtype('float32'), (1, 16, 16, 16))
    """

    backend = [_utils.TransformBackends.TORCH, _utils.TransformBackends.NUMPY]

    def __init__(self, prob=0.1, n_sinusoids=4, min_frequency=0.2, max_frequency=1.6,
                 min_max_val=None, channel_wise=False, dtype=np.float32, nonzero=False,
                 nan_policy="raise"):
        _transforms.RandomizableTransform.__init__(self, prob)
        self._set_options(n_sinusoids, min_frequency, max_frequency, min_max_val, dtype,
                          nonzero, nan_policy)
        self.channel_wise = bool(channel_wise)
        self._seed = None

    def randomize(self, data=None):
        """Decide whether to transform and draw the seed of the curve(s) from ``self.R``."""
        super().randomize(None)
        if self._do_transform:
            self._seed = int(self.R.randint(SEED_LIMIT, dtype=np.int64))

    def __call__(self, img, randomize=True, name="the image"):
        """Transform ``img`` (channel first); ``randomize=False`` reuses the last curves.

        ``name`` says what ``img`` is in messages about its values.
        """
        if randomize:
            self.randomize()
        if not self._do_transform:
            return img
        if self._seed is None:
            raise RuntimeError("call randomize() before __call__(img, randomize=False)")
        array = _values(img)
        if self.channel_wise and array.ndim < 2:
            raise ValueError(f"channel_wise needs a channel-first image, got shape {array.shape}")
        out = self._transform(array[None], self._seed, channels=self.channel_wise,
                              name=name).reshape(array.shape)
        return _utils.convert_to_dst_type(out, dst=img, dtype=out.dtype)[0]


class RandSmoothGrayValued(_transforms.RandomizableTransform, _transforms.MapTransform):
    """Dictionary version of :class:`RandSmoothGrayValue`.

    All ``keys`` of one call share the curve parameters (each image still maps
    its own range with ``min_max_val=None``), as MONAI's dictionary intensity
    transforms share theirs; use one transform per key for independent curves.

    Parameters
    ----------
    keys : str or sequence of str
        Keys of the images to transform.
    prob, n_sinusoids, min_frequency, max_frequency, min_max_val, channel_wise, dtype
        As for :class:`RandSmoothGrayValue`.
    nonzero, nan_policy
        As for :class:`RandSmoothGrayValue`.
    allow_missing_keys : bool
        Skip keys that are missing instead of raising ``KeyError``.
    """

    backend = RandSmoothGrayValue.backend

    def __init__(self, keys, prob=0.1, n_sinusoids=4, min_frequency=0.2, max_frequency=1.6,
                 min_max_val=None, channel_wise=False, dtype=np.float32,
                 allow_missing_keys=False, nonzero=False, nan_policy="raise"):
        _transforms.MapTransform.__init__(self, keys, allow_missing_keys)
        _transforms.RandomizableTransform.__init__(self, prob)
        self.transform = RandSmoothGrayValue(1.0, n_sinusoids, min_frequency, max_frequency,
                                             min_max_val, channel_wise, dtype, nonzero,
                                             nan_policy)

    def set_random_state(self, seed=None, state=None):
        """Seed this transform and the array transform inside it; returns ``self``."""
        super().set_random_state(seed, state)
        self.transform.set_random_state(seed, state)
        return self

    def __call__(self, data):
        """Transform ``data[key]`` for every key (with probability ``prob``, all or none)."""
        d = dict(data)
        self.randomize(None)
        if not self._do_transform:
            return d
        self.transform.randomize(None)
        for key in self.key_iterator(d):
            d[key] = self.transform(d[key], randomize=False, name=f"data[{key!r}]")
        return d


RandSmoothGrayValueD = RandSmoothGrayValueDict = RandSmoothGrayValued


class RandSmoothGrayValueBatch(_Options, _transforms.RandomizableTransform):
    """Random smooth gray value transformation of a collated ``(B, C, ...)`` batch.

    Each sample (or, with ``channel_wise=True``, each channel of each sample)
    gets its own curve, all in one :func:`rsgt_fast.transform_batch` call --
    the same distribution of results as :class:`RandSmoothGrayValue` applied to
    each sample in a loop, without the loop.

    Parameters
    ----------
    prob : float
        Probability of transforming each sample; samples left alone keep
        their values, cast to ``dtype``.
    n_sinusoids, min_frequency, max_frequency, min_max_val, channel_wise, dtype, nonzero,
    nan_policy
        As for :class:`RandSmoothGrayValue`.

    Calling it with ``keys`` (one non-negative integer per sample, e.g. the
    dataset indices) gives sample ``i`` the curve of ``(seed, keys[i])``, the
    seed being the call's first draw from ``self.R``: for a given random state
    a sample's curve then depends on its key only, not on where it sits in the
    batch, on the batch's size or on the other samples.

    Examples
    --------
    >>> import torch
    >>> from rsgt_fast.monai import RandSmoothGrayValueBatch
    >>> batch = torch.randn(4, 1, 8, 8, 8)
    >>> out = RandSmoothGrayValueBatch().set_random_state(0)(batch)
    >>> out.shape, out.dtype
    (torch.Size([4, 1, 8, 8, 8]), torch.float32)
    """

    backend = RandSmoothGrayValue.backend

    def __init__(self, prob=1.0, n_sinusoids=4, min_frequency=0.2, max_frequency=1.6,
                 min_max_val=None, channel_wise=False, dtype=np.float32, nonzero=False,
                 nan_policy="raise"):
        _transforms.RandomizableTransform.__init__(self, prob)
        self._set_options(n_sinusoids, min_frequency, max_frequency, min_max_val, dtype,
                          nonzero, nan_policy)
        self.channel_wise = bool(channel_wise)
        self._selected = None
        self._seed = None

    def randomize(self, data):
        """Draw the curves' seed, then choose the samples of ``data`` to transform.

        The seed comes first, so that it depends on ``self.R`` alone, not on
        the size of the batch.
        """
        self._seed = int(self.R.randint(SEED_LIMIT, dtype=np.int64))
        self._selected = self.R.rand(len(data)) < self.prob
        self._do_transform = bool(self._selected.any())

    def __call__(self, batch, randomize=True, keys=None):
        """Transform ``batch``; ``randomize=False`` reuses the last choice and curves.

        ``keys``: optional per-sample keys (see the class notes).
        """
        if randomize:
            self.randomize(batch)
        if self._selected is None:
            raise RuntimeError("call randomize(batch) before __call__(batch, randomize=False)")
        array = _values(batch)
        if array.ndim < (3 if self.channel_wise else 2) or len(self._selected) != len(array):
            raise ValueError(f"expected a (B, C, ...) batch of {len(self._selected)} samples, "
                             f"got shape {tuple(array.shape)}")
        if keys is not None:
            keys = _validate.keys(keys, len(array))
        chosen = np.flatnonzero(self._selected)
        if len(chosen) == len(array):
            out = self._transform(array, self._seed, keys, self.channel_wise, "the batch")
        else:
            _validate.image_values(array.dtype, "the batch")
            if _tensors.torch.is_tensor(array):
                out = array.to(self._output_dtype(array), copy=True)  # never the input
                chosen = _tensors.torch.as_tensor(chosen, device=array.device)
            else:
                out = array.astype(self._output_dtype(array))
            if len(chosen):
                subset_keys = None if keys is None else [keys[i] for i in chosen]
                out[chosen] = self._transform(array[chosen], self._seed, subset_keys,
                                              self.channel_wise, "the batch")
        return _utils.convert_to_dst_type(out, dst=batch, dtype=out.dtype)[0]
