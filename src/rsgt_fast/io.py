"""Read and write medical images with their geometry, through the field's own libraries.

* NIfTI (``.nii``, ``.nii.gz``) through nibabel: the affine and the header are
  kept, the header's data type is set from the written array;
* NRRD and MetaImage (``.nrrd``, ``.nhdr``, ``.mha``, ``.mhd``) through
  SimpleITK: spacing, origin, direction and custom metadata fields are kept;
* DICOM (read only) through pydicom: an image read from DICOM is written as
  NIfTI (``.nii.gz``) through SimpleITK, with the pixel spacing, the image
  position and the orientation of the DICOM file;
* NumPy ``.npy`` through numpy, without geometry.

DICOM pixel values are returned in modality units (Hounsfield units for CT):
``RescaleSlope`` and ``RescaleIntercept`` are applied, in integer arithmetic
when both are integers so that CT stays an integer image.

Every library is imported on first use; a missing one raises an
``ImportError`` whose message names the ``rsgt-fast[io]`` extra.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from ._optional import require

__all__ = ["Image", "ImageReadError", "read", "write", "check_writable", "sample", "output_path",
           "split_suffix"]

#: Suffix -> format of the files this module reads.
FORMATS = {
    ".nii.gz": "nifti", ".nii": "nifti",
    ".nrrd": "itk", ".nhdr": "itk", ".mha": "itk", ".mhd": "itk",
    ".dcm": "dicom", ".dicom": "dicom",
    ".npy": "npy",
}
#: Suffix of the files written for inputs of a format (others keep their own suffix).
WRITE_AS = {"dicom": ".nii.gz"}
#: The pydicom test files :func:`sample` returns.
SAMPLES = {"ct": "CT_small.dcm", "mr": "MR_small.dcm"}


class ImageReadError(OSError):
    """A file could not be read as an image; the message is one line naming it."""


@dataclasses.dataclass(frozen=True, eq=False)
class Image:
    """An image's voxels and the geometry to write them back with.

    Attributes
    ----------
    array : ndarray
        The voxels, in the axis order of the library that read them: nibabel's
        ``(i, j, k)`` for NIfTI, SimpleITK's ``(z, y, x)`` for NRRD/MetaImage,
        pydicom's ``(rows, columns)`` (or ``(frames, rows, columns)``) for DICOM.
    format : str
        ``'nifti'``, ``'itk'``, ``'dicom'`` or ``'npy'``.
    path : pathlib.Path or None
        The file it was read from.
    header : object
        The source of the geometry: the nibabel image for NIfTI, a dict of
        ``spacing``, ``origin``, ``direction`` (ITK's LPS convention),
        ``vector`` and ``metadata`` for SimpleITK and DICOM, ``None`` for
        ``.npy``.
    modality : str or None
        ``'CT'``, ``'MR'`` etc. where the file says so (DICOM).
    """

    array: np.ndarray
    format: str
    path: Path | None = None
    header: object = dataclasses.field(default=None, repr=False)
    modality: str | None = None

    def with_array(self, array):
        """The same image and geometry holding ``array`` (of the same shape) instead."""
        array = np.asarray(array)
        if array.shape != self.array.shape:
            raise ValueError(f"array must have shape {self.array.shape}, got {array.shape}")
        return dataclasses.replace(self, array=array)

    def display_slice(self, index=None):
        """A 2-D slice for display, rows down and columns across.

        Parameters
        ----------
        index : int, optional
            Slice along the through-plane axis (the last axis for NIfTI, the
            first otherwise); the middle one by default.

        Returns
        -------
        ndarray
            2-D view of :attr:`array`.
        """
        array = self.array
        if self.format == "nifti":
            array = np.moveaxis(array, (0, 1), (1, 0)) if array.ndim >= 2 else array
            array = np.moveaxis(array, 2, 0) if array.ndim >= 3 else array
        if self.format == "itk" and self.header.get("vector"):
            array = array[..., 0]
        while array.ndim > 3 and array.shape[-1] == 1:
            array = array[..., 0]
        if array.ndim == 2:
            if index not in (None, 0, -1):
                raise ValueError(f"slice {index} does not exist: the image is 2-D")
            return array
        if array.ndim != 3:
            raise ValueError(f"cannot show an image of shape {array.shape}: need 2-D or 3-D")
        n = array.shape[0]
        index = n // 2 if index is None else index
        if not -n <= index < n:
            raise ValueError(f"slice {index} does not exist: the image has {n} slices")
        return array[index]


def split_suffix(path):
    """``(stem, suffix)`` of ``path``'s name, with ``.nii.gz`` as one suffix."""
    name = Path(path).name
    for suffix in sorted(FORMATS, key=len, reverse=True):
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)], name[-len(suffix):]
    path = Path(name)
    return path.stem, path.suffix


def format_of(path):
    """The format of ``path`` from its suffix; unknown suffixes are tried as DICOM."""
    return FORMATS.get(split_suffix(path)[1].lower(), "dicom")


