"""Case 17: ``nan_policy="omit"`` and ``mask=`` against the plain call on the same batch.

An MR batch (float32, 8 x 128^3) with NaN outside a field of view (the first
eighth of each volume's slices) and a CT batch (int16) with a body mask (the
voxels above -900 HU), each written into a preallocated output, beside the
plain call on the same values (NaN replaced by 0 for it).  Target: within
1.3x of the plain call.
"""

import numpy as np
import pytest

import rsgt_fast

CASES = ["plain", "selection"]


@pytest.fixture(scope="module")
def mr_with_nan(mr_batch):
    x = mr_batch.copy()
    x[:, : max(1, x.shape[1] // 8)] = np.nan
    return x


def selection_case(benchmark, timed, case, group, x, plain_x, label, **selection):
    """Time the plain call on ``plain_x`` or the selection on ``x`` into ``out=``."""
    benchmark.group = f"{group} transform_batch(out=), {'x'.join(map(str, x.shape))}"
    out = np.empty(x.shape, np.float32)
    if case == "plain":
        fn = lambda: rsgt_fast.transform_batch(plain_x, rng=1, out=out)  # noqa: E731
        info = {"contender": "plain call", "role": "other"}
    else:
        fn = lambda: rsgt_fast.transform_batch(x, rng=1, out=out, **selection)  # noqa: E731
        info = {"contender": label, "role": "ours_out"}
    result = timed(fn, **info)
    assert result is out
    return out


@pytest.mark.parametrize("case", CASES)
def test_nan_omitted(benchmark, timed, mr_with_nan, case):
    out = selection_case(benchmark, timed, case, "17a float32 MR, NaN in an eighth,",
                         mr_with_nan, np.nan_to_num(mr_with_nan, nan=0.0),
                         "nan_policy='omit' (plain call: NaN set to 0)", nan_policy="omit")
    if case != "plain":
        np.testing.assert_array_equal(np.isnan(out), np.isnan(mr_with_nan))


@pytest.mark.parametrize("case", CASES)
def test_body_mask(benchmark, timed, ct_batch, case):
    selection_case(benchmark, timed, case, "17b int16 CT, body mask,", ct_batch, ct_batch,
                   "mask= (voxels above -900 HU)", mask=ct_batch > -900)
