"""Property tests over dtypes, shapes, ranges and options."""

import numpy as np
import rsgt.augmentation
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from rsgt_fast import transform_batch
from rsgt_fast.augmentation import random_smooth_grayvalue_transform as facade

INPUT_DTYPES = st.sampled_from(
    ["int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64",
     "float16", "float32", "float64", "bool"]
)
OUTPUT_DTYPES = st.sampled_from(["float16", "float32", "float64"])
SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@st.composite
def batches(draw):
    dtype = np.dtype(draw(INPUT_DTYPES))
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=6))
    if dtype.kind == "f":
        limit = {2: 6e4, 4: 1e30, 8: 1e300}[dtype.itemsize]
        magnitude = float(dtype.type(draw(st.sampled_from([1e-6, 1.0, 1e3, limit]))))
        elements = st.floats(-magnitude, magnitude, allow_nan=False, width=8 * dtype.itemsize)
    else:
        elements = None
    return draw(hnp.arrays(dtype, shape, elements=elements))


@st.composite
def options(draw):
    low = draw(st.floats(0.01, 3.0))
    result = {
        "n_sinusoids": draw(st.integers(1, 6)),
        "min_frequency": low,
        "max_frequency": low + draw(st.floats(1e-3, 3.0)),
        "dtype": draw(OUTPUT_DTYPES),
        "rng": draw(st.integers(0, 2**32)),
    }
    if draw(st.booleans()):
        lo = draw(st.integers(-5000, 5000) | st.floats(-1e4, 1e4))
        result["min_max_val"] = (lo, lo + draw(st.integers(0, 5000) | st.floats(0, 1e4)))
    return result


@SETTINGS
@given(batches(), options())
def test_transform_batch_properties(x, kwargs):
    before = x.copy()
    out, curves = transform_batch(x, return_curves=True, **kwargs)
    assert out.shape == x.shape and out.dtype == kwargs["dtype"]
    assert np.isfinite(out).all()
    assert out.min() >= 0 and out.max() <= 1
    np.testing.assert_array_equal(x, before)
    np.testing.assert_array_equal(out, transform_batch(x, **kwargs))
    tolerance = 1e-4 + float(np.finfo(kwargs["dtype"]).eps)
    np.testing.assert_allclose(out, curves.evaluate(x), rtol=0, atol=tolerance)


@SETTINGS
@given(
    hnp.arrays(st.sampled_from(["int16", "uint16", "int32", "int64", "uint8"]),
               hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=8),
               elements=st.integers(0, 120)),
    st.integers(0, 2**32 - 1),
    OUTPUT_DTYPES,
    st.none() | st.tuples(st.integers(-50, 60), st.integers(61, 300)),
)
def test_facade_equals_rsgt(image, seed, out_dtype, min_max_val):
    if min_max_val is None and image.min() == image.max():
        # rsgt gives NaN for constant images
        image = np.append(image.ravel(), image.flat[0] + 1).astype(image.dtype)
    np.random.seed(seed)
    expected = rsgt.augmentation.random_smooth_grayvalue_transform(
        image, dtype=out_dtype, min_max_val=min_max_val)
    np.random.seed(seed)
    actual = facade(image, dtype=out_dtype, min_max_val=min_max_val)
    assert actual.dtype == expected.dtype
    np.testing.assert_array_equal(actual, expected)
