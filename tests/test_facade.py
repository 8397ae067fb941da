"""The drop-in facade against the real rsgt 1.1.0."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import rsgt.augmentation

import naive
from rsgt_fast.augmentation import random_smooth_grayvalue_transform as fast

reference = rsgt.augmentation.random_smooth_grayvalue_transform


def both(image, seed, **kwargs):
    """rsgt's and our result for the same global seed, and the states after."""
    np.random.seed(seed)
    expected = reference(image, **kwargs)
    state_expected = np.random.get_state()[1].copy(), np.random.get_state()[2]
    np.random.seed(seed)
    actual = fast(image, **kwargs)
    state_actual = np.random.get_state()[1].copy(), np.random.get_state()[2]
    assert np.array_equal(state_expected[0], state_actual[0])
    assert state_expected[1] == state_actual[1]
    return expected, actual


def assert_identical(expected, actual):
    assert actual.dtype == expected.dtype
    assert actual.shape == expected.shape
    assert np.array_equal(actual, expected)


INT_DTYPES = [np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64, np.uint64]


@pytest.mark.parametrize("dtype", INT_DTYPES)
@pytest.mark.parametrize("out_dtype", ["float16", "float32", "float64"])
@pytest.mark.parametrize("seed", [0, 1, 7, 2024])
def test_bit_identical_own_range(dtype, out_dtype, seed):
    info = np.iinfo(dtype)
    rng = np.random.default_rng(seed)
    low, high = max(int(info.min), -3000), min(int(info.max), 5000)
    image = rng.integers(low, high, size=(9, 11, 3), endpoint=True).astype(dtype)
    assert_identical(*both(image, seed, dtype=out_dtype))


@pytest.mark.parametrize("dtype", INT_DTYPES)
@pytest.mark.parametrize("min_max_val", [(-1024, 3071), (0, 255), (100, 101), (-5, 7), (0, 70000)])
def test_bit_identical_given_range_with_clipping(dtype, min_max_val):
    info = np.iinfo(dtype)
    rng = np.random.default_rng(5)
    low, high = max(int(info.min), -3000), min(int(info.max), 6000)
    image = rng.integers(low, high, size=(40, 30), endpoint=True).astype(dtype)
    for out_dtype in ["float16", "float32", "float64"]:
        assert_identical(*both(image, 11, dtype=out_dtype, min_max_val=min_max_val))


@pytest.mark.parametrize("shape", [(2,), (17,), (3, 4), (2, 3, 4, 5), (2, 1, 3, 1, 2, 2)])
@pytest.mark.parametrize("options", [
    {},
    {"n_sinusoids": 1},
    {"n_sinusoids": 9, "min_frequency": 0.05, "max_freqency": 4.0},
    {"min_frequency": 1.0, "max_freqency": 1.0000001},
])
def test_bit_identical_shapes_and_options(shape, options):
    image = np.random.default_rng(3).integers(-100, 400, size=shape)
    assert_identical(*both(image, 3, **options))


def test_large_ranges_up_to_2_pow_22_are_exact():
    rng = np.random.default_rng(9)
    image = rng.integers(0, 1 << 22, size=5000).astype(np.int32)
    image[:2] = 0, (1 << 22) - 1
    assert_identical(*both(image, 9))


def test_sequence_of_calls_matches():
    images = [np.random.default_rng(s).integers(-1024, 3072, size=(8, 8)) for s in range(5)]
    np.random.seed(42)
    expected = [reference(im) for im in images]
    np.random.seed(42)
    actual = [fast(im) for im in images]
    for e, a in zip(expected, actual):
        assert_identical(e, a)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_float_input_is_truncated_like_rsgt(dtype):
    values = np.random.default_rng(2).uniform(-900, 1800, size=(30, 7)).astype(dtype)
    values[0, :4] = [-2.7, -0.5, 0.5, 2.7]
    assert_identical(*both(values, 4))


def test_bool_and_list_input_match():
    mask = np.random.default_rng(0).random((6, 6)) > 0.5
    assert_identical(*both(mask, 1))
    assert_identical(*both([[1, 5, 9], [2, 2, 7]], 1))


def test_integral_float_range_is_accepted():
    image = np.random.default_rng(1).integers(-50, 150, size=(20, 20))
    np.random.seed(8)
    expected = reference(image, min_max_val=(0, 100))
    np.random.seed(8)
    assert_identical(expected, fast(image, min_max_val=(0.0, 100.0)))


