"""batchgeneratorsv2 transform and nnU-Net v2 trainer, on the real libraries."""

import logging
import random

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("batchgeneratorsv2")
pytest.importorskip("nnunetv2")

import rsgt_fast  # noqa: E402
from rsgt_fast import nnunet  # noqa: E402
from rsgt_fast.batchgenerators import SmoothGrayValueTransform  # noqa: E402

from batchgeneratorsv2.transforms.spatial.mirroring import MirrorTransform  # noqa: E402
from batchgeneratorsv2.transforms.utils.random import RandomTransform  # noqa: E402
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer  # noqa: E402


def sample(shape=(2, 12, 10, 8), seed=0):
    g = torch.Generator().manual_seed(seed)
    image = torch.randn(shape, generator=g) * 2.0 + 0.5
    seg = torch.randint(0, 3, (1,) + tuple(shape[1:]), generator=g).to(torch.int16)
    return image, seg


def test_matches_the_engine_with_the_drawn_seed_and_keeps_the_segmentation():
    image, seg = sample()
    transform = SmoothGrayValueTransform(retain_stats=False)
    torch.manual_seed(3)
    params = transform.get_parameters(image=image)
    torch.manual_seed(3)
    seg_before = seg.clone()
    out = transform(image=image.clone(), segmentation=seg)
    expected = rsgt_fast.transform_batch(image.numpy(), rng=params["seed"], keys=[0, 1])
    np.testing.assert_array_equal(out["image"].numpy(), expected)
    assert out["segmentation"] is seg and torch.equal(seg, seg_before)


@pytest.mark.parametrize("shape", [(3, 20, 18), (1, 12, 10, 8)])
def test_retained_stats_and_reproducible(shape):
    image, _ = sample(shape)
    transform = SmoothGrayValueTransform()
    torch.manual_seed(11)
    a = transform(image=image.clone())["image"]
    torch.manual_seed(11)
    b = transform(image=image.clone())["image"]
    assert torch.equal(a, b)
    assert not torch.allclose(a, image)
    dims = tuple(range(1, len(shape)))
    torch.testing.assert_close(a.mean(dim=dims), image.mean(dim=dims), atol=1e-4, rtol=0)
    torch.testing.assert_close(a.std(dim=dims), image.std(dim=dims), atol=1e-4, rtol=1e-4)


def test_channels_synchronized_or_not():
    one, _ = sample((1, 12, 10, 8))
    twins = torch.cat([one, one])
    torch.manual_seed(0)
    synced = SmoothGrayValueTransform(synchronize_channels=True, retain_stats=False)(
        image=twins.clone())["image"]
    assert torch.equal(synced[0], synced[1])
    torch.manual_seed(0)
    free = SmoothGrayValueTransform(retain_stats=False)(image=twins.clone())["image"]
    assert not torch.equal(free[0], free[1])


def test_p_per_channel():
    image, _ = sample((4, 8, 8, 8))
    torch.manual_seed(0)
    assert torch.equal(SmoothGrayValueTransform(p_per_channel=0.0)(image=image.clone())["image"],
                       image)
    torch.manual_seed(5)
    transform = SmoothGrayValueTransform(p_per_channel=0.5, retain_stats=False)
    chosen = transform.get_parameters(image=image)["apply_to_channel"].tolist()
    torch.manual_seed(5)
    out = transform(image=image.clone())["image"]
    for c in range(4):
        assert torch.equal(out[c], image[c]) == (c not in chosen)


def test_integer_image_becomes_float():
    image = torch.randint(-1024, 3072, (1, 8, 8, 8), dtype=torch.int16)
    out = SmoothGrayValueTransform(retain_stats=False)(image=image)["image"]
    assert out.dtype == torch.float32 and float(out.min()) >= 0 and float(out.max()) <= 1