def output_path(path, index, outdir, tag="rsgt"):
    """Where augmented copy ``index`` of ``path`` goes: ``OUTDIR/<stem>_rsgt<index><suffix>``.

    DICOM inputs get the suffix ``.nii.gz``; others keep theirs.
    """
    stem, suffix = split_suffix(path)
    suffix = WRITE_AS.get(format_of(path), suffix)
    return Path(outdir) / f"{stem}_{tag}{index}{suffix}"


def _reason(exc):
    """The informative line of a library's error message."""
    text = str(exc) or type(exc).__name__
    if "sitk::ERROR:" in text:
        text = text.rsplit("sitk::ERROR:", 1)[1]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def read(path, series=None):
    """Read an image and its geometry.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.nii``, ``.nii.gz``, ``.nrrd``, ``.nhdr``, ``.mha``, ``.mhd``,
        ``.npy`` or DICOM file (DICOM is assumed for other suffixes), or a
        folder holding a DICOM series (read as one volume through
        SimpleITK: slices ordered by position, rescale slope and intercept
        applied, spacing, origin and direction kept).
    series : str, optional
        The SeriesInstanceUID to read from a folder holding several series;
        by default the one with the most slices.

    Returns
    -------
    Image

    Raises
    ------
    ImageReadError
        The file is missing or not a readable image (one-line message).
    ImportError
        The library for the format is not installed.
    """
    path = Path(path)
    if path.is_dir():
        require("SimpleITK", "io")
        try:
            return _read_dicom_series(path, series)
        except (ImportError, MemoryError, ImageReadError):
            raise
        except Exception as exc:
            raise ImageReadError(f"cannot read {path}: {_reason(exc)}") from exc
    if series is not None:
        raise ImageReadError(f"cannot read {path}: a series is chosen only in a folder")
    reader = {"nifti": _read_nifti, "itk": _read_itk, "dicom": _read_dicom, "npy": _read_npy}
    fmt = format_of(path)
    module = {"nifti": "nibabel", "itk": "SimpleITK", "dicom": "pydicom", "npy": "numpy"}[fmt]
    require(module, "io")
    if not path.is_file():
        raise ImageReadError(f"cannot read {path}: no such file")
    try:
        return reader[fmt](path)
    except (ImportError, MemoryError):
        raise
    except Exception as exc:
        raise ImageReadError(f"cannot read {path}: {_reason(exc)}") from exc


def _read_dicom_series(folder, series=None):
    sitk = require("SimpleITK", "io")
    found = sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder))
    if not found:
        raise ImageReadError(f"cannot read {folder}: the folder holds no DICOM series")
    files = {uid: sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), uid)
             for uid in found}
    if series is None:
        series = max(found, key=lambda uid: (len(files[uid]), uid))
    elif series not in files:
        raise ImageReadError(f"cannot read {folder}: no series {series} there (it holds "
                             f"{', '.join(sorted(found))})")
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(files[series])
    reader.MetaDataDictionaryArrayUpdateOn()
    image = reader.Execute()
    modality = (reader.GetMetaData(0, "0008|0060").strip()
                if reader.HasMetaDataKey(0, "0008|0060") else "")
    header = {
        "spacing": image.GetSpacing(), "origin": image.GetOrigin(),
        "direction": image.GetDirection(), "vector": image.GetNumberOfComponentsPerPixel() > 1,
        "metadata": {},
    }
    return Image(sitk.GetArrayFromImage(image), "itk", folder, header, modality or None)


def _read_nifti(path):
    nib = require("nibabel", "io")
    image = nib.load(path)
    # The stored values, scaled by scl_slope/scl_inter where the header has them.
    array = np.asanyarray(image.dataobj)
    return Image(array, "nifti", path, image)


def _read_itk(path):
    sitk = require("SimpleITK", "io")
    image = sitk.ReadImage(str(path))
    metadata = {key: image.GetMetaData(key) for key in image.GetMetaDataKeys()
                if not key.startswith(("ITK_", "NRRD_"))}  # written anew by the writer
    header = {
        "spacing": image.GetSpacing(), "origin": image.GetOrigin(),
        "direction": image.GetDirection(), "vector": image.GetNumberOfComponentsPerPixel() > 1,
        "metadata": metadata,
    }
    return Image(sitk.GetArrayFromImage(image), "itk", path, header)


def _read_npy(path):
    return Image(np.load(path, allow_pickle=False), "npy", path)


def _integer_rescale(pixels, slope, intercept):
    """``pixels * slope + intercept`` in the smallest integer dtype that holds it."""
    values = pixels.astype(np.int64) * int(slope) + int(intercept)
    lo, hi = int(values.min()), int(values.max())
    for dtype in (np.int16, np.int32):
        info = np.iinfo(dtype)
        if info.min <= lo and hi <= info.max:
            return values.astype(dtype)
    return values


