"""nnU-Net v2: trainers whose training augmentation includes RSGT.

:class:`nnUNetTrainerRSGT` is nnU-Net v2's ``nnUNetTrainer`` with one change:
``get_training_transforms`` inserts
:class:`~rsgt_fast.batchgenerators.SmoothGrayValueTransform` (in bgv2's
``RandomTransform``, applied to a sample with probability
:data:`RSGT_PROBABILITY`) after nnU-Net's own intensity transforms and before
mirroring.  Every other transform is nnU-Net's, unchanged.

:class:`nnUNetTrainerRSGTOnDevice` leaves nnU-Net's data loading workers
without RSGT and transforms each training batch in the main process once it
is on the trainer's device (the GPU through Triton, or the CPU with
``-device cpu``), sample by sample with the same transform, probability and
statistics; see :func:`transform_training_batch`.

nnU-Net finds trainers by class name in its own package, or in the folders
listed in the ``nnUNet_extTrainer`` environment variable; :data:`TRAINER_FOLDER`
is such a folder::

    export nnUNet_extTrainer=$(python -c "import rsgt_fast.nnunet as n; print(n.TRAINER_FOLDER)")
    nnUNetv2_train DATASET CONFIG FOLD -tr nnUNetTrainerRSGT
    nnUNetv2_train DATASET CONFIG FOLD -tr nnUNetTrainerRSGTOnDevice

Requires the ``rsgt-fast[nnunet]`` extra.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path

from ._optional import require
from .batchgenerators import SmoothGrayValueTransform

_trainer = require("nnunetv2.training.nnUNetTrainer.nnUNetTrainer", "nnunet", "nnunet")
_random = require("batchgeneratorsv2.transforms.utils.random", "nnunet", "nnunet")
_compose = require("batchgeneratorsv2.transforms.utils.compose", "nnunet", "nnunet")
_mirroring = require("batchgeneratorsv2.transforms.spatial.mirroring", "nnunet", "nnunet")
_masking = require("batchgeneratorsv2.transforms.utils.nnunet_masking", "nnunet", "nnunet")

from . import torch as _tensors  # noqa: E402  (after the checks that name the extra)

torch = _tensors.torch

__all__ = ["nnUNetTrainerRSGT", "nnUNetTrainerRSGTOnDevice", "RSGT_PROBABILITY",
           "TRAINER_FOLDER", "with_rsgt", "mark_outside_nan", "transform_training_batch"]

_log = logging.getLogger(__name__)

#: Probability that a training sample is transformed.
RSGT_PROBABILITY = 0.3

#: A folder holding only modules that expose :class:`nnUNetTrainerRSGT` and
#: :class:`nnUNetTrainerRSGTOnDevice`, for nnU-Net's ``nnUNet_extTrainer`` search.
TRAINER_FOLDER = str(Path(__file__).resolve().parent / "nnunet_trainers")


#: nnU-Net's steps after its intensity transforms (bgv2 spells one "Tansform").
_AFTER_INTENSITY = {"MaskImageTransform", "RemoveLabelTansform", "RemoveLabelTransform",
                    "MoveSegAsOneHotToDataTransform", "ConvertSegmentationToRegionsTransform",
                    "DownsampleSegForDSTransform"}


def with_rsgt(composed, transform=None, probability=None):
    """``composed`` (bgv2 ``ComposeTransforms``) with RSGT inserted before mirroring.

    Without a mirroring transform, RSGT goes before nnU-Net's mask, label and
    cascade steps (which would otherwise put segmentation channels into the
    image it transforms).
    """
    transform = SmoothGrayValueTransform() if transform is None else transform
    probability = RSGT_PROBABILITY if probability is None else probability
    wrapped = _random.RandomTransform(transform, apply_probability=probability)
    steps = list(composed.transforms)
    position = next((i for i, t in enumerate(steps)
                     if isinstance(t, _mirroring.MirrorTransform)), None)
    if position is None:  # before nnU-Net's mask, label and cascade steps
        position = next((i for i, t in enumerate(steps)
                         if type(t).__name__ in _AFTER_INTENSITY), len(steps))
    steps.insert(position, wrapped)
    return _compose.ComposeTransforms(steps)


class nnUNetTrainerRSGT(_trainer.nnUNetTrainer):
    """nnU-Net v2's default trainer with random smooth gray value transformations."""

    #: Probability that a training sample is transformed (a subclass may change it).
    rsgt_probability = RSGT_PROBABILITY

    @classmethod
    def get_training_transforms(cls, patch_size, rotation_for_DA, deep_supervision_scales,
                                mirror_axes, do_dummy_2d_data_aug, use_mask_for_norm=None,
                                is_cascaded=False, foreground_labels=None, regions=None,
                                ignore_label=None):
        """nnU-Net's training transforms with RSGT before mirroring (same arguments)."""
        composed = _trainer.nnUNetTrainer.get_training_transforms(
            patch_size, rotation_for_DA, deep_supervision_scales, mirror_axes,
            do_dummy_2d_data_aug, use_mask_for_norm=use_mask_for_norm, is_cascaded=is_cascaded,
            foreground_labels=foreground_labels, regions=regions, ignore_label=ignore_label)
        return with_rsgt(composed, SmoothGrayValueTransform(use_mask_for_norm=use_mask_for_norm),
                         cls.rsgt_probability)