def test_one_thread_per_call_by_default(caplog):
    image = torch.randn(1, 80, 80, 80)  # big enough for threads
    with caplog.at_level(logging.DEBUG, logger="rsgt_fast"):
        SmoothGrayValueTransform()(image=image)
    assert any("thread limit of 1" in r.getMessage() for r in caplog.records)


def _transform_in_worker(seed):
    torch.set_num_threads(1)  # as in a loader worker
    image = torch.from_numpy(np.random.default_rng(seed).standard_normal((1, 64, 64, 64),
                                                                          dtype=np.float32))
    torch.manual_seed(seed)
    return SmoothGrayValueTransform()(image=image)["image"].numpy()


@pytest.mark.timeout(240, method="thread")
def test_works_in_forked_workers_of_a_parent_that_used_parallel_kernels():
    import multiprocessing

    # A call big enough for the parallel kernels, as a main process may make.
    rsgt_fast.transform_batch(np.zeros((2, 1 << 20), np.int16), rng=0)
    with multiprocessing.get_context("fork").Pool(2) as pool:
        results = pool.map(_transform_in_worker, [1, 2])
    for seed, result in zip([1, 2], results, strict=True):
        np.testing.assert_array_equal(result, _transform_in_worker(seed))


@pytest.mark.parametrize("kwargs, error, match", [
    ({"p_per_channel": 1.5}, ValueError, "p_per_channel"),
    ({"n_sinusoids": 0}, ValueError, "n_sinusoids"),
    ({"n_threads": 0}, ValueError, "n_threads"),
    ({"retain_stats": "yes"}, TypeError, "retain_stats"),
])
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        SmoothGrayValueTransform(**kwargs)


@pytest.mark.parametrize("image, error, match", [
    (np.zeros((1, 4, 4)), TypeError, "torch.Tensor"),
    (torch.zeros(1, 2, 3, 4, 5), ValueError, "shape"),
])
def test_bad_images(image, error, match):
    with pytest.raises(error, match=match):
        SmoothGrayValueTransform()(image=image)


# ---------------------------------------------------------------- the trainer

CONFIGS = {
    "3d": dict(patch_size=(24, 24, 24), rotation_for_DA=(-0.5, 0.5),
               deep_supervision_scales=None, mirror_axes=(0, 1, 2),
               do_dummy_2d_data_aug=False),
    "3d anisotropic": dict(patch_size=(8, 24, 24), rotation_for_DA=(-0.5, 0.5),
                           deep_supervision_scales=None, mirror_axes=(1, 2),
                           do_dummy_2d_data_aug=True),
    "2d": dict(patch_size=(32, 32), rotation_for_DA=(-3.14, 3.14),
               deep_supervision_scales=None, mirror_axes=(0, 1), do_dummy_2d_data_aug=False),
}


def names(composed):
    return [type(t).__name__ + (f"/{type(t.transform).__name__}"
                                if isinstance(t, RandomTransform) else "")
            for t in composed.transforms]


@pytest.mark.parametrize("config", list(CONFIGS))
def test_trainer_inserts_rsgt_once_before_mirroring(config):
    ours = nnunet.nnUNetTrainerRSGT.get_training_transforms(**CONFIGS[config])
    theirs = nnUNetTrainer.get_training_transforms(**CONFIGS[config])
    steps = names(ours)
    assert steps.count("RandomTransform/SmoothGrayValueTransform") == 1
    position = steps.index("RandomTransform/SmoothGrayValueTransform")
    assert isinstance(ours.transforms[position + 1], MirrorTransform)
    assert ours.transforms[position].apply_probability == nnunet.RSGT_PROBABILITY
    assert steps[:position] + steps[position + 1:] == names(theirs)


def test_without_mirroring_rsgt_comes_before_the_cascade_steps():
    ours = nnunet.nnUNetTrainerRSGT.get_training_transforms(
        (16, 16, 16), (0.0, 0.0), None, None, False, is_cascaded=True, foreground_labels=[1])
    steps = names(ours)
    position = steps.index("RandomTransform/SmoothGrayValueTransform")
    after = steps[position + 1:]
    assert any(name.startswith("MoveSegAsOneHotToDataTransform") for name in after)
    assert not any(name.startswith("MoveSegAsOneHot") for name in steps[:position])


