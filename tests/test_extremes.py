"""Extreme values: every integer dtype over its whole range, floats from 1e-6 to the top.

Outputs must be finite, in [0, 1] and of the input's shape, and must agree
with references computed here independently in float64 (Python integers
where float64 is not exact).  Inputs that could crash the interpreter run in
a subprocess.
"""

import math
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import naive
import rsgt_fast
from rsgt_fast.augmentation import random_smooth_grayvalue_transform
from rsgt_fast.normalization import normalize_ct_scan, normalize_mr_scan

SCRIPTS = Path(__file__).resolve().parent / "scripts"
TWO_PI = 2.0 * np.pi
INT_DTYPES = ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"]
FLOAT_DTYPES = ["float16", "float32", "float64"]
#: Integer input: agreement with the exact float64 formula (rsgt's semantics).
INT_TOL = 1e-6
#: Float input.
FLOAT_TOL = 1e-4
N = 3000  # values per element: the serial kernels, which share their code with the parallel ones
#: Integer ranges holding at most this many values are sampled on the integer grid.
GRID_VALUES = 1 << 16


# ------------------------------------------------------------------ references

# All in naive.py: integer_reference, position_fraction, rsgt_draws and
# transform_batch (the batch reference).


def assert_close(out, ref, tol, what):
    """``out`` finite, in [0, 1] and within ``tol`` of ``ref`` (plus half an ulp for float16)."""
    assert out.shape == ref.shape, what
    assert np.isfinite(out).all(), f"{what}: non-finite output"
    assert out.min() >= 0 and out.max() <= 1, f"{what}: output outside [0, 1]"
    err = np.abs(out.astype(np.float64) - ref)
    allowed = np.full(ref.shape, tol)
    if out.dtype == np.float16:
        allowed += 0.5 * np.spacing(ref.astype(np.float16)).astype(np.float64)
    bad = err > allowed
    if bad.any():
        where = np.unravel_index(np.argmax(err - allowed), err.shape)
        pytest.fail(f"{what}: {int(bad.sum())} of {bad.size} values off; worst {err[where]:.3g} "
                    f"at {where}: got {out[where]!r}, expected {ref[where]!r}")


def check_curve_parameters(curves, n_elements):
    f, a, o = curves.frequencies, curves.amplitudes, curves.offsets
    assert f.shape == a.shape == o.shape == (n_elements, 4)
    assert ((0.2 <= f) & (f < 1.6)).all()
    assert (np.abs(a) <= 1 / f).all()
    assert ((0 <= o) & (o < TWO_PI)).all()


