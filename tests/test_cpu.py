"""``_cpu.py``, the CPU backend: the range scan, the curve tier, tables on several threads,
percentiles."""

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import rsgt_fast
from rsgt_fast import _cpu, _jit, plan, thread_limit

SCAN_DTYPES = ["bool", "int8", "uint8", "int16", "uint16", "float16", "int32", "uint32",
               "float32", "int64", "uint64", "float64"]


def patterns(dtype, rng, shape, non_finite=True):
    """Values of ``dtype`` with its extremes, signed zeros and (floats) NaN and Inf."""
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        info = np.finfo(dtype)
        pool = [0.0, -0.0, 1.5, -2.25, info.max, -info.max, info.tiny, -info.tiny]
        if non_finite:
            pool += [np.inf, -np.inf, np.nan, -np.nan]
        values = np.where(rng.random(shape) < 0.5, rng.choice(np.array(pool, dtype), shape),
                          rng.normal(0, 1e3, shape).astype(dtype))
    elif dtype.kind == "b":
        values = rng.random(shape) < 0.5
    else:
        info = np.iinfo(dtype)
        pool = np.array([info.min, info.max, 0, 1], dtype)
        values = np.where(rng.random(shape) < 0.1, rng.choice(pool, shape),
                          rng.integers(info.min, info.max, shape, dtype=dtype, endpoint=True))
    return values.astype(dtype)


@pytest.mark.parametrize("dtype", SCAN_DTYPES)
@pytest.mark.parametrize("shape", [(3, 1), (2, 37), (4, 64), (1, 300), (2, 3 * _cpu.CHUNK + 5)])
def test_row_extremes_are_numpys_and_flag_non_finite_rows(dtype, shape):
    rng = np.random.default_rng(abs(hash((dtype, shape))) % 2**32)
    for _ in range(4):
        values = patterns(dtype, rng, shape)
        x2, kind = plan.rows(values)
        before = x2.copy()
        lo, hi, bad = _cpu.row_extremes(x2, kind)
        np.testing.assert_array_equal(x2, before)
        if kind == "int":
            assert bad is None
            ints = values.astype(np.uint8) if values.dtype == np.bool_ else values
            np.testing.assert_array_equal(lo, ints.min(axis=1))
            np.testing.assert_array_equal(hi, ints.max(axis=1))
            continue
        finite = np.isfinite(values).all(axis=1)
        np.testing.assert_array_equal(bad, ~finite)
        for b in np.flatnonzero(finite):
            assert lo[b] == values[b].min() and hi[b] == values[b].max()


# ---------------------------------------------------------------- the curve tier

FRESH = """
import json, sys
import numpy as np
from numba.core import event
compiled = []

class Listener(event.Listener):
    def on_start(self, ev):
        pass

    def on_end(self, ev):
        compiled.append(ev.data["dispatcher"].py_func.__name__)

event.register("numba:compile", Listener())
import rsgt_fast
from rsgt_fast import _cpu
x = np.random.default_rng(0).normal(0, 1, (2, 3000)).astype(np.float32)
steps = []
for _ in range(3):
    rsgt_fast.transform_batch(x, rng=1)
    steps.append([_cpu.curves_compiled(), "sample_grids" in compiled])
print(json.dumps(steps))
"""


@pytest.mark.needs_jit
@pytest.mark.timeout(600, method="thread")
def test_curves_are_sampled_on_the_host_until_compiling_pays_or_the_cache_holds_them(tmp_path):
    def run(**env):
        env = {k: v for k, v in os.environ.items() if k != "RSGT_FAST_COMPILE_AFTER"} | env
        env["NUMBA_CACHE_DIR"] = str(tmp_path / "cache")
        done = subprocess.run([sys.executable, "-c", FRESH], env=env, capture_output=True,
                              text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        return json.loads(done.stdout.splitlines()[-1])

    # Calls of a few milliseconds pay for no compilation of the curve code.
    assert run() == [[False, False]] * 3
    # After a microsecond of host work they would: the second call compiles it.
    assert run(RSGT_FAST_COMPILE_AFTER="1e-6") == [[True, False], [True, True], [True, True]]
    # Now numba's cache holds it: the first call loads and runs it.
    assert run() == [[True, False]] * 3


@pytest.mark.parametrize("dtype", ["uint8", "int16", "uint16", "float16", "int32", "float32",
                                   "uint64", "float64"])
@pytest.mark.parametrize("shape", [(3, 70000), (4, 9, 11)])
def test_host_curves_give_the_compiled_bits(monkeypatch, dtype, shape):
    rng = np.random.default_rng(8)
    x = patterns(dtype, rng, shape, non_finite=False)
    for bounds in (None, (-40.5, 90.25), (3, 90)):
        expected, curves = rsgt_fast.transform_batch(x, rng=4, min_max_val=bounds,
                                                     return_curves=True)
        with monkeypatch.context() as m:
            m.setattr(_cpu, "_host_curves", {"seconds": 0.0, "cached": False})
            m.setattr(_cpu, "curves_compiled", lambda: False)
            got, got_curves = rsgt_fast.transform_batch(x, rng=4, min_max_val=bounds,
                                                        return_curves=True)
            assert _cpu._host_curves["seconds"] > 0  # the host sampled them
        np.testing.assert_array_equal(got, expected)
        assert got_curves == curves


def test_threads_on_the_host_tier_get_the_same_bits(monkeypatch):
    rng = np.random.default_rng(12)
    inputs = [rng.integers(-1024, 3072, (2, 40, 40)).astype(np.int16),
              rng.normal(0, 1, (2, 70000)).astype(np.float32),
              rng.integers(0, 4096, (1, 30, 30)).astype(np.uint16)]
    expected = [rsgt_fast.transform_batch(x, rng=i) for i, x in enumerate(inputs)]
    monkeypatch.setattr(_cpu, "_host_curves", {"seconds": 0.0, "cached": False})
    monkeypatch.setattr(_cpu, "curves_compiled", lambda: False)
    jobs = [(i % len(inputs)) for i in range(48)]
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda i: rsgt_fast.transform_batch(inputs[i], rng=i), jobs))
    for i, got in zip(jobs, results):
        np.testing.assert_array_equal(got, expected[i])


