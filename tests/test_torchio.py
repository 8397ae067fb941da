"""The TorchIO transforms on real subjects."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
tio = pytest.importorskip("torchio")

import rsgt_fast  # noqa: E402
from rsgt_fast.torchio import RandomSmoothGrayValue, SmoothGrayValue  # noqa: E402

SHAPE = (1, 10, 9, 8)


def make_subject(seed=0):
    """A subject with a CT, an MR and a label map."""
    rng = np.random.default_rng(seed)
    ct = rng.integers(-1024, 3072, size=SHAPE).astype(np.int16)
    mr = np.clip(rng.normal(500, 150, size=SHAPE), 0, None).astype(np.float32)
    label = (rng.random(SHAPE) > 0.7).astype(np.uint8)
    return tio.Subject(
        ct=tio.ScalarImage(tensor=torch.from_numpy(ct), affine=np.diag([0.7, 0.7, 2.5, 1.0])),
        mr=tio.ScalarImage(tensor=torch.from_numpy(mr)),
        seg=tio.LabelMap(tensor=torch.from_numpy(label)),
    )


def test_scalar_images_change_label_maps_do_not():
    subject = make_subject()
    out = RandomSmoothGrayValue(min_max_val=None)(subject)
    for name in ("ct", "mr"):
        data = out[name].data
        assert data.dtype == torch.float32 and data.shape == SHAPE
        assert float(data.min()) >= 0 and float(data.max()) <= 1
    assert out.seg.data.dtype == torch.uint8 and torch.equal(out.seg.data, subject.seg.data)
    np.testing.assert_array_equal(out.ct.affine, subject.ct.affine)
    assert subject.ct.data.dtype == torch.int16  # the input subject is not modified


def test_each_image_gets_its_own_curve():
    subject = make_subject()
    subject.add_image(tio.ScalarImage(tensor=subject.ct.data.clone()), "ct2")
    out = RandomSmoothGrayValue()(subject)
    assert not torch.equal(out.ct.data, out.ct2.data)
    seeds = out.history[-1].seed
    assert sorted(seeds) == ["ct", "ct2", "mr"] and len(set(seeds.values())) == 3


@pytest.mark.parametrize("kwargs, changed", [
    ({"include": ["ct"]}, {"ct"}),
    ({"exclude": ["ct"]}, {"mr"}),
    ({"include": ["seg", "mr"]}, {"mr"}),
])
def test_include_and_exclude(kwargs, changed):
    subject = make_subject()
    out = RandomSmoothGrayValue(**kwargs)(subject)
    for name in ("ct", "mr", "seg"):
        assert torch.equal(out[name].data, subject[name].data) == (name not in changed)
    assert set(out.history[-1].seed) == changed


def test_history_reproduces_the_output():
    subject = make_subject()
    out = RandomSmoothGrayValue(n_sinusoids=3, min_max_val=(-1024, 3071), channel_wise=True,
                                exclude=["mr"])(subject)
    (recorded,) = out.get_applied_transforms()
    assert isinstance(recorded, SmoothGrayValue)
    assert (recorded.n_sinusoids, recorded.min_max_val, recorded.exclude) == (3, (-1024, 3071),
                                                                             ["mr"])
    again = out.get_composed_history()(subject)
    for name in ("ct", "mr", "seg"):
        assert torch.equal(again[name].data, out[name].data)
    seed = recorded.seed["ct"]
    direct = SmoothGrayValue(seed, n_sinusoids=3, min_max_val=(-1024, 3071), channel_wise=True,
                             include=["ct"])(subject)
    assert torch.equal(direct.ct.data, out.ct.data)
    assert len(out.get_inverse_transform(warn=False)) == 0  # not invertible, so left out


def test_torch_seed_reproduces_and_p_zero_does_nothing():
    subject = make_subject()
    torch.manual_seed(3)
    first = RandomSmoothGrayValue()(subject)
    torch.manual_seed(3)
    second = RandomSmoothGrayValue()(subject)
    assert torch.equal(first.ct.data, second.ct.data)
    untouched = RandomSmoothGrayValue(p=0.0)(subject)
    assert torch.equal(untouched.ct.data, subject.ct.data) and untouched.history == []


def test_channel_wise_curves():
    data = torch.from_numpy(np.repeat(make_subject().ct.numpy(), 3, axis=0))
    subject = tio.Subject(ct=tio.ScalarImage(tensor=data))
    per_channel = RandomSmoothGrayValue(channel_wise=True)(subject).ct.data
    assert not torch.equal(per_channel[0], per_channel[1])
    shared = RandomSmoothGrayValue()(subject).ct.data
    assert torch.equal(shared[0], shared[1]) and torch.equal(shared[0], shared[2])


def test_in_compose_with_other_transforms():
    subject = make_subject()
    transform = tio.Compose([tio.RandomFlip(axes=(0,), flip_probability=1.0),
                             RandomSmoothGrayValue(include=["ct"]),
                             tio.RescaleIntensity(out_min_max=(0, 1), include=["mr"])])
    out = transform(subject)
    assert [t.name for t in out.get_applied_transforms()] == ["Flip", "SmoothGrayValue",
                                                              "RescaleIntensity"]
    assert torch.equal(out.seg.data, subject.seg.data.flip(1))
    again = out.get_composed_history()(subject)
    assert torch.equal(again.ct.data, out.ct.data)


def test_subjects_loader_with_workers():
    dataset = tio.SubjectsDataset([make_subject() for _ in range(6)],
                                  transform=tio.Compose([RandomSmoothGrayValue()]))
    loader = tio.SubjectsLoader(dataset, batch_size=3, num_workers=2)
    cts, segs = [], []
    for batch in loader:
        cts.append(batch["ct"][tio.DATA])
        segs.append(batch["seg"][tio.DATA])
    cts, segs = torch.cat(cts), torch.cat(segs)
    assert cts.shape == (6,) + SHAPE and cts.dtype == torch.float32
    for i in range(6):
        for j in range(i):
            assert not torch.equal(cts[i], cts[j])  # the same CT, its own curve
    assert torch.equal(segs, make_subject().seg.data.expand(6, *SHAPE))


def test_bad_options():
    with pytest.raises(ValueError, match="n_sinusoids"):
        RandomSmoothGrayValue(n_sinusoids=0)
    with pytest.raises(ValueError, match="min_max_val"):
        SmoothGrayValue(0, min_max_val=(5, 1))


@pytest.mark.parametrize("dtype", [torch.float16, "float16", np.float16])
def test_dtype_may_be_given_the_torch_way(dtype):
    out = RandomSmoothGrayValue(dtype=dtype)(make_subject())
    assert out.ct.data.dtype == out.mr.data.dtype == torch.float16
    with pytest.raises(ValueError, match="dtype"):
        RandomSmoothGrayValue(dtype=torch.int8)


def _mr_subject():
    rng = np.random.default_rng(3)
    mr = rng.gamma(2.0, 200.0, (1, 8, 8, 8)).astype(np.float32)
    mr[:, :2] = np.nan
    brain = np.zeros((1, 8, 8, 8), np.uint8)
    brain[:, 1:7, 2:6, 2:6] = 1
    return mr, tio.Subject(mr=tio.ScalarImage(tensor=torch.from_numpy(mr)),
                           brain=tio.LabelMap(tensor=torch.from_numpy(brain))), brain


def test_masking_method_and_nan_policy_follow_the_engine():
    mr, subject, brain = _mr_subject()
    transform = SmoothGrayValue(seed=5, masking_method="brain", nan_policy="omit")
    out = transform(subject).mr.data.numpy()
    expected = rsgt_fast.transform_batch(mr[None], nan_policy="omit", mask=(brain != 0)[None],
                                         rng=5)[0]
    np.testing.assert_array_equal(out, expected)
    assert np.all(out[brain == 0] == 0)
    replay = transform(subject).get_composed_history()(subject)
    np.testing.assert_array_equal(replay.mr.data.numpy(), out)


def test_masking_method_as_a_function():
    mr, subject, _ = _mr_subject()
    above = SmoothGrayValue(seed=1, nan_policy="omit", masking_method=lambda t: t > 300)(subject)
    out = above.mr.data.numpy()
    assert np.all(out[~(mr > 300)] == 0) and np.all(np.isfinite(out))


def test_nan_is_refused_naming_the_image_and_the_option():
    _, subject, _ = _mr_subject()
    with pytest.raises(ValueError, match="image 'mr' holds NaN or Inf values; pass "
                                         "nan_policy='omit'"):
        RandomSmoothGrayValue()(subject)
    with pytest.raises(ValueError, match="nan_policy"):
        RandomSmoothGrayValue(nan_policy="skip")


def test_channel_wise_is_the_engine_curve_per_channel():
    data = torch.from_numpy(np.repeat(make_subject().ct.numpy(), 3, axis=0))
    subject = tio.Subject(ct=tio.ScalarImage(tensor=data))
    out = SmoothGrayValue(seed=9, channel_wise=True)(subject).ct.data
    expected = rsgt_fast.transform_batch(data.numpy()[None], rng=9, channel_axis=1)[0]
    np.testing.assert_array_equal(out.numpy(), expected)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16])
def test_dtype_none_keeps_the_image_float_dtype(dtype):
    data = torch.from_numpy(make_subject().mr.numpy()).to(dtype)
    subject = tio.Subject(mr=tio.ScalarImage(tensor=data))
    out = SmoothGrayValue(seed=3, dtype=None)(subject).mr.data
    assert out.dtype == dtype
    bf16 = dtype == torch.bfloat16
    expected = rsgt_fast.transform_batch(data.float().numpy()[None] if bf16 else data.numpy()[None],
                                         rng=3, dtype="float32" if bf16 else None)[0]
    assert torch.equal(out, torch.from_numpy(expected).to(dtype))



def test_a_one_channel_label_map_masks_every_channel():
    mr, subject, brain = _mr_subject()
    two = torch.from_numpy(np.nan_to_num(np.concatenate([mr, mr * 2])))
    subject = tio.Subject(mr=tio.ScalarImage(tensor=two),
                          brain=tio.LabelMap(tensor=torch.from_numpy(brain)))
    out = SmoothGrayValue(seed=1, masking_method="brain", channel_wise=True)(subject).mr.data
    mask = np.broadcast_to(brain.astype(bool), two.shape)
    expected = rsgt_fast.transform_batch(two.numpy()[None], rng=1, mask=mask[None],
                                         channel_axis=1)[0]
    np.testing.assert_array_equal(out.numpy(), expected)
