"""Bad arguments raise ValueError/TypeError naming the argument, before any work."""

import numpy as np
import pytest

from rsgt_fast import transform_batch
from rsgt_fast.augmentation import random_smooth_grayvalue_transform as facade
from rsgt_fast.normalization import normalize_ct_scan, normalize_mr_scan

GOOD = np.arange(24, dtype=np.int16).reshape(2, 3, 4)

BATCH_CASES = [
    ({"x": np.int16(3)}, ValueError, "x must have at least one dimension"),
    ({"x": np.zeros((0, 3))}, ValueError, "x must not be empty"),
    ({"x": np.zeros((2, 2), complex)}, TypeError, "x must hold"),
    ({"x": np.array([["a", "b"]])}, TypeError, "x must hold"),
    ({"x": np.array([[None, 1]], dtype=object)}, TypeError, "x must hold"),
    ({"x": np.zeros((2, 2), np.longdouble)}, TypeError, "x must hold"),
    ({"x": np.array([[1.0, np.nan]])}, ValueError, "x must be finite"),
    ({"x": np.array([[1.0, np.inf]], np.float32)}, ValueError, "x must be finite"),
    ({"x": np.array([[1.0, -np.inf]], np.float16)}, ValueError, "x must be finite"),
    ({"n_sinusoids": 0}, ValueError, "n_sinusoids must be >= 1, got 0"),
    ({"n_sinusoids": 2.0}, TypeError, "n_sinusoids must be an integer, got 2.0"),
    ({"n_sinusoids": True}, TypeError, "n_sinusoids must be an integer"),
    ({"min_frequency": 0}, ValueError, "min_frequency must be > 0, got 0"),
    ({"min_frequency": -1.0}, ValueError, "min_frequency must be > 0"),
    ({"min_frequency": 2.0, "max_frequency": 1.0}, ValueError, "max_frequency must be greater"),
    ({"min_frequency": 1.0, "max_frequency": 1.0}, ValueError, "max_frequency must be greater"),
    ({"max_frequency": np.inf}, ValueError, "max_frequency must be finite"),
    ({"min_frequency": 1e-307, "n_sinusoids": 8}, ValueError,
     "min_frequency must be >= 1.79e-307 for n_sinusoids=8"),
    ({"min_frequency": 1.785e-307, "n_sinusoids": 8}, ValueError, "must be >= 1.79e-307"),
    ({"n_sinusoids": 10**400}, ValueError, "n_sinusoids is too large"),
    ({"max_frequency": "2"}, TypeError, "max_frequency must be a real number"),
    ({"min_max_val": 5}, ValueError, "min_max_val must be None or a pair"),
    ({"min_max_val": (1, 2, 3)}, ValueError, "min_max_val must be None or a pair"),
    ({"min_max_val": "ab"}, ValueError, "min_max_val must be None or a pair"),
    ({"min_max_val": (5, 1)}, ValueError, "min_max_val must have lo <= hi, got (5, 1)"),
    ({"min_max_val": (0, np.nan)}, ValueError, "min_max_val must be finite"),
    ({"min_max_val": (-np.inf, 0)}, ValueError, "min_max_val must be finite"),
    ({"min_max_val": (-1e308, 1e308)}, ValueError, "min_max_val must lie within the float64"),
    ({"min_max_val": {0, 100}}, ValueError, "min_max_val must be None or a pair"),
    ({"min_max_val": {0: 1, 100: 2}}, ValueError, "min_max_val must be None or a pair"),
    ({"min_max_val": (0, 10**400)}, ValueError, "min_max_val must lie within the float64"),
    ({"dtype": "int32"}, ValueError, "dtype must be float16, float32 or float64"),
    ({"dtype": "complex64"}, ValueError, "dtype must be float16, float32 or float64"),
    ({"dtype": "no-such-type"}, TypeError, "dtype must be a float dtype"),
    ({"rng": 1.5}, TypeError,
     "rng must be None, an int, a SeedSequence or a numpy.random.Generator"),
    ({"rng": "seed"}, TypeError, "rng must be None"),
    ({"rng": -1}, ValueError, "rng must be None"),
    ({"out": np.zeros((2, 3), np.float32)}, ValueError, "out must have shape (2, 3, 4)"),
    ({"out": np.zeros((2, 3, 4), np.float64)}, ValueError, "out has dtype float64"),
    ({"out": [0.0]}, TypeError, "out must be a numpy array"),
    ({"return_curves": "yes"}, TypeError, "return_curves must be a bool"),
]


