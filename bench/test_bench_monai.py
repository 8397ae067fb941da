"""MONAI: the batch form against the array transform applied sample by sample.

A collated float32 batch ``(B, 1, D, H, W)`` (values in [0, 1], as after
``ScaleIntensityRange``) is transformed with ``min_max_val=(0, 1)``:

* ``RandSmoothGrayValueBatch``: every sample its own curve, one call;
* ``RandSmoothGrayValue`` called on each sample, then ``torch.stack``: what a
  per-sample pipeline does;
* the floor: ``Tensor.copy_`` of the batch into a preallocated tensor.

In the smoke run (benchmarking disabled) each runs once on a small batch and
the shapes, dtypes and ranges of the two transforms are checked to agree.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("monai")

from rsgt_fast.monai import RandSmoothGrayValue, RandSmoothGrayValueBatch  # noqa: E402

#: Batch shapes when benchmarking and in the smoke run.
SHAPES = ((8, 1, 96, 96, 96), (3, 1, 12, 12, 12))
CONTENDERS = ["batch", "per_sample", "floor"]


@pytest.fixture(scope="module")
def collated(full_size):
    """A collated float32 batch in [0, 1] with both ends present in every sample."""
    shape = SHAPES[0 if full_size else 1]
    rng = np.random.default_rng(8)
    x = np.clip(rng.normal(0.3, 0.15, size=shape), 0, 1).astype(np.float32)
    x.reshape(shape[0], -1)[:, :2] = (0.0, 1.0)
    return torch.from_numpy(x)


def check_unit_range(out, batch):
    assert out.shape == batch.shape and out.dtype == torch.float32
    flat = out.reshape(len(out), -1)
    assert float(flat.min()) >= 0 and float(flat.max()) <= 1
    assert bool((flat.amax(1) - flat.amin(1) > 0.5).all())  # every sample was transformed


@pytest.mark.parametrize("contender", CONTENDERS)
def test_collated_batch(benchmark, timed, collated, contender):
    benchmark.group = f"9 MONAI collated float32 {'x'.join(map(str, collated.shape))}"
    batch_form = RandSmoothGrayValueBatch(min_max_val=(0, 1)).set_random_state(0)
    per_sample = RandSmoothGrayValue(prob=1.0, min_max_val=(0, 1)).set_random_state(0)

    def loop():
        return torch.stack([per_sample(sample) for sample in collated])

    if contender == "batch":
        out = timed(lambda: batch_form(collated), role="ours",
                    contender="RandSmoothGrayValueBatch (one call)")
        check_unit_range(out, collated)
        reference = loop()
        check_unit_range(reference, collated)
        assert reference.shape == out.shape and reference.dtype == out.dtype
    elif contender == "per_sample":
        # No report role: the report's table knows ours, rsgt and the floors only.
        out = timed(loop, contender="RandSmoothGrayValue per sample + torch.stack")
        check_unit_range(out, collated)
    else:
        target = torch.empty_like(collated)
        timed(lambda: target.copy_(collated), role="floor", contender="floor: Tensor.copy_")
        assert torch.equal(target, collated)
