"""Reading and writing images with their geometry (rsgt-fast[io])."""

import subprocess
import sys

import numpy as np
import pytest

nib = pytest.importorskip("nibabel")
sitk = pytest.importorskip("SimpleITK")
pydicom = pytest.importorskip("pydicom")

from rsgt_fast import io  # noqa: E402

EXTRAS = ["torch", "monai", "torchio", "nibabel", "SimpleITK", "pydicom", "matplotlib", "tqdm",
          "dask", "distributed", "zarr"]


def nifti_file(path, array, affine=None):
    """Write ``array`` as NIfTI with a non-trivial affine and header; return the affine."""
    if affine is None:
        affine = np.array([[-0.7, 0.1, 0.0, 90.0], [0.0, 0.8, 0.05, -120.5],
                           [0.0, 0.0, 2.5, -60.0], [0.0, 0.0, 0.0, 1.0]])
    image = nib.Nifti1Image(array, affine)
    image.header["descrip"] = b"rsgt-fast test"
    image.header.set_xyzt_units("mm", "sec")
    nib.save(image, path)
    return affine


def itk_file(path, array, metadata=None):
    """Write ``array`` through SimpleITK with spacing, origin and a rotated direction."""
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((0.8, 0.9, 2.0))
    image.SetOrigin((-10.0, 20.5, 3.0))
    image.SetDirection((0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, -1.0))
    for key, value in (metadata or {}).items():
        image.SetMetaData(key, value)
    sitk.WriteImage(image, str(path), True)
    return image


@pytest.fixture
def volume():
    return np.random.default_rng(3).integers(-1024, 3072, size=(5, 6, 7)).astype(np.int16)


def test_import_rsgt_fast_and_cli_import_no_extra():
    code = ("import rsgt_fast, rsgt_fast.cli, rsgt_fast.io, sys; "
            f"loaded = [m for m in {EXTRAS!r} if m in sys.modules]; "
            "assert not loaded, loaded")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_ct_sample_is_in_hounsfield_units():
    ct = io.sample("ct")
    ds = pydicom.dcmread(pydicom.data.get_testdata_file("CT_small.dcm"))
    assert (float(ds.RescaleSlope), float(ds.RescaleIntercept)) == (1.0, -1024.0)
    assert ct.array.shape == (128, 128) and ct.array.dtype == np.int16
    np.testing.assert_array_equal(ct.array, ds.pixel_array.astype(np.int32) - 1024)
    assert ct.modality == "CT" and ct.array.min() < -800  # air below -800 HU
    assert io.sample("CT_small.dcm").array.tolist() == ct.array.tolist()


def test_mr_sample():
    mr = io.sample("mr")
    assert mr.array.shape == (64, 64) and mr.modality == "MR" and mr.array.max() > 0


def test_unknown_sample():
    with pytest.raises(ValueError, match="unknown sample"):
        io.sample("pet")


def test_nifti_round_trip_keeps_affine_and_header(tmp_path, volume):
    src = tmp_path / "ct.nii.gz"
    affine = nifti_file(src, volume)
    image = io.read(src)
    assert image.format == "nifti" and image.array.dtype == np.int16
    np.testing.assert_array_equal(image.array, volume)
    values = (volume.astype(np.float32) + 1024) / 4095
    io.write(image.with_array(values), tmp_path / "out.nii.gz")
    back = nib.load(tmp_path / "out.nii.gz")
    np.testing.assert_allclose(back.affine, affine)
    assert back.get_data_dtype() == np.float32
    assert back.header["descrip"].item() == b"rsgt-fast test"
    assert back.header.get_xyzt_units() == ("mm", "sec")
    np.testing.assert_array_equal(np.asanyarray(back.dataobj), values)


def test_nifti_scaling_is_applied_on_read_and_reset_on_write(tmp_path, volume):
    image = nib.Nifti1Image(volume, np.eye(4))
    image.header.set_slope_inter(2.0, -5.0)
    nib.save(image, tmp_path / "scaled.nii")
    read = io.read(tmp_path / "scaled.nii")
    np.testing.assert_allclose(read.array, volume * 2.0 - 5.0)
    io.write(read.with_array(np.zeros(volume.shape, np.float32)), tmp_path / "out.nii")
    assert np.asanyarray(nib.load(tmp_path / "out.nii").dataobj).max() == 0


