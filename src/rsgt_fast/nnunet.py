"""nnU-Net v2: a trainer whose training augmentation includes RSGT.

:class:`nnUNetTrainerRSGT` is nnU-Net v2's ``nnUNetTrainer`` with one change:
``get_training_transforms`` inserts
:class:`~rsgt_fast.batchgenerators.SmoothGrayValueTransform` (in bgv2's
``RandomTransform``, applied to a sample with probability
:data:`RSGT_PROBABILITY`) after nnU-Net's own intensity transforms and before
mirroring.  Every other transform is nnU-Net's, unchanged.

nnU-Net finds trainers by class name in its own package, or in the folders
listed in the ``nnUNet_extTrainer`` environment variable; :data:`TRAINER_FOLDER`
is such a folder::

    export nnUNet_extTrainer=$(python -c "import rsgt_fast.nnunet as n; print(n.TRAINER_FOLDER)")
    nnUNetv2_train DATASET CONFIG FOLD -tr nnUNetTrainerRSGT

Requires the ``rsgt-fast[nnunet]`` extra.
"""

from __future__ import annotations

from pathlib import Path

from ._optional import require
from .batchgenerators import SmoothGrayValueTransform

_trainer = require("nnunetv2.training.nnUNetTrainer.nnUNetTrainer", "nnunet", "nnunet")
_random = require("batchgeneratorsv2.transforms.utils.random", "nnunet", "nnunet")
_compose = require("batchgeneratorsv2.transforms.utils.compose", "nnunet", "nnunet")
_mirroring = require("batchgeneratorsv2.transforms.spatial.mirroring", "nnunet", "nnunet")

__all__ = ["nnUNetTrainerRSGT", "RSGT_PROBABILITY", "TRAINER_FOLDER", "with_rsgt"]

#: Probability that a training sample is transformed.
RSGT_PROBABILITY = 0.3

#: A folder holding only a module that exposes :class:`nnUNetTrainerRSGT`, for
#: nnU-Net's ``nnUNet_extTrainer`` search.
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

    @staticmethod
    def get_training_transforms(patch_size, rotation_for_DA, deep_supervision_scales,
                                mirror_axes, do_dummy_2d_data_aug, use_mask_for_norm=None,
                                is_cascaded=False, foreground_labels=None, regions=None,
                                ignore_label=None):
        """nnU-Net's training transforms with RSGT before mirroring (same arguments)."""
        composed = _trainer.nnUNetTrainer.get_training_transforms(
            patch_size, rotation_for_DA, deep_supervision_scales, mirror_axes,
            do_dummy_2d_data_aug, use_mask_for_norm=use_mask_for_norm, is_cascaded=is_cascaded,
            foreground_labels=foreground_labels, regions=regions, ignore_label=ignore_label)
        return with_rsgt(composed, SmoothGrayValueTransform(use_mask_for_norm=use_mask_for_norm))