def mark_outside_nan(composed):
    """``composed`` with nnU-Net's ``MaskImageTransform`` filling NaN instead of 0.

    By the time a batch reaches the trainer, nnU-Net's workers have replaced
    the segmentation's ``-1`` (outside the nonzero mask) by 0, so the mask is
    gone; NaN in the masked channels carries it to
    :func:`transform_training_batch`, which reads it and writes nnU-Net's 0.
    """
    steps = [_masking.MaskImageTransform(apply_to_channels=list(t.apply_to_channels),
                                         channel_idx_in_seg=t.channel_idx_in_seg,
                                         set_outside_to=math.nan)
             if isinstance(t, _masking.MaskImageTransform) else t for t in composed.transforms]
    return _compose.ComposeTransforms(steps)


def transform_training_batch(data, transform, probability=RSGT_PROBABILITY, n_channels=None):
    """RSGT on each sample of an nnU-Net training batch, in place, on the batch's device.

    Each sample is what :class:`nnUNetTrainerRSGT`'s workers would make of it:
    bgv2's ``RandomTransform(transform, probability)`` on its image, drawing
    from torch's global generator in the same order, so the same seed gives
    the same result (the spatial transforms before it move voxels, not
    values: the curve and the statistics do not depend on where a voxel is).

    Parameters
    ----------
    data : torch.Tensor
        ``(B, C, X, Y[, Z])`` floating-point batch (nnU-Net's ``batch['data']``).
    transform : SmoothGrayValueTransform
        The per-sample transform; in its ``use_mask_for_norm`` channels the
        voxels outside nnU-Net's mask are NaN (:func:`mark_outside_nan`): they
        become 0, as nnU-Net's own masking leaves them, and stay out of the
        range, the curve and the statistics.
    probability : float
        Probability that a sample is transformed.
    n_channels : int, optional
        The image channels, first on axis 1 (default: all); the channels after
        them (the previous stage's one-hot segmentation in a cascade) are left
        alone, as the workers leave them.

    Returns
    -------
    int
        The number of samples transformed.
    """
    if not isinstance(data, torch.Tensor) or not data.is_floating_point():
        got = data.dtype if isinstance(data, torch.Tensor) else type(data).__name__
        raise TypeError(f"batch['data'] must be a floating-point torch.Tensor, got {got}")
    if data.ndim not in (4, 5):
        raise ValueError(f"batch['data'] must be (B, C, X, Y) or (B, C, X, Y, Z), got shape "
                         f"{tuple(data.shape)}")
    n_channels = data.shape[1] if n_channels is None else n_channels
    masked = [c for c, flag in enumerate(transform.use_mask_for_norm[:n_channels]) if flag]
    wrapped = _random.RandomTransform(transform, apply_probability=probability)
    done = 0
    for b in range(data.shape[0]):
        image = data[b, :n_channels]
        sample = {"image": image}
        if masked:
            outside = torch.isnan(image[masked[0]])
            for c in masked:
                image[c].masked_fill_(outside, 0.0)
            # nnU-Net's marking, as the transform reads it: -1 outside the mask
            sample["segmentation"] = outside.to(torch.int8).neg_().unsqueeze(0)
        params = wrapped.get_parameters(**sample)
        if params["apply_transform"]:
            out = wrapped.apply(sample, **params)["image"]
            if out is not image:
                image.copy_(out)
            done += 1
    return done


