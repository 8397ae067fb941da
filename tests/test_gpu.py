"""``_gpu.py``, the Triton backend for GPU tensors, against the numpy engine.

On a machine with CUDA the kernel runs on the GPU; elsewhere the same
kernel runs on CPU tensors in Triton's interpreter (``TRITON_INTERPRET=1``
while the module is imported), so its indexing, clamping, interpolation and
output conversions are checked everywhere.  Lookups in host-built tables must
match the numpy engine bit for bit; interpolated values and device-built
tables (8/16-bit integers: the device's sines) within float rounding, and a
replay on the device must give the same bits as the call it replays.
"""

import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
CUDA = torch.cuda.is_available()
# Without CUDA, tests/conftest.py has imported the backend in Triton's interpreter.
triton = pytest.importorskip("triton")
from rsgt_fast import _gpu  # noqa: E402

import rsgt_fast  # noqa: E402
from rsgt_fast.batch import MAX_FREQUENCY, MIN_FREQUENCY, N_SINUSOIDS  # noqa: E402
from rsgt_fast.plan import make_plans  # noqa: E402
from rsgt_fast.torch import transform_on_device  # noqa: E402
from torch.utils._python_dispatch import TorchDispatchMode  # noqa: E402

DEVICE = "cuda" if CUDA else "cpu"
#: Tables built on the device (its sines) against the host's: float rounding, and
#: for float16 output one float16 step at the top of [0, 1].  Host-built tables
#: give the numpy engine's bits everywhere (no fused multiply-adds).
TOLERANCE = {"float32": 1e-6, "float64": 1e-6, "float16": 2.0 ** -11}


def run(x, out_dtype="float32", **options):
    defaults = dict(n_sinusoids=N_SINUSOIDS, min_frequency=MIN_FREQUENCY,
                    max_frequency=MAX_FREQUENCY, min_max_val=None,
                    rng=None, keys=None, curves=None, out=None, return_curves=False)
    return transform_on_device(x.to(DEVICE), out_dtype, **{**defaults, **options})


def batch(dtype, shape=(3, 20, 30), seed=0):
    g = torch.Generator().manual_seed(seed)
    if dtype == torch.bool:
        return torch.randint(0, 2, shape, generator=g).to(torch.bool)
    if dtype.is_floating_point:
        return (torch.randn(shape, generator=g, dtype=torch.float64) * 300 + 40).to(dtype)
    low, high = {torch.uint8: (0, 200), torch.int8: (-100, 100), torch.int16: (-1024, 3072),
                 torch.int32: (-10**6, 10**6), torch.int64: (-10**12, 10**12)}[dtype]
    return torch.randint(low, high, shape, generator=g, dtype=torch.int64).to(dtype)


#: Input dtypes whose own-range tables are built on the device.
SMALL_INTEGERS = (torch.bool, torch.uint8, torch.int8, torch.int16)


def built_on_device(x, min_max_val=None, curves=None):
    """Whether the device builds the tables (its sines, so float rounding apart):
    8/16-bit integers over their own ranges or integral ones inside the dtype's."""
    if x.dtype not in SMALL_INTEGERS:
        return False
    ranges = [min_max_val] if curves is None else list(curves.bounds)
    info = np.iinfo(_gpu.DTYPES[x.dtype])
    return min_max_val is None and curves is None or all(
        type(lo) is int and type(hi) is int and info.min <= lo and hi <= info.max
        for lo, hi in ranges)


def check(result, expected, x, out_dtype, device_tables=False):
    assert result.device.type == DEVICE and result.shape == x.shape
    got = result.cpu().numpy()
    assert got.dtype == expected.dtype
    if not device_tables:
        np.testing.assert_array_equal(got, expected)
    else:
        np.testing.assert_allclose(got.astype(np.float64), expected.astype(np.float64),
                                   rtol=0, atol=TOLERANCE[out_dtype])