@pytest.mark.parametrize("changes,error,message", BATCH_CASES)
def test_transform_batch_rejects(changes, error, message):
    kwargs = {"x": GOOD, "rng": 0, **changes}
    x = kwargs.pop("x")
    before = x.copy() if isinstance(x, np.ndarray) else x
    with pytest.raises(error) as info:
        transform_batch(x, **kwargs)
    assert message in str(info.value)
    if isinstance(x, np.ndarray) and x.dtype.kind != "O":
        np.testing.assert_array_equal(x, before)


@pytest.mark.parametrize("good,bad,error,message", [
    ({"min_max_val": (1, 2)}, {"min_max_val": (True, 2)}, TypeError, "min_max_val must be a real"),
    ({"n_sinusoids": 2}, {"n_sinusoids": 2.0}, TypeError, "n_sinusoids must be an integer"),
    ({"n_sinusoids": 1}, {"n_sinusoids": True}, TypeError, "n_sinusoids must be an integer"),
])
def test_checked_options_are_not_reused_for_equal_bad_values(good, bad, error, message):
    """Checked options are remembered; a bad value equal to a good one must still raise."""
    transform_batch(GOOD, rng=0, **good)
    with pytest.raises(error, match=message):
        transform_batch(GOOD, rng=0, **bad)


def test_read_only_out_is_rejected():
    out = np.zeros(GOOD.shape, np.float32)
    out.flags.writeable = False
    with pytest.raises(ValueError, match="out must be writeable"):
        transform_batch(GOOD, out=out)


def test_overlapping_out_is_rejected():
    data = np.zeros(20, np.float32)
    with pytest.raises(ValueError, match="out overlaps the input"):
        transform_batch(data[:10], out=data[5:15])


def test_rejected_call_does_not_touch_out_or_rng():
    x = np.array([[1.0, 2.0, np.nan]])
    out = np.full(x.shape, 7.0, np.float32)
    gen = np.random.default_rng(0)
    state = gen.bit_generator.state
    with pytest.raises(ValueError):
        transform_batch(x, out=out, rng=gen)
    assert np.all(out == 7.0)
    assert gen.bit_generator.state == state


FACADE_CASES = [
    ({"image": np.zeros((0,), int)}, ValueError, "image must not be empty"),
    ({"image": np.zeros(3, complex)}, TypeError, "image must hold"),
    ({"image": np.array([1.0, np.nan])}, ValueError, "image must be finite"),
    ({"image": np.array([1e30, 0.0])}, ValueError, "image values must lie within the int64 range"),
    ({"n_sinusoids": 0}, ValueError, "n_sinusoids must be >= 1"),
    ({"n_sinusoids": 1.5}, TypeError, "n_sinusoids must be an integer"),
    ({"min_frequency": 0.0}, ValueError, "min_frequency must be > 0"),
    ({"max_freqency": 0.1}, ValueError, "max_freqency must be greater than min_frequency"),
    ({"min_max_val": (3, 1)}, ValueError, "min_max_val must have lo <= hi"),
    ({"min_max_val": [0]}, ValueError, "min_max_val must be None or a pair"),
    ({"min_max_val": (-10**400, 0)}, ValueError, "min_max_val must lie within the float64"),
    ({"dtype": "int16"}, ValueError, "dtype must be float16, float32 or float64"),
]


@pytest.mark.parametrize("changes,error,message", FACADE_CASES)
def test_facade_rejects_without_drawing(changes, error, message):
    kwargs = {"image": GOOD, **changes}
    image = kwargs.pop("image")
    np.random.seed(0)
    state = np.random.get_state()[1].copy()
    with pytest.raises(error) as info:
        facade(image, **kwargs)
    assert message in str(info.value)
    assert np.array_equal(np.random.get_state()[1], state)


@pytest.mark.parametrize("function", [normalize_ct_scan, normalize_mr_scan])
@pytest.mark.parametrize("image,dtype,error,message", [
    (np.zeros((0, 2)), "float32", ValueError, "image must not be empty"),
    (np.array(["x"]), "float32", TypeError, "image must hold"),
    (np.array([0.0, np.nan]), "float32", ValueError, "image must be finite"),
    (np.array([0.0, np.inf]), "float64", ValueError, "image must be finite"),
    (np.arange(4), "uint8", ValueError, "dtype must be float16, float32 or float64"),
])
def test_normalizations_reject(function, image, dtype, error, message):
    with pytest.raises(error) as info:
        function(image, dtype=dtype)
    assert message in str(info.value)


def test_mr_rejects_values_that_overflow_the_output_type():
    with pytest.raises(ValueError, match="fit in float16"):
        normalize_mr_scan(np.array([0, 1, 100000], np.int32), dtype="float16")
    with pytest.raises(ValueError, match="fit in float32"):
        normalize_mr_scan(np.array([0.0, 1e300]), dtype="float32")