def _serves_in_place(device):
    """Whether :mod:`rsgt_fast.torch` transforms tensors on ``device`` where they lie."""
    return device.type == "cpu" or (device.type == "cuda" and _tensors._gpu() is not None)


class nnUNetTrainerRSGTOnDevice(_trainer.nnUNetTrainer):
    """nnU-Net v2's default trainer with RSGT on each training batch on the trainer's device.

    nnU-Net's data loading workers run its own transforms only (their masking
    fills NaN instead of 0, see :func:`mark_outside_nan`); ``train_step``
    moves the batch to the device, applies :func:`transform_training_batch`
    with :attr:`rsgt_probability` and the configuration's
    ``use_mask_for_norm``, then runs nnU-Net's step.  Validation batches are
    not touched.  On a device where that cannot happen in place (neither the
    CPU nor CUDA with Triton), the batch is transformed on the host before it
    moves, and one log line says so.  The training log gets, each epoch, the
    number of samples transformed.
    """

    #: Probability that a training sample is transformed (a subclass may change it).
    rsgt_probability = RSGT_PROBABILITY

    @staticmethod
    def get_training_transforms(patch_size, rotation_for_DA, deep_supervision_scales,
                                mirror_axes, do_dummy_2d_data_aug, use_mask_for_norm=None,
                                is_cascaded=False, foreground_labels=None, regions=None,
                                ignore_label=None):
        """nnU-Net's training transforms, the mask marked NaN (same arguments)."""
        return mark_outside_nan(_trainer.nnUNetTrainer.get_training_transforms(
            patch_size, rotation_for_DA, deep_supervision_scales, mirror_axes,
            do_dummy_2d_data_aug, use_mask_for_norm=use_mask_for_norm, is_cascaded=is_cascaded,
            foreground_labels=foreground_labels, regions=regions, ignore_label=ignore_label))

    def _rsgt_state(self):
        """The transform, where it runs and this epoch's counts (made on first use)."""
        state = self.__dict__.get("_rsgt")
        if state is None:
            in_place = _serves_in_place(self.device)
            if not in_place:
                _log.warning("RSGT cannot transform tensors in place on %s (it needs the CPU "
                             "or CUDA with Triton): training batches are transformed on the "
                             "host before they move there", self.device)
            n_channels = self.num_input_channels
            if self.is_cascaded:
                n_channels -= len(self.label_manager.foreground_labels)
            transform = SmoothGrayValueTransform(
                use_mask_for_norm=self.configuration_manager.use_mask_for_norm,
                n_threads=os.cpu_count() or 1)
            state = self._rsgt = {"transform": transform, "in_place": in_place,
                                  "n_channels": n_channels, "done": 0, "seen": 0}
        return state

    def train_step(self, batch: dict) -> dict:
        """nnU-Net's training step on the batch after RSGT."""
        state = self._rsgt_state()
        data = batch["data"]
        if state["in_place"] and isinstance(data, torch.Tensor):
            data = data.to(self.device, non_blocking=True)
        state["done"] += transform_training_batch(data, state["transform"],
                                                  self.rsgt_probability, state["n_channels"])
        state["seen"] += data.shape[0]
        return super().train_step({**batch, "data": data})

    def on_train_epoch_end(self, train_outputs):
        """nnU-Net's epoch end, and a log line with the number of samples transformed."""
        super().on_train_epoch_end(train_outputs)
        state = self._rsgt_state()
        where = self.device.type if state["in_place"] else "host"
        self.print_to_log_file(f"RSGT ({where}): {state['done']} of {state['seen']} training "
                               "samples transformed")
        state["done"] = state["seen"] = 0
