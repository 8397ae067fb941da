"""The MONAI transforms in real MONAI pipelines."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
monai = pytest.importorskip("monai")

from monai.data import DataLoader, Dataset, MetaTensor  # noqa: E402
from monai.transforms import Compose, EnsureTyped, ScaleIntensityRanged  # noqa: E402
from monai.utils import set_determinism  # noqa: E402

import rsgt_fast  # noqa: E402
from rsgt_fast.monai import (  # noqa: E402
    RandSmoothGrayValue,
    RandSmoothGrayValueBatch,
    RandSmoothGrayValued,
)

N_ITEMS = 6


def ct_image(seed=0, channels=1, size=8):
    """A channel-first int16 CT-like image spanning [-1024, 3071]."""
    rng = np.random.default_rng(seed)
    x = rng.integers(-1024, 3072, size=(channels, size, size, size)).astype(np.int16)
    x.reshape(channels, -1)[:, :2] = (-1024, 3071)
    return x


AFFINE = torch.tensor([[0.7, 0.0, 0.0, -90.0], [0.0, 0.7, 0.0, 12.0],
                       [0.0, 0.0, 2.5, 30.0], [0.0, 0.0, 0.0, 1.0]], dtype=torch.float64)


@pytest.fixture
def determinism():
    yield set_determinism
    set_determinism(seed=None)


def pipeline_outputs(seed):
    """Run a Dataset + DataLoader(num_workers=2) pipeline; stack the augmented images."""
    set_determinism(seed=seed)
    image = ct_image()
    data = [{"image": image.copy(), "label": np.zeros_like(image, dtype=np.uint8), "id": i}
            for i in range(N_ITEMS)]
    transform = Compose([
        EnsureTyped(keys=["image", "label"]),
        ScaleIntensityRanged("image", a_min=-1024, a_max=3071, b_min=0.0, b_max=1.0,
                             clip=True),
        RandSmoothGrayValued("image", prob=1.0, min_max_val=(0, 1)),
    ])
    loader = DataLoader(Dataset(data, transform), batch_size=2, num_workers=2)
    images, labels, ids = [], [], []
    for batch in loader:
        images.append(batch["image"])
        labels.append(batch["label"])
        ids.extend(batch["id"].tolist())
    assert ids == list(range(N_ITEMS))
    return torch.cat(images), torch.cat(labels)


def test_pipeline_with_workers_is_distinct_per_sample_and_reproducible(determinism):
    first, labels = pipeline_outputs(seed=0)
    again, _ = pipeline_outputs(seed=0)
    other, _ = pipeline_outputs(seed=1)
    assert first.shape == (N_ITEMS, 1, 8, 8, 8) and first.dtype == torch.float32
    assert float(first.min()) >= 0 and float(first.max()) <= 1
    for i in range(N_ITEMS):
        for j in range(i):
            assert not torch.equal(first[i], first[j])  # the same input, its own curve
    assert torch.equal(first, again)
    assert not torch.equal(first, other)
    assert not labels.any()  # the label key is not transformed


def test_set_random_state_reproduces():
    x = ct_image()
    a = RandSmoothGrayValue(prob=1.0).set_random_state(5)
    b = RandSmoothGrayValue(prob=1.0).set_random_state(5)
    first, second = a(x), a(x)
    np.testing.assert_array_equal(first, b(x))
    np.testing.assert_array_equal(second, b(x))
    assert not np.array_equal(first, second)


def test_result_is_exactly_the_recorded_curve():
    x = ct_image()
    t = RandSmoothGrayValue(prob=1.0, min_max_val=(-1024, 3071)).set_random_state(1)
    out = t(x)
    assert len(t.curves) == 1
    np.testing.assert_allclose(out, t.curves.evaluate(x[None])[0], atol=1e-6)


def test_types_are_kept():
    x = ct_image()
    t = RandSmoothGrayValue(prob=1.0, dtype=np.float64).set_random_state(0)
    out_np = t(x)
    assert isinstance(out_np, np.ndarray) and out_np.dtype == np.float64
    out_t = t(torch.from_numpy(x))
    assert type(out_t) is torch.Tensor and out_t.dtype == torch.float64
    assert t(torch.from_numpy(x), randomize=False).equal(out_t)


def test_meta_tensor_keeps_affine_and_metadata():
    x = MetaTensor(torch.from_numpy(ct_image()), affine=AFFINE,
                   meta={"filename_or_obj": "ct.nii.gz", "spacing": (0.7, 0.7, 2.5)})
    out = RandSmoothGrayValue(prob=1.0).set_random_state(0)(x)
    assert isinstance(out, MetaTensor) and out.dtype == torch.float32
    assert torch.equal(out.affine, AFFINE)
    assert out.meta["filename_or_obj"] == "ct.nii.gz" and out.meta["spacing"] == (0.7, 0.7, 2.5)
    assert torch.equal(x.as_tensor(), torch.from_numpy(ct_image()))  # input untouched


def test_prob_zero_returns_the_input():
    x = ct_image()
    assert RandSmoothGrayValue(prob=0.0)(x) is x


def test_channel_wise_gives_each_channel_its_own_curve():
    x = np.repeat(ct_image(), 3, axis=0)
    per_channel = RandSmoothGrayValue(prob=1.0, channel_wise=True).set_random_state(2)
    out = per_channel(x)
    assert len(per_channel.curves) == 3
    assert len({tuple(f) for f in per_channel.curves.frequencies}) == 3
    for i, j in ((0, 1), (0, 2), (1, 2)):
        assert not np.array_equal(out[i], out[j])
    shared = RandSmoothGrayValue(prob=1.0).set_random_state(2)
    out = shared(x)
    assert len(shared.curves) == 1
    np.testing.assert_array_equal(out[0], out[1])
    np.testing.assert_array_equal(out[0], out[2])


def test_dictionary_version_shares_the_curve_and_allows_missing_keys():
    x = ct_image()
    d = RandSmoothGrayValued(["a", "b", "c"], prob=1.0, allow_missing_keys=True)
    d.set_random_state(3)
    out = d({"a": x, "b": torch.from_numpy(x), "other": 1})
    assert isinstance(out["a"], np.ndarray) and isinstance(out["b"], torch.Tensor)
    np.testing.assert_array_equal(out["a"], out["b"].numpy())
    assert "c" not in out and out["other"] == 1
    with pytest.raises(KeyError):
        RandSmoothGrayValued("missing", prob=1.0)({"a": x})


def test_options_are_checked_early():
    with pytest.raises(ValueError, match="max_frequency"):
        RandSmoothGrayValue(min_frequency=2.0, max_frequency=1.0)
    with pytest.raises(ValueError, match="dtype"):
        RandSmoothGrayValueBatch(dtype=np.int16)


# ---------------------------------------------------------------- batch form


def collated(n=4, channels=2):
    """A collated (B, C, 16, 16, 16) int16 batch whose samples are all the same image.

    Each channel holds every integer of [-1024, 3071] once, so that each curve
    reaches both ends of [0, 1].
    """
    rng = np.random.default_rng(0)
    image = np.stack([rng.permutation(np.arange(-1024, 3072, dtype=np.int16)).reshape(16, 16, 16)
                      for _ in range(channels)])
    return torch.from_numpy(np.stack([image] * n))


@pytest.mark.parametrize("channel_wise", [False, True])
def test_batch_form_matches_per_sample_application(channel_wise):
    batch = collated()
    t = RandSmoothGrayValueBatch(channel_wise=channel_wise).set_random_state(0)
    out = t(batch)
    per_sample = RandSmoothGrayValue(prob=1.0, channel_wise=channel_wise).set_random_state(0)
    singles = torch.stack([per_sample(sample) for sample in batch])
    assert out.shape == singles.shape == batch.shape
    assert out.dtype == singles.dtype == torch.float32
    flat_out = out.reshape(len(batch) * (2 if channel_wise else 1), -1)
    flat_single = singles.reshape(flat_out.shape)
    # Samples holding every integer of their range reach both ends of [0, 1] either way.
    for flat in (flat_out, flat_single):
        np.testing.assert_allclose(flat.amin(1), 0, atol=1e-6)
        np.testing.assert_allclose(flat.amax(1), 1, atol=1e-6)
    # One curve per sample (per channel): identical samples come out different.
    assert len(t.curves) == flat_out.shape[0]
    assert len({tuple(f) for f in t.curves.frequencies}) == len(t.curves)
    for i in range(1, len(batch)):
        assert not torch.equal(out[0], out[i])
    # Each sample is exactly its curve applied to it.
    rows = batch.numpy().reshape(len(t.curves), -1)
    np.testing.assert_allclose(flat_out.numpy(), t.curves.evaluate(rows), atol=1e-6)


def test_batch_form_keeps_meta_tensor_and_leaves_unchosen_samples():
    batch = MetaTensor(collated(n=8).float() / 4095, affine=AFFINE)
    t = RandSmoothGrayValueBatch(prob=0.5, min_max_val=(-0.25, 0.75)).set_random_state(4)
    out = t(batch)
    assert isinstance(out, MetaTensor) and torch.equal(out.affine, AFFINE)
    chosen = t._selected
    assert 0 < chosen.sum() < len(chosen)
    for i, was_chosen in enumerate(chosen):
        assert torch.equal(out[i].as_tensor(), batch[i].as_tensor()) != was_chosen


def test_batch_form_reproducible_and_checks_its_input():
    batch = collated()
    a = RandSmoothGrayValueBatch().set_random_state(9)(batch)
    b = RandSmoothGrayValueBatch().set_random_state(9)(batch)
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="expected a"):
        RandSmoothGrayValueBatch(channel_wise=True)(torch.zeros(4, 8))



def test_batch_form_keys_give_a_sample_its_curve_whatever_the_batch():
    batch = collated(n=4).float() / 4095
    whole = RandSmoothGrayValueBatch().set_random_state(0)(batch, keys=[10, 11, 12, 13])
    half = RandSmoothGrayValueBatch().set_random_state(0)(batch[2:], keys=[12, 13])
    swapped = RandSmoothGrayValueBatch().set_random_state(0)(batch[[3, 2]], keys=[13, 12])
    assert torch.equal(whole[2:], half)
    assert torch.equal(whole[[3, 2]], swapped)
    assert not torch.equal(whole[2], whole[3])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_batch_form_on_the_device_branch_never_writes_its_input(monkeypatch, dtype):
    import rsgt_fast.torch as tensors

    # CPU tensors taking the branch CUDA tensors take: the batch is never the output.
    monkeypatch.setattr(tensors, "device_resident", lambda v: isinstance(v, torch.Tensor))
    batch = torch.rand(6, 1, 8, 8, dtype=dtype)
    before = batch.clone()
    t = RandSmoothGrayValueBatch(prob=0.5, dtype=dtype).set_random_state(1)
    out = t(batch)
    assert 0 < t._selected.sum() < len(batch)
    assert torch.equal(batch, before) and out.data_ptr() != batch.data_ptr()
    for i, was_chosen in enumerate(t._selected):
        assert torch.equal(out[i], batch[i]) != was_chosen


@pytest.mark.parametrize("dtype, expected", [(torch.float16, torch.float16),
                                             (torch.float64, torch.float64),
                                             (np.float16, torch.float16)])
def test_torch_dtypes_are_accepted(dtype, expected):
    image = torch.from_numpy(ct_image())
    out = RandSmoothGrayValue(prob=1.0, dtype=dtype).set_random_state(0)(image)
    assert out.dtype == expected
    batch = RandSmoothGrayValueBatch(dtype=dtype).set_random_state(0)(image[None])
    assert batch.dtype == expected
    with pytest.raises(ValueError, match="dtype"):
        RandSmoothGrayValue(dtype=torch.int16)


def skull_stripped(seed=0):
    """A float32 MR-like image with a zero background and NaN outside the field of view."""
    rng = np.random.default_rng(seed)
    x = rng.gamma(2.0, 200.0, (1, 10, 10, 10)).astype(np.float32)
    x[:, :, :3] = 0.0
    x[:, :2] = np.nan
    return x


def test_nonzero_and_nan_policy_follow_the_engine():
    image = skull_stripped()
    t = RandSmoothGrayValue(prob=1.0, nonzero=True, nan_policy="omit").set_random_state(4)
    out = t(image)
    expected = rsgt_fast.transform_batch(image, nan_policy="omit", mask=image != 0,
                                         curves=t.curves)
    np.testing.assert_array_equal(out, expected)
    assert np.all(out[:, 2:, :3] == 0) and np.all(np.isnan(out[:, :2]))
    lo, hi = t.curves.bounds[0]
    kept = image[(image != 0) & np.isfinite(image)]
    assert (lo, hi) == (float(kept.min()), float(kept.max()))


def test_nan_is_refused_naming_the_key_and_the_option():
    t = RandSmoothGrayValued(keys=["t1", "flair"], prob=1.0)
    data = {"t1": ct_image().astype(np.float32), "flair": skull_stripped()}
    with pytest.raises(ValueError, match=r"data\['flair'\] holds NaN or Inf values; pass "
                                         r"nan_policy='omit'"):
        t(data)
    with pytest.raises(ValueError, match="the image holds NaN"):
        RandSmoothGrayValue(prob=1.0)(skull_stripped())


def test_selection_options_are_checked_early():
    with pytest.raises(ValueError, match="nan_policy"):
        RandSmoothGrayValue(nan_policy="drop")
    with pytest.raises(TypeError, match="nonzero"):
        RandSmoothGrayValued(keys="img", nonzero="yes")


@pytest.mark.parametrize("image, expected", [
    (torch.randn(1, 6, 6, dtype=torch.float64), torch.float64),
    (torch.randn(1, 6, 6).to(torch.float16), torch.float16),
    (torch.randn(1, 6, 6).to(torch.bfloat16), torch.bfloat16),
    (torch.from_numpy(ct_image(size=6)), torch.float32),
    (ct_image(size=6).astype(np.float64), np.float64),
])
def test_dtype_none_keeps_the_input_float_dtype(image, expected):
    out = RandSmoothGrayValue(prob=1.0, dtype=None).set_random_state(4)(image)
    assert out.dtype == expected
    batch = RandSmoothGrayValueBatch(prob=0.5, dtype=None).set_random_state(4)(image[None])
    assert batch.dtype == expected


def test_bfloat16_tensors_are_transformed_as_float32():
    image = torch.randn(2, 6, 6, 6).to(torch.bfloat16)
    out = RandSmoothGrayValue(prob=1.0, channel_wise=True).set_random_state(1)(image)
    expected = RandSmoothGrayValue(prob=1.0, channel_wise=True).set_random_state(1)(
        image.float())
    assert out.dtype == torch.float32 and torch.equal(out, expected)


def test_a_boolean_image_is_refused_naming_the_key():
    mask = {"image": torch.from_numpy(ct_image() > 0)}
    with pytest.raises(TypeError, match=r"data\['image'\] is boolean"):
        RandSmoothGrayValued("image", prob=1.0)(mask)
    with pytest.raises(TypeError, match="the batch is boolean"):
        RandSmoothGrayValueBatch(prob=0.5).set_random_state(0)(mask["image"][None])


def test_channel_wise_is_the_engine_curve_per_channel():
    x = ct_image(channels=3)
    transform = RandSmoothGrayValue(prob=1.0, channel_wise=True).set_random_state(2)
    out = transform(x)
    seed = RandSmoothGrayValue(prob=1.0).set_random_state(2)
    seed.randomize()
    expected = rsgt_fast.transform_batch(x[None], rng=seed._seed, channel_axis=1)[0]
    np.testing.assert_array_equal(out, expected)
    batch = torch.from_numpy(np.stack([x, x[::-1].copy()]))
    keyed = RandSmoothGrayValueBatch(channel_wise=True).set_random_state(5)
    out = keyed(batch, keys=[7, 8])
    keyed.set_random_state(5)
    alone = keyed(batch[1:], keys=[8])
    assert torch.equal(out[1:], alone)
    expected = rsgt_fast.transform_batch(batch.numpy(), rng=keyed._seed, keys=[7, 8],
                                         channel_axis=1)
    np.testing.assert_array_equal(out.numpy(), expected)


def test_bfloat16_output_of_a_numpy_image_is_refused_clearly():
    transform = RandSmoothGrayValue(prob=1.0, dtype=torch.bfloat16).set_random_state(0)
    with pytest.raises(TypeError, match="cannot hold dtype=torch.bfloat16"):
        transform(ct_image())
    assert transform(torch.from_numpy(ct_image())).dtype == torch.bfloat16
