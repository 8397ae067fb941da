"""Memory layouts: every entry point sees the values, never the layout.

Strided and reversed views, Fortran order, big-endian byte order, read-only
arrays, read-only and unaligned ``np.memmap`` files and zero-stride broadcasts
must give exactly what a C-contiguous native copy of the same values gives,
and the input (and whatever buffer it views) must be left untouched.
"""

import numpy as np
import pytest

import rsgt_fast
from rsgt_fast.augmentation import random_smooth_grayvalue_transform
from rsgt_fast.normalization import normalize_ct_scan, normalize_mr_scan

SMALL = (2, 12, 30)  # 720 elements: the serial kernels
LARGE = (2, 96, 200)  # 38400 elements: the parallel kernels

LAYOUTS = [
    "strided", "reversed", "fortran", "big_endian", "readonly", "memmap_readonly",
    "memmap_unaligned", "broadcast", "fortran_big_endian_readonly",
]


def _values(dtype, shape, seed=0):
    """CT-like values that fit ``dtype`` exactly (float16 included)."""
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    if dtype.kind == "u":
        x = rng.integers(0, 256 if dtype.itemsize == 1 else 4096, size=shape)
    else:
        x = rng.integers(-128 if dtype.itemsize == 1 else -1024,
                         128 if dtype.itemsize == 1 else 3072, size=shape)
    if dtype.kind == "f":
        x = x + rng.choice([0.0, 0.25, 0.5, -0.75], size=shape)
    return x.astype(dtype)


def _outside(dtype, shape):
    """Values outside every element's range: if a kernel read them, min/max would change."""
    info = np.iinfo(dtype) if np.dtype(dtype).kind in "iu" else np.finfo(dtype)
    x = np.full(shape, info.max, dtype)
    x[..., ::2] = info.min
    return x


def make_layout(layout, x, tmp_path):
    """An array with ``x``'s values in the given layout, and the buffer it views.

    Returns
    -------
    view : ndarray
        The array to pass to rsgt_fast; ``np.array_equal(view, x)`` holds
        except for ``broadcast``, whose values are element 0 of ``x`` repeated.
    base : ndarray or None
        The whole buffer behind ``view`` where it holds more than ``view``
        (or a differently typed copy), to check nothing there is written.
    """
    if layout == "strided":
        big = np.empty((x.shape[0], 2 * x.shape[1]) + x.shape[2:], x.dtype)
        big[:, 1::2] = _outside(x.dtype, big[:, 1::2].shape)
        big[:, ::2] = x
        return big[:, ::2], big
    if layout == "reversed":
        big = np.ascontiguousarray(x[:, ::-1, ::-1])
        return big[:, ::-1, ::-1], big
    if layout == "fortran":
        return np.asfortranarray(x), None
    if layout == "big_endian":
        return x.astype(x.dtype.newbyteorder(">")), None
    if layout == "readonly":
        view = x.copy()
        view.setflags(write=False)
        return view, None
    if layout in ("memmap_readonly", "memmap_unaligned"):
        offset = 0 if layout == "memmap_readonly" else 1  # a 1-byte header misaligns the data
        path = tmp_path / f"{layout}.raw"
        with open(path, "wb") as f:
            f.write(b"\x7f" * offset)
            f.write(x.tobytes())
        view = np.memmap(path, dtype=x.dtype, mode="r", offset=offset, shape=x.shape)
        assert not view.flags.writeable
        assert view.flags.aligned == (offset == 0 or x.dtype.itemsize == 1)
        return view, None
    if layout == "broadcast":
        view = np.broadcast_to(x[:1], x.shape)
        assert view.strides[0] == 0 and not view.flags.writeable
        return view, None
    if layout == "fortran_big_endian_readonly":
        view = np.asfortranarray(x.astype(x.dtype.newbyteorder(">")))
        view.setflags(write=False)
        return view, None
    raise AssertionError(layout)


def native_copy(view):
    """A C-contiguous, native-endian, writeable, plain-ndarray copy of ``view``'s values."""
    return np.array(np.asarray(view), dtype=view.dtype.newbyteorder("="), order="C", copy=True)


def _facade(x):
    np.random.seed(21)
    return random_smooth_grayvalue_transform(x)


def _facade_min_max_val(x):
    np.random.seed(22)
    return random_smooth_grayvalue_transform(x, min_max_val=(0, 999))


#: Every entry point, each with a fixed random state.
ENTRY_POINTS = {
    "batch float32": lambda x: rsgt_fast.transform_batch(x, rng=3),
    "batch float16": lambda x: rsgt_fast.transform_batch(x, rng=3, dtype="float16"),
    "batch min_max_val": lambda x: rsgt_fast.transform_batch(x, rng=4, min_max_val=(-300, 1800)),
    "facade": _facade,
    "facade min_max_val": _facade_min_max_val,
    "ct": normalize_ct_scan,
    "mr": normalize_mr_scan,
    "mr float64": lambda x: normalize_mr_scan(x, dtype="float64"),
}


def run_all(x):
    """Every entry point on ``x`` with fixed random states: a result or the exception raised."""
    results = {}
    for key, call in ENTRY_POINTS.items():
        try:
            results[key] = call(x)
        except Exception as exc:  # collected, so that one report names every failing entry point
            results[key] = exc
    return results