def same_curves(got, expected, device_tables):
    """Equal records; extrema found from the device's sines agree to float rounding."""
    if not device_tables:
        assert got == expected
        return
    assert got.bounds == expected.bounds
    assert [tuple(map(type, pair)) for pair in got.bounds] == \
        [tuple(map(type, pair)) for pair in expected.bounds]
    for name in ("frequencies", "amplitudes", "offsets"):
        np.testing.assert_array_equal(getattr(got, name), getattr(expected, name))
    np.testing.assert_allclose(got.extrema, expected.extrema, rtol=0, atol=1e-12)


DTYPES = [torch.bool, torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64,
          torch.float16, torch.float32, torch.float64]


@pytest.mark.parametrize("min_max_val", [None, (-50, 120), (-50.5, 120.25)])
@pytest.mark.parametrize("out_dtype", ["float32", "float16", "float64"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_equals_the_numpy_engine(dtype, out_dtype, min_max_val):
    x = batch(dtype)
    before = x.clone()
    expected, expected_curves = rsgt_fast.transform_batch(
        x.numpy(), rng=5, dtype=out_dtype, min_max_val=min_max_val, return_curves=True)
    result, curves = run(x, out_dtype, rng=5, min_max_val=min_max_val, return_curves=True)
    on_device = built_on_device(x, min_max_val)
    check(result, expected, x, out_dtype, on_device)
    same_curves(curves, expected_curves, on_device)
    assert torch.equal(x, before)


def test_every_table_kind_is_reached():
    # Host-built full tables of 8/16-bit values and float16 patterns, clamped integer
    # tables, integer and float interpolation: the four modes of the kernel.  (8/16-bit
    # integers get host-built tables only for ranges reaching past their dtype.)
    wide_of_int16 = (-40000, 3071)
    ct_in_int32 = batch(torch.int16).to(torch.int32)
    cases = [(batch(torch.int16, shape=(1, 1 << 20)), wide_of_int16, "lookup"),
             (batch(torch.float16), None, "lookup"), (ct_in_int32, None, "index"),
             (batch(torch.int32), None, "interp"), (batch(torch.float32), None, "interp")]
    for x, bounds, table in cases:
        assert not built_on_device(x, bounds)
        x2 = x.numpy().reshape(x.shape[0], -1)
        kind = "half" if x.dtype == torch.float16 else ("float" if x.is_floating_point()
                                                       else "int")
        ranges = [bounds or (r.min().item(), r.max().item()) for r in x.reshape(x.shape[0], -1)]
        plans = make_plans(_gpu.DTYPES[x.dtype], x2.size, kind, np.zeros((len(ranges), 3, 4)),
                           ranges, np.dtype(np.float32))
        assert [plan.table for _, plan in plans] == [table]
        check(run(x, rng=2, min_max_val=bounds),
              rsgt_fast.transform_batch(x.numpy(), rng=2, min_max_val=bounds), x, "float32")


def test_a_key_gets_the_same_bits_in_any_batch():
    """Device tables go in groups of rows; no row depends on the batch it is in."""
    x = batch(torch.int16, shape=(100, 5, 5))
    keys = list(range(100))
    whole = run(x, "float64", rng=6, keys=keys)
    for part in (slice(0, 1), slice(37, 38), slice(10, 70)):
        assert torch.equal(run(x[part], "float64", rng=6, keys=keys[part]), whole[part])


@pytest.mark.parametrize("out_dtype", ["float32", "float16", "float64"])
@pytest.mark.parametrize("dtype", SMALL_INTEGERS)
def test_device_tables_replay_bit_for_bit(dtype, out_dtype):
    """Own ranges, replayed curves and a given integral range all build on the device."""
    x = batch(dtype)
    x[1] = x[1, 0, 0]  # a single-valued element: 0.5, extrema sampled at t = 0
    keys = dict(rng=4, keys=[3, 0, 8])
    result, curves = run(x, out_dtype, return_curves=True, **keys)
    expected, expected_curves = rsgt_fast.transform_batch(x.numpy(), dtype=out_dtype,
                                                          return_curves=True, **keys)
    check(result, expected, x, out_dtype, device_tables=True)
    same_curves(curves, expected_curves, device_tables=True)
    assert torch.all(result[1] == 0.5)
    assert torch.equal(run(x, out_dtype, curves=curves), result)
    assert torch.equal(run(x[2:], out_dtype, curves=curves[2:]), result[2:])
    lo, hi = curves.bounds[0]
    again = run(x[:1], out_dtype, rng=4, keys=[3], min_max_val=(lo, hi))
    assert torch.equal(again, result[:1])


def jit_as_gpu(fn):
    """``triton.jit`` as ``_gpu``'s kernels were made: interpreted where there is no GPU."""
    if CUDA:
        return triton.jit(fn)
    os.environ["TRITON_INTERPRET"] = "1"
    try:
        return triton.jit(fn)
    finally:
        del os.environ["TRITON_INTERPRET"]


tl = triton.language  # a module global, as the interpreter looks for it


@jit_as_gpu
def _to_half(q_ptr, out_ptr, n, BLOCK_SIZE: tl.constexpr):
    offs = tl.program_id(0) * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
    mask = offs < n
    q = tl.load(q_ptr + offs, mask=mask, other=0.0)
    tl.store(out_ptr + offs, _gpu._to_odd_float32(q).to(tl.float16), mask=mask)


def test_float16_tables_are_rounded_once():
    """float64 to float16 through float32 can round twice; the device's float16 must not."""
    half_ulp = 2.0 ** -12  # at 0.5
    q = torch.tensor([0.5 + half_ulp + 2.0 ** -40, 0.5 + half_ulp - 2.0 ** -40, 0.5 + half_ulp,
                      2.0 ** -20 + 2.0 ** -45, 1.0, 0.0, 1 / 3, 0.7, 6.1e-5, 1e-7],
                     dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    q = torch.cat([q, torch.rand(100000, dtype=torch.float64, generator=g) ** 4])
    q = torch.cat([q, -q]).to(DEVICE)
    out = torch.empty(q.shape, dtype=torch.float16, device=DEVICE)
    _to_half[(triton.cdiv(q.numel(), 1024),)](q, out, q.numel(), BLOCK_SIZE=1024,
                                               **_gpu.LAUNCH_OPTIONS)
    np.testing.assert_array_equal(out.cpu().numpy(), q.cpu().numpy().astype(np.float16))


@pytest.mark.parametrize("dtype", SMALL_INTEGERS)
def test_own_ranges_of_small_integers_never_come_back_to_the_host(dtype, monkeypatch):
    """8/16-bit input with its own ranges: ranges and tables stay on the device."""
    x = batch(dtype)
    if dtype == torch.int16:
        x[0, 0, :2] = torch.tensor([-32768, 32767])  # a range as wide as the dtype
        x[1] = 77  # a single value: maps to 0.5
    expected = rsgt_fast.transform_batch(x.numpy(), rng=9, keys=[4, 1, 8])

    def no_download(*args, **kwargs):
        raise AssertionError("a download from the device")

    monkeypatch.setattr(_gpu, "row_extremes", no_download)
    for name in ("tolist", "item", "cpu", "numpy", "__bool__"):
        monkeypatch.setattr(torch.Tensor, name, no_download)
    out = torch.empty(x.shape, dtype=torch.float32, device=DEVICE)
    assert run(x, rng=9, keys=[4, 1, 8], out=out) is out
    monkeypatch.undo()
    check(out, expected, x, "float32", device_tables=True)
    if dtype == torch.int16:
        assert torch.all(out[1] == 0.5)


def test_elements_needing_different_tables():
    # One element on an integer grid, one too wide for it: two plans, one batch.
    x = torch.stack([torch.arange(600, dtype=torch.int32) % 900,
                     torch.arange(600, dtype=torch.int32) * 9000 - 10**6])
    expected = rsgt_fast.transform_batch(x.numpy(), rng=3)
    check(run(x, rng=3), expected, x, "float32")


def test_keys_replay_and_out():
    x = batch(torch.float32, seed=4)
    options = dict(rng=7, keys=[5, 3, 9])
    expected, curves = rsgt_fast.transform_batch(x.numpy(), return_curves=True, **options)
    result, got_curves = run(x, return_curves=True, **options)
    check(result, expected, x, "float32")
    assert got_curves == curves
    check(run(x[1:, 3:], curves=curves[1:]), expected[1:, 3:], x[1:, 3:], "float32")
    out = torch.empty(x.shape, dtype=torch.float64, device=DEVICE)
    assert run(x, "float64", out=out, **options) is out
    check(out, rsgt_fast.transform_batch(x.numpy(), dtype="float64", **options), x, "float64")


@pytest.mark.parametrize("dtype", [torch.float16, torch.float32, torch.float64])
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_input_raises_before_anything_is_written(bad, dtype):
    x = batch(dtype)
    x[2, 1, 1] = bad
    with pytest.raises(ValueError, match="element 2 holds NaN or Inf"):
        run(x, rng=0)
    with pytest.raises(ValueError, match="element 2 holds NaN or Inf"):
        run(x, rng=0, min_max_val=(0, 1))


@pytest.mark.parametrize("call, error, match", [
    (lambda x: run(x[0, 0, 0]), ValueError, "at least one dimension"),
    (lambda x: run(x[:, :0]), ValueError, "empty"),
    (lambda x: run(x, curves=rsgt_fast.transform_batch(x.numpy()[:2], return_curves=True)[1]),
     ValueError, "curves holds 2"),
    (lambda x: run(x, rng=0, keys=[1, 2]), ValueError, "keys"),
    (lambda x: run(x, n_sinusoids=0), ValueError, "n_sinusoids"),
])
def test_bad_arguments(call, error, match):
    with pytest.raises(error, match=match):
        call(batch(torch.float32))


# ------------------------------------------------------------ compiling for a GPU

SCRIPTS = Path(__file__).resolve().parent / "scripts"


class LaunchRecorder:
    """Stands in for ``_gpu``'s kernels: records each launch as a GPU compiles it, then runs it.

    A GPU launch specialises its arguments: pointers and integers divisible by
    16 get ``tt.divisibility`` 16, an integer equal to 1 becomes a constant.
    The interpreter does neither; :meth:`specs` holds what the GPU would
    compile, ``launches`` the kernel of each launch in order.
    """

    KERNELS = ("_map_voxels", "_partial_extrema", "_fill_tables")

    def __init__(self, monkeypatch, run=True):
        self.seen = {}
        self.launches = []
        self.grids = []
        self.run = run  # False: record only, launch nothing
        self.in_launch = False
        for name in self.KERNELS:
            monkeypatch.setattr(_gpu, name, self._wrap(name, getattr(_gpu, name)))

    def specs(self):
        return list(self.seen.values())

    def _wrap(self, name, kernel):
        names = list(inspect.signature(getattr(kernel, "fn", kernel)).parameters)
        recorder = self

        class Recorded:
            def __getitem__(self, grid):
                launch = kernel[grid]

                def record(*args, **kwargs):
                    recorder.launches.append(name)
                    recorder.grids.append((name, grid))
                    recorder.record(name, names, args, kwargs)
                    if recorder.run:
                        recorder.in_launch = True
                        try:
                            launch(*args, **kwargs)
                        finally:
                            recorder.in_launch = False

                return record

        return Recorded()

    def record(self, name, names, args, kwargs):
        try:
            from triton.backends.compiler import BaseBackend
            from triton.runtime.jit import native_specialize_impl
        except ImportError:  # an older Triton: argument types only
            native_specialize_impl = None
        constexprs = {k: v for k, v in kwargs.items() if k in names}
        options = {k: v for k, v in kwargs.items() if k not in names}
        signature, attrs = {}, {}
        for param, arg in zip(names, args):
            if native_specialize_impl is None:
                kind, attr = triton.runtime.jit.mangle_type(arg), None
            else:
                kind, attr = native_specialize_impl(BaseBackend, arg, False, True, True)
            if kind == "constexpr":  # an integer 1
                constexprs[param] = attr
            else:
                signature[param] = kind
                if attr:
                    attrs[param] = attr
        spec = [name, signature, constexprs, attrs, options]
        self.seen[json.dumps(spec, sort_keys=True)] = spec


def test_every_launch_compiles_for_nvidia_gpus(monkeypatch, tmp_path):
    """Triton's interpreter runs kernels its compiler refuses; compile what the calls launch.

    With the specialisation a GPU launch applies (aligned pointers, integers
    equal to 1), and the table blocks a GPU uses.
    """
    pytest.importorskip("triton.backends.nvidia")
    from triton.compiler import ASTSource
    if "constexprs" not in inspect.signature(ASTSource).parameters:
        pytest.skip("this Triton's compiler API is older than the one this test drives "
                    "(ASTSource takes no constexprs)")
    monkeypatch.setattr(_gpu, "INTERPRETED_TABLE_BLOCK", _gpu.TABLE_BLOCK)
    recorder = LaunchRecorder(monkeypatch)
    for dtype in DTYPES:
        for out_dtype in ("float32", "float16", "float64"):
            for min_max_val in (None, (-50, 120), (-50.5, 120.25)):
                run(batch(dtype, shape=(2, 3, 4)), out_dtype, rng=1, min_max_val=min_max_val)
    run(batch(torch.int16, shape=(100, 2, 2)).to(torch.int32), rng=1)  # host index tables
    run(batch(torch.int16, shape=(1, 1 << 20)), rng=1)  # many blocks, aligned rows
    run(batch(torch.int16, shape=(3, 1)), rng=1)  # one value a row: n == 1
    monkeypatch.undo()
    specs = recorder.specs()
    assert {c["MODE"] for name, _, c, _, _ in specs if name == "_map_voxels"} == {0, 1, 2, 3, 4}
    assert {name for name, *_ in specs} == set(LaunchRecorder.KERNELS)
    assert any(attrs for *_, attrs, _ in specs), "no aligned argument recorded"
    path = tmp_path / "specs.json"
    path.write_text(json.dumps(specs))
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["TRITON_CACHE_DIR"] = str(tmp_path / "triton-cache")
    proc = subprocess.run([sys.executable, str(SCRIPTS / "compile_device_kernel.py"), str(path),
                           "80", "90"], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert proc.stdout.strip().splitlines()[-1] == f"compiled {2 * len(specs)}"



# ------------------------------------------------------------ what a call asks of a GPU


@pytest.mark.parametrize("n_rows, n", [(70000, 1), (70000, 4096), (65536, 128 ** 3),
                                       (1, 2 ** 31), (16, 128 ** 3)])
def test_launch_grids_fit_cuda(n_rows, n):
    """CUDA takes 2**31 - 1 programs on grid axis 0, 65535 on axes 1 and 2."""
    grid, blocks = _gpu.launch_grid(n_rows, n)
    assert len(grid) == 1 and grid[0] == n_rows * blocks <= 2 ** 31 - 1
    assert blocks == -(-n // _gpu.BLOCK)


def test_launch_grid_refuses_what_no_launch_takes():
    with pytest.raises(ValueError, match="more than a CUDA launch takes"):
        _gpu.launch_grid(2 ** 21, 2 ** 21)


@pytest.mark.parametrize("dtype, min_max_val", [(torch.int16, None), (torch.int32, (-50, 120))])
def test_more_rows_than_a_grid_axis_holds(dtype, min_max_val, monkeypatch):
    """70000 elements: every launch one-dimensional, within CUDA's limits (nothing run)."""
    recorder = LaunchRecorder(monkeypatch, run=False)
    run(batch(dtype, shape=(70000, 1)), rng=0, min_max_val=min_max_val)
    assert recorder.grids
    for _, grid in recorder.grids:
        assert len(grid) == 1 and grid[0] <= 2 ** 31 - 1
    maps = [grid for name, grid in recorder.grids if name == "_map_voxels"]
    assert sum(grid[0] for grid in maps) == 70000  # one block a row, every row once


def test_rows_of_several_blocks():
    """Programs find their row and block from a one-dimensional grid (partial last blocks)."""
    x = batch(torch.float32, shape=(3, 2500))
    check(run(x, rng=8), rsgt_fast.transform_batch(x.numpy(), rng=8), x, "float32")
    x = batch(torch.int16, shape=(3, 2500))
    check(run(x, rng=8), rsgt_fast.transform_batch(x.numpy(), rng=8), x, "float32",
          device_tables=True)


class DeviceWork(TorchDispatchMode):
    """Counts what a call queues on the device: PyTorch operations that compute (not views
    or allocations), Triton launches and uploads; the interpreter's own copies and the
    filling of upload buffers on the host are not counted."""

    FREE = {"detach", "view", "_unsafe_view", "slice", "select", "empty", "empty_strided",
            "lift_fresh", "alias", "unbind", "reshape", "as_strided", "t", "new_empty"}

    def __init__(self, recorder, monkeypatch):
        super().__init__()
        self.recorder = recorder
        self.ops = []
        self.uploads = []
        self.uploading = False
        upload = _gpu._upload

        def counted(arrays, device):
            self.uploads.append([a.nbytes for a in arrays])
            self.uploading = True
            try:
                return upload(arrays, device)
            finally:
                self.uploading = False

        monkeypatch.setattr(_gpu, "_upload", counted)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.overloadpacket.__name__
        if not (self.recorder.in_launch or self.uploading or name in self.FREE):
            self.ops.append(name)
        return func(*args, **(kwargs or {}))


def device_work(x, monkeypatch, **options):
    recorder = LaunchRecorder(monkeypatch)
    run(x, **options)  # the first call may set things up
    recorder.launches.clear()
    with DeviceWork(recorder, monkeypatch) as work:
        run(x, **options)
    monkeypatch.undo()
    return recorder.launches, work.ops, work.uploads


def test_device_tables_are_three_launches_a_group(monkeypatch):
    """Own ranges of int16 CT: one aminmax, one upload of the parameters, then tables and
    mapping in three launches per group of rows (not a chain of PyTorch operations)."""
    launches, ops, uploads = device_work(batch(torch.int16, shape=(16, 6, 6)), monkeypatch,
                                         rng=0)
    assert launches == ["_partial_extrema", "_fill_tables", "_map_voxels"]
    assert ops == ["aminmax"] and len(uploads) == 1
    launches, ops, uploads = device_work(batch(torch.int16, shape=(16, 6, 6)), monkeypatch,
                                         rng=0, min_max_val=(-1024, 3071))
    assert len(launches) == 3 and ops == [] and len(uploads) == 1
    group = _gpu.DEVICE_TABLE_CHUNK >> 16
    launches, ops, uploads = device_work(batch(torch.int16, shape=(group + 1, 1)), monkeypatch,
                                         rng=0)
    assert len(launches) == 6 and ops == ["aminmax"] and len(uploads) == 1


@pytest.mark.parametrize("dtype, min_max_val, expected_ops", [
    (torch.int32, (-50, 120), []),  # given range: nothing to scan
    # own ranges: one scan, one download (a no-op for CPU tensors)
    (torch.float32, None, ["aminmax", "stack"] + (["_to_copy"] if CUDA else [])),
])
def test_host_tables_are_one_upload_and_one_launch(dtype, min_max_val, expected_ops,
                                                   monkeypatch):
    launches, ops, uploads = device_work(batch(dtype), monkeypatch, rng=0,
                                         min_max_val=min_max_val)
    assert launches == ["_map_voxels"] and ops == expected_ops
    assert len(uploads) == 1 and len(uploads[0]) == 3  # table, place and clip together


def test_uploads_are_pinned_and_do_not_wait(monkeypatch):
    """An upload to a device is one copy from page-locked memory with non_blocking=True, so
    the host does not wait for the work queued before it (here: the meta device)."""
    empty, to = torch.empty, torch.Tensor.to
    staged, copies = [], []

    def fake_empty(*args, **kwargs):
        if kwargs.get("pin_memory"):
            staged.append(args)
            kwargs["pin_memory"] = False  # no page-locked allocator on this machine
        return empty(*args, **kwargs)

    def recorded_to(self, *args, **kwargs):
        copies.append((args, kwargs))
        return to(self, *args, **kwargs)

    monkeypatch.setattr(torch, "empty", fake_empty)
    monkeypatch.setattr(torch.Tensor, "to", recorded_to)
    arrays = [np.arange(5, dtype=np.float32), np.ones((2, 7)), np.array([[1, 2]], np.int16)]
    moved = _gpu._upload(arrays, torch.device("meta"))
    monkeypatch.undo()
    assert len(staged) == 1 and len(copies) == 1
    assert copies[0][1].get("non_blocking") is True
    assert [(t.device.type, t.dtype, tuple(t.shape)) for t in moved] == [
        ("meta", torch.float32, (5,)), ("meta", torch.float64, (2, 7)),
        ("meta", torch.int16, (1, 2))]
    here = _gpu._upload(arrays, torch.device("cpu"))
    for got, array in zip(here, arrays):
        np.testing.assert_array_equal(got.numpy(), array)
        assert (got.data_ptr() - here[0].data_ptr()) % 128 == 0  # as aligned as the buffer


def test_given_ranges_of_host_tables_never_wait_for_the_device(monkeypatch):
    """int32 with a given range: tables go up, nothing comes down."""
    x = batch(torch.int32)
    expected = rsgt_fast.transform_batch(x.numpy(), rng=3, min_max_val=(-50, 120))

    def no_download(*args, **kwargs):
        raise AssertionError("a download from the device")

    monkeypatch.setattr(_gpu, "row_extremes", no_download)
    for name in ("tolist", "item", "cpu", "numpy", "__bool__"):
        monkeypatch.setattr(torch.Tensor, name, no_download)
    result = run(x, rng=3, min_max_val=(-50, 120))
    monkeypatch.undo()
    check(result, expected, x, "float32")


def test_a_contiguous_out_is_written_directly(monkeypatch):
    x = batch(torch.float32)
    expected = rsgt_fast.transform_batch(x.numpy(), rng=2)
    written = []
    transform = rsgt_fast.torch.plan.transform

    def spy(x2, kind, dtype, draw, bounds, out2, *args, **kwargs):
        written.append(out2.data_ptr())
        return transform(x2, kind, dtype, draw, bounds, out2, *args, **kwargs)

    monkeypatch.setattr(rsgt_fast.torch.plan, "transform", spy)
    out = torch.empty(x.shape, dtype=torch.float32, device=DEVICE)
    assert run(x, rng=2, out=out) is out and written == [out.data_ptr()]
    check(out, expected, x, "float32")
    strided = torch.empty(x.shape[::-1], dtype=torch.float32, device=DEVICE).permute(2, 1, 0)
    assert run(x, rng=2, out=strided) is strided and written[-1] != strided.data_ptr()
    check(strided, expected, x, "float32")


def test_device_tables_do_not_depend_on_the_table_block(monkeypatch):
    """Rows split over several programs (as on a GPU) give the bits of one program a row."""
    x = batch(torch.int16, shape=(4, 30, 30))
    x[1, 0, :2] = torch.tensor([-32768, 32767])  # a range as wide as the dtype
    x[2] = 5
    whole, curves = run(x, "float16", rng=1, return_curves=True)
    monkeypatch.setattr(_gpu, "INTERPRETED_TABLE_BLOCK", 256)
    split, split_curves = run(x, "float16", rng=1, return_curves=True)
    assert torch.equal(whole, split)
    np.testing.assert_array_equal(curves.extrema, split_curves.extrema)


def test_old_triton_is_refused_with_one_line(caplog):
    for version in ("3.1.0", "3.9.0+git1a2b", "4.0", "nightly"):
        _gpu._check_triton(version)
    assert caplog.records == []
    with pytest.raises(ImportError, match=r"Triton 3\.0\.0 is older than 3\.1"):
        _gpu._check_triton("3.0.0")
    assert len(caplog.records) == 1 and "on the host" in caplog.records[0].getMessage()


def test_with_an_old_triton_cuda_tensors_go_through_the_host(tmp_path):
    code = ("import triton; triton.__version__ = '2.3.1'\n"
            "import rsgt_fast.torch as rt\n"
            "assert rt._gpu() is None\n"
            "assert rt._gpu() is None\n")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    lines = [line for line in proc.stderr.splitlines() if "Triton 2.3.1" in line]
    assert len(lines) == 1, proc.stderr


def test_the_gpu_check_runs_dry(tmp_path):
    """bench/gpu_check.sh on tiny CPU tensors in the interpreter: every section runs."""
    out = tmp_path / "gpu.md"
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["PYTHON"] = sys.executable
    script = Path(__file__).resolve().parent.parent / "bench" / "gpu_check.sh"
    proc = subprocess.run(["bash", str(script), "--dry-run", "--no-pytest", "--out", str(out)],
                          capture_output=True, text=True, env=env, timeout=280)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    text = out.read_text()
    for title in ("Machine", "Every mode against the numpy engine", "CT batch",
                  "Small elements", "Stream-sync probe", "What one call queues"):
        assert f"## {title}" in text
    assert "Failed" not in text and "81 of 81 cases" in text


SELECTIONS = [dict(nan_policy="omit"), dict(mask="each", nan_policy="omit"),
              dict(mask="shared", fill=float("nan")), dict(channel_axis=1, nan_policy="omit"),
              dict(channel_axis=-1, mask="each", nan_policy="omit"),
              dict(min_max_val=(0, 200), mask="each", nan_policy="omit")]


@pytest.mark.parametrize("options", SELECTIONS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.int16])
@pytest.mark.parametrize("out_dtype", ["float32", "float16"])
def test_selections_and_channels_on_the_device_equal_the_numpy_engine(dtype, out_dtype,
                                                                      options):
    g = np.random.default_rng(2)
    x = g.normal(100, 50, (3, 4, 12, 10)).astype(_gpu.DTYPES[dtype] if dtype != torch.float16
                                                  else np.float16)
    if dtype.is_floating_point and options.get("nan_policy") == "omit":
        x[:, :, :3] = np.nan
        x[0, 0, 5, 5] = np.inf
    elif not dtype.is_floating_point and "mask" not in options:
        options = dict(options, mask="shared")
    chosen = g.random(x.shape) > 0.3
    options = dict(options)
    if "mask" in options:
        options["mask"] = chosen if options["mask"] == "each" else chosen[0]
    if not dtype.is_floating_point:
        x = x.astype(np.int16)
    expected, curves = rsgt_fast.transform_batch(x, rng=3, keys=[1, 2, 3], dtype=out_dtype,
                                                 return_curves=True, **options)
    tensors = {k: torch.from_numpy(v).to(DEVICE) if isinstance(v, np.ndarray) else v
               for k, v in options.items()}
    source = torch.from_numpy(x)
    before = source.clone()
    got, applied = run(source, out_dtype, rng=3, keys=[1, 2, 3], return_curves=True,
                       **tensors)
    np.testing.assert_array_equal(got.cpu().numpy(), expected)  # NaN where it is NaN
    assert applied == curves and torch.equal(source.nan_to_num(), before.nan_to_num())
    replayed = run(source, out_dtype, curves=applied, **{k: v for k, v in tensors.items()
                                                          if k != "min_max_val"})
    np.testing.assert_array_equal(replayed.cpu().numpy(), expected)


def test_an_in_place_omit_keeps_its_nan():
    x = batch(torch.float32)
    x[:, :4] = float("nan")
    expected = rsgt_fast.transform_batch(x.numpy(), rng=1, nan_policy="omit")
    work = x.to(DEVICE).clone()
    got = run(work, "float32", rng=1, nan_policy="omit", out=work)
    assert got is work
    np.testing.assert_array_equal(work.cpu().numpy(), expected)


@pytest.mark.parametrize("mask, error, words", [
    (torch.ones(2, 2, dtype=torch.bool), ValueError, "mask must have the batch's shape"),
    (torch.ones(3, 20, 30, dtype=torch.int64), TypeError, "mask must be a boolean array"),
    (torch.zeros(20, 30, dtype=torch.bool), ValueError, "mask selects no value"),
])
def test_device_masks_are_checked(mask, error, words):
    with pytest.raises(error, match=words):
        run(batch(torch.float32), "float32", rng=0, mask=mask.to(DEVICE))


def test_omit_on_integers_takes_the_plain_route(monkeypatch):
    x = batch(torch.int16)
    calls = []
    original = _gpu.selected_extremes
    monkeypatch.setattr(_gpu, "selected_extremes", lambda *a: calls.append(1) or original(*a))
    plain = run(x, "float32", rng=2)
    omitted = run(x, "float32", rng=2, nan_policy="omit")
    assert torch.equal(plain, omitted) and not calls
