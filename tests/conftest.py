"""Shared fixtures: small CT- and MR-like arrays; the GPU backend in Triton's interpreter.

Without CUDA, ``rsgt_fast._gpu`` is imported here, first, with
``TRITON_INTERPRET=1`` set while Triton itself is imported: its kernels then
run on CPU tensors (``tests/test_gpu.py``), whichever test module imports the
backend first (the nnU-Net trainer's, say).
"""

import os

import numpy as np
import pytest


def _interpreted_gpu_backend():
    try:
        import torch
    except ImportError:
        return
    if torch.cuda.is_available():
        return
    # Set before Triton's first import, so that its own library (tl.min...) runs
    # interpreted too, not only the backend's kernels.
    os.environ["TRITON_INTERPRET"] = "1"
    try:
        import triton

        from rsgt_fast import _gpu  # noqa: F401
        triton.runtime.jit.mangle_type(0)  # the modules Triton imports at its first launch
    except ImportError:  # no Triton, or one the backend refuses
        pass
    finally:
        del os.environ["TRITON_INTERPRET"]


_interpreted_gpu_backend()


@pytest.fixture
def ct_batch():
    """Four small int16 volumes in Hounsfield units."""
    rng = np.random.default_rng(1234)
    return rng.integers(-1024, 3072, size=(4, 6, 7, 5), dtype=np.int16)


@pytest.fixture
def mr_batch():
    """Three small float32 volumes with MR-like positive intensities."""
    rng = np.random.default_rng(4321)
    return np.clip(rng.normal(500, 150, size=(3, 5, 6, 4)), 0, None).astype(np.float32)
