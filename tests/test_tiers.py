"""When compiled code takes over: from numpy stand-ins, and from serial kernels.

By default a kernel with a numpy stand-in runs the stand-in until that has
spent ``COMPILE_AFTER`` seconds (or the cache holds the kernel), and a
kernel's serial variant runs, also in calls large enough for the parallel
one, until it has spent that long on them.  Every tier gives the same bits.
The root ``conftest.py`` sets ``COMPILE_AFTER`` to 0 for the rest of the suite.
"""

import json
import os
import subprocess
import sys
import types

import numpy as np
import pytest

from rsgt_fast import _jit, _kernels, _layout, _stand_ins
from test_interface import Spy


def _lookup_args():
    x = (np.arange(2 << 16) % 256).astype(np.uint8).reshape(2, -1)
    table = np.linspace(0, 1, 2 * 256, dtype=np.float32).reshape(2, 256)
    out = np.empty(x.shape, np.float32)
    job = _layout.Job(chunk=1 << 14, offset=0, half_in=False, integer=False)
    return x, table, out, job


@pytest.fixture
def parallel_allowed():
    if _jit.serial_reason(1 << 17) is not None:
        pytest.skip(f"parallel kernels cannot run here: {_jit.serial_reason(1 << 17)}")


def test_the_serial_variant_stands_in_until_its_work_would_pay_for_the_parallel_one(
        monkeypatch, parallel_allowed):
    args = _lookup_args()
    _kernels.lookup(*args)  # compiled or loaded outside an engine block: not counted
    expected = args[2].copy()
    clock = iter(np.arange(100) * 0.125)  # every serial call "takes" 0.125 s
    monkeypatch.setattr(_jit, "time", types.SimpleNamespace(perf_counter=lambda: next(clock)))
    monkeypatch.setattr(_jit, "COMPILE_AFTER", 0.3)
    monkeypatch.setattr(_kernels.lookup, "serial_seconds", {})
    spy = Spy(_kernels.lookup, monkeypatch)
    for _ in range(5):
        args[2][:] = 0
        with _jit.engine(args[0].size):
            _kernels.lookup(*args)
        np.testing.assert_array_equal(args[2], expected)
    # 0.125, 0.25, 0.375 s of serial work: the fourth call compiles the parallel variant.
    assert spy.calls == ["serial"] * 3 + ["parallel"] * 2
    assert list(_kernels.lookup.serial_seconds.values()) == [None]


def test_each_argument_type_waits_on_its_own(monkeypatch, parallel_allowed):
    args = _lookup_args()
    wide = (args[0].astype(np.uint16), np.zeros((2, 65536), np.float32), *args[2:])
    _kernels.lookup(*args)
    _kernels.lookup(*wide)
    monkeypatch.setattr(_jit, "COMPILE_AFTER", 1e9)
    monkeypatch.setattr(_kernels.lookup, "serial_seconds", {_jit._type_key(args): None})
    spy = Spy(_kernels.lookup, monkeypatch)
    with _jit.engine(args[0].size):
        _kernels.lookup(*args)
        _kernels.lookup(*wide)
    assert spy.calls == ["parallel", "serial"]
    assert _kernels.lookup.serial_seconds[_jit._type_key(wide)] > 0


def test_small_calls_and_serial_blocks_never_count(monkeypatch):
    args = _lookup_args()
    monkeypatch.setattr(_jit, "COMPILE_AFTER", 1e9)
    monkeypatch.setattr(_kernels.lookup, "serial_seconds", {})
    with _jit.thread_limit(1), _jit.engine(args[0].size):
        _kernels.lookup(*args)
    _kernels.lookup(*args)
    assert _kernels.lookup.serial_seconds == {}


def test_warmup_and_compile_at_once_skip_the_wait(monkeypatch, parallel_allowed):
    args = _lookup_args()
    monkeypatch.setattr(_jit, "COMPILE_AFTER", 1e9)
    monkeypatch.setattr(_kernels.lookup, "serial_seconds", {})
    spy = Spy(_kernels.lookup, monkeypatch)
    with _jit.compile_at_once(), _jit.engine(args[0].size):
        _kernels.lookup(*args)
    with _jit.engine(args[0].size):  # and it stays
        _kernels.lookup(*args)
    assert spy.calls == ["parallel", "parallel"]


@pytest.mark.parametrize("value, expected, warns", [
    ("", 0.3, False), ("0", 0.0, False), (" 2.5 ", 2.5, False),
    ("soon", 0.3, True), ("-1", 0.3, True), ("nan", 0.3, True), ("inf", float("inf"), False),
])
def test_the_environment_variable_is_read_or_refused_with_a_warning(monkeypatch, value,
                                                                     expected, warns):
    monkeypatch.setenv("RSGT_FAST_COMPILE_AFTER", value)
    if warns:
        with pytest.warns(RuntimeWarning, match="RSGT_FAST_COMPILE_AFTER"):
            got = _jit._seconds_from_env("RSGT_FAST_COMPILE_AFTER", 0.3)
    else:
        got = _jit._seconds_from_env("RSGT_FAST_COMPILE_AFTER", 0.3)
    assert got == expected


