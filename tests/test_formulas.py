"""The formulas of ``_formulas.py``: compiled and host versions of one source, against numpy.

The compiled versions have no Python wrapper, so the tests reach them through
small compiled loops; the host versions are what ``_jit.python`` gives.
"""

import math

import numba
import numpy as np
import pytest

import naive
from rsgt_fast import _formulas as F
from rsgt_fast._jit import python

TWO_PI = 2 * math.pi


@numba.njit
def half_bits_of(values):
    out = np.empty(values.shape[0], np.uint16)
    for i in range(values.shape[0]):
        out[i] = F.half_bits(values[i])
    return out


@numba.njit
def half_values_of(bits):
    out = np.empty(bits.shape[0])
    for i in range(bits.shape[0]):
        out[i] = F.half_value(bits[i])
    return out


@numba.njit
def curve_values_of(t, curve, b):
    out = np.empty(t.shape[0])
    for i in range(t.shape[0]):
        out[i] = F.curve_value(t[i], curve, b)
    return out


@numba.njit
def normalized_of(y, lo, hi):
    out = np.empty(y.shape[0])
    for i in range(y.shape[0]):
        out[i] = F.normalized(y[i], lo, hi)
    return out


@numba.njit
def percentile_scaled_of(y, lo, hi):
    out = np.empty(y.shape[0])
    for i in range(y.shape[0]):
        out[i] = F.percentile_scaled(y[i], lo, hi)
    return out


@numba.njit
def place_of(v, lo, hi, unit, unit_lo, scale):
    out = np.empty(v.shape[0], lo.dtype)
    for i in range(v.shape[0]):
        out[i] = F.place(v[i], lo[0], hi[0], unit[0], unit_lo[0], scale[0])
    return out


@numba.njit
def place_integer_of(v, low, high, base, unit, scale, last):
    out = np.empty(v.shape[0])
    for i in range(v.shape[0]):
        out[i] = F.place_integer(v[i], low, high, base, unit, scale, last)
    return out


@numba.njit
def grid_of(curve, n, start, stop, values):
    F.sample_grid(curve, np.int64(0), n, start, stop, values)


@numba.njit
def grid_points_of(n):
    out = np.empty(n)
    for j in range(n):
        out[j] = F.grid_point(j, n)
    return out


def numpy_sines_are_the_c_librarys():
    t = np.random.default_rng(11).uniform(-80.0, 80.0, 4096)
    return np.array_equal(np.sin(t), np.array([math.sin(v) for v in t]))


# ---------------------------------------------------------------- float16


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
    np.testing.assert_array_equal(half_bits_of(values), values.astype(np.float16).view(np.uint16))
    # The host's float16 rounding is numpy's own.
    np.testing.assert_array_equal(F.stored(values, np.float16), half_bits_of(values))


def test_half_value_decodes_every_finite_pattern():
    bits = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16)
    halves = bits.view(np.float16)
    finite = np.isfinite(halves)
    decoded = half_values_of(bits[finite].astype(np.int64))
    np.testing.assert_array_equal(decoded, halves[finite].astype(np.float64))


# ---------------------------------------------------------------- the curve


def test_the_host_curve_is_rsgts_arithmetic():
    """On arrays, the curve formula computes rsgt 1.1.0's samples bit for bit."""
    for n in (2, 17, 4096, 65537):
        for curve in naive.random_curves(n, 5):
            f, a, o = curve
            t = np.linspace(0, TWO_PI, n)
            expected = np.zeros_like(t)
            for fk, ak, ok in zip(f, a, o):  # rsgt's loop, its operations
                expected += ak * np.sin(fk * (t + ok))
            np.testing.assert_array_equal(python(F.curve_value)(t, curve[None], 0), expected)


