"""The module nnU-Net imports when ``nnUNet_extTrainer`` names this folder."""

from rsgt_fast.nnunet import nnUNetTrainerRSGT

__all__ = ["nnUNetTrainerRSGT"]