#: Four large int16 calls in a fresh process; prints, after each, whether the
#: range scan ran compiled and which kernels have parallel machine code, and
#: checks the bits against the serial kernels'.
FRESH = r"""
import json
import numpy as np
import rsgt_fast
from rsgt_fast import _jit, _kernels, scan
x = (np.arange(1 << 18) % 3000 - 1000).astype(np.int16).reshape(2, -1)
with rsgt_fast.thread_limit(1):
    expected = rsgt_fast.transform_batch(x, rng=1, min_max_val=(-1000, 1999))
found = []
for _ in range(4):
    assert (rsgt_fast.transform_batch(x, rng=1) == expected).all()
    compiled = [v is None for v in scan.scan_parts.seconds.values()] == [True]
    found.append(["compiled scan"] * compiled + sorted(
        name for name, k in vars(_kernels).items()
        if isinstance(k, _jit.Kernel) and k.parallel.overloads))
print(json.dumps(found))
"""


@pytest.mark.needs_jit
@pytest.mark.timeout(600, method="thread")
def test_a_fresh_process_compiles_what_pays(tmp_path):
    if _jit.serial_reason(1 << 18) is not None:
        pytest.skip("parallel kernels cannot run here")

    def run(**env):
        env = {k: v for k, v in os.environ.items() if k != "RSGT_FAST_COMPILE_AFTER"} | env
        env["NUMBA_CACHE_DIR"] = str(tmp_path / "cache")
        done = subprocess.run([sys.executable, "-c", FRESH], env=env, capture_output=True,
                              text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        return json.loads(done.stdout.splitlines()[-1])

    # Calls of a few milliseconds pay for no compilation: the scan stays in
    # numpy and the map serial, on an empty cache and on the one it left.
    assert run() == [[]] * 4
    assert run() == [[]] * 4
    # After a microsecond of work they would.  The scan: numpy, then the serial
    # kernel (its compilation is not work), then the parallel one; the map
    # (already compiled by the serial call) one step ahead.
    assert run(RSGT_FAST_COMPILE_AFTER="1e-6") == [
        [], ["compiled scan", "lookup_index"], ["compiled scan", "lookup_index"],
        ["compiled scan", "chunk_minmax", "lookup_index"]]
    # Now the cache holds the scan: it is loaded rather than stood in for.
    assert run()[0] == ["compiled scan"]
    everything = ["compiled scan", "chunk_minmax", "lookup_index"]
    assert run(RSGT_FAST_COMPILE_AFTER="0") == [everything] * 4


SCAN_DTYPES = ["bool", "int8", "uint8", "int16", "uint16", "float16", "int32", "uint32",
               "float32", "int64", "uint64", "float64"]


def _patterns(dtype, rng, shape):
    """Values of ``dtype`` with its extremes, signed zeros and (floats) NaN and Inf, as
    ``row_keys`` gets them: float16 as uint16 bit patterns."""
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        info = np.finfo(dtype)
        pool = np.array([0.0, -0.0, 1.5, -2.25, info.max, -info.max, info.tiny, -info.tiny,
                         np.inf, -np.inf, np.nan, -np.nan], dtype)
        values = np.where(rng.random(shape) < 0.5, rng.choice(pool, shape),
                          rng.normal(0, 1e3, shape).astype(dtype))
    elif dtype.kind == "b":
        values = rng.random(shape) < 0.5
    else:
        info = np.iinfo(dtype)
        pool = np.array([info.min, info.max, 0, 1], dtype)
        values = np.where(rng.random(shape) < 0.1, rng.choice(pool, shape),
                          rng.integers(info.min, info.max, shape, dtype=dtype, endpoint=True))
    values = values.astype(dtype)
    return values.view(np.uint16) if dtype == np.float16 else values


@pytest.mark.parametrize("dtype", SCAN_DTYPES)
@pytest.mark.parametrize("shape, chunk", [((3, 1), 4), ((2, 37), 5), ((4, 64), 64), ((1, 300), 7)])
def test_the_numpy_scan_gives_the_kernels_keys(dtype, shape, chunk):
    from rsgt_fast import scan

    rng = np.random.default_rng(abs(hash((dtype, shape))) % 2**32)
    view, code = scan._scan_code(np.dtype(dtype))
    for _ in range(5):
        x = _patterns(dtype, rng, shape).view(view)
        n_parts = shape[0] * -(-shape[1] // chunk)
        expected = np.empty((n_parts, 2), view)
        got = np.full((n_parts, 2), 7, view)
        _kernels.chunk_minmax.serial(x, code, chunk, expected)
        before = x.copy()
        _stand_ins.chunk_minmax(x, code, chunk, got)
        np.testing.assert_array_equal(got, expected)
        np.testing.assert_array_equal(x, before)


class _FakeKernel:
    """A kernel whose variants are names and whose call says ``kernel``."""

    serial = "serial"
    parallel = "parallel"

    def __init__(self, run=lambda: "kernel"):
        self.run = run

    def __call__(self, *args):
        return self.run()


def test_the_stand_in_runs_until_it_has_taken_as_long_as_compiling(monkeypatch):
    calls = []
    stand_in = _jit.StandIn(_FakeKernel(lambda: calls.append("kernel") or "k"),
                            lambda *a: calls.append("numpy") or "n")
    clock = iter(np.arange(100) * 0.125)
    monkeypatch.setattr(_jit, "time", types.SimpleNamespace(perf_counter=lambda: next(clock)))
    monkeypatch.setattr(_jit, "COMPILE_AFTER", 0.3)
    monkeypatch.setattr(_jit, "_has_cache_index", lambda dispatcher: False)
    monkeypatch.setattr(_jit.numba.config, "DISABLE_JIT", False)
    a16, a32 = np.zeros(3, np.int16), np.zeros(3, np.int32)
    results = [stand_in(a16) for _ in range(5)] + [stand_in(a32)]
    # 0.125, 0.25, 0.375 s in numpy, then compiled; int32 waits on its own.
    assert results == ["n", "n", "n", "k", "k", "n"]
    assert calls == ["numpy"] * 3 + ["kernel"] * 2 + ["numpy"]


def test_a_cached_kernel_is_never_stood_in_for(monkeypatch):
    stand_in = _jit.StandIn(lambda *a: "kernel", lambda *a: "numpy")
    monkeypatch.setattr(_jit, "COMPILE_AFTER", 1e9)
    monkeypatch.setattr(_jit.numba.config, "DISABLE_JIT", False)
    monkeypatch.setattr(_jit, "_has_cache_index", lambda dispatcher: dispatcher == "parallel")
    assert _jit.StandIn(_FakeKernel(), lambda *a: "numpy")(np.zeros(2)) == "kernel"
    monkeypatch.setattr(_jit, "_has_cache_index", lambda dispatcher: False)
    assert _jit.StandIn(_FakeKernel(), lambda *a: "numpy")(np.zeros(2)) == "numpy"
    with _jit.compile_at_once():
        assert _jit.StandIn(_FakeKernel(), lambda *a: "numpy")(np.zeros(2)) == "kernel"


@pytest.mark.parametrize("dtype", ["uint8", "int16", "uint16", "float16", "int32", "float32",
                                   "uint64", "float64"])
def test_the_public_calls_give_the_same_bits_with_the_stand_ins(monkeypatch, dtype):
    import rsgt_fast
    from rsgt_fast import plan, scan

    rng = np.random.default_rng(8)
    x = _patterns(dtype, rng, (3, 70000))  # past the small-element kernel
    if np.dtype(dtype).kind == "f":
        x = np.nan_to_num(x.view(dtype), posinf=7.0, neginf=-9.0).astype(dtype)
    expected = rsgt_fast.transform_batch(x, rng=4)
    plain = np.dtype(dtype).kind != "u" and dtype != "float64"  # float64 holds its max
    expected_mr = rsgt_fast.normalize_mr_scan(x[0]) if plain else None
    bad = x.astype(np.float32) if plain else np.zeros(x.shape, np.float32)
    bad[2, 7] = np.nan
    with pytest.raises(ValueError) as expected_error:
        rsgt_fast.transform_batch(bad, rng=4)

    _stand_ins_only(monkeypatch)
    np.testing.assert_array_equal(rsgt_fast.transform_batch(x, rng=4), expected)
    if expected_mr is not None:
        np.testing.assert_array_equal(rsgt_fast.normalize_mr_scan(x[0]), expected_mr)
    with pytest.raises(ValueError) as error:
        rsgt_fast.transform_batch(bad, rng=4)
    assert str(error.value) == str(expected_error.value)
    for stand_in in (scan.scan_parts, plan.grids):
        assert stand_in.seconds and None not in stand_in.seconds.values()


@pytest.mark.parametrize("points", [[1], [2], [3, 17], [16, 255, 256, 257], [1000, 4096],
                                    [65536], [70001, 5]])
@pytest.mark.parametrize("dense", [False, True])
@pytest.mark.parametrize("n_sinusoids", [1, 4, 9])
def test_the_numpy_curves_give_the_kernels_bits(points, dense, n_sinusoids):
    from rsgt_fast.curves import sample_parameters

    rng = np.random.default_rng(len(points) * 100 + sum(points) + n_sinusoids)
    curve = sample_parameters(rng, len(points), n_sinusoids, 0.2, 1.6 + 3 * dense)

    def grid():
        return _layout.Grid(points=np.array(points, np.int64),
                            dense=np.full(len(points), dense),
                            values=np.full((len(points), max(points)), 3.0),
                            extrema=np.full((len(points), 2), 9.0))

    expected, got = grid(), grid()
    _kernels.sample_grids.serial(curve, expected)
    before = curve.copy()
    _stand_ins.sample_grids(curve, got)
    np.testing.assert_array_equal(curve, before)
    for field in ("values", "extrema"):
        np.testing.assert_array_equal(getattr(got, field), getattr(expected, field))


def _stand_ins_only(monkeypatch):
    """Make every stand-in run, with an empty record, for the rest of the test."""
    from rsgt_fast import augmentation, plan, scan

    monkeypatch.setattr(_jit, "COMPILE_AFTER", 1e9)
    monkeypatch.setattr(_jit, "_has_cache_index", lambda dispatcher: False)
    stand_ins = (scan.scan_parts, plan.grids, plan.small, augmentation._table)
    for stand_in in stand_ins:
        monkeypatch.setattr(stand_in, "seconds", {})
        monkeypatch.setattr(stand_in, "_cached", None)
    return stand_ins


@pytest.mark.parametrize("dtype", ["bool", "uint8", "int8", "int16", "uint16"])
@pytest.mark.parametrize("out_dtype", ["float32", "float16", "float64"])
@pytest.mark.parametrize("bounds", [None, (3, 90), (-40000, 70000), (5, 5), (-7, -2)])
def test_small_rows_give_the_same_bits_with_the_stand_in(monkeypatch, dtype, out_dtype, bounds):
    import rsgt_fast
    from rsgt_fast import plan

    if dtype == "bool" and bounds is not None:
        bounds = (0, 1)
    rng = np.random.default_rng(21)
    info = np.iinfo(np.uint8 if dtype == "bool" else dtype)
    x = rng.integers(info.min, info.max, (5, 9, 11), endpoint=True).astype(dtype)
    x[1] = x[1, 0, 0]  # one flat element
    kwargs = dict(rng=9, dtype=out_dtype, min_max_val=bounds, return_curves=True)
    expected, curves = rsgt_fast.transform_batch(x, **kwargs)
    stand_ins = _stand_ins_only(monkeypatch)
    got, got_curves = rsgt_fast.transform_batch(x, **kwargs)
    np.testing.assert_array_equal(got.view(np.uint8), expected.view(np.uint8))
    assert got_curves == curves
    ran = [seconds for stand_in in stand_ins[:3] for seconds in stand_in.seconds.values()]
    assert ran and None not in ran
    if bounds != (-40000, 70000):  # a range too wide for small rows
        assert plan.small.seconds


@pytest.mark.parametrize("out_dtype", ["float32", "float16"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_facade_gives_rsgts_bits_with_the_stand_ins(monkeypatch, out_dtype, seed):
    import rsgt.augmentation

    from rsgt_fast import augmentation

    image = np.random.default_rng(seed).integers(-1024, 3072, (40, 50)).astype(np.int16)
    np.random.seed(seed)
    expected = rsgt.augmentation.random_smooth_grayvalue_transform(image, dtype=out_dtype)
    _stand_ins_only(monkeypatch)
    np.random.seed(seed)
    got = augmentation.random_smooth_grayvalue_transform(image, dtype=out_dtype)
    np.testing.assert_array_equal(got.view(np.uint8), expected.view(np.uint8))
    lut = np.dtype(np.uint16 if out_dtype == "float16" else out_dtype)  # float16: bit patterns
    assert list(augmentation._table.seconds) == [lut]
    assert None not in augmentation._table.seconds.values()


def test_threads_share_the_stand_ins_and_get_the_same_bits(monkeypatch):
    from concurrent.futures import ThreadPoolExecutor

    import rsgt_fast

    rng = np.random.default_rng(12)
    inputs = [rng.integers(-1024, 3072, (2, 40, 40)).astype(np.int16),  # small elements
              rng.normal(0, 1, (2, 70000)).astype(np.float32),  # scan and curves
              rng.integers(0, 4096, (1, 30, 30)).astype(np.uint16)]
    expected = [rsgt_fast.transform_batch(x, rng=i) for i, x in enumerate(inputs)]
    stand_ins = _stand_ins_only(monkeypatch)
    jobs = [(i % len(inputs)) for i in range(48)]
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda i: rsgt_fast.transform_batch(inputs[i], rng=i), jobs))
    for i, got in zip(jobs, results):
        np.testing.assert_array_equal(got, expected[i])
    ran = [seconds for stand_in in stand_ins[:3] for seconds in stand_in.seconds.values()]
    assert len(ran) >= 4 and None not in ran
