"""Scalar helpers of the kernels against numpy."""

import numba
import numpy as np

from rsgt_fast import _kernels


# The helpers have no Python wrapper: reach them through compiled loops.
@numba.njit
def half_bits_of(values):
    out = np.empty(values.shape[0], np.uint16)
    for i in range(values.shape[0]):
        out[i] = _kernels.half_bits(values[i])
    return out


@numba.njit
def half_values_of(bits):
    out = np.empty(bits.shape[0])
    for i in range(bits.shape[0]):
        out[i] = _kernels.half_value(bits[i])
    return out


def test_half_bits_rounds_like_numpy():
    rng = np.random.default_rng(0)
    values = np.concatenate([
        rng.random(20000),
        rng.random(5000) * 2.0**-14,           # float16 subnormal range
        np.linspace(0, 1, 4097),
        np.arange(2049) * 2.0**-24,            # exact subnormals
        (np.arange(1, 2048) + 0.5) * 2.0**-24,  # ties between subnormals
        1 - (np.arange(1, 300) + 0.5) * 2.0**-12,  # ties just below 1
        np.arange(0, 4097, dtype=np.float64),  # integers up to 4096
    ])
    expected = values.astype(np.float16).view(np.uint16)
    actual = half_bits_of(values)
    np.testing.assert_array_equal(actual, expected)


def test_half_value_decodes_every_finite_pattern():
    bits = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16)
    halves = bits.view(np.float16)
    finite = np.isfinite(halves)
    decoded = half_values_of(bits[finite].astype(np.int64))
    np.testing.assert_array_equal(decoded, halves[finite].astype(np.float64))


def test_row_minmax_orders_floats_by_value():
    x = np.array([[0.5, -3.0, 2.0, -0.0, 1e-30], [-1e30, -2.0, 7.0, 3.0, 0.0]], np.float32)
    from rsgt_fast.scan import check_finite
    lo, hi = check_finite(x, "float", "x")
    np.testing.assert_array_equal(lo, x.min(axis=1))
    np.testing.assert_array_equal(hi, x.max(axis=1))
