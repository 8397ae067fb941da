"""Small images and patches: the fixed cost of one call.

Training loops call the transform on 2-D slices and 3-D patches many times per
epoch, so what a call costs besides its voxels matters as much as throughput.
Cases 7 (facade) and 8 (``transform_batch``) time 64², 256² and 96³ int16 CT
phantoms, each element with its own range, against rsgt 1.1.0 and the copy
floor.

Two ways of calling are measured:

* **hot** repeats the call on one array, so input and output stay in cache
  (the usual micro-benchmark);
* **cold** cycles through a pool of distinct inputs larger than the last-level
  cache and returns a new array each time, as a training loop does.
"""

import itertools

import numpy as np
import pytest
from rsgt.augmentation import random_smooth_grayvalue_transform as rsgt_transform

import rsgt_fast
from rsgt_fast.augmentation import random_smooth_grayvalue_transform as fast_transform

SEED = 11
SIZES = {"64x64": ((64, 64), (64, 64)), "256x256": ((256, 256), (64, 64)),
         "96x96x96": ((96, 96, 96), (16, 16, 16))}
#: Bytes of input the cold pool holds, well above any last-level cache.
POOL_BYTES = 96 << 20


def _images(make_ct, full_size, size, batch, count):
    shape = SIZES[size][0 if full_size else 1]
    rng = np.random.default_rng(sum(shape) + batch)
    base = np.stack([make_ct(shape, rng) for _ in range(batch)])
    # Distinct arrays (not views of one buffer), each a shifted copy of the phantoms.
    return [np.roll(base, i, axis=-1) for i in range(count)]


def _pool(make_ct, full_size, size, batch):
    shape = SIZES[size][0 if full_size else 1]
    nbytes = batch * int(np.prod(shape)) * 2
    count = max(2, POOL_BYTES // nbytes) if full_size else 2
    return _images(make_ct, full_size, size, batch, count)


@pytest.mark.parametrize("contender", ["rsgt_fast", "rsgt"])
@pytest.mark.parametrize("size", list(SIZES))
def test_small_facade(benchmark, timed, make_ct, full_size, size, contender):
    """Case 7: the facade against rsgt on one image, hot, same global seed."""
    image = _images(make_ct, full_size, size, 1, 1)[0][0]
    label = "abc"[list(SIZES).index(size)]
    benchmark.group = f"7{label} facade, int16 CT {size}, own min/max, hot"
    fn, role, name = {"rsgt_fast": (fast_transform, "ours", "rsgt_fast facade"),
                      "rsgt": (rsgt_transform, "rsgt", "rsgt 1.1.0")}[contender]
    np.random.seed(SEED)
    result = timed(lambda: fn(image), role=role, contender=name)
    assert result.shape == image.shape and result.dtype == np.float32
    np.random.seed(SEED)
    expected = rsgt_transform(image)
    np.random.seed(SEED)
    np.testing.assert_array_equal(fast_transform(image), expected)


@pytest.mark.parametrize("contender", ["rsgt_fast", "rsgt_loop", "floor_fresh"])
@pytest.mark.parametrize("warmth", ["hot", "cold"])
@pytest.mark.parametrize("batch", [1, 16])
@pytest.mark.parametrize("size", list(SIZES))
def test_small_batch(benchmark, timed, checks, make_ct, full_size, size, batch, warmth,
                     contender):
    """Case 8: ``transform_batch`` of B small images, hot and cold."""
    label = "abc"[list(SIZES).index(size)]
    benchmark.group = (f"8{label} transform_batch, B={batch:<2d} int16 CT {size}, "
                       f"own min/max, {warmth}")
    if warmth == "cold":
        pool = _pool(make_ct, full_size, size, batch)
    else:
        pool = _images(make_ct, full_size, size, batch, 1)
    cycle = itertools.cycle(pool)
    if contender == "rsgt_fast":
        result = timed(lambda: rsgt_fast.transform_batch(next(cycle), rng=SEED), role="ours",
                       contender="rsgt_fast.transform_batch")
    elif contender == "rsgt_loop":
        def loop():
            return [rsgt_transform(e) for e in next(cycle)]

        timed(loop, role="rsgt", contender="rsgt loop over the batch")
        return
    else:
        result = timed(lambda: next(cycle).astype(np.float32), role="floor_fresh",
                       contender="fresh floor: x.astype(float32)")
        assert result.dtype == np.float32 and result.shape == pool[0].shape
        return
    # Every pool entry gets the same curves (same seed); check them on the first.
    x = pool[0]
    out, curves = rsgt_fast.transform_batch(x, rng=SEED, return_curves=True)
    checks.matches_rsgt(x, out, curves, None)
    assert result.shape == x.shape and result.dtype == np.float32