def call_recording_warnings(fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` and the warnings it emitted (as text)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = fn(*args, **kwargs)
    return result, [f"{w.category.__name__}: {w.message} ({w.filename}:{w.lineno})" for w in caught]


# ------------------------------------------------------------------ inputs


def integer_batch(dtype, seed=0):
    """Element 0 spans the dtype's whole range (min and max included); element 1 its top end."""
    info = np.iinfo(dtype)
    rng = np.random.default_rng(seed)
    full = rng.integers(int(info.min), int(info.max), size=N, dtype=dtype, endpoint=True)
    full[:4] = [info.min, info.max, info.min + 1, info.max - 1]
    width = min(3000, int(info.max) - int(info.min))
    top = (np.array(int(info.max), dtype) - rng.integers(0, width, size=N, endpoint=True)
           .astype(dtype)).astype(dtype)
    top[0] = info.max
    return np.stack([full, top])


def float_batch(dtype, magnitude, seed=0):
    """Element 0 uniform on [-M, M] (both ends included); element 1 of magnitudes 1e-6..M.

    Element 1 has mixed signs and log-uniform magnitudes.
    """
    rng = np.random.default_rng(seed)
    smallest = min(1e-6, magnitude)
    sym = rng.uniform(-1.0, 1.0, size=N) * magnitude
    sym[:2] = [magnitude, -magnitude]  # a positive value first: see the negative-zero test
    logs = 10.0 ** rng.uniform(math.log10(smallest), math.log10(magnitude), size=N)
    mixed = logs * rng.choice([-1.0, 1.0], size=N)
    mixed[:3] = [magnitude, smallest, -smallest]
    return np.stack([sym, mixed]).astype(dtype)


MAGNITUDES = [1e-6, 1e-3, 1.0, 1e4, 6e4, 1e30, 3e38, 1e300, "max"]


def _magnitudes(dtype):
    top = float(np.finfo(dtype).max)
    return [top if m == "max" else m for m in MAGNITUDES if m == "max" or m <= top]


FLOAT_CASES = [(dt, m) for dt in FLOAT_DTYPES for m in _magnitudes(dt)]

INT_BOUNDS = {
    "own": None,
    "dtype": "dtype",
    "ct": (-1000, 3000),
    "fractional": (-0.5, 100.25),
    "huge": (-(2**70), 2**70),
}


def _int_bounds(name, dtype):
    if INT_BOUNDS[name] == "dtype":
        info = np.iinfo(dtype)
        return (int(info.min), int(info.max))
    return INT_BOUNDS[name]


INT_CASES = [(dt, "float32") for dt in INT_DTYPES] + [
    ("int16", "float16"), ("int16", "float64"), ("uint64", "float16"), ("uint64", "float64"),
    ("int32", "float64"),
]


# ------------------------------------------------------------------ transform_batch


@pytest.mark.parametrize("bounds", list(INT_BOUNDS))
@pytest.mark.parametrize("dtype, out_dtype", INT_CASES)
def test_integer_extremes_transform_batch(dtype, out_dtype, bounds):
    x = integer_batch(dtype)
    min_max_val = _int_bounds(bounds, dtype)
    before = x.copy()
    out, curves = rsgt_fast.transform_batch(x, rng=17, dtype=out_dtype, min_max_val=min_max_val,
                                            return_curves=True)
    np.testing.assert_array_equal(x, before)
    assert out.dtype == np.dtype(out_dtype) and out.shape == x.shape
    check_curve_parameters(curves, x.shape[0])
    ref = naive.transform_batch(x, curves.frequencies, curves.amplitudes, curves.offsets,
                                min_max_val)
    assert_close(out, ref, INT_TOL, f"{dtype} -> {out_dtype}, min_max_val={min_max_val}")


@pytest.mark.parametrize("bounds", list(INT_BOUNDS))
@pytest.mark.parametrize("dtype", INT_DTYPES)
def test_integer_extremes_match_curves_evaluate(dtype, bounds):
    """``Curves.evaluate`` is documented as the exact float64 version of the same transform."""
    x = integer_batch(dtype)
    min_max_val = _int_bounds(bounds, dtype)
    out, curves = rsgt_fast.transform_batch(x, rng=17, min_max_val=min_max_val,
                                            return_curves=True, dtype="float64")
    evaluated = curves.evaluate(x)
    assert evaluated.shape == x.shape
    assert_close(out, evaluated, INT_TOL, f"{dtype}, min_max_val={min_max_val} vs evaluate")


@pytest.mark.parametrize("dtype", INT_DTYPES + FLOAT_DTYPES)
def test_constant_extreme_input_maps_to_half(dtype):
    """An element whose values are all the dtype's max (or min) has a single-valued range."""
    info = np.iinfo(dtype) if np.dtype(dtype).kind in "iu" else np.finfo(dtype)
    x = np.stack([np.full(50, info.max, dtype), np.full(50, info.min, dtype)])
    for out_dtype in ("float16", "float32", "float64"):
        out = rsgt_fast.transform_batch(x, rng=1, dtype=out_dtype)
        assert out.dtype == np.dtype(out_dtype)
        np.testing.assert_array_equal(out, np.full(x.shape, 0.5, out_dtype))


@pytest.mark.parametrize("bounds", ["own", "clipped"])
@pytest.mark.parametrize("out_dtype", ["float32", "float16", "float64"])
@pytest.mark.parametrize("dtype, magnitude", FLOAT_CASES)
def test_float_extremes_transform_batch(dtype, magnitude, out_dtype, bounds):
    x = float_batch(dtype, magnitude)
    min_max_val = None if bounds == "own" else (-magnitude / 2, magnitude / 2)
    out, curves = rsgt_fast.transform_batch(x, rng=23, dtype=out_dtype, min_max_val=min_max_val,
                                            return_curves=True)
    assert out.dtype == np.dtype(out_dtype) and out.shape == x.shape
    check_curve_parameters(curves, x.shape[0])
    ref = naive.transform_batch(x, curves.frequencies, curves.amplitudes, curves.offsets,
                                min_max_val)
    assert_close(out, ref, FLOAT_TOL, f"{dtype} M={magnitude:g} -> {out_dtype}, {bounds}")
    assert_close(out, curves.evaluate(x), FLOAT_TOL, f"{dtype} M={magnitude:g} vs evaluate")


#: Non-constant float inputs whose whole range is tiny: subnormal or nearly so.
TINY_SPANS = {
    "float16 subnormals": ("float16", [0.0, 6e-8, 1.2e-7, 3e-7]),
    "float32 1e-30": ("float32", [0.0, 1e-30, 2e-30, 5e-30]),
    "float32 1e-38": ("float32", [0.0, 1e-38, 2e-38, 5e-38]),
    "float32 subnormals": ("float32", [0.0, 1e-45, 3e-45, 1e-44]),
    "float64 1e-300": ("float64", [0.0, 1e-300, 2e-300, 5e-300]),
    "float64 subnormals 1e-310": ("float64", [1e-310, 2e-310, 3e-310, 5e-310]),
    "float64 smallest subnormals": ("float64", [0.0, 5e-324, 1e-323, 2e-323]),
    "float32 one ulp above 1": ("float32", [1.0, 1.0 + float(np.finfo(np.float32).eps)]),
}


TINY_CASES = [(case, "float32") for case in TINY_SPANS] + [
    ("float32 1e-38", "float64"), ("float64 smallest subnormals", "float16"),
]


@pytest.mark.timeout(180, method="thread")
@pytest.mark.parametrize("case, out_dtype", TINY_CASES)
def test_tiny_float_spans(case, out_dtype, tmp_path):
    """Values a few ulps or subnormals apart are spread over the whole curve.

    Each call runs in its own interpreter: a crash fails this test only.
    """
    dtype, values = TINY_SPANS[case]
    x = np.array([values, values[::-1]], dtype)
    assert x.max() > x.min()
    np.save(tmp_path / "x.npy", x)
    proc = subprocess.run(
        [sys.executable, str(SCRIPTS / "transform_case.py"), str(tmp_path / "x.npy"),
         str(tmp_path / "out.npz"), "29", out_dtype],
        capture_output=True, text=True, timeout=150, env=dict(os.environ),
    )
    assert proc.returncode == 0, (
        f"transform_batch on {case} ({x.tolist()}) ended with status {proc.returncode}\n"
        f"{proc.stderr[-3000:]}"
    )
    with np.load(tmp_path / "out.npz") as data:
        out = data["out"]
        ref = naive.transform_batch(x, data["frequencies"], data["amplitudes"], data["offsets"])
        caught = data["warnings"].tolist()
    assert out.dtype == np.dtype(out_dtype)
    assert_close(out, ref, FLOAT_TOL, case)
    assert caught == [], f"{case}: warnings {caught}"


# ------------------------------------------------------------------ signed zeros


@pytest.mark.parametrize("position", [0, 1, 65536])
@pytest.mark.parametrize("value", [-0.0, "negative subnormal"])
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_negative_zero_and_subnormals_are_finite_values(dtype, value, position):
    """-0.0 and negative subnormals are finite: no entry point may call them NaN or Inf.

    The position matters to an implementation that scans in chunks, so the
    special value goes first, second and at the start of a later chunk.
    """
    finfo = np.finfo(dtype)
    special = -finfo.smallest_subnormal if value == "negative subnormal" else -0.0
    x = np.linspace(1.0, 100.0, 70000).astype(dtype).reshape(1, -1)
    x[0, position] = special
    plain = x.copy()
    plain[0, position] = 0.0

    problems = []
    entry_points = {
        "transform_batch": lambda a: rsgt_fast.transform_batch(a, rng=3),
        "facade": lambda a: (np.random.seed(3), random_smooth_grayvalue_transform(a))[1],
        "normalize_ct_scan": lambda a: normalize_ct_scan(a, dtype="float64"),
        "normalize_mr_scan": lambda a: normalize_mr_scan(a, dtype="float64"),
    }
    for name, call in entry_points.items():
        with warnings.catch_warnings():
            # float16 input triggers unrelated RuntimeWarnings in the CT normalisation,
            # which test_ct_extremes_floats reports on its own.
            warnings.simplefilter("ignore", RuntimeWarning)
            try:
                got = call(x)
            except ValueError as exc:
                problems.append(f"{name}: {exc}")
                continue
            expected = call(plain)
        if name == "transform_batch" and value != -0.0:
            _, curves = rsgt_fast.transform_batch(x, rng=3, return_curves=True)
            ref = naive.transform_batch(x, curves.frequencies, curves.amplitudes, curves.offsets)
            assert_close(got, ref, FLOAT_TOL, f"{name} {dtype} {value}")
        elif not np.array_equal(got, expected):
            # -0.0 == 0.0 and truncation maps tiny values to 0: identical results.
            problems.append(f"{name}: differs from the result with +0.0 there")
    assert not problems, f"{dtype}, {value} at {position}:\n" + "\n".join(problems)


# ------------------------------------------------------------------ facade


FACADE_CASES = [(dt, "float32") for dt in INT_DTYPES] + [
    ("int16", "float16"), ("uint64", "float64"),
]


@pytest.mark.parametrize("dtype, out_dtype", FACADE_CASES)
def test_facade_integer_extremes(dtype, out_dtype):
    x = integer_batch(dtype)  # one image of shape (2, N): the facade treats it as a whole
    np.random.seed(31)
    out = random_smooth_grayvalue_transform(x, dtype=out_dtype)
    assert out.dtype == np.dtype(out_dtype) and out.shape == x.shape
    f, a, o = naive.rsgt_draws(31)
    ref = naive.integer_reference(x, int(x.min()), int(x.max()), f, a, o)
    assert_close(out, ref, INT_TOL, f"facade {dtype} -> {out_dtype}")


@pytest.mark.parametrize("dtype", ["int8", "uint8", "int16", "uint16"])
def test_facade_full_range_equals_rsgt(dtype):
    """Where rsgt itself works, the facade gives its exact bits (same global random state)."""
    from rsgt.augmentation import random_smooth_grayvalue_transform as rsgt_transform

    x = integer_batch(dtype)
    np.random.seed(37)
    expected = rsgt_transform(x, dtype="float32")
    state_after_rsgt = np.random.get_state()[1].copy()
    np.random.seed(37)
    got = random_smooth_grayvalue_transform(x, dtype="float32")
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(np.random.get_state()[1], state_after_rsgt)


def test_facade_uint64_near_two_to_the_64():
    rng = np.random.default_rng(4)
    top = np.uint64(2**64 - 1)
    x = (top - rng.integers(0, 5000, size=(40, 50)).astype(np.uint64)).astype(np.uint64)
    x[0, 0] = top
    np.random.seed(41)
    out = random_smooth_grayvalue_transform(x)
    ref = naive.integer_reference(x, int(x.min()), int(x.max()), *naive.rsgt_draws(41))
    assert_close(out, ref, INT_TOL, "facade uint64 near 2**64")
    # And with an explicit range reaching 2**64 - 1.
    np.random.seed(42)
    out = random_smooth_grayvalue_transform(x, min_max_val=(2**64 - 2**20, 2**64 - 1))
    ref = naive.integer_reference(x, 2**64 - 2**20, 2**64 - 1, *naive.rsgt_draws(42))
    assert_close(out, ref, INT_TOL, "facade uint64 near 2**64, min_max_val")


def test_facade_int64_spanning_2_to_the_31():
    """A range of 2**31 values (rsgt would need a 16 GiB table)."""
    rng = np.random.default_rng(5)
    x = rng.integers(0, 2**31 - 1, size=(60, 70), endpoint=True).astype(np.int64)
    x[0, :2] = [0, 2**31 - 1]
    np.random.seed(43)
    out = random_smooth_grayvalue_transform(x)
    assert out.dtype == np.float32 and out.shape == x.shape
    ref = naive.integer_reference(x, 0, 2**31 - 1, *naive.rsgt_draws(43))
    assert_close(out, ref, INT_TOL, "facade int64 0..2**31-1")


# ------------------------------------------------------------------ normalisations


def _int_ct_reference(x, out_dtype):
    k = np.array([min(max(int(v) + 1000, 0), 4096) for v in x.ravel().tolist()]).reshape(x.shape)
    return k.astype(out_dtype) / np.array(4096, out_dtype)


@pytest.mark.parametrize("out_dtype", ["float16", "float32", "float64"])
@pytest.mark.parametrize("dtype", INT_DTYPES)
def test_ct_extremes_integers(dtype, out_dtype):
    """``clip(x + 1000, 0, 4096) / 4096`` without wrap-around near the dtype's max."""
    x = integer_batch(dtype)
    out, caught = call_recording_warnings(normalize_ct_scan, x, dtype=out_dtype)
    assert out.dtype == np.dtype(out_dtype) and out.shape == x.shape
    assert np.isfinite(out).all() and out.min() >= 0 and out.max() <= 1
    np.testing.assert_array_equal(out, _int_ct_reference(x, out_dtype))
    assert caught == []


@pytest.mark.parametrize("out_dtype", ["float16", "float32", "float64"])
@pytest.mark.parametrize("dtype, magnitude", FLOAT_CASES)
def test_ct_extremes_floats(dtype, magnitude, out_dtype):
    """rsgt's formula with its rounding steps, in the input's float type."""
    x = float_batch(dtype, magnitude)
    out, caught = call_recording_warnings(normalize_ct_scan, x, dtype=out_dtype)
    assert out.dtype == np.dtype(out_dtype) and out.shape == x.shape
    assert np.isfinite(out).all() and out.min() >= 0 and out.max() <= 1
    with np.errstate(over="ignore"):
        ref = (np.clip(x + x.dtype.type(1000), 0, 4096).astype(out_dtype) / 4096).astype(out_dtype)
    np.testing.assert_array_equal(out, ref)
    assert caught == [], f"normalize_ct_scan({dtype} input, dtype={out_dtype}) warned: {caught}"


def mr_reference(x, out_dtype):
    """rsgt's MR formula on ``x`` cast to ``out_dtype``, computed on halved values (no overflow)."""
    half = np.asarray(x).astype(out_dtype).astype(np.float64) * 0.5
    p5, p95 = np.percentile(half, (5, 95))
    if p95 > p5:
        return np.clip((half - p5) / (p95 - p5), 0.0, 1.0)
    return np.where(half < p5, 0.0, np.where(half > p5, 1.0, 0.5))


def _check_mr(x, out_dtype, what):
    fits = float(np.abs(x.astype(np.float64)).max()) <= float(np.finfo(out_dtype).max)
    if not fits:
        # Documented: the image is cast to ``dtype`` first, and a value that
        # does not fit is an error rather than an infinity.
        with pytest.raises(ValueError):
            normalize_mr_scan(x, dtype=out_dtype)
        return
    out, caught = call_recording_warnings(normalize_mr_scan, x, dtype=out_dtype)
    assert out.dtype == np.dtype(out_dtype) and out.shape == x.shape
    assert np.isfinite(out).all(), f"{what}: non-finite output"
    assert out.min() >= 0 and out.max() <= 1, what
    ref = mr_reference(x, out_dtype)
    tol = 2 * float(np.finfo(out_dtype).eps)
    np.testing.assert_allclose(out.astype(np.float64), ref, rtol=0, atol=tol, err_msg=what)
    assert caught == [], f"{what}: warned {caught}"


@pytest.mark.parametrize("out_dtype", ["float16", "float32", "float64"])
@pytest.mark.parametrize("dtype", INT_DTYPES)
def test_mr_extremes_integers(dtype, out_dtype):
    _check_mr(integer_batch(dtype), out_dtype, f"MR {dtype} -> {out_dtype}")


@pytest.mark.parametrize("out_dtype", ["float16", "float32", "float64"])
@pytest.mark.parametrize("dtype, magnitude", FLOAT_CASES)
def test_mr_extremes_floats(dtype, magnitude, out_dtype):
    _check_mr(float_batch(dtype, magnitude), out_dtype,
              f"MR {dtype} M={magnitude:g} -> {out_dtype}")


def test_mr_span_beyond_float64_max():
    """p95 - p5 overflows float64: values must still map linearly into [0, 1]."""
    top = float(np.finfo(np.float64).max)
    x = np.array([-top] * 50 + [0.0] + [top] * 50)
    out = normalize_mr_scan(x, dtype="float64")
    assert np.isfinite(out).all(), f"non-finite output: {out[[0, 50, 100]]}"
    np.testing.assert_allclose(out[[0, 50, 100]], [0.0, 0.5, 1.0], rtol=0, atol=1e-12)


def test_reference_helpers_are_sound():
    """The references agree with rsgt where rsgt can run, and handle overflow."""
    from rsgt.augmentation import random_smooth_grayvalue_transform as rsgt_transform

    x = np.arange(-40, 200).reshape(2, -1)
    np.random.seed(3)
    expected = rsgt_transform(x, dtype="float64")
    ref = naive.integer_reference(x, -40, 199, *naive.rsgt_draws(3))
    np.testing.assert_allclose(ref, expected, rtol=0, atol=1e-12)
    top = float(np.finfo(np.float64).max)
    np.testing.assert_allclose(naive.position_fraction([-top, 0.0, top], -top, top), [0, 0.5, 1])
    np.testing.assert_allclose(naive.position_fraction([0.0, 5e-324, 1e-323], 0.0, 1e-323),
                               [0, 0.5, 1])
