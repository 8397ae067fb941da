"""The rsgt-fast command: preview, augment, bench, help and errors."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("matplotlib")
pytest.importorskip("tqdm")
nib = pytest.importorskip("nibabel")
sitk = pytest.importorskip("SimpleITK")
pytest.importorskip("pydicom")

from matplotlib import image as mpimg  # noqa: E402

import rsgt_fast  # noqa: E402
from rsgt_fast import cli  # noqa: E402
from rsgt_fast.cli import main  # noqa: E402


@pytest.fixture
def ct_volume():
    rng = np.random.default_rng(11)
    x = np.clip(rng.normal(40, 400, size=(12, 10, 8)), -1024, 3071).astype(np.int16)
    x.flat[:2] = (-1024, 3071)
    return x


@pytest.fixture
def nifti(tmp_path, ct_volume):
    affine = np.array([[-0.7, 0.0, 0.1, 90.0], [0.0, 0.8, 0.0, -120.5],
                       [0.05, 0.0, 2.5, -60.0], [0.0, 0.0, 0.0, 1.0]])
    path = tmp_path / "in" / "ct.nii.gz"
    path.parent.mkdir()
    nib.save(nib.Nifti1Image(ct_volume, affine), path)
    return path


@pytest.fixture
def nrrd(tmp_path, ct_volume):
    image = sitk.GetImageFromArray(ct_volume)
    image.SetSpacing((0.8, 0.9, 2.0))
    image.SetOrigin((-10.0, 20.5, 3.0))
    image.SetDirection((0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, -1.0))
    path = tmp_path / "in" / "mr.nrrd"
    path.parent.mkdir(exist_ok=True)
    sitk.WriteImage(image, str(path), True)
    return path


def run(capsys, *argv):
    """``main(argv)`` as strings; returns (status, stdout, stderr lines)."""
    status = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err.splitlines()


def load(path):
    return np.asanyarray(nib.load(path).dataobj)


# ---------------------------------------------------------------- help


@pytest.mark.parametrize("command", [[], ["preview"], ["augment"], ["bench"]])
def test_help_shows_examples(capsys, command):
    status, out, _ = run(capsys, *command, "--help")
    assert status == 0
    assert "examples:" in out and "rsgt-fast" in out


def test_module_and_console_script_run():
    module = subprocess.run([sys.executable, "-m", "rsgt_fast.cli", "--help"],
                            capture_output=True, text=True, timeout=120)
    assert module.returncode == 0 and "preview" in module.stdout
    script = Path(sys.executable).with_name("rsgt-fast")
    if not script.exists():
        pytest.skip("the rsgt-fast console script is not installed next to python")
    done = subprocess.run([str(script), "augment", "--help"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and "--overwrite" in done.stdout


# ---------------------------------------------------------------- preview


def test_preview_of_the_ct_sample_is_a_png(capsys, tmp_path):
    target = tmp_path / "preview.png"
    status, out, err = run(capsys, "preview", "--sample", "ct", "-o", target, "--n", 3,
                           "--seed", 0)
    assert status == 0 and err == [] and str(target) in out
    picture = mpimg.imread(target)
    height, width, channels = picture.shape
    assert channels in (3, 4) and width > 3 * height / 2  # four columns side by side
    assert picture[..., :3].std() > 0.1  # not a blank figure


def test_preview_of_a_volume_with_options(capsys, tmp_path, nifti):
    target = tmp_path / "sub" / "p.png"
    status, _, err = run(capsys, "preview", nifti, "-o", target, "--n", 2, "--slice", 3,
                         "--normalize", "ct", "--min-max", -1000, 2000)
    assert status == 0 and err == []
    assert mpimg.imread(target).shape[0] > 100


@pytest.mark.parametrize("value, normalize", [(-3024, "ct"), (4000, "ct"), (7, "mr"),
                                              (7, None)])
def test_preview_of_a_constant_slice_or_one_outside_the_hu_window(capsys, tmp_path, value,
                                                                 normalize):
    source = tmp_path / "padding.npy"
    np.save(source, np.full((16, 16), value, np.int16))
    target = tmp_path / "p.png"
    options = [] if normalize is None else ["--normalize", normalize]
    status, _, err = run(capsys, "preview", source, "-o", target, *options)
    assert status == 0 and err == []
    assert mpimg.imread(target).shape[0] > 100


def test_preview_is_reproducible_with_a_seed(capsys, tmp_path):
    for name in ("a.png", "b.png"):
        assert run(capsys, "preview", "--sample", "mr", "-o", tmp_path / name, "--seed", 4)[0] == 0
    np.testing.assert_array_equal(mpimg.imread(tmp_path / "a.png"),
                                  mpimg.imread(tmp_path / "b.png"))


@pytest.mark.parametrize("argv, message", [
    (["preview", "-o", "x.png"], "give either INPUT or --sample"),
    (["preview", "--sample", "ct", "-o", "x.png", "--n", "0"], "--n must be between"),
    (["preview", "--sample", "ct", "-o", "x.png", "--slice", "5"], "slice 5 does not exist"),
    (["preview", "--sample", "pet", "-o", "x.png"], "invalid choice"),
    (["augment", "-o", "out"], "required: INPUT"),
    (["augment", "a.nii", "-o", "out", "--n", "0"], "--n must be >= 1"),
    (["bench", "--size", "x"], "invalid int value"),
    (["augment", "a.nii", "-o", "out", "--seed", "-1"], "--seed: must be a non-negative"),
    (["preview", "--sample", "ct", "-o", "x.png", "--seed", "1.5"], "--seed: must be a"),
    ([], "choose a command"),
])
def test_usage_errors_are_one_line_with_status_2(capsys, tmp_path, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    status, out, err = run(capsys, *argv)
    assert status == 2 and out == ""
    assert len(err) == 1 and message in err[0] and err[0].startswith("rsgt-fast")


def test_missing_extra_is_one_line(capsys, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    status, _, err = run(capsys, "preview", "--sample", "ct", "-o", tmp_path / "p.png")
    assert status == 1
    assert err == ['rsgt-fast preview needs matplotlib: pip install "rsgt-fast[plot]"']
    assert not (tmp_path / "p.png").exists()


def test_unreadable_preview_input_is_one_line(capsys, tmp_path):
    bad = tmp_path / "broken.nii.gz"
    bad.write_bytes(b"\x00" * 10)
    status, _, err = run(capsys, "preview", bad, "-o", tmp_path / "p.png")
    assert status == 1 and len(err) == 1 and "broken.nii.gz" in err[0]


# ---------------------------------------------------------------- augment


def test_augment_nifti_keeps_geometry(capsys, tmp_path, nifti, ct_volume):
    out_dir = tmp_path / "out"
    status, _, err = run(capsys, "augment", nifti, "-o", out_dir, "--n", 3, "--seed", 1)
    assert status == 0 and len(err) == 1 and "1 of 1 files" in err[0]
    source = nib.load(nifti)
    outputs = []
    for k in range(3):
        result = nib.load(out_dir / f"ct_rsgt{k}.nii.gz")
        np.testing.assert_array_equal(result.affine, source.affine)
        assert result.get_data_dtype() == np.float32 and result.shape == ct_volume.shape
        data = np.asanyarray(result.dataobj)
        assert data.min() >= 0 and data.max() <= 1
        outputs.append(data)
    assert not np.array_equal(outputs[0], outputs[1])
    assert not np.array_equal(outputs[1], outputs[2])
    np.testing.assert_array_equal(load(nifti), ct_volume)  # input untouched


def test_augment_nrrd_keeps_spacing_origin_direction(capsys, tmp_path, nrrd):
    status, _, _ = run(capsys, "augment", nrrd, "-o", tmp_path / "out", "--dtype", "float64",
                       "--min-max", -1024, 3071)
    assert status == 0
    source = sitk.ReadImage(str(nrrd))
    result = sitk.ReadImage(str(tmp_path / "out" / "mr_rsgt0.nrrd"))
    assert result.GetSpacing() == source.GetSpacing()
    assert result.GetOrigin() == source.GetOrigin()
    assert result.GetDirection() == source.GetDirection()
    assert result.GetSize() == source.GetSize()
    assert sitk.GetArrayViewFromImage(result).dtype == np.float64


def test_float16_only_as_npy(capsys, tmp_path, nrrd, ct_volume):
    np.save(tmp_path / "in" / "x.npy", ct_volume)
    status, _, err = run(capsys, "augment", nrrd, tmp_path / "in" / "x.npy", "-o", tmp_path,
                         "--dtype", "float16")
    assert status == 1
    assert "mr.nrrd" in err[0] and ".nrrd cannot hold float16 values" in err[0]
    out = np.load(tmp_path / "x_rsgt0.npy")
    assert out.dtype == np.float16 and out.shape == ct_volume.shape


def test_augment_dicom_writes_nifti(capsys, tmp_path):
    from rsgt_fast import io

    status, _, _ = run(capsys, "augment", io.sample("ct").path, "-o", tmp_path, "--n", 2)
    assert status == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["CT_small_rsgt0.nii.gz",
                                                          "CT_small_rsgt1.nii.gz"]


def test_augment_seed_makes_runs_reproducible(capsys, tmp_path, nifti, nrrd):
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        assert run(capsys, "augment", nifti, nrrd, "-o", tmp_path / name, "--n", 2,
                   "--seed", seed)[0] == 0
    a0, b0, c0 = (load(tmp_path / d / "ct_rsgt1.nii.gz") for d in "abc")
    np.testing.assert_array_equal(a0, b0)
    assert not np.array_equal(a0, c0)
    a1, b1 = (sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / d / "mr_rsgt0.nrrd")))
              for d in "ab")
    np.testing.assert_array_equal(a1, b1)
    # The first input's copies do not depend on what follows it.
    assert run(capsys, "augment", nifti, "-o", tmp_path / "d", "--n", 2, "--seed", 7)[0] == 0
    np.testing.assert_array_equal(load(tmp_path / "d" / "ct_rsgt1.nii.gz"), a0)


def test_augment_key_name_ignores_order_and_other_inputs(capsys, tmp_path, nifti, nrrd):
    assert run(capsys, "augment", nifti, nrrd, "-o", tmp_path / "a", "--n", 2, "--seed", 3,
               "--key", "name")[0] == 0
    assert run(capsys, "augment", nrrd, "-o", tmp_path / "b", "--n", 2, "--seed", 3,
               "--key", "name")[0] == 0
    assert run(capsys, "augment", nrrd, nifti, "-o", tmp_path / "c", "--n", 2, "--seed", 3,
               "--key", "name")[0] == 0
    mr = [sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / d / "mr_rsgt1.nrrd")))
          for d in "abc"]
    np.testing.assert_array_equal(mr[0], mr[1])
    np.testing.assert_array_equal(mr[0], mr[2])
    np.testing.assert_array_equal(load(tmp_path / "a" / "ct_rsgt0.nii.gz"),
                                  load(tmp_path / "c" / "ct_rsgt0.nii.gz"))
    # The stream is the name's child of SeedSequence(seed), drawn as one batch.
    image = sitk.GetArrayFromImage(sitk.ReadImage(str(nrrd)))
    stream = np.random.SeedSequence(3, spawn_key=(cli.name_key(nrrd),))
    expected = rsgt_fast.transform_batch(np.stack([image, image]),
                                         rng=np.random.default_rng(stream))
    np.testing.assert_array_equal(mr[0], expected[1])
    # By index, the nrrd's copies change with its position.
    assert run(capsys, "augment", nifti, nrrd, "-o", tmp_path / "d", "--n", 2,
               "--seed", 3)[0] == 0
    assert not np.array_equal(
        sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "d" / "mr_rsgt1.nrrd"))), mr[0])


def test_failed_file_is_one_line_and_others_still_done(capsys, tmp_path, nifti, nrrd):
    broken = tmp_path / "in" / "broken.nii.gz"
    broken.write_bytes(b"not gzip")
    missing = tmp_path / "in" / "missing.mha"
    status, _, err = run(capsys, "augment", nifti, broken, missing, nrrd, "-o", tmp_path / "out")
    assert status == 1
    assert [line for line in err if "broken.nii.gz" in line] == [err[0]]
    assert [line for line in err if "missing.mha" in line] == [err[1]]
    assert "Traceback" not in "\n".join(err)
    assert err[-1].endswith("2 of 4 files augmented, 2 images written to "
                            f"{tmp_path / 'out'}; 2 failed")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["ct_rsgt0.nii.gz",
                                                                    "mr_rsgt0.nrrd"]


def test_existing_outputs_need_overwrite(capsys, tmp_path, nifti):
    out_dir = tmp_path / "out"
    assert run(capsys, "augment", nifti, "-o", out_dir, "--seed", 1)[0] == 0
    first = load(out_dir / "ct_rsgt0.nii.gz")
    status, _, err = run(capsys, "augment", nifti, "-o", out_dir, "--seed", 2)
    assert status == 1
    assert "ct_rsgt0.nii.gz exists (use --overwrite to replace it)" in err[0]
    np.testing.assert_array_equal(load(out_dir / "ct_rsgt0.nii.gz"), first)
    assert run(capsys, "augment", nifti, "-o", out_dir, "--seed", 2, "--overwrite")[0] == 0
    assert not np.array_equal(load(out_dir / "ct_rsgt0.nii.gz"), first)


def test_inputs_are_never_overwritten(capsys, tmp_path, nifti, ct_volume):
    named_like_output = nifti.with_name("ct_rsgt0.nii.gz")
    named_like_output.write_bytes(nifti.read_bytes())
    status, _, err = run(capsys, "augment", nifti, named_like_output, "-o", nifti.parent,
                         "--overwrite")
    assert status == 1
    assert "refusing to overwrite the input" in err[0] and "ct_rsgt0.nii.gz" in err[0]
    np.testing.assert_array_equal(load(named_like_output), ct_volume)
    assert (nifti.parent / "ct_rsgt0_rsgt0.nii.gz").exists()  # the other input was done


# ---------------------------------------------------------------- bench


def test_bench_prints_a_table(capsys):
    status, out, _ = run(capsys, "bench", "--batch", 2, "--size", 8, "--repeat", 1)
    assert status == 0
    lines = out.splitlines()
    assert "rsgt_fast" in lines[1] and "np.copyto floor" in lines[1]
    assert any(line.startswith("int16 CT") and line.endswith("x") for line in lines)


@pytest.fixture
def mr_with_nan(tmp_path):
    rng = np.random.default_rng(4)
    x = rng.gamma(2.0, 200.0, (10, 9, 8)).astype(np.float32)
    x[:2] = np.nan  # outside the field of view
    x[:, :, :2] = 0.0  # a zero background
    path = tmp_path / "scans" / "mr.nii.gz"
    path.parent.mkdir()
    nib.save(nib.Nifti1Image(x, np.eye(4)), path)
    return path, x


def test_augment_nan_is_refused_in_the_users_words(capsys, tmp_path, mr_with_nan, nifti):
    path, _ = mr_with_nan
    status, _, err = run(capsys, "augment", path, nifti, "-o", tmp_path / "out", "--seed", 0)
    assert status == 1
    assert any("mr.nii.gz holds NaN values; pass --nan-policy omit to transform the finite "
               "voxels only" in line for line in err), err
    assert not any("element" in line or "x must" in line for line in err)
    assert (tmp_path / "out" / "ct_rsgt0.nii.gz").exists()  # the other file went on


def test_augment_nan_policy_omit_and_mask_nonzero(capsys, tmp_path, mr_with_nan):
    path, x = mr_with_nan
    out_dir = tmp_path / "out"
    status, _, err = run(capsys, "augment", path, "-o", out_dir, "--seed", 3,
                         "--nan-policy", "omit", "--mask", "nonzero")
    assert status == 0, err
    result = np.asanyarray(nib.load(out_dir / "mr_rsgt0.nii.gz").dataobj)
    expected = rsgt_fast.transform_batch(
        x[None], nan_policy="omit", mask=(x != 0)[None],
        rng=np.random.default_rng(np.random.SeedSequence(3).spawn(1)[0]))[0]
    np.testing.assert_array_equal(result, expected)
    assert np.all(np.isnan(result) == np.isnan(x)) and np.all(result[:, :, :2] == 0)


def test_augment_mask_file(capsys, tmp_path, nifti, ct_volume):
    mask = np.zeros(ct_volume.shape, np.uint8)
    mask[2:8, 2:8] = 1
    mask_path = tmp_path / "mask.nii.gz"
    nib.save(nib.Nifti1Image(mask, np.eye(4)), mask_path)
    status, _, err = run(capsys, "augment", nifti, "-o", tmp_path / "out", "--seed", 1,
                         "--mask", mask_path)
    assert status == 0, err
    result = np.asanyarray(nib.load(tmp_path / "out" / "ct_rsgt0.nii.gz").dataobj)
    assert np.all(result[mask == 0] == 0)
    expected = rsgt_fast.transform_batch(
        ct_volume[None], mask=(mask != 0)[None],
        rng=np.random.default_rng(np.random.SeedSequence(1).spawn(1)[0]))[0]
    np.testing.assert_array_equal(result, expected)


@pytest.mark.parametrize("problem, words", [
    ("shape", "has (3, 3, 3) voxels but ct.nii.gz has (12, 10, 8); give a mask of the image's"),
    ("empty", "leaves no voxel of ct.nii.gz to transform; check the mask"),
    ("missing", "no such file"),
])
def test_augment_mask_problems_name_the_files(capsys, tmp_path, nifti, problem, words):
    mask_path = tmp_path / "mask.nii.gz"
    shape = (3, 3, 3) if problem == "shape" else (12, 10, 8)
    if problem != "missing":
        nib.save(nib.Nifti1Image(np.zeros(shape, np.uint8), np.eye(4)), mask_path)
    status, _, err = run(capsys, "augment", nifti, "-o", tmp_path / "out", "--mask", mask_path)
    assert status != 0
    assert any(words in line for line in err), err


def test_augment_empty_npy_in_the_users_words(capsys, tmp_path):
    path = tmp_path / "empty.npy"
    np.save(path, np.zeros((1, 0, 4), np.int16))
    status, _, err = run(capsys, "augment", path, "-o", tmp_path / "out")
    assert status == 1
    assert any("empty.npy holds no voxels" in line for line in err), err
    assert not any("x must" in line for line in err)


def test_augment_channel_axis_gives_each_modality_its_curve(capsys, tmp_path):
    rng = np.random.default_rng(6)
    x = rng.gamma(2.0, 200.0, (9, 8, 7, 3)).astype(np.float32)  # T1, T2, FLAIR last
    path = tmp_path / "t1_t2_flair.nii.gz"
    nib.save(nib.Nifti1Image(x, np.eye(4)), path)
    status, _, err = run(capsys, "augment", path, "-o", tmp_path / "out", "--seed", 2, "--n", 2,
                         "--channel-axis", -1)
    assert status == 0, err
    expected = rsgt_fast.transform_batch(
        np.stack([x, x]), channel_axis=-1,
        rng=np.random.default_rng(np.random.SeedSequence(2).spawn(1)[0]))
    for k in range(2):
        result = np.asanyarray(nib.load(tmp_path / "out" / f"t1_t2_flair_rsgt{k}.nii.gz").dataobj)
        np.testing.assert_array_equal(result, expected[k])


def test_augment_channel_axis_out_of_range_names_the_file_and_option(capsys, tmp_path, nifti):
    status, _, err = run(capsys, "augment", nifti, "-o", tmp_path / "out", "--channel-axis", 3)
    assert status == 1
    assert any("--channel-axis 3 is out of range for ct.nii.gz, which has 3 axes" in line
               for line in err), err
    assert not any("channel_axis must" in line or "x has" in line for line in err)