def _read_dicom(path):
    pydicom = require("pydicom", "io")
    ds = pydicom.dcmread(path)
    pixels = ds.pixel_array
    slope = float(ds.get("RescaleSlope", 1) or 1)
    intercept = float(ds.get("RescaleIntercept", 0) or 0)
    if "ModalityLUTSequence" not in ds and slope.is_integer() and intercept.is_integer():
        array = _integer_rescale(pixels, slope, intercept)
    else:
        array = pydicom.pixels.apply_modality_lut(pixels, ds)
    return Image(array, "dicom", path, _dicom_geometry(ds), str(ds.get("Modality", "")) or None)


def _dicom_geometry(ds):
    """Spacing, origin and direction of a DICOM image in ITK's (LPS) convention."""
    row_spacing, column_spacing = (float(v) for v in ds.get("PixelSpacing", (1.0, 1.0)))
    thickness = float(ds.get("SpacingBetweenSlices", ds.get("SliceThickness", 1.0)) or 1.0)
    origin = tuple(float(v) for v in ds.get("ImagePositionPatient", (0.0, 0.0, 0.0)))
    cosines = np.array([float(v) for v in ds.get("ImageOrientationPatient", (1, 0, 0, 0, 1, 0))])
    along_row, along_column = cosines[:3], cosines[3:]
    direction = np.column_stack([along_row, along_column, np.cross(along_row, along_column)])
    return {
        "spacing": (column_spacing, row_spacing, thickness), "origin": origin,
        "direction": tuple(direction.ravel().tolist()), "vector": False, "metadata": {},
    }


def check_writable(path, dtype):
    """Raise ``ValueError`` if files like ``path`` cannot hold ``dtype``.

    Only ``.npy`` holds float16; NIfTI and SimpleITK's formats do not.
    """
    suffix = split_suffix(path)[1]
    if np.dtype(dtype) == np.float16 and FORMATS.get(suffix.lower()) != "npy":
        raise ValueError(f"{suffix or 'this format'} cannot hold float16 values: "
                         "use float32, or write .npy")


def write(image, path):
    """Write ``image`` to ``path`` with its geometry.

    Parameters
    ----------
    image : Image
        Voxels and geometry, e.g. ``read(src).with_array(new_values)``.
    path : str or os.PathLike
        Target file.  NIfTI images are written as NIfTI and SimpleITK images
        in any format SimpleITK writes (the suffix chooses); DICOM images as
        ``.nii``/``.nii.gz``, or ``.npy`` without geometry; any image as
        ``.npy``.  Existing files are replaced.

    Raises
    ------
    ValueError
        The suffix does not fit the image's format, or the format cannot hold
        the dtype (float16 is only written as ``.npy``).
    """
    path = Path(path)
    suffix = split_suffix(path)[1].lower()
    target = FORMATS.get(suffix)
    array = np.asarray(image.array)
    check_writable(path, array.dtype)
    if target == "npy":
        np.save(path, array, allow_pickle=False)
    elif image.format == "nifti" and target == "nifti":
        nib = require("nibabel", "io")
        source = image.header
        result = type(source)(array, source.affine, header=source.header)
        result.set_data_dtype(array.dtype)
        nib.save(result, path)
    elif image.format in ("itk", "dicom") and (target in ("itk", "nifti") or image.format == "itk"):
        _write_itk(array, image.header, path, add_axis=image.format == "dicom" and array.ndim == 2)
    else:
        suffix = suffix or "a file without suffix"
        raise ValueError(f"cannot write a {image.format} image as {suffix}")


def _write_itk(array, header, path, add_axis):
    sitk = require("SimpleITK", "io")
    result = sitk.GetImageFromArray(array[None] if add_axis else array, isVector=header["vector"])
    dims = result.GetDimension()
    result.SetSpacing(header["spacing"][:dims])
    result.SetOrigin(header["origin"][:dims])
    direction = np.reshape(header["direction"], (len(header["origin"]),) * 2)[:dims, :dims]
    result.SetDirection(tuple(direction.ravel().tolist()))
    for key, value in header["metadata"].items():
        result.SetMetaData(key, value)
    sitk.WriteImage(result, str(path), True)


def sample(name):
    """One of pydicom's bundled test images, in modality units.

    Parameters
    ----------
    name : {'ct', 'mr', 'CT_small.dcm', 'MR_small.dcm'}
        ``'ct'``: a 128 x 128 CT slice in Hounsfield units (RescaleSlope and
        RescaleIntercept applied); ``'mr'``: a 64 x 64 MR slice.

    Returns
    -------
    Image

    Examples
    --------
    >>> from rsgt_fast import io
    >>> ct = io.sample("ct")                      # doctest: +SKIP
    >>> ct.array.shape, ct.array.dtype, ct.modality  # doctest: +SKIP
    ((128, 128), dtype('int16'), 'CT')
    """
    filename = SAMPLES.get(str(name).lower(), name)
    if filename not in SAMPLES.values():
        raise ValueError(f"unknown sample {name!r}: choose 'ct' or 'mr'")
    data = require("pydicom.data", "io", "sample")
    path = data.get_testdata_file(filename)
    if path is None:
        raise ImageReadError(f"pydicom does not ship {filename} here")
    return read(path)
