"""Shared fixtures: small CT- and MR-like arrays."""

import numpy as np
import pytest


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
