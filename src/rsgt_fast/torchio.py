"""TorchIO transforms: random smooth gray value transformations of subjects.

* :class:`RandomSmoothGrayValue` -- the random transform: it draws one seed per
  image from PyTorch's random generator (so ``torch.manual_seed`` and
  ``SubjectsLoader`` workers behave as for TorchIO's own transforms) and
  delegates to
* :class:`SmoothGrayValue` -- the deterministic transform: the seed re-creates
  the same curve, so a subject's history reproduces the result
  (``subject.get_composed_history()(original)``).

Both apply to ``ScalarImage`` s only (label maps are never touched) and respect
``include`` and ``exclude``.  Outputs lie in [0, 1].

Requires the ``rsgt-fast[torchio]`` extra.
"""

from __future__ import annotations

import numpy as np

from . import _validate
from ._optional import require
from .warmup import preload

_tio = require("torchio", "torchio", "torchio")
torch = require("torch", "torchio", "torchio")

from . import torch as _tensors  # noqa: E402  (after the checks that name the extra)

__all__ = ["RandomSmoothGrayValue", "SmoothGrayValue"]


def _check(n_sinusoids, min_frequency, max_frequency, min_max_val, dtype):
    opts = _validate.curve_options(n_sinusoids, min_frequency, max_frequency, min_max_val,
                                   "float32")
    dtype = _tensors.checked_dtype(dtype)
    return (opts.n_sinusoids, opts.min_frequency, opts.max_frequency, opts.min_max_val,
            dtype.name if isinstance(dtype, np.dtype) else dtype)


class RandomSmoothGrayValue(_tio.transforms.augmentation.RandomTransform,
                            _tio.transforms.IntensityTransform):
    """Random smooth gray value transformation of each scalar image of a subject.

    Parameters
    ----------
    p : float
        Probability of applying the transform.
    n_sinusoids : int
        Sinusoids summed into a curve.
    min_frequency, max_frequency : float
        Range of the random frequencies.
    min_max_val : (lo, hi) or None
        Input range mapped onto the curve; values outside are clipped.
        ``None``: each image's (or channel's) own min and max.
    channel_wise : bool
        Give each channel its own curve instead of one per image.
    dtype : {'float32', 'float16', 'float64'} or a numpy or torch float dtype
        Data type of the transformed images (``torch.bfloat16`` too).
        ``None``: each image's own float dtype (float32 for an integer image).
    masking_method : None, str, callable, ...
        The voxels that set the range and are transformed, given as TorchIO's
        intensity transforms take it (the name of a ``LabelMap`` of the
        subject, a function of the image's tensor returning a bool tensor, an
        anatomical label...); voxels outside it become 0.  ``None``: all.
    nan_policy : {'raise', 'omit'}
        ``'omit'``: NaN voxels stay NaN and take no part in the range (see
        :func:`rsgt_fast.transform_batch`).
    **kwargs
        ``include``, ``exclude``, ``copy`` etc.: see ``torchio.transforms.Transform``.

    Examples
    --------
    >>> import torch, torchio as tio
    >>> from rsgt_fast.torchio import RandomSmoothGrayValue
    >>> subject = tio.Subject(ct=tio.ScalarImage(tensor=torch.randint(-1024, 3072, (1, 8, 8, 8))),
    ...                       seg=tio.LabelMap(tensor=torch.zeros(1, 8, 8, 8, dtype=torch.uint8)))
    >>> out = RandomSmoothGrayValue(min_max_val=(-1024, 3071))(subject)
    >>> out.ct.data.dtype, bool(out.ct.data.max() <= 1)
    (torch.float32, True)
    """

    def __init__(self, p=1.0, n_sinusoids=4, min_frequency=0.2, max_frequency=1.6,
                 min_max_val=None, channel_wise=False, dtype="float32", masking_method=None,
                 nan_policy="raise", **kwargs):
        super().__init__(p=p, **kwargs)
        (self.n_sinusoids, self.min_frequency, self.max_frequency, self.min_max_val,
         self.dtype) = _check(n_sinusoids, min_frequency, max_frequency, min_max_val, dtype)
        self.channel_wise = bool(channel_wise)
        self.masking_method = masking_method
        self.nan_policy = _validate.nan_policy(nan_policy)
        # TorchIO's images are float32: loader workers forked later find those kernels
        # in memory.
        preload(("float32",), self.dtype if isinstance(self.dtype, str) else "float32")

    def apply_transform(self, subject):
        """Draw a seed per image and apply :class:`SmoothGrayValue` with them."""
        images = self.get_images_dict(subject)
        if not images:
            return subject
        seeds = {name: self._get_random_seed() for name in images}
        transform = SmoothGrayValue(
            seed=seeds, n_sinusoids=self.n_sinusoids, min_frequency=self.min_frequency,
            max_frequency=self.max_frequency, min_max_val=self.min_max_val,
            channel_wise=self.channel_wise, dtype=self.dtype,
            masking_method=self.masking_method, nan_policy=self.nan_policy,
            **self._get_base_args(),
        )
        return transform(subject)


class SmoothGrayValue(_tio.transforms.IntensityTransform):
    """The smooth gray value transformation given by a seed.

    Parameters
    ----------
    seed : int or dict of str to int
        Seed of the curve (a ``numpy.random.default_rng`` seed), or one per
        image name.  The same seed and options give the same curve.
    n_sinusoids, min_frequency, max_frequency, min_max_val, channel_wise, dtype
        As for :class:`RandomSmoothGrayValue`.
    masking_method, nan_policy, **kwargs
        As for :class:`RandomSmoothGrayValue`.
    """

    def __init__(self, seed, n_sinusoids=4, min_frequency=0.2, max_frequency=1.6,
                 min_max_val=None, channel_wise=False, dtype="float32", masking_method=None,
                 nan_policy="raise", **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        (self.n_sinusoids, self.min_frequency, self.max_frequency, self.min_max_val,
         self.dtype) = _check(n_sinusoids, min_frequency, max_frequency, min_max_val, dtype)
        self.channel_wise = bool(channel_wise)
        self.masking_method = masking_method
        self.nan_policy = _validate.nan_policy(nan_policy)
        self.args_names = ["seed", "n_sinusoids", "min_frequency", "max_frequency",
                           "min_max_val", "channel_wise", "dtype", "masking_method",
                           "nan_policy"]

    def apply_transform(self, subject):
        """Replace each selected scalar image's data by its transformed values."""
        for name, image in self.get_images_dict(subject).items():
            data = image.data
            mask = None
            if self.masking_method is not None:
                mask = self.get_mask_from_masking_method(self.masking_method, subject,
                                                         data).bool()
                if mask.shape[0] == 1 and data.shape[0] > 1:  # one label map for all channels
                    mask = mask.expand(data.shape)
                mask = mask[None]
            try:
                out = _tensors.transform_batch(
                    data[None], n_sinusoids=self.n_sinusoids, min_frequency=self.min_frequency,
                    max_frequency=self.max_frequency, min_max_val=self.min_max_val,
                    dtype=self.dtype, rng=int(self.get_parameter(self.seed, name)),
                    nan_policy=self.nan_policy, mask=mask,
                    channel_axis=1 if self.channel_wise else None,
                )[0]
            except ValueError as exc:
                raise _validate.in_users_terms(exc, f"image {name!r}", "masking_method") from None
            image.set_data(out)
        return subject
