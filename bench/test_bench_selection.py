"""Case 17: ``nan_policy="omit"``, ``mask=`` and ``channel_axis`` against plain calls.

17a/b: an MR batch (float32, 8 x 128^3) with NaN outside a field of view
(the first eighth of each volume's slices) and a CT batch (int16) with a body
mask (the voxels above -900 HU), each written into a preallocated output,
beside the plain call on the same values (NaN replaced by 0 for it).  Target:
within 1.3x of the plain call.

17c: the MR batch as 2 samples of 4 channels (2 x 4 x 128^3), a curve per
channel in one call (``channel_axis=1``), against four calls of the
single-channel batch (2 x 128^3 each, contiguous), the loop a user would write
without it.
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


@pytest.mark.parametrize("case", ["four calls", "channel_axis"])
def test_four_channels(benchmark, timed, mr_batch, case):
    n, *shape = mr_batch.shape
    k = min(4, n)  # 4 channels (2 in the smoke run's batch of 2)
    x = mr_batch.reshape(n // k, k, *shape)
    channels = [np.ascontiguousarray(x[:, c]) for c in range(k)]
    benchmark.group = f"17c float32 MR, {'x'.join(map(str, x.shape))}, a curve per channel"
    out = np.empty(x.shape, np.float32)
    outs = [np.empty(c.shape, np.float32) for c in channels]
    if case == "channel_axis":
        fn = lambda: rsgt_fast.transform_batch(x, rng=1, channel_axis=1, out=out)  # noqa: E731
        info = {"contender": "transform_batch(channel_axis=1, out=)", "role": "ours_out"}
    else:
        def fn():
            for c, o in zip(channels, outs):
                rsgt_fast.transform_batch(c, rng=1, out=o)
            return out
        info = {"contender": f"{k} single-channel calls (out=)", "role": "other"}
    assert timed(fn, **info) is out
