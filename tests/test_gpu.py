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
pytest.importorskip("triton")

import rsgt_fast  # noqa: E402
from rsgt_fast.batch import MAX_FREQUENCY, MIN_FREQUENCY, N_SINUSOIDS  # noqa: E402
from rsgt_fast.plan import make_plans  # noqa: E402

CUDA = torch.cuda.is_available()
if not CUDA and "rsgt_fast._gpu" not in __import__("sys").modules:
    os.environ["TRITON_INTERPRET"] = "1"
    try:
        from rsgt_fast import _gpu
    finally:
        del os.environ["TRITON_INTERPRET"]
else:
    from rsgt_fast import _gpu
from rsgt_fast.torch import transform_on_device  # noqa: E402

DEVICE = "cuda" if CUDA else "cpu"
#: float16 output from an interpolated value may round once more on a GPU.
TOLERANCE = {"float32": 1e-6, "float64": 1e-6, "float16": 1e-3}


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
    exact = x.dtype in SMALL_INTEGERS + (torch.float16,) and not device_tables
    if exact or not (CUDA or device_tables):
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


def test_float16_tables_are_rounded_once():
    """float64 to float16 through float32 can round twice; the device tables must not."""
    half_ulp = 2.0 ** -12  # at 0.5
    q = torch.tensor([0.5 + half_ulp + 2.0 ** -40, 0.5 + half_ulp - 2.0 ** -40, 0.5 + half_ulp,
                      2.0 ** -20 + 2.0 ** -45, 1.0, 0.0, 1 / 3, 0.7, 6.1e-5, 1e-7],
                     dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    q = torch.cat([q, torch.rand(100000, dtype=torch.float64, generator=g) ** 4])
    np.testing.assert_array_equal(_gpu._half(q).numpy(), q.numpy().astype(np.float16))


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
    """Stands in for the kernel: records each launch's argument types, then runs it."""

    def __init__(self, kernel):
        self.kernel = kernel
        fn = getattr(kernel, "fn", kernel)
        self.names = list(inspect.signature(fn).parameters)
        self.seen = {}

    def __getitem__(self, grid):
        launch = self.kernel[grid]
        mangle = __import__("triton").runtime.jit.mangle_type

        def record(*args, **kwargs):
            constexprs = {k: v for k, v in kwargs.items() if k in self.names}
            options = {k: v for k, v in kwargs.items() if k not in self.names}
            signature = {name: mangle(arg) for name, arg in zip(self.names, args)}
            key = json.dumps([signature, constexprs, options], sort_keys=True)
            self.seen[key] = [signature, constexprs, options]
            return launch(*args, **kwargs)

        return record


def test_every_launch_compiles_for_nvidia_gpus(monkeypatch, tmp_path):
    """Triton's interpreter runs kernels its compiler refuses; compile what the calls launch."""
    pytest.importorskip("triton.backends.nvidia")
    from triton.compiler import ASTSource
    if "constexprs" not in inspect.signature(ASTSource).parameters:
        pytest.skip("this Triton's compiler API is older than the one this test drives "
                    "(ASTSource takes no constexprs)")
    recorder = LaunchRecorder(_gpu._map_voxels)
    monkeypatch.setattr(_gpu, "_map_voxels", recorder)
    for dtype in DTYPES:
        for out_dtype in ("float32", "float16", "float64"):
            for min_max_val in (None, (-50, 120), (-50.5, 120.25)):
                run(batch(dtype, shape=(2, 3, 4)), out_dtype, rng=1, min_max_val=min_max_val)
    run(batch(torch.int16, shape=(100, 2, 2)), rng=1)  # host index tables
    run(batch(torch.int16, shape=(1, 1 << 20)), rng=1)  # host full tables
    monkeypatch.undo()
    specs = list(recorder.seen.values())
    assert {constexprs["MODE"] for _, constexprs, _ in specs} == {0, 1, 2, 3}
    path = tmp_path / "specs.json"
    path.write_text(json.dumps(specs))
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["TRITON_CACHE_DIR"] = str(tmp_path / "triton-cache")
    proc = subprocess.run([sys.executable, str(SCRIPTS / "compile_device_kernel.py"), str(path),
                           "80", "90"], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert proc.stdout.strip().splitlines()[-1] == f"compiled {2 * len(specs)}"

