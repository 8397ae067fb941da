"""The module nnU-Net imports for ``-tr nnUNetTrainerRSGTOnDevice`` (see nnUNetTrainerRSGT.py)."""

from rsgt_fast.nnunet import nnUNetTrainerRSGTOnDevice

__all__ = ["nnUNetTrainerRSGTOnDevice"]