def _seed_everything(seed):
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)


@pytest.mark.parametrize("config", list(CONFIGS))
def test_whole_pipeline_on_a_synthetic_sample(config):
    spatial = CONFIGS[config]["patch_size"]
    shape = (1,) + tuple(spatial)
    composed = nnunet.with_rsgt(nnUNetTrainer.get_training_transforms(**CONFIGS[config]),
                                probability=1.0)
    position = names(composed).index("RandomTransform/SmoothGrayValueTransform")
    image, seg = sample(shape)

    def run(seed):
        _seed_everything(seed)
        data = {"image": image.clone(), "segmentation": seg.clone()}
        for i, step in enumerate(composed.transforms):
            if i == position:
                before = {k: v.clone() for k, v in data.items()}
                data = step(**data)
                assert torch.equal(data["segmentation"], before["segmentation"])
                assert not torch.allclose(data["image"], before["image"])
            else:
                data = step(**data)
        return data

    a, b = run(4), run(4)
    assert a["image"].shape == shape and torch.isfinite(a["image"]).all()
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["segmentation"],
                                                               b["segmentation"])
    assert not torch.equal(a["image"], run(5)["image"])
    # The whole composition, called as nnU-Net calls it, gives the same result.
    _seed_everything(4)
    whole = composed(image=image.clone(), segmentation=seg.clone())
    assert torch.equal(whole["image"], a["image"])


@pytest.mark.parametrize("name", ["nnUNetTrainerRSGT", "nnUNetTrainerRSGTOnDevice"])
def test_nnunet_finds_the_trainer_in_the_trainer_folder(name):
    # What nnU-Net does for each folder listed in nnUNet_extTrainer.
    from nnunetv2.utilities.find_class_by_name import recursive_find_python_class

    found = recursive_find_python_class(nnunet.TRAINER_FOLDER, name, None,
                                        base_folder=nnunet.TRAINER_FOLDER,
                                        cleanup_imports_from_base_folder=True)
    assert found is getattr(nnunet, name)


def nnunet_masked_sample(seed=0):
    """A 2-channel sample as nnU-Net preprocesses it with use_mask_for_norm: -1 outside."""
    image, seg = sample(seed=seed)
    outside = torch.zeros(image.shape[1:], dtype=torch.bool)
    outside[:3] = True
    seg[0][outside] = -1
    image[:, outside] = 0.0
    return image, seg, ~outside


def test_use_mask_for_norm_keeps_the_outside_and_its_statistics_inside():
    image, seg, inside = nnunet_masked_sample()
    transform = SmoothGrayValueTransform(use_mask_for_norm=[True, False], retain_stats=True)
    torch.manual_seed(5)
    params = transform.get_parameters(image=image, segmentation=seg)
    torch.manual_seed(5)
    out = transform(image=image.clone(), segmentation=seg)["image"].numpy()
    x = image.numpy()
    # channel 0: only the voxels inside set the range and change; the outside stays 0
    rows = np.stack([inside.numpy(), np.ones_like(inside.numpy())])
    raw = rsgt_fast.transform_batch(x, rng=params["seed"], keys=[0, 1], mask=rows)
    assert np.all(out[0][~inside.numpy()] == 0.0)
    inside0 = out[0][inside.numpy()].astype(np.float64)
    source0 = x[0][inside.numpy()].astype(np.float64)
    np.testing.assert_allclose([inside0.mean(), inside0.std(ddof=1)],
                               [source0.mean(), source0.std(ddof=1)], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.corrcoef(inside0, raw[0][inside.numpy()])[0, 1], 1.0,
                               atol=1e-5)
    # channel 1 has no flag: every voxel counts, as without the option
    plain = rsgt_fast.transform_batch(x, rng=params["seed"], keys=[0, 1])
    np.testing.assert_allclose(np.corrcoef(out[1].ravel(), plain[1].ravel())[0, 1], 1.0,
                               atol=1e-5)