def test_compiled_and_host_curves_agree_where_numpys_sines_are_the_c_librarys():
    if not numpy_sines_are_the_c_librarys():
        pytest.skip("numpy's sin is not the C library's here")
    curves = naive.random_curves(3, 8)
    t = np.random.default_rng(4).uniform(0, TWO_PI, 5000)
    for b in range(len(curves)):
        np.testing.assert_array_equal(curve_values_of(t, curves, b),
                                      python(F.curve_value)(t, curves, b))


@pytest.mark.parametrize("n", [2, 3, 5, 1000, 4097, 65536, 300001])
def test_grid_points_are_numpys_linspace(n):
    expected = np.linspace(0, TWO_PI, n)
    np.testing.assert_array_equal(grid_points_of(n), expected)
    np.testing.assert_array_equal(python(F.grid_point)(np.arange(n), n), expected)


def test_sampled_grid_error_is_far_below_the_bound_the_facade_relies_on():
    worst = 0.0
    for n in (2, 3, 257, 4097, 70001, 1 << 20):
        for curve in naive.random_curves(n, 6 if n < 70001 else 2):
            curve = curve[None]
            exact = python(F.curve_value)(np.linspace(0, TWO_PI, n), curve, 0)
            bound = F.SAMPLE_ERROR * np.sum(np.abs(curve[0, 1]) * (2 + curve[0, 0]))
            for start, stop in ((0, n), (n // 3, n), (0, 2 * n // 3 + 1)):  # blocks mid-curve
                approx = np.full(n, np.nan)
                grid_of(curve, n, start, stop, approx)
                worst = max(worst, float(np.abs(approx - exact)[start:stop].max() / bound))
    assert worst < 0.01  # a hundredfold margin


@pytest.mark.parametrize("n", [1, 2, 17, 1000, 4096, 65537, 70001])
def test_the_host_grid_gives_the_compiled_bits(n):
    """The host samples grids with the same source (numpy over all blocks at once)."""
    for curve in naive.random_curves(n + 7, 4):
        curve = curve[None]
        compiled = np.empty(n)
        host = np.empty(n)
        grid_of(curve, n, 0, n, compiled)
        python(F.sample_grid)(curve, 0, n, 0, n, host)
        np.testing.assert_array_equal(host, compiled)
        if n > 3:  # a part of the grid (its blocks start at the part's first point)
            part, host_part = np.full(n, np.nan), np.full(n, np.nan)
            grid_of(curve, n, n // 3, n - 1, part)
            python(F.sample_grid)(curve, 0, n, n // 3, n - 1, host_part)
            np.testing.assert_array_equal(host_part, part)


def test_dense_extrema_are_those_of_the_continuous_curve():
    for curve in naive.random_curves(9, 20):
        values = np.empty(1025)
        python(F.sample_grid)(curve[None], 0, 1025, 0, 1025, values)
        ymin, ymax = python(F.grid_extrema)(curve[None], 0, values, True)
        lo, hi = naive.continuous_extrema(*curve)
        assert abs(ymin - lo) < 1e-10 and abs(ymax - hi) < 1e-10
        ymin, ymax = python(F.grid_extrema)(curve[None], 0, values, False)
        assert (ymin, ymax) == (values.min(), values.max())


# ---------------------------------------------------------------- scaling and placing


def test_normalized_is_rsgts_scaling_and_flat_curves_give_half():
    y = np.random.default_rng(1).normal(0, 3, 1000)
    lo, hi = y.min(), y.max()
    np.testing.assert_array_equal(python(F.normalized)(y, lo, hi), (y - lo) / (hi - lo))
    np.testing.assert_array_equal(normalized_of(y, lo, hi), (y - lo) / (hi - lo))
    flat = np.full(5, 0.25)
    np.testing.assert_array_equal(python(F.normalized)(flat, 0.25, 0.25), np.full(5, 0.5))
    np.testing.assert_array_equal(normalized_of(flat, 0.25, 0.25), np.full(5, 0.5))


def test_percentile_scaling_of_a_flat_range():
    v = np.array([-1.0, 2.0, 2.0, 5.0])
    for fn in (python(F.percentile_scaled), percentile_scaled_of):
        np.testing.assert_array_equal(fn(v, 2.0, 2.0), [0.0, 0.5, 0.5, 1.0])
        np.testing.assert_array_equal(fn(v, 0.0, 4.0), [0.0, 0.5, 0.5, 1.0])


@pytest.mark.parametrize("work", [np.float32, np.float64])
def test_placing_a_value_is_the_same_on_the_host(work):
    rng = np.random.default_rng(2)
    v = rng.normal(0, 100, 3000).astype(work)
    lo, hi = work(-120.5), work(90.25)
    unit = F.position_unit(float(lo), float(hi))
    args = [np.array([a], work) for a in (lo, hi, unit, unit * lo, 1024 / (unit * hi - unit * lo))]
    host = python(F.place)(v, *(a[0] for a in args))
    assert host.dtype == work
    np.testing.assert_array_equal(place_of(v, *args), host)
    assert host.min() == 0 and abs(host.max() - 1024) < 1e-3


@pytest.mark.parametrize("dtype", [np.int32, np.uint32, np.int64, np.uint64])
def test_placing_an_integer_is_exact_at_the_ends_of_its_dtype(dtype):
    info = np.iinfo(dtype)
    v = np.array([info.min, info.min + 1, 0, info.max - 1, info.max], dtype)
    low, high = v.dtype.type(info.min), v.dtype.type(info.max)
    span = float(int(info.max) - int(info.min))
    scale = 1000.0 / (0.5 * span)
    host = python(F.place_integer)(v, low, high, 0.0, 0.5, scale, 1000.0)
    np.testing.assert_array_equal(place_integer_of(v, low, high, 0.0, 0.5, scale, 1000.0), host)
    expected = [(int(x) - int(info.min)) * 1000.0 / span for x in v.tolist()]
    np.testing.assert_allclose(host, expected, rtol=0, atol=1e-9)


# ---------------------------------------------------------------- order keys


def test_order_key_is_its_own_inverse_and_sorts_like_the_values():
    rng = np.random.default_rng(0)
    cases = {
        "float16": rng.normal(0, 100, 500).astype(np.float16),
        "float32": np.concatenate([rng.normal(0, 1e20, 500), [0.0, -0.0, 1e-45, -1e-45]]),
        "float64": np.concatenate([rng.normal(0, 1e200, 500), [5e-324, -5e-324]]),
        "int8": rng.integers(-128, 128, 300), "uint8": rng.integers(0, 256, 300),
        "uint64": rng.integers(0, 2**64, 300, dtype=np.uint64, endpoint=False),
        "int64": rng.integers(-(2**63), 2**63 - 1, 300),
    }
    for name, values in cases.items():
        values = np.asarray(values).astype(name)
        view, (kind, magnitude, _) = F.key_code(values.dtype)
        width = view.itemsize * 8
        keys = python(F.order_key)(values.view(view).astype(np.int64), kind,
                                   np.int64(magnitude), width - 1)
        order = np.argsort(keys, kind="stable")
        sorted_values = values[order].astype(np.float64)
        assert (np.diff(sorted_values) >= 0).all(), name
        np.testing.assert_array_equal(F.decode_keys(keys, kind, values.dtype).view(view),
                                      values.view(view))


# ---------------------------------------------------------------- one source


def test_host_versions_call_host_versions():
    """A formula's host version calls the host versions of the formulas it uses (or the
    numpy version a loop was given), never a compiled one."""
    host = python(F.sample_grid)
    assert host.__globals__["sweep"] is python(F.sweep)
    assert host.__globals__["_accumulate"] is F._accumulate_numpy
    assert python(F.grid_extrema).__globals__["extremes"] is F._extremes_numpy
    assert python(F.sweep) is not F.sweep or numba.config.DISABLE_JIT
