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


@pytest.mark.parametrize("case", CASES)
def test_nan_omitted(benchmark, timed, mr_with_nan, case):
    benchmark.group = (f"17a transform_batch(out=), float32 MR "
                       f"{'x'.join(map(str, mr_with_nan.shape))}, NaN in an eighth")
    out = np.empty(mr_with_nan.shape, np.float32)
    if case == "plain":
        x = np.nan_to_num(mr_with_nan, nan=0.0)
        fn = lambda: rsgt_fast.transform_batch(x, rng=1, out=out)  # noqa: E731
        label = "plain call (NaN set to 0)"
    else:
        fn = lambda: rsgt_fast.transform_batch(mr_with_nan, rng=1, out=out,  # noqa: E731
                                               nan_policy="omit")
        label = "nan_policy='omit'"
    result = timed(fn, contender=label, role="ours_out" if case != "plain" else "other")
    assert result is out
    if case != "plain":
        np.testing.assert_array_equal(np.isnan(out), np.isnan(mr_with_nan))


@pytest.mark.parametrize("case", CASES)
def test_body_mask(benchmark, timed, ct_batch, case):
    benchmark.group = (f"17b transform_batch(out=), int16 CT "
                       f"{'x'.join(map(str, ct_batch.shape))}, body mask")
    out = np.empty(ct_batch.shape, np.float32)
    if case == "plain":
        fn = lambda: rsgt_fast.transform_batch(ct_batch, rng=1, out=out)  # noqa: E731
        label = "plain call"
    else:
        mask = ct_batch > -900
        fn = lambda: rsgt_fast.transform_batch(ct_batch, rng=1, out=out,  # noqa: E731
                                               mask=mask)
        label = "mask= (voxels above -900 HU)"
    result = timed(fn, contender=label, role="ours_out" if case != "plain" else "other")
    assert result is out