@pytest.mark.parametrize("suffix", [".nrrd", ".mha", ".mhd"])
def test_itk_round_trip_keeps_spacing_origin_direction(tmp_path, volume, suffix):
    src = itk_file(tmp_path / f"ct{suffix}", volume, {"study": "phantom 7"})
    image = io.read(tmp_path / f"ct{suffix}")
    np.testing.assert_array_equal(image.array, volume)
    values = np.linspace(0, 1, volume.size, dtype=np.float32).reshape(volume.shape)
    io.write(image.with_array(values), tmp_path / f"out{suffix}")
    back = sitk.ReadImage(str(tmp_path / f"out{suffix}"))
    assert back.GetSpacing() == src.GetSpacing()
    assert back.GetOrigin() == src.GetOrigin()
    assert back.GetDirection() == src.GetDirection()
    assert back.GetPixelID() == sitk.sitkFloat32
    assert back.GetMetaData("study") == "phantom 7"
    np.testing.assert_array_equal(sitk.GetArrayFromImage(back), values)


def test_dicom_is_written_as_nifti_with_its_geometry(tmp_path):
    ct = io.sample("ct")
    target = io.output_path(ct.path, 0, tmp_path)
    assert target.name == "CT_small_rsgt0.nii.gz"
    io.write(ct.with_array(ct.array.astype(np.float32)), target)
    ds = pydicom.dcmread(ct.path)
    back = sitk.ReadImage(str(target))
    np.testing.assert_allclose(back.GetOrigin(), [float(v) for v in ds.ImagePositionPatient],
                               atol=1e-4)
    np.testing.assert_allclose(back.GetSpacing()[:2], [float(v) for v in ds.PixelSpacing],
                               atol=1e-6)
    np.testing.assert_allclose(back.GetDirection(), np.eye(3).ravel(), atol=1e-6)
    # NIfTI stores RAS: the DICOM (LPS) x and y axes flip sign.
    affine = nib.load(target).affine
    np.testing.assert_allclose(np.diag(affine)[:2], [-float(v) for v in ds.PixelSpacing],
                               atol=1e-6)
    np.testing.assert_array_equal(io.read(target).display_slice(), ct.array.astype(np.float32))


def test_npy_round_trip(tmp_path, volume):
    np.save(tmp_path / "x.npy", volume)
    image = io.read(tmp_path / "x.npy")
    io.write(image.with_array(volume * 2), tmp_path / "y.npy")
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), volume * 2)


@pytest.mark.parametrize("name", ["bad.nii.gz", "bad.nrrd", "bad.dcm", "bad.npy"])
def test_unreadable_file_gives_one_line_naming_it(tmp_path, name):
    (tmp_path / name).write_text("not an image\n")
    with pytest.raises(io.ImageReadError) as info:
        io.read(tmp_path / name)
    message = str(info.value)
    assert "\n" not in message and name in message


def test_missing_file(tmp_path):
    with pytest.raises(io.ImageReadError, match="no such file"):
        io.read(tmp_path / "missing.nii.gz")


def test_output_names():
    assert io.output_path("a/b/scan.nii.gz", 2, "out").as_posix() == "out/scan_rsgt2.nii.gz"
    assert io.output_path("scan.nrrd", 0, "o").name == "scan_rsgt0.nrrd"
    assert io.output_path("IM0001", 1, "o").name == "IM0001_rsgt1.nii.gz"  # DICOM
    assert io.split_suffix("x.NII.GZ") == ("x", ".NII.GZ")


def test_write_refuses_a_format_it_cannot_keep(tmp_path, volume):
    nifti_file(tmp_path / "a.nii", volume)
    with pytest.raises(ValueError, match="cannot write a nifti image as .nrrd"):
        io.write(io.read(tmp_path / "a.nii"), tmp_path / "a.nrrd")


def test_with_array_checks_the_shape(volume):
    with pytest.raises(ValueError, match="shape"):
        io.Image(volume, "npy").with_array(volume[:2])


def test_display_slice(volume):
    image = io.Image(volume, "itk", header={"vector": False})
    np.testing.assert_array_equal(image.display_slice(), volume[2])
    np.testing.assert_array_equal(io.Image(volume, "nifti").display_slice(1), volume[:, :, 1].T)
    with pytest.raises(ValueError, match="slice 9 does not exist"):
        image.display_slice(9)


def test_missing_library_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "nibabel", None)
    with pytest.raises(ImportError) as info:
        io.read(tmp_path / "a.nii.gz")
    assert str(info.value) == 'rsgt-fast io needs nibabel: pip install "rsgt-fast[io]"'
