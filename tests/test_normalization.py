"""normalize_ct_scan and normalize_mr_scan against rsgt 1.1.0."""

import numpy as np
import pytest
import rsgt.normalization

from rsgt_fast.normalization import normalize_ct_scan, normalize_mr_scan

DTYPES = [np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64, np.uint64,
          np.float16, np.float32, np.float64]
OUTPUTS = ["float16", "float32", "float64"]


def sample(dtype, size=(23, 17, 5), seed=0):
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "f":
        return rng.normal(300, 900, size=size).astype(dtype)
    info = np.iinfo(dtype)
    low, high = max(int(info.min), -2500), min(int(info.max), 5500)
    return rng.integers(low, high, size=size, endpoint=True).astype(dtype)


def ulps_from(expected, actual):
    """Distance in units in the last place of ``actual``'s dtype from rsgt's value rounded to it."""
    rounded = np.asarray(expected).astype(actual.dtype)
    spacing = np.spacing(np.abs(rounded)).astype(np.float64)
    return float(np.max(np.abs(actual.astype(np.float64) - rounded.astype(np.float64)) / spacing))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("out_dtype", OUTPUTS)
def test_ct_equals_rsgt(dtype, out_dtype):
    image = sample(dtype)
    if np.dtype(dtype).itemsize == 1:
        # rsgt's ``image + 1000`` overflows 8-bit dtypes under numpy 2; the
        # same values in int16 give what it means to compute.
        with pytest.raises(OverflowError):
            rsgt.normalization.normalize_ct_scan(np.array([1], dtype))
        expected = rsgt.normalization.normalize_ct_scan(image.astype(np.int16), out_dtype)
    else:
        expected = rsgt.normalization.normalize_ct_scan(image, out_dtype)
    actual = normalize_ct_scan(image, out_dtype)
    assert actual.dtype == out_dtype and actual.shape == image.shape
    np.testing.assert_array_equal(actual, expected)


def test_ct_does_not_wrap_near_the_dtype_maximum():
    image = np.array([32767, 32000, -32768], np.int16)
    np.testing.assert_array_equal(normalize_ct_scan(image), [1.0, 1.0, 0.0])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("out_dtype", OUTPUTS)
@pytest.mark.parametrize("seed", [0, 1])
def test_mr_within_one_ulp_of_rsgt(dtype, out_dtype, seed):
    image = sample(dtype, seed=seed)
    with np.errstate(over="ignore", invalid="ignore"):
        expected = rsgt.normalization.normalize_mr_scan(image, out_dtype)
    actual = normalize_mr_scan(image, out_dtype)
    assert actual.dtype == out_dtype and actual.shape == image.shape
    assert ulps_from(expected, actual) <= 1


@pytest.mark.parametrize("size", [1, 2, 3, 19, 20, 21, 101, 70001])
def test_mr_percentiles_for_awkward_sizes(size):
    image = np.random.default_rng(size).normal(0, 1, size=size).astype(np.float32)
    expected = rsgt.normalization.normalize_mr_scan(image, "float32") if size > 1 else None
    actual = normalize_mr_scan(image)
    if expected is not None and np.isfinite(expected).all():
        assert ulps_from(expected, actual) <= 1
    assert np.isfinite(actual).all() and actual.min() >= 0 and actual.max() <= 1


def test_mr_with_many_equal_values_in_one_bin():
    # Most values share the histogram bin of the 5th percentile.
    image = np.full(100000, 1000.0, np.float64)
    image[:3000] = 1000.0 + np.arange(3000) * 1e-9
    image[-10000:] = np.linspace(2000, 3000, 10000)
    expected = rsgt.normalization.normalize_mr_scan(image, "float64")
    assert ulps_from(expected, normalize_mr_scan(image, "float64")) <= 1


def test_mr_flat_percentile_range_is_defined():
    image = np.zeros(100, np.int16)
    image[0], image[-1] = -5, 9
    out = normalize_mr_scan(image)
    assert out[0] == 0.0 and out[-1] == 1.0 and np.all(out[1:-1] == 0.5)
