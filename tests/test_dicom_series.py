"""Folders holding DICOM series: read as one volume, augmented and previewed from the CLI."""

import numpy as np
import pytest

pydicom = pytest.importorskip("pydicom")
sitk = pytest.importorskip("SimpleITK")
nib = pytest.importorskip("nibabel")
pytest.importorskip("tqdm")
pytest.importorskip("matplotlib")

from pydicom.data import get_testdata_file  # noqa: E402
from pydicom.uid import generate_uid  # noqa: E402

from rsgt_fast import io  # noqa: E402
from rsgt_fast.cli import main  # noqa: E402

SPACING_Z = 2.5


def write_series(folder, n_slices, seed, intercept=-1024, series_uid=None, shuffle=True):
    """``n_slices`` CT slices of one series, named in a shuffled order; their stored values."""
    folder.mkdir(parents=True, exist_ok=True)
    template = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    rows, columns = int(template.Rows), int(template.Columns)
    rng = np.random.default_rng(seed)
    stored = rng.integers(0, 3000, size=(n_slices, rows, columns)).astype(np.int16)
    series_uid = series_uid or generate_uid()
    order = rng.permutation(n_slices) if shuffle else np.arange(n_slices)
    for k in range(n_slices):
        ds = template.copy()
        ds.SeriesInstanceUID = series_uid
        ds.SOPInstanceUID = generate_uid()
        ds.InstanceNumber = k + 1
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [-80.0, -90.0, 10.0 + SPACING_Z * k]
        ds.SliceLocation = 10.0 + SPACING_Z * k
        ds.PixelSpacing = [0.7, 0.8]
        ds.RescaleSlope, ds.RescaleIntercept = 1, intercept
        ds.PixelData = stored[k].tobytes()
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.save_as(folder / f"IM{seed}_{order[k]:04d}", enforce_file_format=True)
    return stored, series_uid


def test_a_series_folder_is_one_volume_with_its_geometry(tmp_path):
    stored, _ = write_series(tmp_path / "series", 6, seed=0)
    image = io.read(tmp_path / "series")
    assert image.format == "itk" and image.modality == "CT"
    np.testing.assert_array_equal(image.array, stored.astype(np.int32) - 1024)
    spacing = image.header["spacing"]
    np.testing.assert_allclose(spacing, (0.8, 0.7, SPACING_Z))
    np.testing.assert_allclose(image.header["origin"], (-80.0, -90.0, 10.0))


def test_several_series_take_the_largest_or_the_chosen_one(tmp_path):
    small, small_uid = write_series(tmp_path / "mixed", 3, seed=1)
    large, large_uid = write_series(tmp_path / "mixed", 5, seed=2)
    np.testing.assert_array_equal(io.read(tmp_path / "mixed").array, large.astype(np.int32) - 1024)
    np.testing.assert_array_equal(io.read(tmp_path / "mixed", small_uid).array,
                                  small.astype(np.int32) - 1024)
    with pytest.raises(io.ImageReadError, match="no series 1.2.3"):
        io.read(tmp_path / "mixed", "1.2.3")


def test_a_folder_without_dicom_is_one_clear_line(capsys, tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no images here\n")
    with pytest.raises(io.ImageReadError, match="holds no DICOM series"):
        io.read(tmp_path / "empty")
    status = main(["augment", str(tmp_path / "empty"), "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err.splitlines()
    assert status == 1
    assert err[0] == f"rsgt-fast augment: cannot read {tmp_path / 'empty'}: the folder holds no " \
                     "DICOM series"
    assert not any("no such file" in line for line in err)


def test_augment_a_series_folder_writes_nifti_with_its_geometry(capsys, tmp_path):
    stored, _ = write_series(tmp_path / "ct_series", 4, seed=3)
    status = main(["augment", str(tmp_path / "ct_series"), "-o", str(tmp_path / "out"), "--n", "2",
                   "--seed", "0"])
    assert status == 0, capsys.readouterr().err
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["ct_series_rsgt0.nii.gz", "ct_series_rsgt1.nii.gz"]
    written = sitk.ReadImage(str(tmp_path / "out" / names[0]))
    np.testing.assert_allclose(written.GetSpacing(), (0.8, 0.7, SPACING_Z), rtol=1e-6)
    np.testing.assert_allclose(written.GetOrigin(), (-80.0, -90.0, 10.0), atol=1e-4)
    values = sitk.GetArrayFromImage(written)
    assert values.shape == stored.shape and values.min() >= 0 and values.max() <= 1


def test_preview_of_a_series_folder(capsys, tmp_path):
    write_series(tmp_path / "series", 3, seed=4)
    status = main(["preview", str(tmp_path / "series"), "-o", str(tmp_path / "p.png"),
                   "--seed", "1"])
    assert status == 0, capsys.readouterr().err
    assert (tmp_path / "p.png").stat().st_size > 0
