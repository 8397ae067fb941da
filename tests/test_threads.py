"""rsgt_fast under concurrent Python threads and under ``thread_limit``.

The kernels are deterministic: the serial and the parallel variant, any
number of numba threads and any interleaving of Python threads must give the
same bytes for the same input and random state.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numba
import numpy as np
import pytest

import rsgt_fast
from rsgt_fast.augmentation import random_smooth_grayvalue_transform
from rsgt_fast.normalization import normalize_ct_scan, normalize_mr_scan

SCRIPTS = Path(__file__).resolve().parent / "scripts"
SCENARIO_TIMEOUT = 300


@pytest.mark.timeout(SCENARIO_TIMEOUT + 60, method="thread")
@pytest.mark.needs_jit  # as Python, 8 threads x 20 rounds take many minutes
def test_eight_threads_match_sequential_results():
    """8 threads x 20 rounds of every entry point: no crash, same bytes as sequential calls."""
    command = [sys.executable, str(SCRIPTS / "threads_scenario.py"), "8", "20"]
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=SCENARIO_TIMEOUT,
                              env=dict(os.environ))
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"threads scenario hung\nstdout:\n{exc.stdout}\nstderr:\n{exc.stderr}")
    assert proc.returncode == 0, (
        f"threads scenario exited with status {proc.returncode}\n"
        f"stdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-4000:]}"
    )
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["calls"] == 160
    assert report["errors"] == []
    assert report["mismatches"] == []
    assert report["invalid"] == []


# ------------------------------------------------------------ thread_limit

#: 2 x 40000 elements: well above the size under which calls run serially,
#: so the default call uses the parallel kernels.
SHAPE = (2, 200, 200)


def _input(dtype, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(-1024, 3072, size=SHAPE)
    if np.dtype(dtype).kind == "u":
        x = x % 256 if np.dtype(dtype).itemsize == 1 else x + 1024
    if np.dtype(dtype).kind == "f":
        x = x + rng.uniform(-0.5, 0.5, size=SHAPE)
    return x.astype(dtype)


def _all_entry_points(x, out_dtype):
    np.random.seed(11)
    return {
        "batch": rsgt_fast.transform_batch(x, rng=5, dtype=out_dtype),
        "batch_min_max": rsgt_fast.transform_batch(x, rng=6, dtype=out_dtype,
                                                   min_max_val=(-500, 2500)),
        "facade": random_smooth_grayvalue_transform(x, dtype=out_dtype),
        "ct": normalize_ct_scan(x, dtype=out_dtype),
        "mr": normalize_mr_scan(x, dtype=out_dtype),
    }


@pytest.mark.parametrize(
    "dtype, out_dtype",
    [
        ("int16", "float32"),
        ("uint8", "float32"),
        ("int32", "float32"),
        ("int64", "float64"),
        ("float32", "float32"),
        ("float64", "float64"),
        ("float16", "float16"),
        ("int16", "float16"),
    ],
)
def test_thread_limit_gives_identical_results(dtype, out_dtype):
    """thread_limit(1) (serial kernels) and thread_limit(2) equal the default, bit for bit."""
    x = _input(dtype)
    threads_before = numba.get_num_threads()
    default = _all_entry_points(x, out_dtype)
    for limit in (1, 2, None):
        with rsgt_fast.thread_limit(limit):
            limited = _all_entry_points(x, out_dtype)
        assert numba.get_num_threads() == threads_before
        for key, value in default.items():
            assert limited[key].dtype == value.dtype
            np.testing.assert_array_equal(limited[key], value,
                                          err_msg=f"{key} under thread_limit({limit})")


def test_thread_limit_nests_and_restores():
    """An inner limit applies inside its block only; the outer one comes back after it."""
    x = _input("int16")
    reference = rsgt_fast.transform_batch(x, rng=1)
    threads_before = numba.get_num_threads()
    with rsgt_fast.thread_limit(1):
        with rsgt_fast.thread_limit(2):
            inner = rsgt_fast.transform_batch(x, rng=1)
            assert numba.get_num_threads() == threads_before
        outer = rsgt_fast.transform_batch(x, rng=1)
    np.testing.assert_array_equal(inner, reference)
    np.testing.assert_array_equal(outer, reference)
    assert numba.get_num_threads() == threads_before


def test_thread_limit_restores_after_an_error():
    """A call that raises inside the block leaves the thread count and later results intact."""
    x = _input("float32")
    reference = rsgt_fast.transform_batch(x, rng=2)
    threads_before = numba.get_num_threads()
    bad = x.copy()
    bad[1, 7, 7] = np.nan
    with rsgt_fast.thread_limit(1):
        with pytest.raises(ValueError):
            rsgt_fast.transform_batch(bad, rng=2)
    assert numba.get_num_threads() == threads_before
    np.testing.assert_array_equal(rsgt_fast.transform_batch(x, rng=2), reference)


@pytest.mark.parametrize("value, error", [(0, ValueError), (-3, ValueError), (1.5, TypeError),
                                          (True, TypeError), ("2", TypeError)])
def test_thread_limit_rejects_bad_values(value, error):
    with pytest.raises(error):
        with rsgt_fast.thread_limit(value):
            pass