def test_constant_image_gives_half_not_nan():
    image = np.full((4, 5), 77, dtype=np.int16)
    np.random.seed(0)
    with np.errstate(invalid="ignore"):
        assert np.isnan(reference(image)).all()  # what we replace
    np.random.seed(0)
    out = fast(image)
    assert out.dtype == np.float32 and np.all(out == 0.5)
    np.random.seed(0)
    assert np.all(fast(np.arange(10), min_max_val=(3, 3)) == 0.5)


def test_zero_dimensional_image():
    out = fast(np.int16(5))
    assert out.shape == () and out == 0.5


def test_non_integral_range_uses_exact_positions():
    image = np.arange(-3, 14).reshape(1, -1)
    np.random.seed(6)
    out = fast(image, min_max_val=(0.5, 10.25), dtype="float64")
    params = naive.rsgt_draws(6)
    expected = naive.real_reference(image, 0.5, 10.25, *params)
    np.testing.assert_allclose(out, expected, atol=1e-6)


@pytest.mark.parametrize("dtype,low,high", [
    (np.int64, 0, 2**31 - 1),
    (np.int64, -(2**62), 2**62),
    (np.uint64, 2**64 - 2**40, 2**64 - 1),
])
def test_huge_ranges_follow_the_formula(dtype, low, high):
    rng = np.random.default_rng(0)
    image = np.concatenate([[low, high],
                            rng.integers(low, high, size=300, dtype=dtype)]).astype(dtype)
    np.random.seed(12)
    out = fast(image, dtype="float64")
    params = naive.rsgt_draws(12)
    # Exact positions from Python integers, then the continuous curve.
    ymin, ymax = naive.continuous_extrema(*params)
    t = np.array([naive.TWO_PI * (int(v) - low) / (high - low) for v in image])
    expected = (naive.curve(t, *params) - ymin) / (ymax - ymin)
    np.testing.assert_allclose(out, expected, atol=1e-6)


def test_huge_range_runs_in_bounded_memory(tmp_path):
    script = textwrap.dedent("""
        import numpy as np
        from rsgt_fast.augmentation import random_smooth_grayvalue_transform as fast
        fast(np.arange(10))  # compile before measuring
        image = np.random.default_rng(0).integers(0, 2**31 - 1, size=200_000, dtype=np.int64)
        image[:2] = 0, 2**31 - 1
        big = np.random.default_rng(0).integers(2**63, 2**64 - 1, size=200_000, dtype=np.uint64)

        def status(key):
            line = [l for l in open("/proc/self/status") if l.startswith(key)][0]
            return int(line.split()[1]) * 1024

        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        before = status("VmRSS")
        out = fast(image)
        out2 = fast(big)
        print(status("VmHWM"), before, float(out.min()), float(out2.max()))
    """)
    try:
        open("/proc/self/clear_refs", "w").close()
    except OSError:
        pytest.skip("peak RSS cannot be reset on this system")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    peak, before, low, high = done.stdout.split()
    assert 0.0 <= float(low) and float(high) <= 1.0
    # rsgt would need a 2**31-entry float64 table (16 GiB); we stay far below 1 GB.
    assert int(peak) - int(before) < 200 * 2**20


def test_without_pointwise_numpy_curves_the_whole_table_comes_from_numpy(monkeypatch):
    from rsgt_fast import plan

    monkeypatch.setitem(plan._checks, "pointwise", False)
    image = np.random.default_rng(4).integers(-1024, 3072, size=(64, 64), dtype=np.int16)
    for seed in range(5):
        assert_identical(*both(image, seed))


def test_many_seeds_bit_identical():
    image = np.random.default_rng(5).integers(-1024, 3072, size=(16, 16), dtype=np.int16)
    for seed in range(300):
        assert_identical(*both(image, seed, dtype=("float32", "float16")[seed % 2]))


@pytest.mark.parametrize("out_dtype", [">f4", ">f2", np.dtype(">f8"), "<f4", "=f8"])
def test_byte_order_of_the_output_dtype_is_kept(out_dtype):
    image = np.random.default_rng(3).integers(-1024, 3072, (24, 20))
    expected, actual = both(image, 5, dtype=out_dtype)
    assert actual.dtype == expected.dtype == np.dtype(out_dtype)
    assert_identical(expected, actual)
