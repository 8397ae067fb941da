"""Timings of the normalisations against rsgt 1.1.0 and the copy floors (case 5).

The normalisations return a new array, so the *fresh floor* ``x.astype(float32)``
is their like-for-like floor; ``np.copyto`` into a preallocated array is shown too.
"""

import numpy as np
import pytest
from rsgt import normalization as rsgt_norm

from rsgt_fast import normalization as fast_norm

CASES = {
    "ct_int16": ("a", "normalize_ct_scan", "ct_large"),
    "mr_int16": ("b", "normalize_mr_scan", "ct_large"),
    "mr_float32": ("c", "normalize_mr_scan", "mr_large"),
}


@pytest.mark.parametrize("contender", ["rsgt_fast", "rsgt", "floor", "floor_fresh"])
@pytest.mark.parametrize("case", list(CASES))
def test_normalize(benchmark, timed, request, case, contender):
    """One normalisation of one large volume; results are compared with rsgt's."""
    label, name, fixture = CASES[case]
    image = request.getfixturevalue(fixture)
    benchmark.group = (f"5{label} {name}, {image.dtype.name} "
                       f"{'x'.join(map(str, image.shape))}")
    ours, reference = getattr(fast_norm, name), getattr(rsgt_norm, name)
    if contender == "floor":
        out = np.empty(image.shape, np.float32)
        timed(lambda: np.copyto(out, image), role="floor",
              contender="floor: np.copyto into float32")
        np.testing.assert_array_equal(out, image.astype(np.float32))
        return
    if contender == "floor_fresh":
        copy = timed(lambda: image.astype(np.float32), role="floor_fresh",
                     contender="fresh floor: x.astype(float32)")
        np.testing.assert_array_equal(copy, image)
        return
    if contender == "rsgt_fast":
        result = timed(lambda: ours(image), role="ours", contender=f"rsgt_fast {name}")
        expected = reference(image)
    else:
        expected = timed(lambda: reference(image), role="rsgt", contender=f"rsgt {name}")
        result = ours(image)
    assert result.shape == image.shape and result.dtype == np.float32
    if name == "normalize_ct_scan":
        np.testing.assert_array_equal(result, expected)
    else:
        # rsgt returns float64 here (numpy 2); equal to within one float32 ulp at 1.
        np.testing.assert_allclose(result, expected, rtol=0, atol=float(np.finfo(np.float32).eps))
