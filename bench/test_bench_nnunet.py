"""Case 13: per-sample cost of the batchgeneratorsv2 transform next to nnU-Net's own.

One z-scored float32 128^3 patch, one channel, transformed in place as in
nnU-Net's data loader workers: one thread for everything (torch included),
each transform applied every time (no ``RandomTransform`` probability), on a
fresh clone of the patch (the clone, about the same for all, is in every time).
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("batchgeneratorsv2")

from batchgeneratorsv2.transforms.intensity.brightness import (  # noqa: E402
    MultiplicativeBrightnessTransform)
from batchgeneratorsv2.transforms.intensity.contrast import BGContrast, ContrastTransform  # noqa: E402
from batchgeneratorsv2.transforms.intensity.gamma import GammaTransform  # noqa: E402
from batchgeneratorsv2.transforms.noise.gaussian_blur import GaussianBlurTransform  # noqa: E402
from batchgeneratorsv2.transforms.intensity.gaussian_noise import GaussianNoiseTransform  # noqa: E402

from rsgt_fast.batchgenerators import SmoothGrayValueTransform  # noqa: E402

TRANSFORMS = {
    "rsgt_fast SmoothGrayValueTransform": lambda: SmoothGrayValueTransform(),
    "GammaTransform (retain stats)": lambda: GammaTransform(
        BGContrast((0.7, 1.5)), p_invert_image=0, synchronize_channels=False, p_per_channel=1,
        p_retain_stats=1),
    "ContrastTransform": lambda: ContrastTransform(
        BGContrast((0.75, 1.25)), preserve_range=True, synchronize_channels=False,
        p_per_channel=1),
    "MultiplicativeBrightnessTransform": lambda: MultiplicativeBrightnessTransform(
        BGContrast((0.75, 1.25)), synchronize_channels=False, p_per_channel=1),
    "GaussianNoiseTransform": lambda: GaussianNoiseTransform(
        noise_variance=(0, 0.1), p_per_channel=1, synchronize_channels=True),
    "GaussianBlurTransform": lambda: GaussianBlurTransform(
        blur_sigma=(0.5, 1.0), synchronize_channels=False, synchronize_axes=False,
        p_per_channel=1),
}


@pytest.fixture
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_nnunet_intensity_transforms(benchmark, timed, full_size, one_thread, name):
    benchmark.group = "13 bgv2 transforms, one z-scored float32 128^3 patch, one thread"
    edge = 128 if full_size else 16
    generator = torch.Generator().manual_seed(0)
    patch = torch.randn((1, edge, edge, edge), generator=generator)
    transform = TRANSFORMS[name]()
    torch.manual_seed(0)
    result = timed(lambda: transform(image=patch.clone())["image"],
                   role="ours" if name.startswith("rsgt_fast") else "other", contender=name)
    assert result.shape == patch.shape and torch.isfinite(result).all()
    assert not np.array_equal(result.numpy(), patch.numpy())
