"""batchgeneratorsv2 transform: random smooth gray value transformations in nnU-Net v2 pipelines.

:class:`SmoothGrayValueTransform` is an ``ImageOnlyTransform`` that follows
batchgeneratorsv2's intensity transforms (gamma, brightness, contrast): it
works on one sample's ``(C, X, Y)`` or ``(C, X, Y, Z)`` image tensor, draws
its random choices in ``get_parameters`` from PyTorch's global generator (so
``torch.manual_seed`` makes a run reproducible), picks channels with
``p_per_channel`` and gives them one curve (``synchronize_channels=True``) or
one each.  Segmentations and every other key are never touched.

nnU-Net feeds z-scored images and validates on untransformed ones, so by
default each transformed channel is rescaled to its original mean and standard
deviation (as bgv2's gamma transform does with retained stats);
``retain_stats=False`` keeps RSGT's plain [0, 1] output.

Augmentation runs in many worker processes at once, so each call uses one
thread by default (``n_threads``), which keeps the workers from
oversubscribing the cores.  CUDA tensors are transformed on the host and
returned on their device.

Wrap it in bgv2's ``RandomTransform`` for a probability per sample, or use
:class:`rsgt_fast.nnunet.nnUNetTrainerRSGT`, which does.  Requires the
``rsgt-fast[nnunet]`` extra.

Examples
--------
>>> import torch
>>> from rsgt_fast.batchgenerators import SmoothGrayValueTransform
>>> torch.manual_seed(0)  # doctest: +ELLIPSIS
<torch._C.Generator object at ...>
>>> sample = {"image": torch.randn(2, 16, 16, 16), "segmentation": torch.zeros(1, 16, 16, 16)}
>>> out = SmoothGrayValueTransform()(**sample)
>>> out["image"].shape, bool(abs(out["image"][0].mean()) < 0.1)
(torch.Size([2, 16, 16, 16]), True)
"""

from __future__ import annotations

import numpy as np

from . import _validate
from ._jit import thread_limit
from ._optional import require
from .batch import transform_batch
from .warmup import preload

torch = require("torch", "nnunet", "batchgenerators")
_base = require("batchgeneratorsv2.transforms.base.basic_transform", "nnunet", "batchgenerators")

from . import torch as _tensors  # noqa: E402  (after the checks that name the extra)

__all__ = ["SmoothGrayValueTransform"]

#: Seeds drawn from torch for the engine's generator: non-negative int64 values.
_SEED_HIGH = 1 << 62