def assert_same_results(got, expected, shape, where):
    problems = []
    for key, value in expected.items():
        assert isinstance(value, np.ndarray), f"{key} failed on the contiguous copy: {value!r}"
        result = got[key]
        if not isinstance(result, np.ndarray):
            problems.append(f"{key}: raised {result!r}")
        elif type(result) is not np.ndarray or result.shape != shape or result.dtype != value.dtype:
            problems.append(f"{key}: got {type(result).__name__} {result.shape} {result.dtype}, "
                            f"expected ndarray {shape} {value.dtype}")
        elif not (result.flags.c_contiguous and result.dtype.isnative):
            problems.append(f"{key}: result is not C-contiguous and native")
        elif not np.array_equal(result, value):
            problems.append(f"{key}: {np.count_nonzero(result != value)} values differ")
    assert not problems, f"{where}:\n" + "\n".join(problems)


def _snapshot(view, base):
    return (np.array(view, copy=True), None if base is None else np.array(base, copy=True))


def _assert_untouched(view, base, snapshot, layout):
    np.testing.assert_array_equal(view, snapshot[0], err_msg=f"{layout}: input was modified")
    if base is not None:
        np.testing.assert_array_equal(base, snapshot[1],
                                      err_msg=f"{layout}: buffer behind the input was modified")


def check_layout(layout, dtype, shape, tmp_path):
    """Every entry point on ``layout`` equals it on a native copy; the input stays as it was."""
    x = _values(dtype, shape)
    view, base = make_layout(layout, x, tmp_path)
    if layout != "broadcast":
        np.testing.assert_array_equal(view, x)  # the layout holds the same values
    snapshot = _snapshot(view, base)

    expected = run_all(native_copy(view))
    got = run_all(view)

    _assert_untouched(view, base, snapshot, layout)
    assert_same_results(got, expected, view.shape, f"{layout} {dtype} {view.shape}")


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", ["uint8", "int16", "int32", "float16", "float32", "float64"])
def test_layouts_equal_contiguous_copy(layout, dtype, tmp_path):
    check_layout(layout, dtype, SMALL, tmp_path)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", ["int16", "float32"])
def test_layouts_equal_contiguous_copy_parallel_size(layout, dtype, tmp_path):
    """The same with inputs large enough for the parallel kernels."""
    check_layout(layout, dtype, LARGE, tmp_path)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_layouts_curves_match(layout, tmp_path):
    """The returned curves (ranges included) do not depend on the layout either."""
    x = _values("int32", SMALL, seed=3)
    view, _ = make_layout(layout, x, tmp_path)
    _, got = rsgt_fast.transform_batch(view, rng=8, return_curves=True)
    _, expected = rsgt_fast.transform_batch(native_copy(view), rng=8, return_curves=True)
    for name in ("frequencies", "amplitudes", "offsets", "ranges", "extrema"):
        np.testing.assert_array_equal(getattr(got, name), getattr(expected, name), err_msg=name)


@pytest.mark.parametrize("layout", ["strided", "reversed", "fortran"])
@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_in_place_on_views(layout, dtype, tmp_path):
    """``out=x`` on a writeable non-contiguous float view writes the result there only."""
    x = _values(dtype, SMALL, seed=5)
    view, base = make_layout(layout, x, tmp_path)
    expected = rsgt_fast.transform_batch(native_copy(view), rng=9, dtype=dtype)
    outside = None
    if layout == "strided":
        outside = np.array(base[:, 1::2], copy=True)

    result = rsgt_fast.transform_batch(view, rng=9, dtype=dtype, out=view)

    assert result is view
    np.testing.assert_array_equal(view, expected)
    if outside is not None:
        np.testing.assert_array_equal(base[:, 1::2], outside,
                                      err_msg="in-place transform wrote outside its view")


@pytest.mark.parametrize("size", ["small", "large"])
@pytest.mark.parametrize("order", ["C", "F", "strided", "unaligned"])
def test_out_argument_layouts(order, size):
    """A separate ``out`` array of any writeable layout receives exactly the result."""
    x = _values("int16", SMALL if size == "small" else LARGE, seed=6)
    expected = rsgt_fast.transform_batch(x, rng=10)
    if order == "strided":
        holder = np.full((x.shape[0], 2 * x.shape[1]) + x.shape[2:], -7.0, np.float32)
        out = holder[:, ::2]
    elif order == "unaligned":  # C-contiguous, one byte past an aligned address
        holder = None
        out = np.frombuffer(bytearray(x.size * 4 + 1), np.float32, x.size, 1).reshape(x.shape)
        assert not out.flags.aligned and out.flags.c_contiguous and out.flags.writeable
    else:
        holder = None
        out = np.full(x.shape, -7.0, np.float32, order=order)
    result = rsgt_fast.transform_batch(x, rng=10, out=out)
    assert result is out
    np.testing.assert_array_equal(out, expected)
    if holder is not None:
        assert (holder[:, 1::2] == -7.0).all(), "wrote outside the out view"


def test_readonly_input_with_readonly_out_is_refused():
    """A read-only ``out`` is an error raised before any work, not a crash."""
    x = _values("float32", SMALL)
    x.setflags(write=False)
    with pytest.raises(ValueError):
        rsgt_fast.transform_batch(x, rng=0, dtype="float32", out=x)
