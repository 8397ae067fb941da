"""``nan_policy="omit"``, ``mask=`` and ``fill=`` of ``transform_batch`` against naive.py."""

import numpy as np
import pytest

import naive
from rsgt_fast import Curves, transform_batch

OUT_DTYPES = [np.float16, np.float32, np.float64]


def tolerance(out_dtype, base):
    return base + float(np.finfo(out_dtype).eps) / 2


def params(curves):
    return curves.frequencies, curves.amplitudes, curves.offsets


def mr_with_holes(dtype, seed=0, shape=(3, 6, 7)):
    """An MR-like float batch with NaN outside a field of view and a few ±Inf."""
    rng = np.random.default_rng(seed)
    x = rng.gamma(2.0, 150.0, shape).astype(dtype)
    x[:, 0, :] = np.nan
    x[0, 1, 2], x[1, 2, 3] = np.inf, -np.inf
    return x


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("out_dtype", OUT_DTYPES)
@pytest.mark.parametrize("min_max_val", [None, (10.0, 500.0)])
def test_omit_ranges_come_from_finite_values(dtype, out_dtype, min_max_val):
    x = mr_with_holes(dtype)
    before = x.copy()
    out, curves = transform_batch(x, nan_policy="omit", rng=4, dtype=out_dtype,
                                  min_max_val=min_max_val, return_curves=True)
    expected = naive.transform_selected(x, *params(curves), min_max_val=min_max_val)
    np.testing.assert_array_equal(np.isnan(out), np.isnan(x))
    np.testing.assert_allclose(out.astype(np.float64), expected, rtol=0,
                               atol=tolerance(out_dtype, 1e-4))
    np.testing.assert_array_equal(x, before)  # never modified (NaN compare equal here)
    if min_max_val is None:
        finite = np.where(np.isfinite(x), x, np.nan).reshape(3, -1).astype(np.float64)
        np.testing.assert_array_equal(curves.bounds,
                                      np.stack([np.nanmin(finite, 1), np.nanmax(finite, 1)], 1))


def test_infinities_get_the_ends_of_the_range():
    x = mr_with_holes(np.float32)
    finite = np.where(np.isfinite(x), x, np.nan)
    clipped = np.where(np.isposinf(x), np.nanmax(finite, axis=(1, 2), keepdims=True),
                       np.where(np.isneginf(x), np.nanmin(finite, axis=(1, 2), keepdims=True), x))
    out = transform_batch(x, nan_policy="omit", rng=2)
    np.testing.assert_array_equal(out, transform_batch(clipped, nan_policy="omit", rng=2))


def test_finite_values_as_if_the_others_were_absent():
    x = mr_with_holes(np.float64)
    out, curves = transform_batch(x, nan_policy="omit", rng=8, return_curves=True)
    for b in range(x.shape[0]):
        keep = np.isfinite(x[b])
        kept = x[b][keep][None]
        alone = transform_batch(kept, curves=curves[b:b + 1])[0]
        np.testing.assert_array_equal(out[b][keep], alone)
        _, own = transform_batch(kept, rng=0, return_curves=True)
        np.testing.assert_array_equal(own.bounds[0], curves.bounds[b])


def test_without_nan_omit_is_the_plain_call():
    x = np.random.default_rng(1).normal(100, 20, (4, 300)).astype(np.float32)
    np.testing.assert_array_equal(transform_batch(x, nan_policy="omit", rng=3),
                                  transform_batch(x, rng=3))


def test_raise_is_the_default_and_names_the_element():
    x = mr_with_holes(np.float32)
    with pytest.raises(ValueError, match="x must be finite, but element 0 holds NaN or Inf"):
        transform_batch(x, rng=0)


def test_an_element_without_finite_values_is_named():
    x = mr_with_holes(np.float32)
    x[2] = np.nan
    with pytest.raises(ValueError, match="element 2 holds no finite value"):
        transform_batch(x, nan_policy="omit", rng=0)


@pytest.mark.parametrize("dtype", [np.int16, np.uint8, np.int64, np.float32])
@pytest.mark.parametrize("shared", [False, True])
@pytest.mark.parametrize("out_dtype", OUT_DTYPES)
def test_mask_sets_the_range_and_fills_the_rest(dtype, shared, out_dtype):
    rng = np.random.default_rng(5)
    x = rng.integers(-1000, 3000, (3, 9, 8)).astype(dtype) if np.dtype(dtype).kind != "u" \
        else rng.integers(0, 255, (3, 9, 8)).astype(dtype)
    mask = rng.random(x.shape[1:] if shared else x.shape) > 0.4
    out, curves = transform_batch(x, mask=mask, fill=-1.0, rng=6, dtype=out_dtype,
                                  return_curves=True)
    expected = naive.transform_selected(x, *params(curves), mask=mask, fill=-1.0)
    np.testing.assert_allclose(out.astype(np.float64), expected, rtol=0,
                               atol=tolerance(out_dtype, 1e-4 if dtype == np.float32 else 1e-6))
    assert np.all(out[~np.broadcast_to(mask, x.shape)] == -1.0)


