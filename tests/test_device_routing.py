"""The MONAI, TorchIO and batchgeneratorsv2 transforms keep GPU tensors where they are.

A tensor counts as device-resident when ``rsgt_fast.torch.device_resident``
says so (CUDA tensors).  Here that predicate is made to accept CPU tensors,
so the tensor path the integrations take for GPU tensors runs on this
machine; its results must equal the numpy path's, and its outputs must be
tensors that never went through numpy.  With a GPU, the same checks run on
CUDA tensors unpatched.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import rsgt_fast.torch as rtorch  # noqa: E402

CUDA = torch.cuda.is_available()
DEVICE = "cuda" if CUDA else "cpu"


class Resident:
    """Counts tensor-engine calls; ``enable()`` makes tensors on ``DEVICE`` device-resident."""

    def __init__(self, monkeypatch):
        self.monkeypatch = monkeypatch
        self.calls = []

    def enable(self):
        original = rtorch.transform_batch

        def counting(*args, **kwargs):
            self.calls.append(args[0].device.type)
            return original(*args, **kwargs)

        if not CUDA:
            self.monkeypatch.setattr(rtorch, "device_resident",
                                     lambda v: isinstance(v, torch.Tensor))
        self.monkeypatch.setattr(rtorch, "transform_batch", counting)


def same(got, expected):
    """Equal on this machine; on a GPU, int16 CT with its own ranges gets device-built
    tables (the device's sines), so equal to float rounding."""
    got = got.cpu().numpy()
    if CUDA:
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)
    else:
        np.testing.assert_array_equal(got, expected)


@pytest.fixture
def resident(monkeypatch):
    return Resident(monkeypatch)


def ct(shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(-1024, 3072, shape, generator=g).to(torch.int16)


def test_monai_array_and_batch_transforms(resident):
    monai = pytest.importorskip("rsgt_fast.monai")
    image = ct((2, 8, 8, 8))
    expected = monai.RandSmoothGrayValue(prob=1.0, channel_wise=True).set_random_state(3)(
        image.numpy())
    resident.enable()
    got = monai.RandSmoothGrayValue(prob=1.0, channel_wise=True).set_random_state(3)(
        image.to(DEVICE))
    assert isinstance(got, torch.Tensor) and got.device.type == DEVICE
    same(got, expected)
    assert resident.calls == [DEVICE]

    batch = ct((6, 1, 8, 8, 8), seed=1)
    t = monai.RandSmoothGrayValueBatch(prob=0.5).set_random_state(4)
    expected = t(batch.numpy())
    selected = t._selected.copy()
    assert 0 < selected.sum() < len(selected)
    got = monai.RandSmoothGrayValueBatch(prob=0.5).set_random_state(4)(batch.to(DEVICE))
    assert isinstance(got, torch.Tensor) and got.device.type == DEVICE
    assert got.dtype == torch.float32
    same(got, expected)
    assert len(resident.calls) == 2


def test_torchio_transform(resident):
    tio = pytest.importorskip("torchio")
    from rsgt_fast.torchio import SmoothGrayValue

    data = ct((1, 9, 8, 7))
    expected = SmoothGrayValue(seed=5)(tio.Subject(ct=tio.ScalarImage(tensor=data))).ct.data
    resident.enable()
    subject = tio.Subject(ct=tio.ScalarImage(tensor=data.to(DEVICE)))
    got = SmoothGrayValue(seed=5)(subject).ct.data
    assert got.device.type == DEVICE and got.dtype == torch.float32
    same(got, expected.numpy())
    assert resident.calls == [DEVICE]


@pytest.mark.parametrize("retain_stats", [False, True])
def test_batchgenerators_transform(resident, retain_stats):
    pytest.importorskip("batchgeneratorsv2")
    from rsgt_fast.batchgenerators import SmoothGrayValueTransform

    g = torch.Generator().manual_seed(0)
    image = torch.randn((3, 12, 10, 8), generator=g) * 2.0 + 0.5
    transform = SmoothGrayValueTransform(retain_stats=retain_stats, p_per_channel=1.0)
    torch.manual_seed(7)
    expected = transform(image=image.clone())["image"]
    resident.enable()
    torch.manual_seed(7)
    got = transform(image=image.to(DEVICE))["image"]
    assert got.device.type == DEVICE and resident.calls == [DEVICE]
    if retain_stats:  # statistics summed in another order: float32 rounding apart
        torch.testing.assert_close(got.cpu(), expected, atol=1e-5, rtol=1e-5)
    else:
        np.testing.assert_array_equal(got.cpu().numpy(), expected.numpy())


@pytest.mark.parametrize("retain_stats", [False, True])
def test_batchgenerators_transform_with_nnunet_mask_stays_on_the_device(resident, retain_stats):
    pytest.importorskip("batchgeneratorsv2")
    from rsgt_fast.batchgenerators import SmoothGrayValueTransform

    g = torch.Generator().manual_seed(1)
    image = torch.randn((2, 12, 10, 8), generator=g) * 2.0 + 0.5
    segmentation = torch.zeros((1, 12, 10, 8), dtype=torch.int16)
    segmentation[0, :3] = -1  # outside nnU-Net's mask
    image[0, :3] = 0.0
    transform = SmoothGrayValueTransform(retain_stats=retain_stats, p_per_channel=1.0,
                                         use_mask_for_norm=[True, False])
    torch.manual_seed(5)
    expected = transform(image=image.clone(), segmentation=segmentation)["image"]
    resident.enable()
    torch.manual_seed(5)
    got = transform(image=image.to(DEVICE), segmentation=segmentation.to(DEVICE))["image"]
    assert got.device.type == DEVICE and resident.calls == [DEVICE]
    assert torch.equal(got[0, :3].cpu(), image[0, :3])  # outside the mask: as it was
    if retain_stats:
        torch.testing.assert_close(got.cpu(), expected, atol=1e-5, rtol=1e-5)
    else:
        np.testing.assert_array_equal(got.cpu().numpy(), expected.numpy())
