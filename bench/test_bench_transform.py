"""Timings of ``transform_batch`` and the drop-in facade against rsgt 1.1.0 and a copy floor.

Contenders of one case share a benchmark group and the same input.  The
*floor* is ``np.copyto`` of the input into a preallocated output of the same
dtype: one read and one write, the least any transform has to do.  The *fresh
floor* is ``x.astype(dtype)``, the same into a new array, which also pays for
the new pages, as any call that returns a new array does.
"""

import numpy as np
import pytest
from rsgt.augmentation import random_smooth_grayvalue_transform as rsgt_transform

import rsgt_fast
from rsgt_fast.augmentation import random_smooth_grayvalue_transform as fast_transform

SEED = 7
RANGES = {"known range": (-1024, 3071), "own min/max": None}
BATCH_CONTENDERS = ["rsgt_fast", "rsgt_fast_out", "rsgt_loop", "floor", "floor_fresh"]


def shape_text(x):
    """``'8x128x128x128'`` for an array of that shape."""
    return "x".join(map(str, x.shape))


def batch_case(benchmark, timed, checks, x, min_max_val, contender, dtype="float32"):
    """Benchmark one contender on batch ``x`` and check its result.

    Integer results are checked against rsgt run with the same curves, float
    results against the exact curves, the rsgt loop against the facade (bit for
    bit, same global seed) and the floor against ``astype``.
    """
    out = np.empty(x.shape, dtype)

    def ours(out=None):
        return rsgt_fast.transform_batch(x, min_max_val=min_max_val, dtype=dtype, rng=SEED,
                                         out=out)

    if contender == "rsgt_fast":
        result = timed(ours, role="ours", contender="rsgt_fast.transform_batch")
    elif contender == "rsgt_fast_out":
        result = timed(lambda: ours(out), role="ours_out",
                       contender="rsgt_fast.transform_batch(out=)")
        assert result is out
    elif contender == "rsgt_loop":
        def loop():
            np.random.seed(SEED)  # a few microseconds; makes every round's result comparable
            return [rsgt_transform(e, min_max_val=min_max_val, dtype=dtype) for e in x]

        result = timed(loop, role="rsgt", contender="rsgt loop over the batch")
        np.random.seed(SEED)
        expected = [fast_transform(e, min_max_val=min_max_val, dtype=dtype) for e in x]
        np.testing.assert_array_equal(np.stack(result), np.stack(expected))
        return
    elif contender == "floor":
        timed(lambda: np.copyto(out, x), role="floor",
              contender=f"floor: np.copyto into {np.dtype(dtype).name}")
        np.testing.assert_array_equal(out, x.astype(dtype))
        return
    else:
        result = timed(lambda: x.astype(dtype), role="floor_fresh",
                       contender=f"fresh floor: x.astype({np.dtype(dtype).name})")
        assert result.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(result, x)
        return

    _, curves = rsgt_fast.transform_batch(x, min_max_val=min_max_val, dtype=dtype, rng=SEED,
                                          return_curves=True)
    if x.dtype.kind == "f":
        checks.unit_interval(result, x.shape, dtype)
        np.testing.assert_allclose(result, curves.evaluate(x), rtol=0, atol=1e-5)
    else:
        checks.matches_rsgt(x, result, curves, min_max_val, dtype)


@pytest.mark.parametrize("contender", BATCH_CONTENDERS)
@pytest.mark.parametrize("range_name", list(RANGES))
def test_ct_batch(benchmark, timed, checks, ct_batch, range_name, contender):
    """Case 1: int16 CT batch, with the CT range given and with each element's own range."""
    label = "a" if range_name == "known range" else "b"
    benchmark.group = f"1{label} transform_batch, int16 CT {shape_text(ct_batch)}, {range_name}"
    batch_case(benchmark, timed, checks, ct_batch, RANGES[range_name], contender)


@pytest.mark.parametrize("contender", ["rsgt_fast", "rsgt"])
@pytest.mark.parametrize("range_name", list(RANGES))
@pytest.mark.parametrize("image_name", ["ct_volume", "ct_slice"])
def test_facade(benchmark, timed, request, image_name, range_name, contender):
    """Case 2: the drop-in facade against rsgt on one image, same global seed."""
    image = request.getfixturevalue(image_name)
    label = {"ct_volume": "a", "ct_slice": "c"}[image_name]
    label = chr(ord(label) + (range_name == "own min/max"))
    benchmark.group = f"2{label} facade, int16 CT {shape_text(image)}, {range_name}"
    min_max_val = RANGES[range_name]
    fn, role, name = {
        "rsgt_fast": (fast_transform, "ours", "rsgt_fast facade"),
        "rsgt": (rsgt_transform, "rsgt", "rsgt 1.1.0"),
    }[contender]
    np.random.seed(SEED)
    result = timed(lambda: fn(image, min_max_val=min_max_val), role=role, contender=name)
    assert result.shape == image.shape and result.dtype == np.float32
    np.random.seed(SEED)
    expected = rsgt_transform(image, min_max_val=min_max_val)
    np.random.seed(SEED)
    np.testing.assert_array_equal(fast_transform(image, min_max_val=min_max_val), expected)


@pytest.mark.parametrize("contender", BATCH_CONTENDERS)
def test_mr_batch(benchmark, timed, checks, mr_batch, contender):
    """Case 3: float32 MR-like batch, own min/max (rsgt truncates the values)."""
    benchmark.group = f"3 transform_batch, float32 MR {shape_text(mr_batch)}, own min/max"
    if contender == "rsgt_loop":
        benchmark.extra_info["note"] = "rsgt truncates float input to integers"
    batch_case(benchmark, timed, checks, mr_batch, None, contender)


@pytest.mark.parametrize("contender", BATCH_CONTENDERS)
def test_uint16_batch(benchmark, timed, checks, uint16_batch, contender):
    """Case 4: uint16 batch spanning 0..65535, own min/max."""
    benchmark.group = (f"4 transform_batch, uint16 {shape_text(uint16_batch)} (0..65535), "
                       "own min/max")
    batch_case(benchmark, timed, checks, uint16_batch, None, contender)


@pytest.mark.parametrize("contender", ["rsgt_fast_out", "floor"])
@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_output_dtype(benchmark, timed, checks, ct_batch, dtype, contender):
    """Case 6: output dtypes for the known-range CT batch, each against its own copy floor."""
    benchmark.group = (f"6{'abc'[['float16', 'float32', 'float64'].index(dtype)]} "
                       f"transform_batch, int16 CT {shape_text(ct_batch)}, known range, "
                       f"{dtype} output")
    batch_case(benchmark, timed, checks, ct_batch, RANGES["known range"], contender, dtype)