class SmoothGrayValueTransform(_base.ImageOnlyTransform):
    """Random smooth gray value transformation of a sample's image channels.

    Parameters
    ----------
    n_sinusoids : int
        Sinusoids summed into a curve.
    min_frequency, max_frequency : float
        Range of the random frequencies.
    min_max_val : (lo, hi) or None
        Input range mapped onto the curve; ``None`` uses each channel's own
        min and max (the usual choice for z-scored images).
    p_per_channel : float
        Probability that a channel is transformed.
    synchronize_channels : bool
        One curve for all transformed channels instead of one per channel
        (each channel still uses its own range).
    retain_stats : bool
        Rescale each transformed channel to its original mean and standard
        deviation (default); ``False`` leaves values in [0, 1].
    n_threads : int
        Threads per call (default 1, for data loader workers).
    use_mask_for_norm : sequence of bool, optional
        nnU-Net's per-channel flag of the same name: in a channel that has it,
        only the voxels inside the sample's nonzero region (segmentation
        ``>= 0``; nnU-Net's preprocessing marks the rest ``-1`` and sets their
        image values to 0) set the range and are transformed, and the statistics
        are kept over them; the voxels outside stay as they are.
    nan_policy : {'raise', 'omit'}
        ``'omit'``: NaN voxels stay NaN and take no part in the range or the
        statistics (see :func:`rsgt_fast.transform_batch`); ``'raise'``
        (default) refuses an image holding NaN or Inf.
    """

    def __init__(self, n_sinusoids=4, min_frequency=0.2, max_frequency=1.6, min_max_val=None,
                 p_per_channel=1.0, synchronize_channels=False, retain_stats=True, n_threads=1,
                 use_mask_for_norm=None, nan_policy="raise"):
        super().__init__()
        self.nan_policy = _validate.nan_policy(nan_policy)
        opts = _validate.curve_options(n_sinusoids, min_frequency, max_frequency, min_max_val,
                                       "float32")
        self.options = opts.as_kwargs()
        del self.options["dtype"]
        p = _validate.real_scalar(p_per_channel, "p_per_channel")
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p_per_channel must be in [0, 1], got {p_per_channel!r}")
        self.p_per_channel = p
        self.synchronize_channels = _validate.flag(synchronize_channels, "synchronize_channels")
        self.retain_stats = _validate.flag(retain_stats, "retain_stats")
        self.n_threads = _validate.positive_int(n_threads, "n_threads")
        if use_mask_for_norm is None:
            self.use_mask_for_norm = ()
        else:
            self.use_mask_for_norm = tuple(_validate.flag(bool(v) if isinstance(v, np.bool_)
                                                          else v, "use_mask_for_norm")
                                           for v in use_mask_for_norm)
        # nnU-Net's images are float32: its workers, forked later, find those kernels
        # in memory.
        preload(("float32",), "float32")

    def get_parameters(self, **data_dict) -> dict:
        """Channels to transform and the seed of their curves, from torch's generator."""
        image = data_dict["image"]
        if not isinstance(image, torch.Tensor):
            raise TypeError(f"image must be a torch.Tensor, got {type(image).__name__}")
        if image.ndim not in (3, 4):
            raise ValueError(f"image must be (C, X, Y) or (C, X, Y, Z), got shape "
                             f"{tuple(image.shape)}")
        chosen = torch.rand(image.shape[0]) < self.p_per_channel
        channels = chosen.nonzero(as_tuple=False).flatten()
        seed = int(torch.randint(0, _SEED_HIGH, (1,)).item())
        mask = None
        if any(self.use_mask_for_norm):
            segmentation = data_dict.get("segmentation")
            if segmentation is None:
                raise ValueError("use_mask_for_norm needs the sample's segmentation (the "
                                 "'segmentation' key), where nnU-Net marks the voxels outside "
                                 "the mask -1")
            mask = segmentation[0] >= 0
        return {"apply_to_channel": channels, "seed": seed, "mask": mask}

    def _apply_to_image(self, img, **params):
        channels = params["apply_to_channel"]
        if channels.numel() == 0:
            return img
        if not img.is_floating_point():
            img = img.to(torch.float32)
        keys = [0] * len(channels) if self.synchronize_channels else list(range(len(channels)))
        masked = [c < len(self.use_mask_for_norm) and self.use_mask_for_norm[c]
                  for c in channels.tolist()]
        if params.get("mask") is not None and any(masked) and not bool(params["mask"].any()):
            # A patch wholly outside nnU-Net's mask: its masked channels stay as they are
            # (nnU-Net's masking has set them to 0); the other channels keep their keys.
            kept = [i for i, m in enumerate(masked) if not m]
            if not kept:
                return img
            channels = channels[kept]
            keys = [keys[i] for i in kept]
            masked = [False] * len(kept)
        index = channels.to(img.device)
        source = img.index_select(0, index).detach()
        options = dict(rng=params["seed"], keys=keys, dtype="float32",
                       nan_policy=self.nan_policy, **self.options)
        inside = None
        if params.get("mask") is not None and any(masked):
            region = params["mask"].to(source.device).bool()
            inside = torch.stack([region if m else torch.ones_like(region) for m in masked])
        counted = inside  # the voxels whose statistics count
        if self.nan_policy == "omit" and self.retain_stats:
            finite = torch.isfinite(source)
            counted = finite if inside is None else inside & finite
        if _tensors.device_resident(source):
            values = source.to(torch.float32)
            try:
                out = _tensors.transform_batch(values, mask=inside, **options)
            except ValueError as exc:
                raise _validate.in_users_terms(exc, "the image", "the nnU-Net mask") from None
            if inside is not None:  # nnU-Net's values outside the mask stay
                out = torch.where(inside, out, values)
            if self.retain_stats:
                _restore_tensor_stats(out, source, inside, counted)
            img.index_copy_(0, index, out.to(img.dtype))
            return img
        inside, counted = (None if m is None else m.to("cpu").numpy() for m in (inside, counted))
        source = source.to("cpu", torch.float32).numpy()
        try:
            with thread_limit(self.n_threads):
                out = transform_batch(source, mask=inside, **options)
        except ValueError as exc:
            raise _validate.in_users_terms(exc, "the image", "the nnU-Net mask") from None
        if inside is not None:
            out[~inside] = source[~inside]  # nnU-Net's values outside the mask stay
        if self.retain_stats:
            _restore_stats(out, source, inside, counted)
        img.index_copy_(0, index, torch.from_numpy(out).to(img.device, img.dtype))
        return img


