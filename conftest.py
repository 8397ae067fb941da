"""Test-session settings shared by tests/ and bench/."""

import os

# Tests and benchmarks use the parallel kernels from the first call that may:
# tests check them, benchmarks time the steady state.  The library's default
# waits until serial work would pay for compiling them (tests/test_tiers.py
# tests that policy; the start-up benchmark clears this for its processes).
# Processes started by the tests inherit it.
os.environ.setdefault("RSGT_FAST_COMPILE_AFTER", "0")

import numba  # noqa: E402
import pytest  # noqa: E402


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