# ---------------------------------------------------------------- tables and small rows


@pytest.mark.parametrize("dtype", [np.int16, np.float16, np.float32, np.int32])
def test_tables_on_several_threads_give_the_one_thread_bits(dtype, monkeypatch):
    rng = np.random.default_rng(12)
    x = rng.integers(-1024, 3072, (6, 70001)).astype(dtype)
    if dtype == np.int32:
        x[:, 0] = 1 << 20  # ranges too wide for a point per integer
    with thread_limit(1):
        expected, curves = rsgt_fast.transform_batch(x, rng=4, return_curves=True)
    calls = []
    monkeypatch.setattr(_cpu, "run", lambda fn, args, n, work: calls.append((fn, work)) or
                        _jit.spread(fn, args, n, 4))  # every call, tables included, on four
    out, again = rsgt_fast.transform_batch(x, rng=4, return_curves=True)
    assert [fn for fn, _ in calls][1] is _cpu.sample_grids
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(again.extrema, curves.extrema)


@pytest.mark.parametrize("min_max_val", [None, (-500, 2000)])
@pytest.mark.parametrize("out_dtype", [np.float16, np.float32])
def test_small_rows_on_several_threads_give_the_one_thread_bits(min_max_val, out_dtype,
                                                               monkeypatch):
    x = np.random.default_rng(8).integers(-1024, 3072, (24, 48, 40)).astype(np.int16)
    with thread_limit(1):
        serial = rsgt_fast.transform_batch(x, rng=6, dtype=out_dtype, min_max_val=min_max_val)
    calls = []
    monkeypatch.setattr(_cpu, "run", lambda fn, args, n, work: calls.append(fn) or
                        _jit.spread(fn, args, n, 3))
    out = rsgt_fast.transform_batch(x, rng=6, dtype=out_dtype, min_max_val=min_max_val)
    assert calls == [_cpu.small_index_rows]  # one call for the whole batch
    np.testing.assert_array_equal(out.view(np.uint8), serial.view(np.uint8))


# ---------------------------------------------------------------- percentiles


@pytest.mark.parametrize("dtype", ["int8", "uint16", "int32", "float16", "float32", "float64",
                                   "uint64"])
@pytest.mark.parametrize("n", [1, 2, 21, 1000, 3 * _cpu.CHUNK + 7])
def test_percentiles_are_numpys(dtype, n):
    rng = np.random.default_rng(n)
    values = patterns(dtype, rng, (1, n), non_finite=False)[0]
    if np.dtype(dtype).kind == "f":
        # Finite in the dtype, so that numpy's interpolation is too.
        values = (values.astype(np.float64) % (1e3 if dtype == "float16" else 1e6)).astype(dtype)
    x2, kind = plan.rows(values[None])
    real = np.dtype(np.float16) if kind == "half" else x2.dtype
    out = np.float64 if np.dtype(dtype).itemsize == 8 else np.float32
    got = _cpu.percentiles(x2[0], real, np.dtype(out))
    expected = np.percentile(values.astype(out), (5, 95))
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=0)


@pytest.mark.parametrize("dtype", ["int8", "int16", "int32", "int64", "uint8", "float32"])
@pytest.mark.parametrize("shared", [False, True])
def test_selected_extremes_under_a_mask_match_numpy(dtype, shared):
    rng = np.random.default_rng(11)
    n = _cpu.CHUNK * 2 + 77  # rows of several tasks
    x = patterns(dtype, rng, (4, n), non_finite=False)
    info = np.iinfo(dtype) if np.dtype(dtype).kind in "iu" else np.finfo(dtype)
    x[0, 5], x[0, n - 3] = info.min, info.max  # the dtype's ends, selected
    x[1, :] = info.max  # one selected value at the top only
    mask = rng.random((1 if shared else 4, n)) < 0.3
    if not shared:
        mask[2] = False  # a row with nothing selected
        mask[3] = False
        mask[3, n - 1] = True  # one value, in the last task
    mask[:, 5] = True
    mask[:, n - 3] = True
    lo, hi, counts = _cpu.selected_extremes(x, "float" if dtype == "float32" else "int",
                                            mask.view(np.uint8), False)
    for b in range(4):
        chosen = x[b][mask[0 if shared else b]]
        assert (counts[b] > 0) == (chosen.size > 0), b
        if chosen.size:
            assert lo[b] == chosen.min() and hi[b] == chosen.max(), b