def test_use_mask_for_norm_needs_the_segmentation():
    image, _, _ = nnunet_masked_sample()
    with pytest.raises(ValueError, match="use_mask_for_norm needs the sample's segmentation"):
        SmoothGrayValueTransform(use_mask_for_norm=[True, True])(image=image)


def test_trainer_passes_use_mask_for_norm():
    composed = nnunet.nnUNetTrainerRSGT.get_training_transforms(
        (16, 16, 16), (0, 0), None, (0, 1, 2), False, use_mask_for_norm=[True])
    found = [t.transform for t in composed.transforms if isinstance(t, RandomTransform)
             and isinstance(t.transform, SmoothGrayValueTransform)]
    assert len(found) == 1 and found[0].use_mask_for_norm == (True,)


def test_a_subclass_sets_the_probability():
    class Always(nnunet.nnUNetTrainerRSGT):
        rsgt_probability = 1.0

    composed = Always.get_training_transforms(**CONFIGS["3d"])
    found = [t for t in composed.transforms if isinstance(t, RandomTransform)
             and isinstance(t.transform, SmoothGrayValueTransform)]
    assert len(found) == 1 and found[0].apply_probability == 1.0


# ------------------------------------------------- RSGT on the trainer's device

def batch(n=4, channels=2, spatial=(12, 10, 8), seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn((n, channels) + spatial, generator=g) * 2.0 + 0.5


def as_the_workers_would(data, transform, probability, seed, segmentations=None):
    """Each sample through RandomTransform(transform) in turn, as nnUNetTrainerRSGT's workers."""
    torch.manual_seed(seed)
    wrapped = RandomTransform(transform, apply_probability=probability)
    out = []
    for b in range(data.shape[0]):
        sample = {"image": data[b].clone()}
        if segmentations is not None:
            sample["segmentation"] = segmentations[b]
        out.append(wrapped(**sample)["image"])
    return torch.stack(out)


def test_training_batch_equals_the_workers_transform_for_the_same_seed():
    data = batch()
    transform = SmoothGrayValueTransform()
    torch.manual_seed(1)
    ours = data.clone()
    done = nnunet.transform_training_batch(ours, transform, 0.5)
    expected = as_the_workers_would(data, transform, 0.5, seed=1)
    assert torch.equal(ours, expected)
    changed = [not torch.equal(ours[b], data[b]) for b in range(data.shape[0])]
    assert done == sum(changed) and 0 < done < data.shape[0]
    dims = (2, 3, 4)
    torch.testing.assert_close(ours.mean(dim=dims), data.mean(dim=dims), atol=1e-4, rtol=0)
    torch.testing.assert_close(ours.std(dim=dims), data.std(dim=dims), atol=1e-4, rtol=1e-4)
    torch.manual_seed(1)
    again = data.clone()
    nnunet.transform_training_batch(again, transform, 0.5)
    assert torch.equal(again, ours)


def test_training_batch_probability():
    data = batch(n=3)
    transform = SmoothGrayValueTransform(retain_stats=False)
    untouched = data.clone()
    assert nnunet.transform_training_batch(untouched, transform, 0.0) == 0
    assert torch.equal(untouched, data)
    every = data.clone()
    assert nnunet.transform_training_batch(every, transform, 1.0) == 3
    assert all(not torch.equal(every[b], data[b]) for b in range(3))
    torch.manual_seed(0)
    many = batch(n=400, channels=1, spatial=(4, 4))
    done = nnunet.transform_training_batch(many, transform)  # RSGT_PROBABILITY
    assert abs(done / 400 - nnunet.RSGT_PROBABILITY) < 0.08  # about 3.5 sigma


def test_training_batch_per_channel_choices_follow_the_transform():
    data = batch(n=2, channels=4)
    for transform in (SmoothGrayValueTransform(p_per_channel=0.5, retain_stats=False),
                      SmoothGrayValueTransform(synchronize_channels=True, retain_stats=False)):
        torch.manual_seed(7)
        ours = data.clone()
        nnunet.transform_training_batch(ours, transform, 1.0)
        assert torch.equal(ours, as_the_workers_would(data, transform, 1.0, seed=7))


def nnunet_masked_batch(n=3, seed=0):
    """Two channels, the first with use_mask_for_norm: what the workers hand over, and
    the samples (image 0 outside, segmentation -1 outside) that nnUNetTrainerRSGT sees."""
    data = batch(n=n, seed=seed)
    outside = torch.zeros((n,) + tuple(data.shape[2:]), dtype=torch.bool)
    outside[:, :3] = True
    outside[1, :, :2] = True
    zeroed = data.clone()
    zeroed[:, 0][outside] = 0.0
    marked = data.clone()
    marked[:, 0][outside] = float("nan")
    segmentations = [torch.where(outside[b], -1, 1).to(torch.int16)[None] for b in range(n)]
    return marked, zeroed, segmentations, outside


def test_training_batch_with_use_mask_for_norm_equals_the_workers_transform():
    marked, zeroed, segmentations, outside = nnunet_masked_batch()
    transform = SmoothGrayValueTransform(use_mask_for_norm=[True, False])
    torch.manual_seed(2)
    done = nnunet.transform_training_batch(marked, transform, 1.0)
    assert done == 3 and not torch.isnan(marked).any()
    expected = as_the_workers_would(zeroed, transform, 1.0, seed=2, segmentations=segmentations)
    torch.testing.assert_close(marked, expected, rtol=0, atol=1e-6)
    assert torch.all(marked[:, 0][outside] == 0.0)
    for b in range(3):
        inside, before = marked[b, 0][~outside[b]].double(), zeroed[b, 0][~outside[b]].double()
        assert not torch.allclose(inside, before)
        torch.testing.assert_close([inside.mean(), inside.std()], [before.mean(), before.std()],
                                   rtol=1e-4, atol=1e-5)


def test_training_batch_clears_the_marks_of_samples_left_alone():
    marked, zeroed, _, _ = nnunet_masked_batch()
    transform = SmoothGrayValueTransform(use_mask_for_norm=[True, False])
    assert nnunet.transform_training_batch(marked, transform, 0.0) == 0
    assert torch.equal(marked, zeroed)


def test_training_batch_leaves_the_cascade_channels_alone():
    data = batch(channels=3)
    ours = data.clone()
    nnunet.transform_training_batch(ours, SmoothGrayValueTransform(), 1.0, n_channels=2)
    assert torch.equal(ours[:, 2], data[:, 2]) and not torch.equal(ours[:, :2], data[:, :2])


@pytest.mark.parametrize("data, got", [
    (torch.zeros((2, 1, 4, 4, 4), dtype=torch.int16), "torch.int16"),
    (np.zeros((2, 1, 4, 4, 4), np.float32), "ndarray"),
])
def test_training_batch_must_hold_floats(data, got):
    with pytest.raises(TypeError, match=rf"batch\['data'\] .*floating-point.*{got}"):
        nnunet.transform_training_batch(data, SmoothGrayValueTransform())


@pytest.mark.parametrize("config", ["3d", "2d"])
def test_on_device_trainer_workers_run_nnunets_transforms_only(config):
    ours = nnunet.nnUNetTrainerRSGTOnDevice.get_training_transforms(
        **CONFIGS[config], use_mask_for_norm=[True, False])
    theirs = nnUNetTrainer.get_training_transforms(**CONFIGS[config],
                                                   use_mask_for_norm=[True, False])
    assert names(ours) == names(theirs)
    masks = [t for t in ours.transforms if type(t).__name__ == "MaskImageTransform"]
    assert len(masks) == 1 and np.isnan(masks[0].set_outside_to)
    assert masks[0].apply_to_channels == [0]
    assert nnunet.nnUNetTrainerRSGTOnDevice.get_validation_transforms is \
        nnUNetTrainer.get_validation_transforms
    assert nnunet.nnUNetTrainerRSGTOnDevice.validation_step is nnUNetTrainer.validation_step


class _Configuration:
    use_mask_for_norm = [True, False]


def bare_trainer(device, probability=1.0):
    """An on-device trainer with only what train_step needs (no plans, no folders)."""
    cls = type("Trainer", (nnunet.nnUNetTrainerRSGTOnDevice,), {"rsgt_probability": probability})
    trainer = object.__new__(cls)
    trainer.device = torch.device(device)
    trainer.num_input_channels = 2
    trainer.is_cascaded = False
    trainer.configuration_manager = _Configuration()
    return trainer


@pytest.fixture
def nnunet_step(monkeypatch):
    """Replace nnU-Net's own training step by one that records the batch it gets."""
    seen = []

    def step(self, batch):
        seen.append(batch)
        return {"loss": np.float32(0.0)}

    monkeypatch.setattr(nnUNetTrainer, "train_step", step)
    return seen


def test_train_step_transforms_the_batch_then_runs_nnunets_step(nnunet_step):
    marked, zeroed, segmentations, _ = nnunet_masked_batch()
    target = [torch.zeros((3, 1, 12, 10, 8)), torch.zeros((3, 1, 6, 5, 4))]
    trainer = bare_trainer("cpu")
    torch.manual_seed(4)
    trainer.train_step({"data": marked, "target": target, "keys": ["a", "b", "c"]})
    (handed,) = nnunet_step
    assert handed["target"] is target and handed["keys"] == ["a", "b", "c"]
    assert handed["data"].device.type == "cpu" and not torch.isnan(handed["data"]).any()
    expected = as_the_workers_would(zeroed, trainer._rsgt["transform"], 1.0, seed=4,
                                    segmentations=segmentations)
    torch.testing.assert_close(handed["data"], expected, rtol=0, atol=1e-6)
    assert (trainer._rsgt["done"], trainer._rsgt["seen"]) == (3, 3)


def test_train_step_refuses_integer_images(nnunet_step):
    with pytest.raises(TypeError, match=r"batch\['data'\].*torch.int16"):
        bare_trainer("cpu").train_step({"data": torch.zeros((1, 2, 4, 4, 4), dtype=torch.int16),
                                        "target": None})
    assert not nnunet_step


@pytest.mark.parametrize("device", ["cuda", "mps"])
def test_train_step_falls_back_to_the_host_with_one_log_line(device, nnunet_step, monkeypatch,
                                                             caplog):
    monkeypatch.setattr(nnunet._tensors, "_gpu", lambda: None)  # CUDA without Triton
    trainer = bare_trainer(device)
    data = batch(n=2)
    with caplog.at_level(logging.INFO, logger="rsgt_fast.nnunet"):
        for _ in range(3):
            trainer.train_step({"data": data.clone(), "target": None})
    lines = [r for r in caplog.records if r.name == "rsgt_fast.nnunet"]
    assert len(lines) == 1 and "on the host" in lines[0].getMessage()
    assert device in lines[0].getMessage()
    assert len(nnunet_step) == 3
    for handed in nnunet_step:  # transformed here; nnU-Net's step moves it
        assert handed["data"].device.type == "cpu" and not torch.equal(handed["data"], data)


def test_epoch_end_logs_the_count(nnunet_step, monkeypatch):
    monkeypatch.setattr(nnUNetTrainer, "on_train_epoch_end", lambda self, outputs: None)
    trainer = bare_trainer("cpu", probability=0.0)
    printed = []
    trainer.print_to_log_file = lambda *args, **kwargs: printed.append(" ".join(args))
    trainer.train_step({"data": batch(n=2), "target": None})
    trainer.on_train_epoch_end([])
    assert printed == ["RSGT (cpu): 0 of 2 training samples transformed"]
    assert (trainer._rsgt["done"], trainer._rsgt["seen"]) == (0, 0)


@pytest.mark.parametrize("retain_stats", [False, True])
def test_nan_policy_omit_keeps_nan_out_of_range_and_statistics(retain_stats):
    image, _ = sample((2, 12, 10, 8), seed=4)
    image[:, :2] = float("nan")
    transform = SmoothGrayValueTransform(retain_stats=retain_stats, nan_policy="omit")
    torch.manual_seed(9)
    params = transform.get_parameters(image=image)
    torch.manual_seed(9)
    out = transform(image=image.clone())["image"]
    assert torch.isnan(out[:, :2]).all() and torch.isfinite(out[:, 2:]).all()
    expected = rsgt_fast.transform_batch(image.numpy(), rng=params["seed"], keys=[0, 1],
                                         nan_policy="omit")
    if not retain_stats:
        np.testing.assert_array_equal(out.numpy(), expected)
    else:
        finite = image[:, 2:]
        got = out[:, 2:]
        dims = (1, 2, 3)
        torch.testing.assert_close(got.mean(dim=dims), finite.mean(dim=dims), atol=1e-4, rtol=0)
        torch.testing.assert_close(got.std(dim=dims), finite.std(dim=dims), atol=1e-4,
                                   rtol=1e-4)


def test_nan_is_refused_in_the_transform_terms():
    image, _ = sample((1, 6, 6, 6))
    image[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="the image holds NaN or Inf values; pass "
                                         "nan_policy='omit'"):
        SmoothGrayValueTransform()(image=image)
    with pytest.raises(ValueError, match="nan_policy must be"):
        SmoothGrayValueTransform(nan_policy="drop")


def test_omit_rescales_infinite_voxels_with_the_others():
    image, _ = sample((1, 12, 10, 8), seed=6)
    image[0, 2, 2, 2] = float("inf")
    image[0, 0] = float("nan")
    torch.manual_seed(2)
    kept = SmoothGrayValueTransform(nan_policy="omit")(image=image.clone())["image"]
    torch.manual_seed(2)
    raw = SmoothGrayValueTransform(nan_policy="omit", retain_stats=False)(
        image=image.clone())["image"]
    finite = torch.isfinite(image)
    # one affine map for every non-NaN voxel: the Inf voxel's value follows it too
    a, b = raw[finite][:2], kept[finite][:2]
    scale = (b[1] - b[0]) / (a[1] - a[0])
    expected = b[0] + (raw[0, 2, 2, 2] - a[0]) * scale
    torch.testing.assert_close(kept[0, 2, 2, 2], expected, atol=1e-4, rtol=1e-4)
    assert torch.isnan(kept[0, 0]).all()


def test_a_patch_outside_the_nnunet_mask_keeps_its_masked_channels():
    image, _ = sample((2, 6, 6, 6), seed=7)
    image[0] = 0.0
    segmentation = torch.full((1, 6, 6, 6), -1, dtype=torch.int16)
    transform = SmoothGrayValueTransform(use_mask_for_norm=[True, False])
    torch.manual_seed(4)
    out = transform(image=image.clone(), segmentation=segmentation)["image"]
    assert torch.equal(out[0], image[0])  # left as nnU-Net's masking left it
    assert not torch.equal(out[1], image[1])  # the unmasked channel is still transformed
    torch.manual_seed(4)
    both = SmoothGrayValueTransform(use_mask_for_norm=[True, True])(
        image=image.clone(), segmentation=segmentation)["image"]
    assert torch.equal(both, image)
