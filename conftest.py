"""Test-session settings shared by tests/ and bench/."""

import numba
import pytest


def pytest_collection_modifyitems(config, items):
    """Under ``NUMBA_DISABLE_JIT=1`` (the coverage run) skip what needs compiled kernels.

    Kernels then run as plain Python, thousands of times slower: tests marked
    ``slow`` (large volumes) or ``needs_jit`` (threading layers, timings) are
    left to the normal run.
    """
    if not numba.config.DISABLE_JIT:
        return
    skip = pytest.mark.skip(reason="needs compiled kernels; NUMBA_DISABLE_JIT=1 is set")
    for item in items:
        if "slow" in item.keywords or "needs_jit" in item.keywords:
            item.add_marker(skip)