def _restore_tensor_stats(out, source, inside=None, counted=None, eps=1e-7):
    """:func:`_restore_stats` for tensors on their device (per-channel sums in float64)."""
    dims = tuple(range(1, out.ndim))
    shape = (-1,) + (1,) * (out.ndim - 1)
    x, y = source.to(torch.float64), out.to(torch.float64)
    counted = inside if counted is None else counted
    if counted is None:
        counted = torch.ones((1,) * out.ndim, dtype=torch.bool, device=out.device)
    n = counted.expand(out.shape).sum(dim=dims).to(torch.float64)
    ddof = (n > 1).to(torch.float64)

    def moments(v):
        mean = torch.where(counted, v, 0.0).sum(dim=dims) / n
        deviation = torch.where(counted, v - mean.reshape(shape), 0.0)
        return mean, (deviation.square().sum(dim=dims) / (n - ddof)).sqrt()

    (x_mean, x_std), (y_mean, y_std) = moments(x), moments(y)
    scale = x_std / y_std.clamp_min(eps)
    shift = x_mean - y_mean * scale
    rescaled = out * scale.to(torch.float32).reshape(shape) + shift.to(torch.float32).reshape(shape)
    out.copy_(rescaled if inside is None else torch.where(inside, rescaled, out))


def _restore_stats(out, source, inside=None, counted=None, eps=1e-7):
    """Give each channel of ``out`` the mean and standard deviation of ``source``'s (in place).

    Standard deviations are torch's default (Bessel-corrected), as bgv2 computes
    them; sums are taken in float64 without float64 copies of the channels.
    With ``inside`` (a mask per channel) only the voxels inside change;
    ``counted`` (default: ``inside``) are those whose statistics count, the
    finite ones under ``nan_policy='omit'`` (±Inf voxels, mapped to a curve's
    ends, change with the others).
    """
    counted = inside if counted is None else counted
    for c in range(out.shape[0]):
        chosen = None if counted is None or counted[c].all() else counted[c]
        x, y = (source[c], out[c]) if chosen is None else (source[c][chosen], out[c][chosen])
        ddof = 1 if y.size > 1 else 0
        mean, std = x.mean(dtype=np.float64), x.std(dtype=np.float64, ddof=ddof)
        scale = np.float32(std / max(float(y.std(dtype=np.float64, ddof=ddof)), eps))
        shift = np.float32(mean - float(y.mean(dtype=np.float64)) * scale)
        changed = None if inside is None or inside[c].all() else inside[c]
        if changed is None:
            out[c] *= scale
            out[c] += shift
        else:
            out[c][changed] = out[c][changed] * scale + shift