def test_a_zero_background_leaves_the_range():
    x = np.zeros((2, 20, 20), np.int16)
    x[:, 5:15, 5:15] = np.random.default_rng(0).integers(200, 900, (2, 10, 10))
    _, curves = transform_batch(x, mask=x != 0, rng=1, return_curves=True)
    assert [tuple(b) for b in curves.bounds] == [(int(x[i][x[i] != 0].min()),
                                                  int(x[i][x[i] != 0].max())) for i in range(2)]


def test_mask_and_omit_combine_and_replay_block_by_block():
    x = mr_with_holes(np.float32, shape=(5, 10, 11))
    mask = np.random.default_rng(3).random(x.shape) > 0.3
    out, curves = transform_batch(x, nan_policy="omit", mask=mask, rng=9, return_curves=True)
    expected = naive.transform_selected(x, *params(curves), mask=mask)
    np.testing.assert_allclose(out, expected, rtol=0, atol=tolerance(np.float32, 1e-4))
    assert np.all(np.isnan(out) == (np.isnan(x) & mask))
    for i, j in [(0, 5), (1, 3), (4, 5)]:
        again = transform_batch(x[i:j], nan_policy="omit", mask=mask[i:j], curves=curves[i:j])
        np.testing.assert_array_equal(again, out[i:j])
    restored = Curves.from_dict(curves.to_dict())
    np.testing.assert_array_equal(
        transform_batch(x, nan_policy="omit", mask=mask, curves=restored), out)


def test_keys_keep_their_curve_under_a_mask():
    x = np.random.default_rng(4).integers(0, 4000, (4, 50)).astype(np.int16)
    mask = x > 1000
    whole = transform_batch(x, mask=mask, rng=3, keys=[7, 8, 9, 10])
    part = transform_batch(x[2:], mask=mask[2:], rng=3, keys=[9, 10])
    np.testing.assert_array_equal(whole[2:], part)


def test_in_place_with_nan():
    x = mr_with_holes(np.float32)
    expected = transform_batch(x, nan_policy="omit", rng=1)
    y = x.copy()
    result = transform_batch(y, nan_policy="omit", rng=1, out=y)
    assert result is y
    np.testing.assert_array_equal(y, expected)


def test_large_batches_on_threads_match_small_blocks():
    rng = np.random.default_rng(0)
    x = rng.normal(500, 100, (2, 1 << 20)).astype(np.float32)
    x[:, ::7] = np.nan
    mask = rng.random(x.shape[1]) > 0.1
    out, curves = transform_batch(x, nan_policy="omit", mask=mask, rng=2, return_curves=True)
    one = transform_batch(x[1:], nan_policy="omit", mask=mask, curves=curves[1:])
    np.testing.assert_array_equal(out[1:], one)
    np.testing.assert_array_equal(np.isnan(out), np.isnan(x) & mask)
    assert np.all(out[:, ~mask] == 0.0)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"nan_policy": "ignore"}, ValueError, "nan_policy must be 'raise' or 'omit'"),
    ({"nan_policy": None}, ValueError, "nan_policy"),
    ({"mask": np.ones((2, 3), np.uint8)}, TypeError, "mask must be a boolean array"),
    ({"mask": np.ones((3, 3), bool)}, ValueError, "mask must have the batch's shape"),
    ({"mask": np.zeros((2, 4, 3), bool)}, ValueError, "mask selects no value of x element 0"),
    ({"fill": "0"}, TypeError, "fill must be a real number"),
    ({"fill": np.inf}, ValueError, "fill must be a finite number or NaN"),
    ({"fill": 1e6, "dtype": "float16"}, ValueError, "float16"),
])
def test_bad_selection_arguments(kwargs, error, match):
    x = np.arange(24, dtype=np.int16).reshape(2, 4, 3)
    with pytest.raises(error, match=match):
        transform_batch(x, rng=0, **kwargs)


def test_nan_fill():
    x = np.arange(24, dtype=np.int16).reshape(2, 12)
    mask = x % 3 != 0
    out = transform_batch(x, mask=mask, fill=np.nan, rng=0)
    np.testing.assert_array_equal(np.isnan(out), ~mask)


def test_nan_inside_the_mask_raises_unless_omitted():
    x = mr_with_holes(np.float32)
    inside = np.ones(x.shape, bool)
    with pytest.raises(ValueError, match="element 0 holds NaN or Inf inside the mask"):
        transform_batch(x, mask=inside, rng=0)
    outside = np.isfinite(x)  # the NaN and Inf lie outside: no complaint
    out = transform_batch(x, mask=outside, rng=0)
    assert np.all(out[~outside] == 0.0)
